package actors

import (
	"testing"
	"time"
)

// Each duration counts in the first bucket whose bound it does not exceed,
// and the cumulative counts, the total and the sum add up.
func TestLatency_Buckets(t *testing.T) {
	var l Latency
	for _, d := range []time.Duration{0, 250 * time.Microsecond, 251 * time.Microsecond, 3 * time.Millisecond, time.Minute} {
		l.Observe(d)
	}
	le, count, sum := l.Cumulative()
	if count != 5 {
		t.Fatalf("count %d, want 5", count)
	}
	if want := 250*time.Microsecond + 251*time.Microsecond + 3*time.Millisecond + time.Minute; sum != want {
		t.Errorf("sum %v, want %v", sum, want)
	}
	// ≤250µs: two; ≤500µs: three; ≤5ms: four; the minute is beyond 5s.
	want := map[time.Duration]uint64{250 * time.Microsecond: 2, 500 * time.Microsecond: 3, 2 * time.Millisecond: 3, 5 * time.Millisecond: 4, 5 * time.Second: 4}
	for i, b := range LatencyBounds {
		if w, ok := want[b]; ok && le[i] != w {
			t.Errorf("le=%v: %d, want %d", b, le[i], w)
		}
		if i > 0 && le[i] < le[i-1] {
			t.Errorf("le=%v: %d is less than the bucket below (%d)", b, le[i], le[i-1])
		}
	}
}
