package shard_test

import (
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// positions applies cmds to s, in one batch or one by one, and returns the
// positions of the events they produced, in order.
func positions(s *shard.State, batch bool, cmds ...*pb.Command) []uint64 {
	var results []shard.Result
	if batch {
		results = s.ApplyBatch(cmds, nil)
	} else {
		for _, c := range cmds {
			results = append(results, s.Apply(c))
		}
	}
	var out []uint64
	for _, r := range results {
		for _, ev := range r.Events {
			out = append(out, ev.GetPosition())
		}
	}
	return out
}

// assertConsecutive requires want positions, from, from+1, …
func assertConsecutive(t *testing.T, got []uint64, from uint64, want int) {
	t.Helper()
	if len(got) != want {
		t.Fatalf("positions %v: %d events, want %d", got, len(got), want)
	}
	for i, p := range got {
		if p != from+uint64(i) {
			t.Fatalf("positions %v: event %d is at %d, want %d", got, i, p, from+uint64(i))
		}
	}
}

// TestEventPositions: a shard's events are numbered 1, 2, 3, … in commit
// order whether applied one by one or in batches; refused commands and
// retries take no number; two replicas applying the same commands number
// alike; a snapshot carries the count on; a single node's state starts
// where it is told.
func TestEventPositions(t *testing.T) {
	history := lifecycle(sec(10), "c1", "a1", "o1")
	history = append([]*pb.Command{cmd(sec(0), login("a1", true))}, history...)
	history = append(history,
		cmd(sec(30), arrive("c1", "sales", voice)),          // retry of an ended contact: no event
		cmd(sec(31), lock("c404", "a1", "o9")),              // refused: unknown contact
		cmd(sec(32), arrive("c2", "sales", voice)),          // new
		cmd(sec(33), reserve("a1", "o1", "c1", voice)),      // retry of a finished offer
		cmd(sec(34), &pb.AgentLogout{AgentId: "a1"}),        // new
		cmd(sec(35), &pb.AgentLogout{AgentId: "nobody"}),    // refused
		cmd(sec(36), arrive("c3", "sales", pb.Channel(99))), // refused: bad channel
	)

	one := shard.New(testShard, 0)
	p1 := positions(one, false, history...)
	// One event for each of the login, the nine steps of the contact, the
	// second arrival and the logout.
	assertConsecutive(t, p1, 1, 12)

	// Another replica applies the same commands in batches of three.
	other := shard.New(testShard, 0)
	var p2 []uint64
	for i := 0; i < len(history); i += 3 {
		p2 = append(p2, positions(other, true, history[i:min(i+3, len(history))]...)...)
	}
	assertConsecutive(t, p2, 1, len(p1))

	// A state restored from a snapshot goes on from the last position.
	restored := shard.New(testShard, 0)
	if err := restored.Restore(one.Snapshot()); err != nil {
		t.Fatal(err)
	}
	next := cmd(sec(40), arrive("c4", "sales", voice))
	pr := positions(restored, false, next)
	po := positions(one, false, next)
	if len(pr) != 1 || len(po) != 1 || pr[0] != po[0] || pr[0] != p1[len(p1)-1]+1 {
		t.Fatalf("after the snapshot the next event is at %v, the original's at %v, want both at %d", pr, po, p1[len(p1)-1]+1)
	}

	// A single node's state starts at the position it is given.
	const base = 1795430404247 << 20
	single := shard.New(testShard, 0)
	single.StartSeqAt(base)
	assertConsecutive(t, positions(single, false, history[:3]...), base, 3) // login, arrival, hold
}
