// Package check verifies a load-test run after the fact. Every checker is a
// pure function over a recorded Trace — what the simulated carriers and
// agents saw, and what the node committed on its event stream — so each one
// can be tested against hand-made traces with a violation put in on
// purpose.
//
// The checks map to the invariants of the design brief:
//
//   - [Terminal]: every accepted contact ends in exactly one terminal state,
//     and the carrier's view of how it ended agrees with the node's.
//   - [SingleHolder]: a contact is never held for, offered to or connected
//     with two agents at once.
//   - [Capacity]: an agent never holds more slots on a channel than its
//     capacity, and never takes work on a channel its other work blocks.
//   - [FIFO]: within a queue, priority and channel, contacts are reserved
//     in arrival order (allowing for rejected and missed offers).
//   - [Idle]: no eligible agent stays free while a contact it could serve
//     waits longer than a stated bound.
//   - [StreamComplete]: the event stream had no gaps, so the checks above
//     saw every commit.
package check

import (
	"cmp"
	"slices"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Trace is everything a run recorded.
type Trace struct {
	// Contacts are the harness's own records, one per arrival sent.
	Contacts []Contact
	// Offers are the offers as the simulated agents received them.
	Offers []Offer
	// Events are the committed contact and agent events from
	// tsunagu.v1.events.>, in the order received.
	Events []Event
	// Gaps are event batches the observer missed (seq gaps per shard and
	// term).
	Gaps []Gap
}

// Outcome is how the carrier saw a contact end.
type Outcome uint8

// Outcomes.
const (
	// Unended: the carrier never saw the contact end.
	Unended Outcome = iota
	// Handled: hung up after being connected to an agent.
	Handled
	// Abandoned: hung up while queued or offered.
	Abandoned
)

func (o Outcome) String() string {
	switch o {
	case Handled:
		return "handled"
	case Abandoned:
		return "abandoned"
	default:
		return "unended"
	}
}

// Contact is one arrival as the simulated carrier recorded it.
type Contact struct {
	ID       string
	Queue    string
	Channel  pb.Channel
	Priority int32
	// Accepted: the arrival was answered ARRIVAL_STATUS_QUEUED.
	Accepted bool
	Outcome  Outcome
	// AcceptedBy lists the agents whose ACCEPT of an offer of this contact
	// succeeded (once each).
	AcceptedBy []string
}

// Offer is an offer as an agent's desktop received it (the first copy).
type Offer struct {
	OfferID   string
	ContactID string
	AgentID   string
}

// Gap is a run of event batches the observer did not receive.
type Gap struct {
	Shard         uint32
	Term          uint64
	After, Before uint64 // last seq seen, next seq seen
}

// Event is one committed event, reduced to what the checks read. Exactly
// one of Contact and Agent is set.
type Event struct {
	// At is the commit time, unix nanoseconds (the committing node's
	// clock).
	At    int64
	Shard uint32
	Term  uint64
	Seq   uint64 // the batch's
	Index int    // within the batch
	// Position is the event's number in its shard's committed history
	// (pb.Event.position): consecutive, and the same on a copy a new
	// owner publishes again. 0 from a node that does not number events.
	Position uint64
	// Contact is set for contact events.
	Contact *ContactEvent
	// Agent is set for agent events.
	Agent *AgentEvent
}

// ContactEvent is a contact's state after a change.
type ContactEvent struct {
	ContactID string
	Queue     string
	State     pb.ContactState
	AgentID   string
	OfferID   string
	Priority  int32
	ArrivedAt int64 // unix ns, with wait credit
	Seq       uint64
	Channel   pb.Channel
	Reason    string
}

// AgentEvent is an agent after a change.
type AgentEvent struct {
	AgentID   string
	State     pb.AgentState
	Presence  pb.AgentPresence
	OfferID   string
	ContactID string
	Channel   pb.Channel
	// SlotState of the slot this change is about; unspecified when the
	// slot was released.
	SlotState pb.SlotState
	// InUse is slots in use per channel after the change.
	InUse [numChannels]uint32
}

const numChannels = 6 // pb.Channel values 0..5

// FromProto reduces a batch's event to an Event; ok is false for queue
// figures, which the checks do not read.
func FromProto(b *pb.EventBatch, i int) (Event, bool) {
	e := b.GetEvents()[i]
	ev := Event{At: e.GetAt(), Shard: b.GetShard(), Term: b.GetTerm(), Seq: b.GetSeq(), Index: i, Position: e.GetPosition()}
	switch {
	case e.GetContact() != nil:
		c := e.GetContact()
		ev.Contact = &ContactEvent{
			ContactID: c.GetContactId(), Queue: c.GetQueue(), State: c.GetState(), AgentID: c.GetAgentId(),
			OfferID: c.GetOfferId(), Priority: c.GetPriority(), ArrivedAt: c.GetArrivedAt(), Seq: c.GetSeq(),
			Channel: c.GetChannel(), Reason: c.GetReason(),
		}
	case e.GetAgent() != nil:
		a := e.GetAgent()
		ev.Agent = &AgentEvent{
			AgentID: a.GetAgentId(), State: a.GetState(), Presence: a.GetPresence(), OfferID: a.GetOfferId(),
			ContactID: a.GetContactId(), Channel: a.GetChannel(), SlotState: a.GetSlotState(),
		}
		for _, u := range a.GetInUse() {
			if ch := u.GetChannel(); ch > 0 && int(ch) < numChannels {
				ev.Agent.InUse[ch] = u.GetSlots()
			}
		}
	default:
		return ev, false
	}
	return ev, true
}

// commitOrder returns the events in each shard's commit order, shards one
// after the other: by position, or for events without one by term, batch
// seq and index. Events of one contact, of one queue and of one agent each
// live in one shard, so this is their order.
//
// A member that takes a shard over publishes again, under its own term, the
// events it applied while catching up, since the previous owner may have
// died before publishing them: an observer may see an event twice. A copy
// has the position of the original (without positions: the same commit
// time and contents), so only the first is kept.
func commitOrder(events []Event) []Event {
	out := slices.Clone(events)
	slices.SortStableFunc(out, func(a, b Event) int {
		return cmp.Or(cmp.Compare(a.Shard, b.Shard), cmp.Compare(a.Position, b.Position),
			cmp.Compare(a.Term, b.Term), cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Index, b.Index))
	})
	type key struct {
		at       int64
		shard    uint32
		position uint64
		contact  ContactEvent
		agent    AgentEvent
	}
	seen := make(map[key]bool, len(out))
	kept := out[:0]
	for _, e := range out {
		k := key{shard: e.Shard, position: e.Position}
		if e.Position == 0 {
			k.at = e.At
			if e.Contact != nil {
				k.contact = *e.Contact
			}
			if e.Agent != nil {
				k.agent = *e.Agent
			}
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		kept = append(kept, e)
	}
	return kept
}

// timeOrder returns the events by commit time, ties in commit order.
func timeOrder(events []Event) []Event {
	out := commitOrder(events)
	slices.SortStableFunc(out, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
	return out
}

func terminal(s pb.ContactState) bool {
	return s == pb.ContactState_CONTACT_STATE_DONE || s == pb.ContactState_CONTACT_STATE_ABANDONED
}
