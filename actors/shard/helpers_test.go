package shard_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// testShard is the shard every test state belongs to.
const testShard = 3

// t0 is an arbitrary start of a working day; sec(n) is n seconds later.
var t0 = time.Date(2026, time.November, 2, 9, 0, 0, 0, time.UTC).UnixNano()

func sec(n int64) int64 { return t0 + n*int64(time.Second) }

const (
	voice    = pb.Channel_CHANNEL_VOICE
	chat     = pb.Channel_CHANNEL_CHAT
	email    = pb.Channel_CHANNEL_EMAIL
	sms      = pb.Channel_CHANNEL_SMS
	callback = pb.Channel_CHANNEL_CALLBACK
)

const (
	queued    = pb.ContactState_CONTACT_STATE_QUEUED
	reserved  = pb.ContactState_CONTACT_STATE_RESERVED
	connected = pb.ContactState_CONTACT_STATE_CONNECTED
	inWrapUp  = pb.ContactState_CONTACT_STATE_WRAP_UP
	finished  = pb.ContactState_CONTACT_STATE_DONE
	abandoned = pb.ContactState_CONTACT_STATE_ABANDONED
)

const (
	slotOffered = pb.SlotState_SLOT_STATE_OFFERED
	slotBusy    = pb.SlotState_SLOT_STATE_BUSY
	slotWrapUp  = pb.SlotState_SLOT_STATE_WRAP_UP
	slotFreed   = pb.SlotState_SLOT_STATE_UNSPECIFIED
)

const (
	available = pb.AgentPresence_AGENT_PRESENCE_AVAILABLE
	notReadyP = pb.AgentPresence_AGENT_PRESENCE_NOT_READY
	offline   = pb.AgentPresence_AGENT_PRESENCE_OFFLINE
)

// cmd wraps one command payload into a current-version command at time at.
func cmd(at int64, kind proto.Message) *pb.Command {
	c := &pb.Command{Version: shard.CommandVersion, At: at, Shard: testShard}
	switch k := kind.(type) {
	case *pb.ContactArrive:
		c.Kind = &pb.Command_ContactArrive{ContactArrive: k}
	case *pb.ContactLock:
		c.Kind = &pb.Command_ContactLock{ContactLock: k}
	case *pb.ContactUnlock:
		c.Kind = &pb.Command_ContactUnlock{ContactUnlock: k}
	case *pb.ContactConnect:
		c.Kind = &pb.Command_ContactConnect{ContactConnect: k}
	case *pb.ContactEnd:
		c.Kind = &pb.Command_ContactEnd{ContactEnd: k}
	case *pb.ContactDone:
		c.Kind = &pb.Command_ContactDone{ContactDone: k}
	case *pb.ContactMedia:
		c.Kind = &pb.Command_ContactMedia{ContactMedia: k}
	case *pb.AgentLogin:
		c.Kind = &pb.Command_AgentLogin{AgentLogin: k}
	case *pb.AgentLogout:
		c.Kind = &pb.Command_AgentLogout{AgentLogout: k}
	case *pb.AgentPresenceChange:
		c.Kind = &pb.Command_AgentPresence{AgentPresence: k}
	case *pb.AgentReserve:
		c.Kind = &pb.Command_AgentReserve{AgentReserve: k}
	case *pb.AgentOfferOutcome:
		c.Kind = &pb.Command_AgentOfferOutcome{AgentOfferOutcome: k}
	case *pb.AgentContactEnded:
		c.Kind = &pb.Command_AgentContactEnded{AgentContactEnded: k}
	case *pb.AgentWrapUpDone:
		c.Kind = &pb.Command_AgentWrapUpDone{AgentWrapUpDone: k}
	case nil:
	default:
		panic(fmt.Sprintf("cmd: %T is not a command kind", kind))
	}
	return c
}

func arrive(contact, queue string, ch pb.Channel) *pb.ContactArrive {
	return &pb.ContactArrive{ContactId: contact, Queue: queue, Channel: ch}
}

