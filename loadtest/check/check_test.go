package check

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	voice = pb.Channel_CHANNEL_VOICE
	chat  = pb.Channel_CHANNEL_CHAT
)

// model: queue q (voice and chat, 1s offer timeout), agents a1 and a2
// (voice 1, chat 2), and b1 who only serves q after 10s of wait (overflow
// queue bpo).
func model(t *testing.T) Model {
	t.Helper()
	rc, err := routing.Compile(&pb.RoutingConfig{
		Queues: []*pb.QueueConfig{
			{Name: "q", Skills: []*pb.SkillRequirement{{Skill: "s", MinLevel: 1}}, OfferTimeout: durationpb.New(time.Second),
				Widening: []*pb.WideningStep{{After: durationpb.New(10 * time.Second), OverflowQueues: []string{"bpo"}}}},
			{Name: "bpo", Skills: []*pb.SkillRequirement{{Skill: "p", MinLevel: 1}}},
		},
		Agents: []*pb.AgentProfile{
			{Id: "a1", Skills: map[string]uint32{"s": 3}, Capacity: []*pb.ChannelCapacity{{Channel: voice, Slots: 1}, {Channel: chat, Slots: 2}}},
			{Id: "a2", Skills: map[string]uint32{"s": 3}, Capacity: []*pb.ChannelCapacity{{Channel: voice, Slots: 1}, {Channel: chat, Slots: 2}}},
			{Id: "b1", Skills: map[string]uint32{"p": 1}, Capacity: []*pb.ChannelCapacity{{Channel: voice, Slots: 1}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return Model{Routing: rc}
}

// builder writes a history the way the node commits it: contacts in shard
// 1, agents in shard 2, one event per batch, time advancing by tick.
type builder struct {
	tr      Trace
	now     int64
	seq     map[uint32]uint64
	arrived map[string]int64
	in      map[string][numChannels]uint32
	slots   map[string]map[string]pb.Channel
	// numbered gives events positions, as nodes do: a shard's events
	// 1, 2, 3, …
	numbered bool
}

func newBuilder() *builder {
	return &builder{now: int64(time.Hour), seq: map[uint32]uint64{}, arrived: map[string]int64{}, in: map[string][numChannels]uint32{}, slots: map[string]map[string]pb.Channel{}}
}

func (b *builder) tick(d time.Duration) *builder { b.now += int64(d); return b }

func (b *builder) add(shard uint32, e Event) {
	b.seq[shard]++
	e.At, e.Shard, e.Term, e.Seq = b.now, shard, 1, b.seq[shard]
	if b.numbered {
		e.Position = b.seq[shard]
	}
	b.tr.Events = append(b.tr.Events, e)
}

func (b *builder) contact(id string, state pb.ContactState, agent, offer, reason string) *builder {
	if _, ok := b.arrived[id]; !ok {
		b.arrived[id] = b.now
	}
	b.add(1, Event{Contact: &ContactEvent{ContactID: id, Queue: "q", State: state, AgentID: agent, OfferID: offer, ArrivedAt: b.arrived[id], Channel: voice, Reason: reason}})
	return b
}

func (b *builder) arrive(id string) *builder {
	b.tr.Contacts = append(b.tr.Contacts, Contact{ID: id, Queue: "q", Channel: voice, Accepted: true})
	return b.contact(id, pb.ContactState_CONTACT_STATE_QUEUED, "", "", "")
}

func (b *builder) agent(id string, presence pb.AgentPresence, offer string, ch pb.Channel, st pb.SlotState) *builder {
	if b.slots[id] == nil {
		b.slots[id] = map[string]pb.Channel{}
	}
	if offer != "" {
		if st == pb.SlotState_SLOT_STATE_UNSPECIFIED {
			delete(b.slots[id], offer)
		} else {
			b.slots[id][offer] = ch
		}
	}
	var in [numChannels]uint32
	for _, c := range b.slots[id] {
		in[c]++
	}
	b.add(2, Event{Agent: &AgentEvent{AgentID: id, Presence: presence, OfferID: offer, Channel: ch, SlotState: st, InUse: in}})
	return b
}

func (b *builder) login(id string) *builder {
	return b.agent(id, pb.AgentPresence_AGENT_PRESENCE_AVAILABLE, "", 0, 0)
}

// offer reserves contact for agent on voice.
func (b *builder) offer(contact, agent, offer string) *builder {
	b.contact(contact, pb.ContactState_CONTACT_STATE_RESERVED, agent, offer, "")
	b.tr.Offers = append(b.tr.Offers, Offer{OfferID: offer, ContactID: contact, AgentID: agent})
	return b.agent(agent, pb.AgentPresence_AGENT_PRESENCE_AVAILABLE, offer, voice, pb.SlotState_SLOT_STATE_OFFERED)
}

// handle runs a reserved contact to DONE: accepted, hung up, wrap-up done.
func (b *builder) handle(contact, agent, offer string) *builder {
	avail := pb.AgentPresence_AGENT_PRESENCE_AVAILABLE
	b.agent(agent, avail, offer, voice, pb.SlotState_SLOT_STATE_BUSY)
	b.contact(contact, pb.ContactState_CONTACT_STATE_CONNECTED, agent, offer, "")
	b.tick(10 * time.Millisecond)
	b.contact(contact, pb.ContactState_CONTACT_STATE_WRAP_UP, agent, offer, "hangup")
	b.agent(agent, avail, offer, voice, pb.SlotState_SLOT_STATE_WRAP_UP)
	b.tick(10 * time.Millisecond)
	b.contact(contact, pb.ContactState_CONTACT_STATE_DONE, agent, offer, "")
	b.agent(agent, avail, offer, voice, pb.SlotState_SLOT_STATE_UNSPECIFIED)
	b.outcome(contact, Handled, agent)
	return b
}

// reject sends a reserved contact back in line.
func (b *builder) reject(contact, agent, offer string) *builder {
	b.contact(contact, pb.ContactState_CONTACT_STATE_QUEUED, "", "", "rejected")
	return b.agent(agent, pb.AgentPresence_AGENT_PRESENCE_AVAILABLE, offer, voice, pb.SlotState_SLOT_STATE_UNSPECIFIED)
}

func (b *builder) abandon(contact string) *builder {
	b.contact(contact, pb.ContactState_CONTACT_STATE_ABANDONED, "", "", "hangup")
	return b.outcome(contact, Abandoned, "")
}

func (b *builder) outcome(contact string, o Outcome, agent string) *builder {
	for i := range b.tr.Contacts {
		if b.tr.Contacts[i].ID == contact {
			b.tr.Contacts[i].Outcome = o
			if agent != "" {
				b.tr.Contacts[i].AcceptedBy = append(b.tr.Contacts[i].AcceptedBy, agent)
			}
		}
	}
	return b
}

func TestChecksPassCleanTrace(t *testing.T) {
	b := newBuilder()
	b.login("a1").login("a2").login("b1")
	b.tick(time.Millisecond).arrive("c1").offer("c1", "a1", "c1#1")
	b.tick(time.Millisecond).arrive("c2").offer("c2", "a2", "c2#1")
	b.tick(time.Millisecond).arrive("c3")
	// a2 rejects c2; c3 is older than nothing, c2 older than c3: c2 goes
	// first, but not to a2 (it keeps away from a2 for the offer timeout).
	b.tick(5*time.Millisecond).reject("c2", "a2", "c2#1")
	b.tick(time.Millisecond).offer("c3", "a2", "c3#1")
	b.handle("c1", "a1", "c1#1")
	b.tick(time.Millisecond).offer("c2", "a1", "c2#2").handle("c2", "a1", "c2#2")
	b.handle("c3", "a2", "c3#1")
	b.tick(time.Millisecond).arrive("c4")
	b.tick(time.Millisecond).abandon("c4")
	for _, r := range All(&b.tr, model(t), 200*time.Millisecond, 50*time.Millisecond) {
		if !r.OK() {
			t.Errorf("%s: %d violations on a clean trace: %v", r.Name, r.Count, r.Details)
		}
		if r.Checked == 0 && r.Name != "stream-complete" {
			t.Errorf("%s checked nothing", r.Name)
		}
	}
}

func expectViolation(t *testing.T, r Result, mention string) {
	t.Helper()
	if r.OK() {
		t.Fatalf("%s: the injected violation was not caught", r.Name)
	}
	if !strings.Contains(strings.Join(r.Details, "\n"), mention) {
		t.Fatalf("%s: details do not mention %q: %v", r.Name, mention, r.Details)
	}
}

func TestTerminalCatchesUnendedContact(t *testing.T) {
	b := newBuilder().login("a1")
	b.arrive("c1").offer("c1", "a1", "c1#1")
	b.outcome("c1", Handled, "a1")
	expectViolation(t, Terminal(&b.tr), "c1 never ended: last state CONTACT_STATE_RESERVED")
}

func TestTerminalCatchesDoubleEnd(t *testing.T) {
	b := newBuilder().login("a1")
	b.arrive("c1").offer("c1", "a1", "c1#1").handle("c1", "a1", "c1#1")
	b.contact("c1", pb.ContactState_CONTACT_STATE_ABANDONED, "", "", "hangup")
	expectViolation(t, Terminal(&b.tr), "c1 ended 2 times")
}

// A new owner publishes again, under its term, events the previous owner
// may or may not have published: the copies are not a second end, and a
// copy of an earlier state is not the contact's last.
func TestChecksIgnoreEventsPublishedAgainByANewOwner(t *testing.T) {
	b := newBuilder().login("a1")
	b.arrive("c1").offer("c1", "a1", "c1#1").handle("c1", "a1", "c1#1")
	var again []Event
	for _, e := range b.tr.Events {
		e.Term, e.Seq = 2, e.Seq+100
		again = append(again, e)
	}
	b.tr.Events = append(b.tr.Events, again...)
	for _, r := range []Result{Terminal(&b.tr), SingleHolder(&b.tr), Capacity(&b.tr, model(t))} {
		if !r.OK() {
			t.Errorf("%s: %d violations from events published twice: %v", r.Name, r.Count, r.Details)
		}
	}
	// A second end with another commit time is still caught.
	b.tick(time.Millisecond).contact("c1", pb.ContactState_CONTACT_STATE_DONE, "a1", "c1#1", "")
	expectViolation(t, Terminal(&b.tr), "c1 ended 2 times")
}

// TestChecksDropCopiesByPosition: with positions, a copy is recognised by
// its position alone, so an event that really happened twice, at the same
// instant and with the same contents, is not mistaken for a copy.
func TestChecksDropCopiesByPosition(t *testing.T) {
	b := newBuilder()
	b.numbered = true
	b.login("a1").arrive("c1").offer("c1", "a1", "c1#1").handle("c1", "a1", "c1#1")
	var again []Event
	for _, e := range b.tr.Events[len(b.tr.Events)/2:] {
		e.Term, e.Seq = 2, e.Seq+100
		again = append(again, e)
	}
	b.tr.Events = append(b.tr.Events, again...)
	for _, r := range []Result{StreamComplete(&b.tr), Terminal(&b.tr), SingleHolder(&b.tr), Capacity(&b.tr, model(t))} {
		if !r.OK() {
			t.Errorf("%s: %d violations from events published twice: %v", r.Name, r.Count, r.Details)
		}
	}
	// The contact's end committed a second time: same instant, same
	// contents, its own position.
	var end Event
	for _, e := range b.tr.Events[:len(b.tr.Events)-len(again)] {
		if e.Contact != nil && terminal(e.Contact.State) {
			end = e
		}
	}
	if end.Contact == nil {
		t.Fatal("the builder made no end of c1")
	}
	b.seq[end.Shard]++
	end.Position, end.Seq = b.seq[end.Shard], b.seq[end.Shard]
	b.tr.Events = append(b.tr.Events, end)
	expectViolation(t, Terminal(&b.tr), "c1 ended 2 times")
}

// TestStreamCompleteCatchesMissingPosition: an event that never reached
// the observer, though every batch did (the owner that committed it died
// before publishing it, and nobody published it again).
func TestStreamCompleteCatchesMissingPosition(t *testing.T) {
	b := newBuilder()
	b.numbered = true
	b.login("a1").arrive("c1").offer("c1", "a1", "c1#1").handle("c1", "a1", "c1#1")
	if r := StreamComplete(&b.tr); !r.OK() {
		t.Fatalf("complete stream: %v", r.Details)
	}
	var lost Event
	for i, e := range b.tr.Events {
		if e.Shard == 1 && e.Position == 3 {
			lost = e
			b.tr.Events = slices.Delete(b.tr.Events, i, i+1)
			break
		}
	}
	if lost.Position == 0 {
		t.Fatal("the builder made no third event in shard 1")
	}
	expectViolation(t, StreamComplete(&b.tr), "shard 1: events 3..3 missed")
}

func TestTerminalCatchesCarrierDisagreement(t *testing.T) {
	b := newBuilder()
	b.arrive("c1").abandon("c1")
	b.tr.Contacts[0].Outcome = Handled
	expectViolation(t, Terminal(&b.tr), "carrier saw it handled")
}

func TestTerminalCatchesAcceptedContactMissingFromStream(t *testing.T) {
	b := newBuilder()
	b.tr.Contacts = append(b.tr.Contacts, Contact{ID: "ghost", Queue: "q", Accepted: true, Outcome: Abandoned})
	expectViolation(t, Terminal(&b.tr), "ghost was accepted but never appeared")
}

func TestSingleHolderCatchesDoubleReservation(t *testing.T) {
	b := newBuilder().login("a1").login("a2")
	b.arrive("c1").offer("c1", "a1", "c1#1")
	b.tick(time.Millisecond).offer("c1", "a2", "c1#2")
	expectViolation(t, SingleHolder(&b.tr), "c1 reserved for a2 (offer c1#2) while held for a1")
}

func TestSingleHolderCatchesOfferAtTwoAgents(t *testing.T) {
	b := newBuilder()
	b.tr.Offers = []Offer{{OfferID: "o1", ContactID: "c1", AgentID: "a1"}, {OfferID: "o1", ContactID: "c1", AgentID: "a2"}}
	expectViolation(t, SingleHolder(&b.tr), "reached both a1 and a2")
}

func TestSingleHolderCatchesTwoAccepts(t *testing.T) {
	b := newBuilder()
	b.tr.Contacts = []Contact{{ID: "c1", Accepted: true, AcceptedBy: []string{"a1", "a2"}}}
	expectViolation(t, SingleHolder(&b.tr), "accepted by 2 agents")
}

func TestCapacityCatchesSecondVoiceSlot(t *testing.T) {
	b := newBuilder().login("a1")
	b.arrive("c1").offer("c1", "a1", "c1#1")
	b.arrive("c2").offer("c2", "a1", "c2#1")
	expectViolation(t, Capacity(&b.tr, model(t)), "agent a1 holds 2 slots on CHANNEL_VOICE; capacity 1")
}

func TestCapacityCatchesBlockedChannel(t *testing.T) {
	b := newBuilder().login("a1")
	b.arrive("c1").offer("c1", "a1", "c1#1")
	b.agent("a1", pb.AgentPresence_AGENT_PRESENCE_AVAILABLE, "chat-1#1", chat, pb.SlotState_SLOT_STATE_OFFERED)
	expectViolation(t, Capacity(&b.tr, model(t)), "offered chat-1#1 on CHANNEL_CHAT while c1#1")
}

func TestCapacityAllowsChatDuringVoiceWrapUp(t *testing.T) {
	b := newBuilder().login("a1")
	b.arrive("c1").offer("c1", "a1", "c1#1")
	b.agent("a1", pb.AgentPresence_AGENT_PRESENCE_AVAILABLE, "c1#1", voice, pb.SlotState_SLOT_STATE_WRAP_UP)
	b.agent("a1", pb.AgentPresence_AGENT_PRESENCE_AVAILABLE, "chat-1#1", chat, pb.SlotState_SLOT_STATE_OFFERED)
	if r := Capacity(&b.tr, model(t)); !r.OK() {
		t.Fatalf("wrap-up blocks nothing, yet: %v", r.Details)
	}
}

func TestFIFOCatchesYoungerServedFirst(t *testing.T) {
	b := newBuilder().login("a1")
	b.arrive("old").tick(time.Millisecond).arrive("young")
	b.tick(time.Millisecond).offer("young", "a1", "young#1")
	b.tick(time.Second).offer("old", "a1", "old#1") // long after the grace
	expectViolation(t, FIFO(&b.tr, model(t), 50*time.Millisecond), "young reserved for a1")
}

func TestFIFOCatchesOlderNeverServed(t *testing.T) {
	b := newBuilder().login("a1")
	b.arrive("old").tick(time.Millisecond).arrive("young")
	b.tick(time.Millisecond).offer("young", "a1", "young#1")
	expectViolation(t, FIFO(&b.tr, model(t), 50*time.Millisecond), "never left the line")
}

func TestFIFOAllowsRacesWithinGrace(t *testing.T) {
	b := newBuilder().login("a1").login("a2")
	b.arrive("old").tick(time.Millisecond).arrive("young")
	b.tick(time.Millisecond).offer("young", "a1", "young#1")
	b.tick(10*time.Millisecond).offer("old", "a2", "old#1")
	if r := FIFO(&b.tr, model(t), 50*time.Millisecond); !r.OK() {
		t.Fatalf("two reservations in flight, committed 10ms apart, are not a violation: %v", r.Details)
	}
}

func TestFIFOAllowsSkippingAContactThatAvoidsTheAgent(t *testing.T) {
	b := newBuilder().login("a1")
	b.arrive("old").offer("old", "a1", "old#1")
	b.tick(time.Millisecond).arrive("young")
	b.tick(time.Millisecond).reject("old", "a1", "old#1")
	b.tick(time.Millisecond).offer("young", "a1", "young#1") // old keeps away from a1 for 1s
	if r := FIFO(&b.tr, model(t), 50*time.Millisecond); !r.OK() {
		t.Fatalf("a contact rejected by the agent may be skipped for it: %v", r.Details)
	}
}

func TestIdleCatchesFreeAgentBesideWaitingContact(t *testing.T) {
	b := newBuilder().login("a1")
	b.tick(time.Millisecond).arrive("c1")
	b.tick(2*time.Second).offer("c1", "a1", "c1#1")
	expectViolation(t, Idle(&b.tr, model(t), 500*time.Millisecond), "agent a1 was free on CHANNEL_VOICE and eligible for c1")
}

func TestIdleCatchesAgentFreedWhileContactWaits(t *testing.T) {
	b := newBuilder().login("a1")
	b.arrive("c1").offer("c1", "a1", "c1#1")
	b.tick(time.Millisecond).arrive("c2")
	b.handle("c1", "a1", "c1#1") // a1 free again; c2 waits on
	b.tick(2*time.Second).offer("c2", "a1", "c2#1")
	expectViolation(t, Idle(&b.tr, model(t), 500*time.Millisecond), "eligible for c2")
}

func TestIdleRespectsWideningAndAvoidance(t *testing.T) {
	b := newBuilder().login("a1").login("b1")
	b.arrive("c1").offer("c1", "a1", "c1#1")
	b.tick(time.Millisecond).reject("c1", "a1", "c1#1")
	// c1 waits 5s: a1 may not have it for 1s after the reject, then could.
	// b1 may not have it before 10s of wait. So a1 is the violation, b1 not.
	b.tick(5*time.Second).offer("c1", "a1", "c1#2")
	r := Idle(&b.tr, model(t), 2*time.Second)
	expectViolation(t, r, "agent a1")
	if strings.Contains(strings.Join(r.Details, ""), "b1") {
		t.Fatalf("b1 is not eligible before 10s of wait: %v", r.Details)
	}
	// Within the avoidance and the bound, nothing.
	b2 := newBuilder().login("a1")
	b2.arrive("c1").offer("c1", "a1", "c1#1")
	b2.tick(time.Millisecond).reject("c1", "a1", "c1#1")
	b2.tick(1200*time.Millisecond).offer("c1", "a1", "c1#2")
	if r := Idle(&b2.tr, model(t), 500*time.Millisecond); !r.OK() {
		t.Fatalf("the agent the contact avoids is not idle-eligible: %v", r.Details)
	}
}

func TestStreamCompleteCatchesGap(t *testing.T) {
	tr := &Trace{Gaps: []Gap{{Shard: 3, Term: 7, After: 4, Before: 9}}}
	expectViolation(t, StreamComplete(tr), "shard 3 term 7: batches 5..8 missed")
}

func TestOfferInstants(t *testing.T) {
	b := newBuilder().login("a1")
	free := b.now
	b.tick(time.Millisecond).arrive("c1")
	queued := b.now
	b.tick(time.Millisecond).offer("c1", "a1", "c1#1")
	b.tick(time.Millisecond).reject("c1", "a1", "c1#1")
	back := b.now
	b.tick(time.Millisecond).offer("c1", "a1", "c1#2")
	b.tick(time.Millisecond).login("b1").arrive("c2")
	arrived := b.now
	b.tick(11*time.Second).offer("c2", "b1", "c2#1") // b1 is eligible after 10s
	in := OfferInstants(&b.tr, model(t))
	if got := in["c1#1"]; got.Queued != queued || got.Free != free || got.Eligible != queued {
		t.Errorf("first offer: got %+v, want queued %d free %d eligible %d", got, queued, free, queued)
	}
	// a1 rejected c1: c1 keeps away from a1 for the offer timeout (1s).
	if got := in["c1#2"]; got.Queued != back || got.Free != back || got.Eligible != back+int64(time.Second) {
		t.Errorf("second offer: got %+v, want queued and free at the reject %d, eligible 1s later", got, back)
	}
	if got := in["c2#1"]; got.Eligible != arrived+int64(10*time.Second) {
		t.Errorf("overflow offer: eligible %d, want 10s after arrival %d", got.Eligible, arrived)
	}
}
