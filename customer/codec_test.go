package customer

import (
	"testing"
	"time"
)

func TestInteractionEncoding(t *testing.T) {
	in := normalize(call("c-123", "agent-7", 1))
	b, err := encodeInteraction(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"c":"c-123","ch":"voice","q":"billing","a":"agent-7","s":1793609880123456789,"e":1793610060123456789,"o":"handled"}`
	if string(b) != want {
		t.Fatalf("encoding = %s\nwant       %s", b, want)
	}
	got, err := decodeInteraction(b)
	if err != nil || got != in {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, in)
	}

	if b, _ := encodeInteraction(Interaction{}); string(b) != "{}" {
		t.Fatalf("zero interaction encodes as %s, want {}", b)
	}
	if got, _ := decodeInteraction([]byte("{}")); got != (Interaction{}) {
		t.Fatalf("{} decodes as %+v, want the zero interaction", got)
	}
}

// FuzzDecodeInteraction feeds the decoder what Redis might hold after a bug,
// a manual edit or another version: it must never panic, and what it accepts
// must re-encode to something that decodes the same.
func FuzzDecodeInteraction(f *testing.F) {
	good, _ := encodeInteraction(normalize(call("c1", "a1", 1)))
	for _, s := range []string{string(good), "{}", "", "null", `{"s":-1}`, `{"e":"x"}`, `[1,2]`, `{"c":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decodeInteraction(b)
		if err != nil {
			return
		}
		again, err := encodeInteraction(in)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", in, err)
		}
		out, err := decodeInteraction(again)
		if err != nil || !sameInteraction(in, out) {
			t.Fatalf("%q -> %+v -> %s -> %+v, %v", b, in, again, out, err)
		}
		for _, tm := range []time.Time{out.StartedAt, out.EndedAt} {
			if !tm.IsZero() && tm.Location() != time.UTC {
				t.Fatalf("decoded time %v not in UTC", tm)
			}
		}
	})
}
