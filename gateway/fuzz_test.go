package gateway

// Fuzz targets for every decoder of input from outside the node (STYLE.md:
// "Fuzz the decoders of everything that arrives from outside"). Each takes
// a raw payload and whether it arrived as JSON, and runs the gateway's own
// decode and validation in process — no NATS needed. They check DESIGN.md
// invariant 4 from the inside:
//
//   - nothing panics;
//   - a refusal has one of the stable codes and a message;
//   - anything accepted re-encodes, in its own encoding and in the other one
//     (replies and notices may echo it in either), and decodes back to an
//     equal message that passes validation again — so what the engine was
//     given is exactly what the wire said, and stays valid.
//
// FuzzRefusalIsAnswerable checks the other half of "every request gets
// exactly one reply": the error reply built for a refusal can be encoded.
//
// Run one for a while with, e.g.:
//
//	go test -run='^$' -fuzz='^FuzzArrival$' -fuzztime=20s ./gateway/

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var fuzzNow = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// fuzzLimit is the default MaxPayload.
var fuzzLimit = DefaultConfig().MaxPayload

// The subject tokens the media and agent targets are delivered on.
const (
	fuzzQueue   = "support"
	fuzzContact = "call-1"
	fuzzAgent   = "agent-1"
)

func encFor(asJSON bool) Encoding {
	if asJSON {
		return JSON
	}
	return Protobuf
}

func encString(e Encoding) string {
	if e == JSON {
		return "JSON"
	}
	return "protobuf"
}

func otherEncoding(e Encoding) Encoding {
	if e == JSON {
		return Protobuf
	}
	return JSON
}

// checkRefusal: a stable code and a message; decode-level refusals name the
// message type.
func checkRefusal(t *testing.T, e *decodeError, what string) {
	t.Helper()
	switch e.code {
	case pb.ErrorCode_ERROR_CODE_MALFORMED, pb.ErrorCode_ERROR_CODE_TOO_LARGE, pb.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION:
		if !strings.Contains(e.msg, what) {
			t.Fatalf("%v refusal %q does not name %s", e.code, e.msg, what)
		}
	case pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT:
		if e.msg == "" {
			t.Fatalf("INVALID_ARGUMENT without a message")
		}
	default:
		t.Fatalf("refusal with code %v (%q); want MALFORMED, TOO_LARGE, UNSUPPORTED_VERSION or INVALID_ARGUMENT", e.code, e.msg)
	}
}

// dropUnknown clears unknown fields everywhere in m: JSON cannot carry
// them, so a protobuf message re-encoded as JSON loses them by design.
func dropUnknown(m protoreflect.Message) {
	m.SetUnknown(nil)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					dropUnknown(mv.Message())
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := 0; i < v.List().Len(); i++ {
					dropUnknown(v.List().Get(i).Message())
				}
			}
		case fd.Message() != nil:
			dropUnknown(v.Message())
		}
		return true
	})
}

// roundTrip checks that an accepted m re-encodes in enc and in the other
// encoding, decodes back to an equal message, and passes valid again.
func roundTrip[M proto.Message](t *testing.T, m M, enc Encoding, what string, valid func(M) *decodeError) {
	t.Helper()
	for _, to := range []Encoding{enc, otherEncoding(enc)} {
		want := m
		if to != enc {
			want = proto.Clone(m).(M)
			dropUnknown(want.ProtoReflect())
		}
		data, err := encode(want, to)
		if err != nil {
			t.Fatalf("accepted %s (%s in) does not encode as %s: %v\n%v", what, encString(enc), encString(to), err, want)
		}
		back := want.ProtoReflect().New().Interface().(M)
		if e := decode(data, to, math.MaxInt, what, back); e != nil {
			t.Fatalf("accepted %s re-encoded as %s does not decode: %v\n%q", what, encString(to), e, data)
		}
		if !proto.Equal(want, back) {
			t.Fatalf("accepted %s changed in a %s round trip:\n  was %v\n  now %v", what, encString(to), want, back)
		}
		if e := valid(back); e != nil {
			t.Fatalf("accepted %s fails validation after a %s round trip: %v", what, encString(to), e)
		}
	}
}

// subjectSafe: a token that goes into a NATS subject has no separator,
// wildcard or whitespace, so the subject has exactly the tokens intended.
func subjectSafe(t *testing.T, field, tok string) {
	t.Helper()
	if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
		t.Fatalf("accepted %s %q is not safe in a NATS subject", field, tok)
	}
}

// --- seeds ------------------------------------------------------------------

