package shard_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	"google.golang.org/protobuf/proto"
)

func TestNew(t *testing.T) {
	s := shard.New(7, 0)
	if s.Shard() != 7 {
		t.Errorf("Shard() = %d", s.Shard())
	}
	if c, a := s.Len(); c != 0 || a != 0 {
		t.Errorf("new state holds %d contacts, %d agents", c, a)
	}
	if _, ok := s.Contact("c1"); ok {
		t.Errorf("new state knows c1")
	}
	if _, ok := s.Agent("a1"); ok {
		t.Errorf("new state knows a1")
	}
	if snap := s.Snapshot(); snap.GetShard() != 7 || snap.GetNextSeq() != 1 || len(snap.GetContacts())+len(snap.GetAgents()) != 0 {
		t.Errorf("new state's snapshot %s", describe(snap))
	}
}

// TestApplyBatch_SameAsOneByOne: a log entry's commands applied together
// give the results and state of applying them one at a time, refusals
// included, and results are appended to the slice passed in.
func TestApplyBatch_SameAsOneByOne(t *testing.T) {
	batch := then(upTo(stepDone), cmd(sec(30), lock("c1", "a1", "o2")), nil, cmd(sec(31), arrive("c2", "sales", voice)))
	one := shard.New(testShard, 0)
	var want []string
	for _, c := range batch {
		want = append(want, outcomeOf(one.Apply(c), nil))
	}
	all := shard.New(testShard, 0)
	prior := []shard.Result{{Duplicate: true}}
	got := all.ApplyBatch(batch, prior)
	if len(got) != len(batch)+1 || !got[0].Duplicate {
		t.Fatalf("ApplyBatch returned %d results (first duplicate %v), want the prior one plus %d", len(got), got[0].Duplicate, len(batch))
	}
	for i, r := range got[1:] {
		if outcomeOf(r, nil) != want[i] {
			t.Errorf("command %d: batch %s, one by one %s", i, outcomeOf(r, nil), want[i])
		}
	}
	if !proto.Equal(one.Snapshot(), all.Snapshot()) {
		t.Errorf("batch and one-by-one states differ:\n%s", snapshotDiff(one.Snapshot(), all.Snapshot()))
	}
}

// TestRecords_AreCopies: what callers get back cannot change the state.
func TestRecords_AreCopies(t *testing.T) {
	s := given(t, upTo(stepAccept)...)
	r := s.Apply(upTo(stepConnect)[1+stepConnect])
	r.Contact.State, r.Contact.OfferID = abandoned, "forged"
	r2 := s.Apply(cmd(sec(30), notReady("a1", "break")))
	r2.Agent.Presence, r2.Agent.Counters.Accepted = offline, 99
	c, _ := s.Contact("c1")
	c.State = finished
	a, _ := s.Agent("a1")
	a.Slots = nil
	s.Contacts(func(c shard.Contact) { c.State = finished })
	s.Agents(func(a shard.Agent) { a.Presence = offline })

	if c := contactOf(t, s, "c1"); c.State != connected || c.OfferID != "o1" {
		t.Errorf("contact changed through a returned copy: %+v", withoutArrival(c))
	}
	if a := agentOf(t, s, "a1"); a.Presence != notReadyP || a.Counters.Accepted != 1 || len(a.Slots) != 1 {
		t.Errorf("agent changed through a returned copy: %+v", withoutProfile(a))
	}
}

// TestState_ConcurrentUse: Apply and every reader at once (run with -race).
func TestState_ConcurrentUse(t *testing.T) {
	s := given(t, cmd(sec(0), login("a1", true)))
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			for _, c := range lifecycle(sec(int64(10*i)), fmt.Sprintf("c%d", i), "a1", fmt.Sprintf("o%d", i)) {
				if r := s.Apply(c); r.Err != nil {
					t.Errorf("apply: %v", r.Err)
					return
				}
			}
		}
	})
	for range 3 {
		wg.Go(func() {
			for range 200 {
				s.Snapshot()
				s.Contact("c1")
				s.Agent("a1")
				s.Len()
				s.Contacts(func(shard.Contact) {})
				s.Agents(func(a shard.Agent) { _ = a.Free() })
			}
		})
	}
	wg.Wait()
	var handled uint64
	s.Agents(func(a shard.Agent) { handled = a.Counters.Handled })
	if handled != 200 {
		t.Errorf("agent handled %d, want 200", handled)
	}
}
