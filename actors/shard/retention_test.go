package shard_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
)

// retention is the retention of the states in these tests.
const retention = int64(time.Minute)

func known(s *shard.State, id string) bool {
	_, ok := s.Contact(id)
	return ok
}

// TestRetention_ForgottenOnlyAfterRetention: a carrier retrying the arrival
// of a contact that ended is answered from the record for the retention;
// after it, the id is free again.
func TestRetention_ForgottenOnlyAfterRetention(t *testing.T) {
	s := shard.New(testShard, retention)
	mustApply(t, s, cmd(sec(0), arrive("c1", "sales", voice)))
	mustApply(t, s, cmd(sec(10), hangUp("c1")))

	mustApply(t, s, cmd(sec(10)+retention, arrive("c2", "sales", voice)))
	if !known(s, "c1") {
		t.Fatalf("c1 forgotten exactly one retention after it ended; it must be kept until later")
	}
	if r := retry(t, s, cmd(sec(10)+retention, arrive("c1", "sales", voice))); r.Contact.State != abandoned {
		t.Errorf("retried arrival answered with %v, want the abandoned record", r.Contact.State)
	}

	mustApply(t, s, cmd(sec(10)+retention+1, arrive("c3", "sales", voice)))
	if known(s, "c1") {
		t.Fatalf("c1 still known after its retention and a later arrival")
	}
	r := applyNew(t, s, cmd(sec(10)+retention+2, arrive("c1", "sales", voice)))
	if r.Contact.State != queued || r.Contact.Seq != 4 {
		t.Errorf("arrival of a forgotten id: %v seq %d, want a new queued contact with seq 4", r.Contact.State, r.Contact.Seq)
	}
}

// TestRetention_Default: New with retention <= 0 keeps ended contacts for
// DefaultRetention (15 minutes).
func TestRetention_Default(t *testing.T) {
	if shard.DefaultRetention != int64(15*time.Minute) {
		t.Errorf("DefaultRetention = %v, want 15m", time.Duration(shard.DefaultRetention))
	}
	for _, r := range []int64{0, -1} {
		s := shard.New(testShard, r)
		mustApply(t, s, cmd(sec(0), arrive("c1", "sales", voice)))
		mustApply(t, s, cmd(sec(0), hangUp("c1")))
		mustApply(t, s, cmd(sec(0)+shard.DefaultRetention, arrive("c2", "sales", voice)))
		if !known(s, "c1") {
			t.Errorf("New(_, %d): c1 forgotten before the default retention", r)
		}
		mustApply(t, s, cmd(sec(0)+shard.DefaultRetention+1, arrive("c3", "sales", voice)))
		if known(s, "c1") {
			t.Errorf("New(_, %d): c1 kept after the default retention", r)
		}
	}
}

// TestRetention_OnlyArrivalsForget: forgetting is paid for by arrivals; no
// other command removes a record, however late.
func TestRetention_OnlyArrivalsForget(t *testing.T) {
	s := shard.New(testShard, retention)
	for _, c := range upTo(stepDone) {
		mustApply(t, s, c)
	}
	late := sec(3600)
	for _, c := range []*pb.Command{
		cmd(late, hangUp("c1")),
		cmd(late, notReady("a1", "break")),
		cmd(late, ready("a1")),
		cmd(late, logout("a1")),
		cmd(late, lock("c1", "a1", "o2")), // refused
	} {
		s.Apply(c)
		if !known(s, "c1") {
			t.Fatalf("c1 forgotten by %s", describe(c))
		}
	}
}

