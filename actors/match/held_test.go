package match

import (
	"testing"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Another queue has just asked to hold agent a (AgentHeld): this queue
// counts that slot as taken, so it does not ask for a at the same moment and
// get declined. A status newer than the one either queue knew ends that; so
// does foreignTTL, in case the hold never reached the agent.
func TestHeldElsewhere(t *testing.T) {
	h := newHarness(t, &pb.QueueConfig{Name: "support"})
	h.agent("a", anyone, at(-60), free(voice, 1))
	h.agent("b", anyone, at(-30), free(voice, 1))
	h.add("c1", at(0), 0, voice, nil)
	a, _ := h.q.Agent("a")

	h.q.HeldElsewhere("a", voice, a.Version, at(1))
	if _, got, ok := h.q.NextMatch(at(1)); !ok || got.ID != "b" {
		t.Fatalf("NextMatch after a was held elsewhere: %v %v; want b (a is longest idle but taken)", got, ok)
	}
	if h.q.AvailableAgents() != 1 {
		t.Errorf("AvailableAgents %d; want 1", h.q.AvailableAgents())
	}
	// A re-announcement of the same status changes nothing.
	h.q.SetAgent(Status{ID: "a", Profile: h.profiles["a"], Free: free(voice, 1), IdleSince: at(-60), Version: a.Version, SeenSeq: h.seq}, at(1.1))
	if _, got, _ := h.q.NextMatch(at(1.1)); got.ID != "b" {
		t.Fatalf("after a repeated status: NextMatch picked %s; want b", got.ID)
	}
	// A newer status is the agent's word: free again here.
	h.agent("a", anyone, at(-60), free(voice, 1))
	if _, got, _ := h.q.NextMatch(at(1.2)); got.ID != "a" {
		t.Fatalf("after a newer status: NextMatch picked %s; want a", got.ID)
	}

	// Held elsewhere and never heard of again: forgotten after foreignTTL,
	// and the queue's wake timer says when.
	h.q.HeldElsewhere("a", voice, 0, at(2))
	if _, got, _ := h.q.NextMatch(at(2)); got.ID != "b" {
		t.Fatalf("NextMatch picked %s; want b", got.ID)
	}
	if wake := h.q.NextWake(at(2)); wake != at(2)+foreignTTL {
		t.Errorf("NextWake %s; want %s, when the other queue's hold is forgotten", rel(wake), rel(at(2)+foreignTTL))
	}
	if _, got, _ := h.q.NextMatch(at(2) + foreignTTL); got.ID != "a" {
		t.Fatalf("after foreignTTL: NextMatch picked %s; want a", got.ID)
	}
	if len(h.q.foreign) != 0 {
		t.Errorf("holds elsewhere left to forget: %v", h.q.foreign)
	}

	// A round's status (the agent asking its queues for candidates) is the
	// agent's own word, even at the version the hold was marked with.
	h.q.HeldElsewhere("a", voice, 0, at(4))
	a, _ = h.q.Agent("a")
	h.q.SetAgent(Status{ID: "a", Profile: h.profiles["a"], Free: free(voice, 1), IdleSince: at(-60), Version: a.Version, SeenSeq: h.seq, Asking: true}, at(4.1))
	if _, got, _ := h.q.NextMatch(at(4.1)); got.ID != "a" {
		t.Fatalf("after a round's status: NextMatch picked %s; want a", got.ID)
	}

	// Unknown agents and channels are ignored.
	h.q.HeldElsewhere("nobody", voice, 0, at(3))
	h.q.HeldElsewhere("a", pb.Channel_CHANNEL_UNSPECIFIED, 0, at(3))
	if _, got, _ := h.q.NextMatch(at(3)); got.ID != "a" {
		t.Fatalf("after holds of nobody and of no channel: NextMatch picked %s; want a", got.ID)
	}
}