func lock(contact, agent, offer string) *pb.ContactLock {
	return &pb.ContactLock{ContactId: contact, AgentId: agent, OfferId: offer}
}

func unlock(contact, offer string, why pb.UnlockReason) *pb.ContactUnlock {
	return &pb.ContactUnlock{ContactId: contact, OfferId: offer, Reason: why}
}

func connect(contact, offer string) *pb.ContactConnect {
	return &pb.ContactConnect{ContactId: contact, OfferId: offer}
}

func hangUp(contact string) *pb.ContactEnd {
	return &pb.ContactEnd{ContactId: contact, Reason: pb.EndReason_END_REASON_HANGUP}
}

func done(contact, offer string) *pb.ContactDone {
	return &pb.ContactDone{ContactId: contact, OfferId: offer}
}

func media(contact string, kind pb.MediaKind) *pb.ContactMedia {
	return &pb.ContactMedia{ContactId: contact, Kind: kind}
}

func login(agent string, ready bool) *pb.AgentLogin {
	return &pb.AgentLogin{Profile: &pb.AgentProfile{Id: agent, Site: "osaka"}, Ready: ready}
}

func loginAs(p *pb.AgentProfile, ready bool) *pb.AgentLogin {
	return &pb.AgentLogin{Profile: p, Ready: ready}
}

func logout(agent string) *pb.AgentLogout { return &pb.AgentLogout{AgentId: agent} }

func ready(agent string) *pb.AgentPresenceChange {
	return &pb.AgentPresenceChange{AgentId: agent, Presence: available}
}

func notReady(agent, reason string) *pb.AgentPresenceChange {
	return &pb.AgentPresenceChange{AgentId: agent, Presence: notReadyP, Reason: reason}
}

func reserve(agent, offer, contact string, ch pb.Channel) *pb.AgentReserve {
	return &pb.AgentReserve{AgentId: agent, OfferId: offer, ContactId: contact, Queue: "sales", Channel: ch, ContactShard: testShard}
}

func outcome(agent, offer string, k pb.OfferOutcomeKind) *pb.AgentOfferOutcome {
	return &pb.AgentOfferOutcome{AgentId: agent, OfferId: offer, Outcome: k}
}

func accept(agent, offer string) *pb.AgentOfferOutcome {
	return outcome(agent, offer, pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_ACCEPTED)
}

func reject(agent, offer string) *pb.AgentOfferOutcome {
	return outcome(agent, offer, pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_REJECTED)
}

func withdraw(agent, offer string) *pb.AgentOfferOutcome {
	return outcome(agent, offer, pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_WITHDRAWN)
}

func miss(agent, offer string, thenNotReady bool) *pb.AgentOfferOutcome {
	o := outcome(agent, offer, pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_MISSED)
	o.NotReady = thenNotReady
	return o
}

func contactEnded(agent, offer string, wrapUpUntil int64, fixed bool) *pb.AgentContactEnded {
	return &pb.AgentContactEnded{AgentId: agent, OfferId: offer, WrapUpUntil: wrapUpUntil, WrapUpFixed: fixed}
}

func wrapUpDone(agent, offer string, byAgent bool) *pb.AgentWrapUpDone {
	return &pb.AgentWrapUpDone{AgentId: agent, OfferId: offer, ByAgent: byAgent}
}

// Steps of one contact's happy path, in order; see lifecycle.
const (
	stepArrive = iota
	stepLock
	stepReserve
	stepAccept
	stepConnect
	stepHangUp
	stepAgentEnded
	stepWrapUpDone
	stepDone
)

// beforeArrival is the step before the contact exists: only the agent is
// logged in.
const beforeArrival = -1

// wrapUp is the wrap-up time box of the happy path.
const wrapUp = 30 * int64(time.Second)

// lifecycle is the happy path of one voice contact in queue "sales", one
// command a second from start: arrive, lock, reserve, accept, connect,
// hang-up, the agent's contact-ended (30 s wrap-up, not fixed), wrap-up done
// by the agent, contact done.
func lifecycle(start int64, contact, agent, offer string) []*pb.Command {
	return lifecycleEvery(start, int64(time.Second), contact, agent, offer)
}