func seedBoth(f *testing.F, msgs ...proto.Message) {
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		for _, o := range []protojson.MarshalOptions{{}, {UseProtoNames: true}, {UseEnumNumbers: true}} {
			j, err := o.Marshal(m)
			if err != nil {
				continue // e.g. an out-of-range timestamp has no JSON form
			}
			f.Add(j, true)
		}
	}
}

func seedRaw(f *testing.F, asJSON bool, payloads ...[]byte) {
	for _, p := range payloads {
		f.Add(p, asJSON)
	}
}

// wire builds protobuf by hand, for what proto.Marshal never produces.
func wire(parts ...func([]byte) []byte) []byte {
	var b []byte
	for _, p := range parts {
		b = p(b)
	}
	return b
}

func varintField(n protowire.Number, v uint64) func([]byte) []byte {
	return func(b []byte) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
	}
}

func bytesField(n protowire.Number, v []byte) func([]byte) []byte {
	return func(b []byte) []byte { return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), v) }
}

// hugeLength declares a length-delimited field far longer than the input.
func hugeLength(n protowire.Number, length uint64) func([]byte) []byte {
	return func(b []byte) []byte {
		return append(protowire.AppendVarint(protowire.AppendTag(b, n, protowire.BytesType), length), "abc"...)
	}
}

// Edge cases common to every message: negative enums as 10-byte varints,
// lengths past the end, groups, junk, and JSON oddities.
func seedEdges(f *testing.F) {
	neg := func(v int64) uint64 { return uint64(v) }
	seedRaw(f, false,
		nil,
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		wire(varintField(1, 2)),
		wire(varintField(1, math.MaxUint32+1)),
		wire(varintField(3, neg(-1))),
		wire(varintField(4, neg(-1))),
		wire(varintField(3, neg(math.MinInt32))),
		wire(varintField(9, neg(-101))),
		wire(hugeLength(2, 1<<62)),
		wire(hugeLength(2, math.MaxUint32)),
		wire(hugeLength(7, 1<<31)),
		wire(bytesField(2, []byte{0xc3, 0x28})),
		wire(bytesField(7, wire(bytesField(1, []byte("k"))))),   // map entry without a value
		wire(bytesField(7, wire(bytesField(2, []byte("v"))))),   // map entry without a key
		wire(bytesField(10, wire(varintField(1, neg(-1<<40))))), // timestamp seconds far in the past
		wire(bytesField(10, wire(varintField(2, 2e9)))),         // timestamp nanos out of range
		wire(varintField(100, 1), bytesField(101, []byte("unknown"))),
		[]byte{0x0b, 0x0c},       // an empty group (wire type 3/4)
		[]byte{0x0b},             // a group never closed
		[]byte{0x0c},             // an end-group with no start
		[]byte{0x12, 0x80, 0x80}, // length varint truncated
	)
	seedRaw(f, true,
		nil,
		[]byte(`{}`),
		[]byte(`null`),
		[]byte(`[]`),
		[]byte(`{"schema_version": 2}`),
		[]byte(`{"schema_version": 4294967296}`),
		[]byte(`{"schema_version": -1}`),
		[]byte(`{"schema_version": "1"}`),
		[]byte(`{"schema_version": 1.0}`),
		[]byte(`{"schema_version": 1e0}`),
		[]byte(`{"kind": -1}`),
		[]byte(`{"kind": 99}`),
		[]byte(`{"channel": -1}`),
		[]byte(`{"channel": "CHANNEL_NOPE"}`),
		[]byte(`{"priority": "5"}`),
		[]byte(`{"priority": 99999999999}`),
		[]byte(`{"priority": NaN}`),
		[]byte(`{"contact_id": null, "contactId": "x"}`),
		[]byte(`{"contact_id": "a", "contactId": "b"}`),
		[]byte(`{"attributes": {"": "x", "k": null}}`),
		[]byte(`{"waiting_since": "2026-11-02T08:59:00Z"}`),
		[]byte(`{"waiting_since": "0001-01-01T00:00:00Z"}`),
		[]byte(`{"waiting_since": "10000-01-01T00:00:00Z"}`),
		[]byte(`{"fence": {"shard": 1, "term": "18446744073709551615"}}`),
		[]byte(`{"error": {"code": "ERROR_CODE_INTERNAL", "message": "\ud800"}}`),
		[]byte(`{"contact_id": "\u0000"}`),
		[]byte(strings.Repeat("[", 10000)),
		[]byte(strings.Repeat(`{"skills":[`, 200)),
		[]byte("\xef\xbb\xbf{}"), // a byte-order mark
	)
}

// --- targets ------------------------------------------------------------------

