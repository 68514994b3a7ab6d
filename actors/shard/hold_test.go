package shard_test

import (
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

func heldArrival(contact, agent string) *pb.ContactArrive {
	a := arrive(contact, "sales", voice)
	a.HoldFor = agent
	return a
}

// TestContactArrive_HeldForAnAgentInTheSameCommit: an arrival the queue
// matched at once commits the contact held for its first offer — the
// record and events a ContactLock right after it would leave — and the
// record keeps the arrival without the hold.
func TestContactArrive_HeldForAnAgentInTheSameCommit(t *testing.T) {
	s := given(t)
	r := applyNew(t, s, cmd(sec(1), heldArrival("c1", "a1")))
	offer := shard.OfferID("c1", testShard, 1, 1)
	want := shard.Contact{Seq: 1, State: reserved, StateSince: sec(1), Attempts: 1, AgentID: "a1", OfferID: offer, LockedAt: sec(1)}
	assertContact(t, r.Contact, want)
	assertContact(t, contactOf(t, s, "c1"), want)
	ev := func(st pb.ContactState, agent, offer string) *pb.Event {
		return contactEvent(sec(1), &pb.ContactEvent{ContactId: "c1", Queue: "sales", State: st, AgentId: agent, OfferId: offer, ArrivedAt: sec(1), Seq: 1, Channel: voice})
	}
	assertEvents(t, r.Events, ev(queued, "", ""), ev(reserved, "a1", offer))
	if h := contactOf(t, s, "c1").Arrival.GetHoldFor(); h != "" {
		t.Errorf("the arrival record keeps hold_for %q", h)
	}

	// The same as arriving and then being locked.
	two := given(t, cmd(sec(1), arrive("c1", "sales", voice)), cmd(sec(1), lock("c1", "a1", offer)))
	assertContact(t, contactOf(t, two, "c1"), want)

	// From there the contact goes on like any held contact.
	mustApply(t, s, cmd(sec(2), unlock("c1", offer, pb.UnlockReason_UNLOCK_REASON_DECLINED)))
	again := applyNew(t, s, cmd(sec(3), lock("c1", "a2", shard.OfferID("c1", testShard, 1, 2))))
	if again.Contact.Attempts != 2 || again.Contact.AgentID != "a2" {
		t.Errorf("after a decline and a new lock: attempts %d agent %q, want 2 and a2", again.Contact.Attempts, again.Contact.AgentID)
	}
}

// TestContactArrive_RepeatIgnoresTheHold: a repeated arrival is a duplicate
// whatever hold it names: the contact is not held again, nor for another
// agent.
func TestContactArrive_RepeatIgnoresTheHold(t *testing.T) {
	s := given(t, cmd(sec(1), arrive("c1", "sales", voice)))
	r := retry(t, s, cmd(sec(2), heldArrival("c1", "a1")))
	if r.Contact.State != queued || r.Contact.AgentID != "" {
		t.Errorf("repeat with a hold: %v for %q, want queued for nobody", r.Contact.State, r.Contact.AgentID)
	}
	held := given(t, cmd(sec(1), heldArrival("c1", "a1")))
	r = retry(t, held, cmd(sec(2), heldArrival("c1", "a2")))
	if r.Contact.AgentID != "a1" {
		t.Errorf("repeat naming a2: held for %q, want a1", r.Contact.AgentID)
	}
}

// TestContactArrive_RefusedWithAHoldChangesNothing: a malformed arrival is
// refused whole, hold and all.
func TestContactArrive_RefusedWithAHoldChangesNothing(t *testing.T) {
	s := given(t)
	bad := heldArrival("c1", "a1")
	bad.Channel = pb.Channel_CHANNEL_UNSPECIFIED
	refuse(t, s, cmd(sec(1), bad), shard.ErrInvalidCommand, "c1")
}