// lifecycleEvery is lifecycle with its commands every apart.
func lifecycleEvery(start, every int64, contact, agent, offer string) []*pb.Command {
	step := func(i int64) int64 { return start + i*every }
	return []*pb.Command{
		stepArrive:     cmd(step(stepArrive), arrive(contact, "sales", voice)),
		stepLock:       cmd(step(stepLock), lock(contact, agent, offer)),
		stepReserve:    cmd(step(stepReserve), reserve(agent, offer, contact, voice)),
		stepAccept:     cmd(step(stepAccept), accept(agent, offer)),
		stepConnect:    cmd(step(stepConnect), connect(contact, offer)),
		stepHangUp:     cmd(step(stepHangUp), hangUp(contact)),
		stepAgentEnded: cmd(step(stepAgentEnded), contactEnded(agent, offer, step(stepAgentEnded)+wrapUp, false)),
		stepWrapUpDone: cmd(step(stepWrapUpDone), wrapUpDone(agent, offer, true)),
		stepDone:       cmd(step(stepDone), done(contact, offer)),
	}
}

// pathStart is when contact c1's happy path starts in upTo.
const pathStartSec = 10

// at returns the time of a step of the standard path (c1, a1, o1).
func at(step int) int64 { return sec(pathStartSec + int64(step)) }

// upTo is agent a1 logging in ready at t0 followed by contact c1's happy
// path with offer o1 up to and including step.
func upTo(step int) []*pb.Command {
	path := lifecycle(sec(pathStartSec), "c1", "a1", "o1")
	return append([]*pb.Command{cmd(sec(0), login("a1", true))}, path[:step+1]...)
}

// then appends more commands to a given history.
func then(history []*pb.Command, more ...*pb.Command) []*pb.Command {
	return append(append([]*pb.Command(nil), history...), more...)
}

// given returns a fresh state of testShard with cmds applied; each must
// succeed (duplicates included).
func given(t testing.TB, cmds ...*pb.Command) *shard.State {
	t.Helper()
	s := shard.New(testShard, 0)
	for _, c := range cmds {
		mustApply(t, s, c)
	}
	return s
}

func mustApply(t testing.TB, s *shard.State, c *pb.Command) shard.Result {
	t.Helper()
	r := s.Apply(c)
	if r.Err != nil {
		t.Fatalf("apply %s: refused: %v", describe(c), r.Err)
	}
	return r
}

// applyNew applies c, which must be a new change: accepted, not a duplicate.
func applyNew(t testing.TB, s *shard.State, c *pb.Command) shard.Result {
	t.Helper()
	r := mustApply(t, s, c)
	if r.Duplicate {
		t.Fatalf("apply %s: reported as duplicate", describe(c))
	}
	return r
}

// refuse applies c, which must be refused with want's code. The message must
// name each of names, no events come out and the state must not change.
func refuse(t testing.TB, s *shard.State, c *pb.Command, want *shard.Error, names ...string) shard.Result {
	t.Helper()
	before := s.Snapshot()
	r := s.Apply(c)
	if r.Err == nil {
		t.Fatalf("apply %s: accepted, want %v", describe(c), want)
	}
	var se *shard.Error
	if !errors.As(r.Err, &se) {
		t.Errorf("error %v is a %T, want *shard.Error", r.Err, r.Err)
	}
	if !errors.Is(r.Err, want) {
		t.Errorf("error %q (code %v) does not match %v", r.Err, shard.CodeOf(r.Err), want.Code)
	}
	if got := shard.CodeOf(r.Err); got != want.Code {
		t.Errorf("CodeOf = %v, want %v", got, want.Code)
	}
	for _, n := range names {
		if !strings.Contains(r.Err.Error(), n) {
			t.Errorf("message %q does not name %q", r.Err, n)
		}
	}
	if r.Duplicate || len(r.Events) > 0 {
		t.Errorf("refusal reported duplicate=%v events=%v", r.Duplicate, r.Events)
	}
	assertUnchanged(t, "refused command", before, s.Snapshot())
	return r
}