// TestRetention_LiveContactsAreNeverForgotten: only ended contacts go;
// a contact still waiting or talking after hours stays (DESIGN.md 1).
func TestRetention_LiveContactsAreNeverForgotten(t *testing.T) {
	s := given(t, then(upTo(stepConnect), cmd(sec(20), arrive("c2", "sales", email)), cmd(sec(21), arrive("c3", "sales", chat)), cmd(sec(22), hangUp("c3")))...)
	s2 := shard.New(testShard, retention)
	if err := s2.Restore(s.Snapshot()); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustApply(t, s2, cmd(sec(int64(3600+i)), arrive(fmt.Sprintf("late%d", i), "sales", voice)))
	}
	for _, id := range []string{"c1", "c2"} {
		if !known(s2, id) {
			t.Errorf("live contact %s was forgotten", id)
		}
	}
	if known(s2, "c3") {
		t.Errorf("ended contact c3 kept for hours")
	}
}

// endedAt builds a state in which contacts c0..c<n-1> arrived and then
// ended, contact i at ends(i).
func endedAt(t *testing.T, n int, ends func(i int) int64) *shard.State {
	s := shard.New(testShard, retention)
	for i := range n {
		mustApply(t, s, cmd(sec(0), arrive(fmt.Sprintf("c%d", i), "sales", chat)))
	}
	for i := range n {
		mustApply(t, s, cmd(ends(i), hangUp(fmt.Sprintf("c%d", i))))
	}
	return s
}

// TestRetention_AtMostAFewPerArrival: one arrival does a bounded amount of
// forgetting, so a burst of ended contacts does not stall the apply loop;
// later arrivals finish the job, oldest first.
func TestRetention_AtMostAFewPerArrival(t *testing.T) {
	const n = 50
	s := endedAt(t, n, func(i int) int64 { return sec(10) + int64(i) })
	remaining := func() (left int) {
		for i := range n {
			if known(s, fmt.Sprintf("c%d", i)) {
				left++
			}
		}
		return left
	}
	late := sec(10) + n + retention
	arrivals := 0
	for left := remaining(); left > 0; {
		arrivals++
		mustApply(t, s, cmd(late+int64(arrivals), arrive(fmt.Sprintf("new%d", arrivals), "sales", chat)))
		now := remaining()
		switch forgotten := left - now; {
		case forgotten == 0:
			t.Fatalf("arrival %d forgot none of the %d expired contacts left", arrivals, left)
		case forgotten > 10:
			t.Fatalf("arrival %d forgot %d contacts at once; it should do a few at a time", arrivals, forgotten)
		}
		if arrivals == 1 && (known(s, "c0") || !known(s, fmt.Sprintf("c%d", n-1))) {
			t.Errorf("first arrival did not start with the oldest (c0 known %v, c%d known %v)", known(s, "c0"), n-1, known(s, fmt.Sprintf("c%d", n-1)))
		}
		left = now
	}
	if arrivals < 5 {
		t.Errorf("%d ended contacts were forgotten within %d arrivals; want a bounded few per arrival", n, arrivals)
	}
	for i := 1; i <= arrivals; i++ {
		if !known(s, fmt.Sprintf("new%d", i)) {
			t.Errorf("queued contact new%d was forgotten", i)
		}
	}
}

// TestRetention_OldestFirst: only contacts whose retention is over go.
func TestRetention_OldestFirst(t *testing.T) {
	s := endedAt(t, 2, func(i int) int64 { return sec(10 + 10*int64(i)) })
	mustApply(t, s, cmd(sec(10)+retention+1, arrive("c9", "sales", voice)))
	if known(s, "c0") || !known(s, "c1") {
		t.Errorf("after c0's retention: c0 known %v, c1 known %v; want c0 gone, c1 kept", known(s, "c0"), known(s, "c1"))
	}
}

// restoredTwin returns a fresh state restored from s.
func restoredTwin(t *testing.T, s *shard.State) *shard.State {
	t.Helper()
	r := shard.New(testShard, retention)
	if err := r.Restore(s.Snapshot()); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !proto.Equal(s.Snapshot(), r.Snapshot()) {
		t.Fatalf("restored state differs from its snapshot")
	}
	return r
}