func FuzzArrival(f *testing.F) {
	full := &pb.ContactArrival{
		SchemaVersion: 1, ContactId: "call-1", Queue: "support", Channel: pb.Channel_CHANNEL_VOICE,
		Direction: pb.Direction_DIRECTION_INBOUND, CustomerKey: "+81-3-1234-5678",
		Attributes: map[string]string{"tier": "gold", "reason": "billing"},
		Skills:     []*pb.SkillRequirement{{Skill: "language:ja", MinLevel: 3}, {Skill: "support", MinLevel: 5}},
		Priority:   -100, WaitingSince: timestamppb.New(fuzzNow.Add(-time.Hour)), Carrier: "pbx-1", Language: "ja-JP",
		Site: "tokyo",
	}
	seedBoth(f,
		full,
		&pb.ContactArrival{ContactId: "c", Queue: "q", Channel: pb.Channel_CHANNEL_CHAT},
		&pb.ContactArrival{ContactId: "a.b", Queue: "q", Channel: pb.Channel_CHANNEL_CHAT},
		&pb.ContactArrival{ContactId: "c", Queue: "q", Channel: -1},
		&pb.ContactArrival{ContactId: "c", Queue: "q", Channel: 1, Priority: 101},
		&pb.ContactArrival{ContactId: "c", Queue: "q", Channel: 1, WaitingSince: &timestamppb.Timestamp{Seconds: 1 << 40}},
		&pb.ContactArrival{ContactId: "c", Queue: "q", Channel: 1, Skills: []*pb.SkillRequirement{{Skill: "s", MinLevel: 6}}},
		&pb.ContactArrival{ContactId: "c", Queue: "q", Channel: 1, Site: strings.Repeat("s", 65)},
	)
	seedEdges(f)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		enc := encFor(asJSON)
		a := &pb.ContactArrival{}
		e := decode(data, enc, fuzzLimit, "ContactArrival", a)
		if e == nil {
			e = validateArrival("pbx-1", a, fuzzNow)
		}
		if e != nil {
			checkRefusal(t, e, "ContactArrival")
			return
		}
		subjectSafe(t, "contact_id", a.GetContactId())
		subjectSafe(t, "queue", a.GetQueue())
		if a.GetCarrier() != "" {
			subjectSafe(t, "carrier", a.GetCarrier())
		}
		if p := a.GetPriority(); p < -MaxPriority || p > MaxPriority {
			t.Fatalf("accepted priority %d", p)
		}
		if n := len(a.GetSite()); n > routing.MaxSiteLen {
			t.Fatalf("accepted a site of %d bytes", n)
		}
		roundTrip(t, a, enc, "ContactArrival", func(m *pb.ContactArrival) *decodeError { return validateArrival("pbx-1", m, fuzzNow) })
	})
}

func FuzzMedia(f *testing.F) {
	seedBoth(f,
		&pb.MediaEvent{Kind: pb.MediaKind_MEDIA_KIND_ANSWERED},
		&pb.MediaEvent{SchemaVersion: 1, ContactId: fuzzContact, Kind: pb.MediaKind_MEDIA_KIND_HUNG_UP},
		&pb.MediaEvent{Kind: pb.MediaKind_MEDIA_KIND_DTMF, Digits: "0123456789*#ABCD"},
		&pb.MediaEvent{Kind: pb.MediaKind_MEDIA_KIND_DTMF, Digits: "12x"},
		&pb.MediaEvent{ContactId: "call-2", Kind: pb.MediaKind_MEDIA_KIND_HOLD},
		&pb.MediaEvent{Kind: -1},
	)
	seedEdges(f)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		enc := encFor(asJSON)
		ev := &pb.MediaEvent{}
		e := decode(data, enc, fuzzLimit, "MediaEvent", ev)
		if e == nil {
			e = validateMedia("pbx-1", fuzzQueue, fuzzContact, ev)
		}
		if e != nil {
			checkRefusal(t, e, "MediaEvent")
			return
		}
		// What the engine is given: the subject's contact id.
		ev.ContactId = fuzzContact
		if k := ev.GetKind(); k == pb.MediaKind_MEDIA_KIND_UNSPECIFIED || pb.MediaKind_name[int32(k)] == "" {
			t.Fatalf("accepted media kind %v", k)
		}
		roundTrip(t, ev, enc, "MediaEvent", func(m *pb.MediaEvent) *decodeError { return validateMedia("pbx-1", fuzzQueue, fuzzContact, m) })
	})
}