// retry applies c, which must be recognised as already in place: a
// duplicate with no events and no change.
func retry(t testing.TB, s *shard.State, c *pb.Command) shard.Result {
	t.Helper()
	before := s.Snapshot()
	r := s.Apply(c)
	if r.Err != nil {
		t.Fatalf("retry of %s refused: %v", describe(c), r.Err)
	}
	if !r.Duplicate {
		t.Errorf("retry of %s not reported as duplicate", describe(c))
	}
	if len(r.Events) > 0 {
		t.Errorf("retry of %s produced events %v", describe(c), r.Events)
	}
	assertUnchanged(t, "retry", before, s.Snapshot())
	return r
}

func assertUnchanged(t testing.TB, what string, before, after *pb.ShardSnapshot) {
	t.Helper()
	if !proto.Equal(before, after) {
		t.Errorf("%s changed the state:\nbefore: %s\nafter:  %s", what, describe(before), describe(after))
	}
}

func describe(m proto.Message) string {
	if m == nil || !m.ProtoReflect().IsValid() {
		return "<nil>"
	}
	return prototext.MarshalOptions{}.Format(m)
}

func contactOf(t testing.TB, s *shard.State, id string) shard.Contact {
	t.Helper()
	c, ok := s.Contact(id)
	if !ok {
		t.Fatalf("contact %q is not in the state", id)
	}
	return c
}

func agentOf(t testing.TB, s *shard.State, id string) shard.Agent {
	t.Helper()
	a, ok := s.Agent(id)
	if !ok {
		t.Fatalf("agent %q is not in the state", id)
	}
	return a
}

// withoutArrival drops the shared arrival so records compare with ==.
func withoutArrival(c shard.Contact) shard.Contact {
	c.Arrival = nil
	return c
}

// withoutProfile drops the shared profile so records compare deeply.
func withoutProfile(a shard.Agent) shard.Agent {
	a.Profile = nil
	return a
}

func contactEvent(at int64, e *pb.ContactEvent) *pb.Event {
	return &pb.Event{At: at, Shard: testShard, Kind: &pb.Event_Contact{Contact: e}}
}

func agentEvent(at int64, e *pb.AgentEvent) *pb.Event {
	return &pb.Event{At: at, Shard: testShard, Kind: &pb.Event_Agent{Agent: e}}
}

func inUse(ch pb.Channel, n uint32) *pb.ChannelCapacity {
	return &pb.ChannelCapacity{Channel: ch, Slots: n}
}

func assertEvents(t testing.TB, got []*pb.Event, want ...*pb.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].GetPosition() == 0 {
			t.Errorf("event %d has no position: %s", i, describe(got[i]))
		}
		g := proto.CloneOf(got[i])
		g.Position = 0 // numbered by the state; TestEventPositions checks them
		if !proto.Equal(g, want[i]) {
			t.Errorf("event %d:\n got %s\nwant %s", i, describe(got[i]), describe(want[i]))
		}
	}
}

func assertContact(t testing.TB, got, want shard.Contact) {
	t.Helper()
	if g, w := withoutArrival(got), withoutArrival(want); g != w {
		t.Errorf("contact record:\n got %+v\nwant %+v", g, w)
	}
}

func assertAgent(t testing.TB, got, want shard.Agent) {
	t.Helper()
	g, w := withoutProfile(got), withoutProfile(want)
	// An agent with no work may hold a nil or an empty slice; both mean none.
	if len(g.Slots) == 0 {
		g.Slots = nil
	}
	if len(w.Slots) == 0 {
		w.Slots = nil
	}
	if len(g.Recent) == 0 {
		g.Recent = nil
	}
	if len(w.Recent) == 0 {
		w.Recent = nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("agent record:\n got %+v\nwant %+v", g, w)
	}
}