// sameFuture applies cmds to a state and to its restored twin and requires
// they stay equal: a follower that installed a snapshot must end where one
// that replayed the log ends, or replicas answer a retry differently.
func sameFuture(t *testing.T, live, restored *shard.State, cmds ...*pb.Command) {
	t.Helper()
	for _, c := range cmds {
		rl, rr := live.Apply(c), restored.Apply(c)
		if outcomeOf(rl, nil) != outcomeOf(rr, nil) {
			t.Errorf("%s: live answered %v (duplicate %v), restored %v (duplicate %v)", describe(c), rl.Err, rl.Duplicate, rr.Err, rr.Duplicate)
		}
		if diff := snapshotDiff(live.Snapshot(), restored.Snapshot()); diff != "" {
			t.Fatalf("after %s the live and the restored state differ (live vs restored):\n%s", describe(c), diff)
		}
	}
}

// TestRetention_RestoredStateForgetsTheSame: contacts ended in time order;
// the restored state forgets them as the live one does.
func TestRetention_RestoredStateForgetsTheSame(t *testing.T) {
	live := endedAt(t, 20, func(i int) int64 { return sec(10 + int64(i)) })
	restored := restoredTwin(t, live)
	var future []*pb.Command
	for i := range 20 {
		future = append(future, cmd(sec(15+int64(i))+retention, arrive(fmt.Sprintf("n%d", i), "sales", chat)))
	}
	future = append(future, cmd(sec(40)+retention, arrive("c3", "sales", chat)))
	sameFuture(t, live, restored, future...)
}

// TestRetention_RestoredStateForgetsTheSame_EndedTogether: a carrier outage
// ends twelve chats in one batch, all at the same commit time, in an order
// other than their arrival. Restore rebuilds the list of ended contacts
// sorted by end time, which loses the order they ended in; the live state
// kept it. When the retention is over, one arrival forgets a few of them:
// the live state and the restored one forget different ones, and a carrier
// retrying one of those arrivals is told "duplicate" by one replica and gets
// a new queued contact from the other.
func TestRetention_RestoredStateForgetsTheSame_EndedTogether(t *testing.T) {
	const n = 12
	live := shard.New(testShard, retention)
	for i := range n {
		mustApply(t, live, cmd(sec(0), arrive(fmt.Sprintf("c%d", i), "sales", chat)))
	}
	var outage []*pb.Command
	for i := n - 1; i >= 0; i-- {
		outage = append(outage, cmd(sec(10), &pb.ContactEnd{ContactId: fmt.Sprintf("c%d", i), Reason: pb.EndReason_END_REASON_CARRIER}))
	}
	for _, r := range live.ApplyBatch(outage, nil) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	restored := restoredTwin(t, live)
	sameFuture(t, live, restored,
		cmd(sec(11)+retention, arrive("next", "sales", chat)),
		cmd(sec(12)+retention, arrive("c0", "sales", chat)),
		cmd(sec(12)+retention, arrive("c11", "sales", chat)))
}

// TestRetention_RestoredStateForgetsTheSame_ClockSteppedBack: ownership
// moves and the new owner's clock is 4 s behind the old one's, so a contact
// ending under the new owner carries an earlier time than one that ended
// just before. The live state forgets in the order contacts ended and waits
// behind the later time; the restored state sorted them by time and forgets
// the other one first.
func TestRetention_RestoredStateForgetsTheSame_ClockSteppedBack(t *testing.T) {
	live := shard.New(testShard, retention)
	mustApply(t, live, cmd(sec(0), arrive("c1", "sales", chat)))
	mustApply(t, live, cmd(sec(1), arrive("c2", "sales", chat)))
	mustApply(t, live, cmd(sec(100), hangUp("c1"))) // old owner's clock
	mustApply(t, live, cmd(sec(96), hangUp("c2")))  // new owner's clock, 4 s behind
	restored := restoredTwin(t, live)
	sameFuture(t, live, restored,
		cmd(sec(98)+retention, arrive("c3", "sales", chat)),
		cmd(sec(98)+retention, arrive("c2", "sales", chat)))
}
