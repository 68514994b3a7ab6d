package shard_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
)

// TestSnapshot_RestoreAtEveryStep: a new owner may take the shard over at
// any point of a contact's life. Restored from a snapshot taken after any
// step, it answers the rest of the path exactly as the old owner would
// have, record for record and event for event.
func TestSnapshot_RestoreAtEveryStep(t *testing.T) {
	path := then(upTo(stepDone), cmd(sec(30), arrive("c2", "support", chat)), cmd(sec(31), media("c2", pb.MediaKind_MEDIA_KIND_ANSWERED)))
	for cut := range path {
		t.Run(fmt.Sprint("after command ", cut), func(t *testing.T) {
			live := given(t, path[:cut+1]...)
			restored := shard.New(testShard, 0)
			if err := restored.Restore(live.Snapshot()); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if !proto.Equal(live.Snapshot(), restored.Snapshot()) {
				t.Fatalf("snapshot -> restore -> snapshot differs:\n%s", snapshotDiff(live.Snapshot(), restored.Snapshot()))
			}
			rest := then(path[cut+1:], cmd(sec(40), hangUp("c2")), cmd(sec(41), arrive("c3", "sales", voice)))
			sameFuture(t, live, restored, rest...)
			for _, id := range []string{"c1", "c2", "c3"} {
				l, lok := live.Contact(id)
				r, rok := restored.Contact(id)
				if lok != rok || withoutArrival(l) != withoutArrival(r) {
					t.Errorf("contact %s: live %+v (%v), restored %+v (%v)", id, withoutArrival(l), lok, withoutArrival(r), rok)
				}
			}
		})
	}
}

// TestSnapshot_KeepsMediaStateAcrossFailover: a caller on hold stays on hold
// for the new owner; answered, connected time and handler survive too.
func TestSnapshot_KeepsMediaStateAcrossFailover(t *testing.T) {
	live := given(t, then(upTo(stepConnect),
		cmd(sec(30), media("c1", pb.MediaKind_MEDIA_KIND_ANSWERED)),
		cmd(sec(31), media("c1", pb.MediaKind_MEDIA_KIND_HOLD)))...)
	restored := shard.New(testShard, 0)
	if err := restored.Restore(live.Snapshot()); err != nil {
		t.Fatal(err)
	}
	c := contactOf(t, restored, "c1")
	if !c.OnHold || !c.Answered || c.HandledBy != "a1" || c.ConnectedAt != at(stepConnect) || c.OfferID != "o1" {
		t.Errorf("restored contact %+v lost its media state or assignment", withoutArrival(c))
	}
	refuse(t, restored, cmd(sec(32), media("c1", pb.MediaKind_MEDIA_KIND_HOLD)), shard.ErrIllegalTransition, `"c1"`)
	applyNew(t, restored, cmd(sec(32), media("c1", pb.MediaKind_MEDIA_KIND_RESUME)))
}

// TestSnapshot_IsOrdered: contacts by seq, agents by id, so equal states
// give equal bytes on every replica.
func TestSnapshot_IsOrdered(t *testing.T) {
	s := shard.New(testShard, 0)
	for i, id := range []string{"z", "m", "a", "q", "b"} {
		mustApply(t, s, cmd(sec(int64(i)), login("agent-"+id, true)))
		mustApply(t, s, cmd(sec(int64(i)), arrive("contact-"+id, "sales", chat)))
	}
	snap := s.Snapshot()
	if snap.GetShard() != testShard || snap.GetNextSeq() != 6 {
		t.Errorf("shard %d next_seq %d, want %d and 6", snap.GetShard(), snap.GetNextSeq(), testShard)
	}
	for i, c := range snap.GetContacts() {
		if c.GetSeq() != uint64(i+1) {
			t.Errorf("contact %d has seq %d, want %d", i, c.GetSeq(), i+1)
		}
	}
	for i := 1; i < len(snap.GetAgents()); i++ {
		if a, b := snap.GetAgents()[i-1].GetProfile().GetId(), snap.GetAgents()[i].GetProfile().GetId(); a >= b {
			t.Errorf("agents out of order: %q before %q", a, b)
		}
	}
	first, _ := proto.MarshalOptions{Deterministic: true}.Marshal(snap)
	for range 5 {
		again, _ := proto.MarshalOptions{Deterministic: true}.Marshal(s.Snapshot())
		if string(again) != string(first) {
			t.Fatalf("two snapshots of one state encode differently")
		}
	}
}

func TestRestore_Refuses(t *testing.T) {
	good := given(t, upTo(stepConnect)...).Snapshot()
	tests := []struct {
		name string
		edit func(*pb.ShardSnapshot)
		want string
	}{
		{"another shard's snapshot", func(s *pb.ShardSnapshot) { s.Shard = testShard + 1 }, "shard 4"},
		{"a contact without id", func(s *pb.ShardSnapshot) {
			s.Contacts = append(s.Contacts, &pb.ContactRecord{Seq: 9, State: queued})
		}, "contact without id"},
		{"an agent without id", func(s *pb.ShardSnapshot) {
			s.Agents = append(s.Agents, &pb.AgentRecord{Presence: available})
		}, "agent without id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := given(t, upTo(stepArrive)...)
			before := s.Snapshot()
			bad := proto.CloneOf(good)
			tc.edit(bad)
			err := s.Restore(bad)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "shard: ") {
				t.Errorf("Restore = %v, want an error naming %q", err, tc.want)
			}
			assertUnchanged(t, "refused restore", before, s.Snapshot())
		})
	}
}

// TestRestore_ReplacesEverything: restoring is not a merge.
func TestRestore_ReplacesEverything(t *testing.T) {
	s := given(t, upTo(stepConnect)...)
	if err := s.Restore(&pb.ShardSnapshot{Shard: testShard}); err != nil {
		t.Fatal(err)
	}
	if c, a := s.Len(); c != 0 || a != 0 {
		t.Errorf("after restoring an empty snapshot: %d contacts, %d agents", c, a)
	}
	if r := applyNew(t, s, cmd(sec(60), arrive("c1", "sales", voice))); r.Contact.Seq != 1 {
		t.Errorf("first arrival after restoring an empty snapshot has seq %d, want 1", r.Contact.Seq)
	}
}
