package shard_test

import (
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// TestScenario_ContactLifecycle follows one call from arrival to done and
// checks both records at every step.
func TestScenario_ContactLifecycle(t *testing.T) {
	s := given(t, cmd(sec(0), login("a1", true)))
	path := lifecycle(sec(pathStartSec), "c1", "a1", "o1")
	expect := []struct {
		contact pb.ContactState
		agent   pb.AgentState
	}{
		stepArrive:     {queued, stAvailable},
		stepLock:       {reserved, stAvailable}, // held, not yet offered
		stepReserve:    {reserved, stReserved},
		stepAccept:     {reserved, stBusy},
		stepConnect:    {connected, stBusy},
		stepHangUp:     {inWrapUp, stBusy}, // the agent hears of it next
		stepAgentEnded: {inWrapUp, stWrapUp},
		stepWrapUpDone: {inWrapUp, stAvailable},
		stepDone:       {finished, stAvailable},
	}
	for i, c := range path {
		applyNew(t, s, c)
		cr, ar := contactOf(t, s, "c1"), agentOf(t, s, "a1")
		if cr.State != expect[i].contact || ar.State() != expect[i].agent {
			t.Fatalf("after step %d (%s): contact %v, agent %v; want %v, %v",
				i, describe(c), cr.State, ar.State(), expect[i].contact, expect[i].agent)
		}
		assertContact(t, cr, c1At(i))
		assertAgent(t, ar, a1At(i))
	}
	c := contactOf(t, s, "c1")
	if !c.Terminal() || c.HandledBy != "a1" || c.EndedAt != at(stepDone) || c.ConnectedAt != at(stepConnect) {
		t.Errorf("finished contact %+v: want terminal, handled by a1, connected and ended at their steps", withoutArrival(c))
	}
	a := agentOf(t, s, "a1")
	if want := (shard.Counters{Offered: 1, Accepted: 1, Handled: 1}); a.Counters != want {
		t.Errorf("counters %+v, want %+v", a.Counters, want)
	}
	if a.IdleSince != at(stepWrapUpDone) {
		t.Errorf("IdleSince = %d, want the wrap-up end %d", a.IdleSince, at(stepWrapUpDone))
	}
}

// TestScenario_MissedOfferMakesAgentNotReady: the agent lets the offer time
// out; the queue's policy puts them in not ready ("missed") so the next
// caller is not offered to an empty chair, and the contact goes back to its
// place in line for someone else.
func TestScenario_MissedOfferMakesAgentNotReady(t *testing.T) {
	s := given(t, then(upTo(stepReserve), cmd(sec(0), login("a2", true)))...)

	r := applyNew(t, s, cmd(sec(30), miss("a1", "o1", true)))
	a := r.Agent
	if a.Presence != notReadyP || a.Reason != "missed" || a.PresenceSince != sec(30) || len(a.Slots) != 0 {
		t.Errorf("after a missed offer: presence %v (%q) since %d, %d slots; want not ready (missed) since %d, none",
			a.Presence, a.Reason, a.PresenceSince, len(a.Slots), sec(30))
	}
	if want := (shard.Counters{Offered: 1, Missed: 1}); a.Counters != want {
		t.Errorf("counters %+v, want %+v", a.Counters, want)
	}
	if a.IdleSince != sec(0) {
		t.Errorf("a missed offer moved IdleSince to %d", a.IdleSince)
	}
	refuse(t, s, cmd(sec(31), reserve("a1", "o2", "c1", voice)), shard.ErrIllegalTransition, `"a1"`)

	c := applyNew(t, s, cmd(sec(31), unlock("c1", "o1", pb.UnlockReason_UNLOCK_REASON_MISSED))).Contact
	if c.State != queued || c.Seq != 1 || c.Arrival.GetArrivedAt() != at(stepArrive) {
		t.Errorf("after unlock: %v seq %d arrived %d; want queued at its original place (seq 1, arrived %d)",
			c.State, c.Seq, c.Arrival.GetArrivedAt(), at(stepArrive))
	}
	applyNew(t, s, cmd(sec(32), lock("c1", "a2", "o2")))
	applyNew(t, s, cmd(sec(32), reserve("a2", "o2", "c1", voice)))
	if c := contactOf(t, s, "c1"); c.Attempts != 2 || c.AgentID != "a2" {
		t.Errorf("second attempt: attempts %d, agent %q; want 2, a2", c.Attempts, c.AgentID)
	}
	applyNew(t, s, cmd(sec(40), ready("a1")))
	if a := agentOf(t, s, "a1"); a.IdleSince != sec(40) || a.Reason != "" {
		t.Errorf("back from missed: idle since %d reason %q; want %d, none", a.IdleSince, a.Reason, sec(40))
	}
}

// TestScenario_MissedOfferAgentStaysAvailable: a queue whose policy keeps
// the agent available after a miss.
func TestScenario_MissedOfferAgentStaysAvailable(t *testing.T) {
	s := given(t, upTo(stepReserve)...)
	a := applyNew(t, s, cmd(sec(30), miss("a1", "o1", false))).Agent
	if a.Presence != available || a.State() != stAvailable || a.Counters.Missed != 1 || a.IdleSince != sec(0) {
		t.Errorf("after a missed offer without not_ready: %v/%v missed %d idle since %d; want available, 1, %d",
			a.Presence, a.State(), a.Counters.Missed, a.IdleSince, sec(0))
	}
}

// TestScenario_RejectedContactKeepsItsPlace: c1 (first in line) is offered,
// rejected and unlocked; it is back in the queue ahead of c2, which arrived
// later, with its seq and arrival time unchanged (DESIGN.md 3: arrival order
// within a queue and priority).
func TestScenario_RejectedContactKeepsItsPlace(t *testing.T) {
	s := given(t, then(upTo(stepReserve), cmd(at(stepReserve), arrive("c2", "sales", voice)))...)
	first := contactOf(t, s, "c1")

	a := applyNew(t, s, cmd(sec(30), reject("a1", "o1"))).Agent
	if a.IdleSince != sec(0) || a.Counters.Rejected != 1 || len(a.Slots) != 0 {
		t.Errorf("after reject: idle since %d rejected %d slots %d; want %d, 1, 0", a.IdleSince, a.Counters.Rejected, len(a.Slots), sec(0))
	}
	if c := contactOf(t, s, "c1"); c.State != reserved {
		t.Errorf("contact is %v before its unlock, want still reserved", c.State)
	}
	c := applyNew(t, s, cmd(sec(31), unlock("c1", "o1", pb.UnlockReason_UNLOCK_REASON_REJECTED))).Contact
	c2 := contactOf(t, s, "c2")
	if c.State != queued || c.Seq != first.Seq || c.Arrival.GetArrivedAt() != first.Arrival.GetArrivedAt() {
		t.Errorf("after unlock: %v seq %d arrived %d; want queued, seq %d, arrived %d",
			c.State, c.Seq, c.Arrival.GetArrivedAt(), first.Seq, first.Arrival.GetArrivedAt())
	}
	if !(c.Arrival.GetArrivedAt() < c2.Arrival.GetArrivedAt() && c.Seq < c2.Seq) {
		t.Errorf("c1 (seq %d, arrived %d) is no longer ahead of c2 (seq %d, arrived %d)",
			c.Seq, c.Arrival.GetArrivedAt(), c2.Seq, c2.Arrival.GetArrivedAt())
	}
	if c.AgentID != "" || c.OfferID != "" || c.LockedAt != 0 || c.Attempts != 1 {
		t.Errorf("unlocked contact still carries assignment %q/%q locked %d (attempts %d)", c.AgentID, c.OfferID, c.LockedAt, c.Attempts)
	}
}

// TestScenario_AbandonWhileQueued: the caller gives up before anyone is
// free; the contact ends for good and nobody is bothered.
func TestScenario_AbandonWhileQueued(t *testing.T) {
	s := given(t, upTo(stepArrive)...)
	agentBefore := agentOf(t, s, "a1")
	c := applyNew(t, s, cmd(sec(30), hangUp("c1"))).Contact
	if c.State != abandoned || !c.Terminal() || c.EndedAt != sec(30) {
		t.Errorf("after hang-up: %v ended %d; want abandoned at %d", c.State, c.EndedAt, sec(30))
	}
	assertAgent(t, agentOf(t, s, "a1"), agentBefore)
	refuse(t, s, cmd(sec(31), lock("c1", "a1", "o1")), shard.ErrIllegalTransition, `"c1"`)
	retry(t, s, cmd(sec(32), hangUp("c1")))
}

// TestScenario_AbandonWhileOffered: the caller hangs up while the agent's
// phone rings. The contact ends but keeps its assignment so the owner (or a
// new owner after failover) knows whose offer to withdraw; the withdrawal
// frees the agent without counting a rejection or restarting idle time.
func TestScenario_AbandonWhileOffered(t *testing.T) {
	s := given(t, upTo(stepReserve)...)
	c := applyNew(t, s, cmd(sec(30), hangUp("c1"))).Contact
	if c.State != abandoned || c.AgentID != "a1" || c.OfferID != "o1" {
		t.Fatalf("after hang-up: %v held by %q/%q; want abandoned, still naming a1/o1", c.State, c.AgentID, c.OfferID)
	}
	a := applyNew(t, s, cmd(sec(31), withdraw("a1", "o1"))).Agent
	if len(a.Slots) != 0 || a.Counters.Rejected != 0 || a.Counters.Missed != 0 || a.IdleSince != sec(0) {
		t.Errorf("after withdrawal: %d slots, counters %+v, idle since %d; want free, nothing counted, idle since %d",
			len(a.Slots), a.Counters, a.IdleSince, sec(0))
	}
	if f, ok := a.Finished("o1"); !ok || f.How != pb.FinishedHow_FINISHED_HOW_WITHDRAWN {
		t.Errorf("Finished(o1) = %+v, %v; want withdrawn", f, ok)
	}
	// The agent is free for the next caller.
	applyNew(t, s, cmd(sec(32), arrive("c2", "sales", voice)))
	applyNew(t, s, cmd(sec(33), lock("c2", "a1", "o2")))
	applyNew(t, s, cmd(sec(33), reserve("a1", "o2", "c2", voice)))
}

// TestScenario_AbandonAfterAcceptBeforeConnect: the agent clicks accept just
// as the caller hangs up. The contact is abandoned (it was never
// connected), the late connect is refused, and the agent's slot is released
// with a contact-ended.
func TestScenario_AbandonAfterAcceptBeforeConnect(t *testing.T) {
	s := given(t, upTo(stepAccept)...)
	if c := applyNew(t, s, cmd(sec(30), hangUp("c1"))).Contact; c.State != abandoned {
		t.Fatalf("hang-up before connect left the contact %v, want abandoned", c.State)
	}
	refuse(t, s, cmd(sec(31), connect("c1", "o1")), shard.ErrIllegalTransition, `"c1"`)
	a := applyNew(t, s, cmd(sec(31), contactEnded("a1", "o1", 0, false))).Agent
	if len(a.Slots) != 0 || a.State() != stAvailable || a.IdleSince != sec(31) {
		t.Errorf("agent after the release: %d slots, %v, idle since %d; want free and idle since %d", len(a.Slots), a.State(), a.IdleSince, sec(31))
	}
}

// TestScenario_FixedWrapUp: a queue fixes 30 s of wrap-up. The agent cannot
// end it early; the time box (by_agent=false) can, and the agent can once
// the box is over.
func TestScenario_FixedWrapUp(t *testing.T) {
	ended := at(stepAgentEnded)
	history := then(upTo(stepHangUp), cmd(ended, contactEnded("a1", "o1", ended+wrapUp, true)))

	t.Run("agent ends it early", func(t *testing.T) {
		s := given(t, history...)
		refuse(t, s, cmd(ended+wrapUp-1, wrapUpDone("a1", "o1", true)), shard.ErrIllegalTransition, `"c1"`, `"sales"`)
		if a := agentOf(t, s, "a1"); a.State() != stWrapUp {
			t.Errorf("agent is %v after a refused early end, want still in wrap-up", a.State())
		}
	})
	t.Run("time box ends it", func(t *testing.T) {
		s := given(t, history...)
		a := applyNew(t, s, cmd(ended+wrapUp-1, wrapUpDone("a1", "o1", false))).Agent
		if len(a.Slots) != 0 || a.IdleSince != ended+wrapUp-1 {
			t.Errorf("after the time box: %d slots, idle since %d", len(a.Slots), a.IdleSince)
		}
	})
	t.Run("agent ends it when the box is over", func(t *testing.T) {
		s := given(t, history...)
		applyNew(t, s, cmd(ended+wrapUp, wrapUpDone("a1", "o1", true)))
	})
	t.Run("agent ends an unfixed wrap-up early", func(t *testing.T) {
		s := given(t, upTo(stepAgentEnded)...)
		applyNew(t, s, cmd(ended+1, wrapUpDone("a1", "o1", true)))
	})
}

// TestScenario_IdleSince: longest-idle routing is only fair if idle time
// restarts exactly when an agent really becomes free: after their last
// contact's wrap-up, or when they come back from not ready. A rejected,
// missed or withdrawn offer is not work and restarts nothing.
func TestScenario_IdleSince(t *testing.T) {
	twoChats := then(upTo(beforeArrival),
		cmd(sec(1), reserve("a1", "o1", "c1", chat)), cmd(sec(2), accept("a1", "o1")),
		cmd(sec(3), reserve("a1", "o2", "c2", chat)), cmd(sec(4), accept("a1", "o2")),
		cmd(sec(5), contactEnded("a1", "o1", sec(20), false)),
		cmd(sec(6), contactEnded("a1", "o2", sec(20), false)))
	tests := []struct {
		name  string
		given []*pb.Command
		cmd   *pb.Command
		want  int64
	}{
		{"rejection keeps it", upTo(stepReserve), cmd(sec(30), reject("a1", "o1")), sec(0)},
		{"withdrawal keeps it", upTo(stepReserve), cmd(sec(30), withdraw("a1", "o1")), sec(0)},
		{"a miss keeps it", upTo(stepReserve), cmd(sec(30), miss("a1", "o1", false)), sec(0)},
		{"accepting keeps it", upTo(stepReserve), cmd(sec(30), accept("a1", "o1")), sec(0)},
		{"wrap-up done of the last slot restarts it", upTo(stepAgentEnded), cmd(sec(30), wrapUpDone("a1", "o1", true)), sec(30)},
		{"contact ended without wrap-up restarts it", upTo(stepHangUp), cmd(sec(30), contactEnded("a1", "o1", 0, false)), sec(30)},
		{"wrap-up done with another chat still open keeps it", twoChats, cmd(sec(30), wrapUpDone("a1", "o1", true)), sec(0)},
		{"wrap-up done of the last chat restarts it", then(twoChats, cmd(sec(30), wrapUpDone("a1", "o1", true))), cmd(sec(31), wrapUpDone("a1", "o2", true)), sec(31)},
		{"ready from not ready restarts it", then(upTo(beforeArrival), cmd(sec(20), notReady("a1", "break"))), cmd(sec(30), ready("a1")), sec(30)},
		{"going not ready keeps it", upTo(beforeArrival), cmd(sec(30), notReady("a1", "break")), sec(0)},
		{"ready from not ready in wrap-up keeps it", then(upTo(stepAgentEnded), cmd(sec(20), notReady("a1", "break"))), cmd(sec(30), ready("a1")), sec(0)},
		{"login starts it", nil, cmd(sec(30), login("a1", false)), sec(30)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := given(t, tc.given...)
			if a := applyNew(t, s, tc.cmd).Agent; a.IdleSince != tc.want {
				t.Errorf("IdleSince = %d (t0%+ds), want t0%+ds", a.IdleSince, (a.IdleSince-t0)/1e9, (tc.want-t0)/1e9)
			}
		})
	}
}

// TestScenario_LogoutAndBack: an agent who finished their work logs out and
// back in with their counters, and cannot leave with a caller on the line.
func TestScenario_LogoutAndBack(t *testing.T) {
	s := given(t, upTo(stepConnect)...)
	refuse(t, s, cmd(sec(30), logout("a1")), shard.ErrIllegalTransition, `"a1"`)
	for _, c := range upTo(stepDone)[1+stepHangUp:] {
		applyNew(t, s, c)
	}
	applyNew(t, s, cmd(sec(30), logout("a1")))
	refuse(t, s, cmd(sec(31), reserve("a1", "o2", "c2", voice)), shard.ErrIllegalTransition, `"a1"`)
	a := applyNew(t, s, cmd(sec(40), login("a1", true))).Agent
	if a.Counters.Handled != 1 || a.Version != 7 || a.IdleSince != sec(40) {
		t.Errorf("back at %d: handled %d version %d idle since %d; want 1, 7, %d", sec(40), a.Counters.Handled, a.Version, a.IdleSince, sec(40))
	}
}