func FuzzAgentCommand(f *testing.F) {
	seedBoth(f,
		&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN, Ready: true},
		&pb.AgentCommand{SchemaVersion: 1, AgentId: fuzzAgent, Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_NOT_READY, Reason: "lunch: 30 min."},
		&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, OfferId: "c-1#agent-1:3", Fence: &pb.Fence{Shard: 3, Term: 9}},
		&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, OfferId: "o"},
		&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT},
		&pb.AgentCommand{AgentId: "agent-2", Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS},
		&pb.AgentCommand{Kind: 99},
	)
	seedEdges(f)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		enc := encFor(asJSON)
		c := &pb.AgentCommand{}
		e := decode(data, enc, fuzzLimit, "AgentCommand", c)
		if e == nil {
			e = validateAgentCommand(fuzzAgent, c)
		}
		if e != nil {
			checkRefusal(t, e, "AgentCommand")
			return
		}
		switch c.GetKind() {
		case pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT, pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE:
			if c.GetOfferId() == "" {
				t.Fatalf("accepted %v without offer_id", c.GetKind())
			}
		}
		if len(c.GetReason()) > MaxReasonLen {
			t.Fatalf("accepted a reason of %d bytes", len(c.GetReason()))
		}
		roundTrip(t, c, enc, "AgentCommand", func(m *pb.AgentCommand) *decodeError { return validateAgentCommand(fuzzAgent, m) })
	})
}

// FuzzInstructionAck follows Instruct's path for a carrier's reply: the
// encoding from the reply's Content-Type, then decode.
func FuzzInstructionAck(f *testing.F) {
	seedBoth(f,
		&pb.InstructionAck{SchemaVersion: 1, InstructionId: "c-1#agent-1:1"},
		&pb.InstructionAck{InstructionId: "x", Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE, Message: "trunk busy"}},
		&pb.InstructionAck{Error: &pb.Error{Code: -1}},
	)
	seedEdges(f)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		var h nats.Header
		if asJSON {
			h = nats.Header{HeaderContentType: []string{ContentJSON}}
		}
		enc := encodingOf(h, data)
		ack := &pb.InstructionAck{}
		if e := decode(data, enc, fuzzLimit, "InstructionAck", ack); e != nil {
			checkRefusal(t, e, "InstructionAck")
			if e.Error() == "" {
				t.Fatal("decode error without text")
			}
			return
		}
		roundTrip(t, ack, enc, "InstructionAck", func(*pb.InstructionAck) *decodeError { return nil })
	})
}

// FuzzRefusalIsAnswerable: for every request type, a refused payload gets
// an error reply that can be encoded in the request's encoding — otherwise
// the gateway sends no reply at all ("reply not encodable") and the carrier
// or desktop waits out its timeout. The replies are built as the handlers
// in gateway.go build them.
func FuzzRefusalIsAnswerable(f *testing.F) {
	seedBoth(f,
		&pb.ContactArrival{ContactId: "c", Queue: "q", Channel: pb.Channel_CHANNEL_CHAT},
		&pb.MediaEvent{Kind: pb.MediaKind_MEDIA_KIND_DTMF, Digits: "1"},
		&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_READY},
	)
	seedEdges(f)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		enc := encFor(asJSON)
		answerable := func(reply proto.Message, e *decodeError) {
			t.Helper()
			if _, err := encode(reply, enc); err != nil {
				t.Fatalf("refusal %v %q gets no reply: the %T is not encodable as %s: %v", e.code, e.msg, reply, encString(enc), err)
			}
		}

		a := &pb.ContactArrival{}
		e := decode(data, enc, fuzzLimit, "ContactArrival", a)
		if e == nil {
			e = validateArrival("pbx-1", a, fuzzNow)
		}
		if e != nil {
			answerable(&pb.ArrivalReply{ContactId: a.GetContactId(), Queue: a.GetQueue(), Error: e.proto()}, e)
		}

		ev := &pb.MediaEvent{}
		e = decode(data, enc, fuzzLimit, "MediaEvent", ev)
		if e == nil {
			e = validateMedia("pbx-1", fuzzQueue, fuzzContact, ev)
		}
		if e != nil {
			answerable(&pb.MediaEventReply{ContactId: fuzzContact, Error: e.proto()}, e)
		}

		c := &pb.AgentCommand{}
		e = decode(data, enc, fuzzLimit, "AgentCommand", c)
		if e == nil {
			e = validateAgentCommand(fuzzAgent, c)
		}
		if e != nil {
			answerable(&pb.AgentCommandReply{Error: e.proto()}, e)
		}

		q := &pb.QueueStatusRequest{}
		e = decode(data, enc, fuzzLimit, "QueueStatusRequest", q)
		if e == nil {
			e = checkVersion(q.GetSchemaVersion(), "QueueStatusRequest")
		}
		if e != nil {
			answerable(&pb.QueueStatusReply{Queue: fuzzQueue, Error: e.proto()}, e)
		}
	})
}
