package match

import (
	"math"
	"testing"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// arriving asks MatchArriving for a contact arriving at arr, and checks it
// changed nothing the queue reports.
func (h *harness) arriving(id string, arr int64, w Waiting, now int64) string {
	h.t.Helper()
	w.ContactID, w.ArrivedAt, w.Seq = id, arr, math.MaxUint64
	if w.Channel == 0 {
		w.Channel = voice
	}
	n, lines, pooled := h.q.Len(), len(h.q.lines), h.q.AvailableAgents()
	a, ok := h.q.MatchArriving(w, nil, now)
	if h.q.Len() != n || len(h.q.lines) != lines || h.q.AvailableAgents() != pooled {
		h.t.Errorf("MatchArriving(%s) changed the queue: Len %d→%d, lines %d→%d, available %d→%d",
			id, n, h.q.Len(), lines, len(h.q.lines), pooled, h.q.AvailableAgents())
	}
	if _, waiting := h.q.Waiting(id); waiting {
		h.t.Errorf("MatchArriving(%s) left it waiting", id)
	}
	if !ok {
		if a != nil {
			h.t.Errorf("MatchArriving(%s) reported no match but returned %s", id, a.ID)
		}
		return ""
	}
	return a.ID
}

// TestMatchArriving_AgentFreeTakesTheArrival: an arrival that a free agent
// can serve is held for the agent the queue's strategy picks, as if it had
// been put in line and matched.
func TestMatchArriving_AgentFreeTakesTheArrival(t *testing.T) {
	h := newHarness(t, salesQueue(pb.Strategy_STRATEGY_LONGEST_IDLE))
	h.agent("ann", skills("sales", 4), at(-10), free(voice, 1))
	h.agent("ben", skills("sales", 4), at(-30), free(voice, 1))
	if got := h.arriving("c1", at(0), Waiting{}, at(0)); got != "ben" {
		t.Errorf("arrival with ann and ben free: held for %q, want ben (longest idle)", got)
	}
	// An agent below the queue's level may not take a new contact.
	h = newHarness(t, salesQueue(pb.Strategy_STRATEGY_LONGEST_IDLE))
	h.agent("junior", skills("sales", 1), at(-100), free(voice, 1))
	if got := h.arriving("c1", at(0), Waiting{}, at(0)); got != "" {
		t.Errorf("arrival with only junior free: held for %q, want to wait (junior serves it after 30s)", got)
	}
	// Nor one who is free on another channel only.
	h.agent("texter", skills("sales", 5), at(-100), free(chat, 3))
	if got := h.arriving("c2", at(0), Waiting{}, at(0)); got != "" {
		t.Errorf("voice arrival with only a chat slot free: held for %q", got)
	}
}

// TestMatchArriving_NeverPassesOverAWaitingContact: when a contact already
// waiting is due to be served by the free agent (here its widening step
// came before the queue's wake timer did), the arrival waits: matching
// gives the agent to the one in line.
func TestMatchArriving_NeverPassesOverAWaitingContact(t *testing.T) {
	h := newHarness(t, salesQueue(pb.Strategy_STRATEGY_LONGEST_IDLE))
	h.add("old", at(0), 0, voice, nil)
	h.agent("junior", skills("sales", 1), at(-100), free(voice, 1))
	// The new contact is not one junior may take yet; the old one is.
	if got := h.arriving("new", at(31), Waiting{}, at(31)); got != "" {
		t.Errorf("arrival at 31s: held for %q; junior is due to the contact waiting since 0s", got)
	}
	if got := h.next(at(31)); got != "old>junior" {
		t.Errorf("then NextMatch = %q, want old>junior", got)
	}
	// A waiting contact the free agent cannot serve does not stop an
	// arrival it can.
	h = newHarness(t, salesQueue(pb.Strategy_STRATEGY_LONGEST_IDLE))
	h.add("french", at(0), 0, voice, lang("fr"))
	h.agent("ann", skills("sales", 4, "language:en", 1), at(-10), free(voice, 1))
	if got := h.arriving("c1", at(1), Waiting{}, at(1)); got != "ann" {
		t.Errorf("arrival behind a contact ann cannot serve: held for %q, want ann", got)
	}
}

// TestMatchArriving_PreferredAgentWaitsForThem: an arrival whose customer's
// last agent is preferred goes only to them in the window.
func TestMatchArriving_PreferredAgentWaitsForThem(t *testing.T) {
	h := newHarness(t, salesQueue(pb.Strategy_STRATEGY_LONGEST_IDLE))
	h.agent("ann", skills("sales", 4), at(-10), free(voice, 1))
	w := Waiting{PreferredAgent: "bob", PreferredUntil: at(20)}
	if got := h.arriving("c1", at(0), w, at(0)); got != "" {
		t.Errorf("arrival preferring bob, only ann free: held for %q", got)
	}
	h.agent("bob", skills("sales", 3), at(-1), free(voice, 1))
	if got := h.arriving("c1", at(0), w, at(0)); got != "bob" {
		t.Errorf("arrival preferring bob with bob free: held for %q, want bob", got)
	}
	if got := h.arriving("c2", at(21), Waiting{PreferredAgent: "carl", PreferredUntil: at(20)}, at(21)); got != "ann" {
		t.Errorf("arrival whose preferred window is over: held for %q, want ann (longest idle)", got)
	}
}
