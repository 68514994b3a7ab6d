package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

func TestOwnershipIsSpreadAndSingle(t *testing.T) {
	h := newHarness(t, 3, 6)
	owners := h.waitOwned(15 * time.Second)
	// The reconciler hands shards to their preferred owners; wait for the
	// balance the placement asks for: two shards each.
	h.waitFor("ownership balanced", 15*time.Second, func() bool {
		owners = h.waitOwned(5 * time.Second)
		per := map[string]int{}
		for _, m := range owners {
			per[m.id]++
		}
		return per["n1"] == 2 && per["n2"] == 2 && per["n3"] == 2
	})
	for _, m := range h.members {
		if !dirHasFiles(t, m.dir) {
			t.Errorf("%s wrote nothing under %s", m.id, m.dir)
		}
	}
	// A member's status names each shard's owner as its replica sees the
	// Raft leader, which can trail a move the reconciler is still making:
	// wait for it to agree with who owns what.
	var st Status
	agree := func() bool {
		owners = h.waitOwned(5 * time.Second)
		st = h.members[0].c.Status()
		if len(st.Shards) != 6 {
			return false
		}
		for _, si := range st.Shards {
			if si.Owner != owners[si.Shard].id {
				return false
			}
		}
		return true
	}
	h.waitFor("n1's status to name every shard's owner", 15*time.Second, agree)
	if st.MetaLeader == "" {
		t.Fatalf("status = %+v; want a meta leader", st)
	}
	for _, si := range st.Shards {
		if len(si.Placement) != 3 {
			t.Errorf("shard %d: status placement %v; want 3 replicas", si.Shard, si.Placement)
		}
	}
}

// Every owner's record reaches the meta group, also from owners that do
// not lead it, so members without a replica of a shard find its owner there;
// after a kill the new owners' records replace the old.
func TestOwnerRecordsReachTheMetaGroup(t *testing.T) {
	h := newHarness(t, 3, 6)
	// recorded: each shard has one live owner (ownership may still move
	// towards the preferred owners), and every live member's meta group
	// holds that owner's record under its term.
	recorded := func() bool {
		owners := h.owners()
		for s := range h.shards {
			if len(owners[s]) != 1 {
				return false
			}
			m := owners[s][0]
			own, ok := m.owner.get(s)
			if !ok {
				return false
			}
			for _, o := range h.members {
				c := o.cluster()
				if c == nil {
					continue
				}
				if r, ok := c.mfsm.owner(s); !ok || r.GetMember() != m.id || r.GetTerm() != own.term {
					return false
				}
			}
		}
		return true
	}
	h.waitOwned(20 * time.Second)
	h.waitFor("every owner's record in every member's meta group", 20*time.Second, recorded)
	var leader, victim *member
	for _, m := range h.members {
		if m.cluster().IsMetaLeader() {
			leader = m
		}
	}
	for s, ms := range h.owners() {
		if ms[0] != leader {
			victim = ms[0]
			t.Logf("shard %d is owned by %s, not the meta leader %s", s, victim.id, leader.id)
			break
		}
	}
	if victim == nil {
		t.Fatalf("the meta leader owns every shard; the test needs owners that do not lead it")
	}

	// The new owners' records replace the victim's.
	h.kill(victim)
	h.waitFor("the new owners' records", 30*time.Second, recorded)

	// Records naming no shard, no term or no member are refused and change
	// nothing; an older term than the one kept changes nothing either.
	lc := leader.cluster()
	kept, _ := lc.mfsm.owner(0)
	for _, bad := range []*pb.ShardOwner{
		{Shard: h.shards, Term: 9, Member: "n1"},
		{Shard: 0, Term: 0, Member: "n1"},
		{Shard: 0, Term: 9, Member: "nobody"},
	} {
		if err := lc.RecordOwner(bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("RecordOwner(%v) = %v; want ErrInvalidInput", bad, err)
		}
	}
	if err := lc.RecordOwner(&pb.ShardOwner{Shard: 0, Term: kept.GetTerm() - 1, Member: leader.id}); err != nil {
		t.Errorf("an older record: %v", err)
	}
	if got, _ := lc.mfsm.owner(0); got.GetMember() != kept.GetMember() || got.GetTerm() != kept.GetTerm() {
		t.Errorf("shard 0's record is %v after refused and older records; want %v", got, kept)
	}
}

func TestCommittedCommandsSurviveOwnerKill(t *testing.T) {
	h := newHarness(t, 3, 2)
	owners := h.waitOwned(15 * time.Second)
	for i := range 50 {
		r, err := h.commit(0, arriveCmd(0, "c"+strconv.Itoa(i)))
		if err != nil || r.Err != nil {
			t.Fatalf("commit %d: %v %v", i, err, r.Err)
		}
	}
	old := owners[0]
	oldTerm, _ := old.owner.get(0)
	h.kill(old)
	owners = h.waitOwned(15 * time.Second)
	next := owners[0]
	if next == old {
		t.Fatalf("killed member still owns shard 0")
	}
	own, _ := next.owner.get(0)
	if own.term <= oldTerm.term {
		t.Fatalf("new owner's term %d is not above the old %d", own.term, oldTerm.term)
	}
	n := 0
	own.state.Contacts(func(c shard.Contact) {
		if c.State == pb.ContactState_CONTACT_STATE_QUEUED {
			n++
		}
	})
	if n != 50 {
		t.Fatalf("new owner holds %d queued contacts; want the 50 committed", n)
	}
	// The new owner goes on committing.
	if r, err := h.commit(0, arriveCmd(0, "after")); err != nil || r.Err != nil {
		t.Fatalf("commit after failover: %v %v", err, r.Err)
	}
}

func TestIsolatedOwnerCannotCommit(t *testing.T) {
	h := newHarness(t, 3, 1)
	owners := h.waitOwned(15 * time.Second)
	old := owners[0]
	stale, _ := old.owner.get(0)
	h.isolate(old)
	// The majority elects a new owner while the old one is cut off.
	h.waitFor("a new owner on the majority side", 15*time.Second, func() bool {
		for _, m := range h.members {
			if m == old {
				continue
			}
			if own, ok := m.owner.get(0); ok && own.term > stale.term {
				return true
			}
		}
		return false
	})
	// Whatever the old owner still proposes is refused, never committed.
	r := proposeWait(stale.log, arriveCmd(0, "late"))
	if r.Err == nil {
		t.Fatal("a command proposed by the cut-off owner was committed")
	}
	if got := shard.CodeOf(r.Err); got != pb.ErrorCode_ERROR_CODE_UNAVAILABLE {
		t.Fatalf("late proposal error code %v; want UNAVAILABLE (%v)", got, r.Err)
	}
	h.waitFor("the cut-off owner to release the shard", 10*time.Second, func() bool {
		_, ok := old.owner.get(0)
		return !ok
	})
	h.heal()
	h.waitOwned(15 * time.Second)
	for _, m := range h.members {
		if m == old {
			continue
		}
		if own, ok := m.owner.get(0); ok {
			if _, found := own.state.Contact("late"); found {
				t.Fatal("the late command reached the new owner's state")
			}
		}
	}
}

func TestRestartFromDiskCatchesUp(t *testing.T) {
	h := newHarness(t, 3, 1)
	h.waitOwned(15 * time.Second)
	var victim *member
	for _, m := range h.members {
		if _, ok := m.owner.get(0); !ok {
			victim = m
			break
		}
	}
	h.kill(victim)
	for i := range 20 {
		if r, err := h.commit(0, arriveCmd(0, "k"+strconv.Itoa(i))); err != nil || r.Err != nil {
			t.Fatalf("commit while a replica is down: %v %v", err, r)
		}
	}
	h.restart(victim)
	h.waitFor("the restarted replica to catch up", 15*time.Second, func() bool { return victim.replicaHas(0, "k19") })
}

// A member comes back from its disk on another Raft address (a new IP
// after a reschedule). It registers the address; the meta group and the
// shard groups move it there, and it catches up on what it missed.
func TestRestartOnANewAddressCatchesUp(t *testing.T) {
	h := newHarness(t, 3, 1)
	h.waitOwned(15 * time.Second)
	var victim *member
	for _, m := range h.members {
		if _, ok := m.owner.get(0); !ok && !m.cluster().IsMetaLeader() {
			victim = m
			break
		}
	}
	if victim == nil {
		t.Fatal("every member owns shard 0 or leads the meta group")
	}
	h.kill(victim)
	for i := range 20 {
		if r, err := h.commit(0, arriveCmd(0, "k"+strconv.Itoa(i))); err != nil || r.Err != nil {
			t.Fatalf("commit while a replica is down: %v %v", err, r)
		}
	}
	mux, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	old := victim.addr
	victim.addr = mux.Addr()
	h.start(victim, mux, nil)
	t.Logf("%s restarted on %s (was %s)", victim.id, victim.addr, old)
	h.waitFor("the restarted replica to catch up on its new address", 20*time.Second, func() bool { return victim.replicaHas(0, "k19") })
	h.waitFor("its meta replica to know its new address", 10*time.Second, func() bool { return !victim.c.NeedsJoin() })
	// Committed after the move too.
	if r, err := h.commit(0, arriveCmd(0, "after")); err != nil || r.Err != nil {
		t.Fatalf("commit after the move: %v %v", err, r)
	}
	h.waitFor("the moved replica to apply a new command", 10*time.Second, func() bool { return victim.replicaHas(0, "after") })
}

func TestJoinMovesReplicasAndDrainHandsOver(t *testing.T) {
	h := newHarness(t, 3, 4)
	h.waitOwned(15 * time.Second)
	// A fourth member joins through the meta leader.
	mux, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n4 := &member{id: "n4", site: "west", addr: mux.Addr(), dir: t.TempDir()}
	h.add(n4)
	h.start(n4, mux, nil)
	h.waitFor("n4 admitted", 15*time.Second, func() bool {
		for _, m := range h.members[:3] {
			if err := m.c.Join(n4.c.Self()); err == nil {
				return true
			}
		}
		return false
	})
	h.waitFor("n4 to own a shard", 30*time.Second, func() bool { return n4.owner.count() > 0 })
	st := n4.c.Status()
	for _, si := range st.Shards {
		if slices.Contains(si.Placement, "n4") != si.Replica {
			// Replicas follow the placement; wait for the reconciler.
			h.waitFor("n4's replicas to follow placement", 15*time.Second, func() bool {
				for _, si := range n4.c.Status().Shards {
					if slices.Contains(si.Placement, "n4") != si.Replica {
						return false
					}
				}
				return true
			})
			break
		}
	}
	// Drain n4: it hands every shard over and keeps its replicas.
	h.waitFor("drain accepted", 10*time.Second, func() bool {
		for _, m := range h.members {
			if m.c.Drain("n4", true) == nil {
				return true
			}
		}
		return false
	})
	h.waitFor("n4 to own nothing", 15*time.Second, func() bool { return n4.owner.count() == 0 })
	h.waitOwned(15 * time.Second)
}

func TestPlacement(t *testing.T) {
	members := []*pb.Member{
		{Id: "a", Site: "east", State: pb.MemberState_MEMBER_STATE_ACTIVE},
		{Id: "b", Site: "east", State: pb.MemberState_MEMBER_STATE_ACTIVE},
		{Id: "c", Site: "west", State: pb.MemberState_MEMBER_STATE_ACTIVE},
		{Id: "d", Site: "west", State: pb.MemberState_MEMBER_STATE_ACTIVE},
		{Id: "e", Site: "south", State: pb.MemberState_MEMBER_STATE_ACTIVE},
	}
	site := map[string]string{}
	for _, m := range members {
		site[m.Id] = m.Site
	}
	p := Placement(members, 64, 3)
	lead := map[string]int{}
	for s, ids := range p {
		if len(ids) != 3 {
			t.Fatalf("shard %d: %d replicas", s, len(ids))
		}
		sites := map[string]bool{}
		for _, id := range ids {
			sites[site[id]] = true
		}
		if len(sites) != 3 {
			t.Errorf("shard %d replicas %v span %d sites; want 3", s, ids, len(sites))
		}
		lead[ids[0]]++
	}
	for id, n := range lead {
		if n < 64/5-2 || n > 64/5+3 {
			t.Errorf("member %s preferred owner of %d of 64 shards; want about %d", id, n, 64/5)
		}
	}
	// Removing a member moves only its replicas.
	members[4].State = pb.MemberState_MEMBER_STATE_LEFT
	q := Placement(members, 64, 3)
	for s := range p {
		for _, id := range p[s] {
			if id != "e" && !slices.Contains(q[s], id) {
				t.Errorf("shard %d lost replica %s when e left (%v → %v)", s, id, p[s], q[s])
			}
		}
		if slices.Contains(q[s], "e") {
			t.Errorf("shard %d still placed on e after it left", s)
		}
	}
	// A draining member is preferred owner of nothing while others are active.
	members[4].State = pb.MemberState_MEMBER_STATE_ACTIVE
	members[0].State = pb.MemberState_MEMBER_STATE_DRAINING
	for s, ids := range Placement(members, 64, 3) {
		if ids[0] == "a" {
			t.Errorf("shard %d prefers draining member a: %v", s, ids)
		}
	}
}

// A member dies but stays active in the meta group (nobody has told it to
// leave). The shards it should own are owned by others meanwhile, and their
// owners do not try to hand them back to it: each try stalled the shard's
// proposals for an election timeout, every five seconds.
func TestNoHandOverToADeadPreferredOwner(t *testing.T) {
	h := newHarness(t, 3, 6)
	h.waitOwned(20 * time.Second)
	var leader *member
	for _, m := range h.members {
		if m.cluster().IsMetaLeader() {
			leader = m
		}
	}
	// A shard whose preferred owner is not the meta leader.
	var victim *member
	var s uint32
	for _, info := range leader.cluster().Status().Shards {
		if p := info.Placement; len(p) > 0 && p[0] != leader.id {
			s = info.Shard
			for _, m := range h.members {
				if m.id == p[0] {
					victim = m
				}
			}
			break
		}
	}
	if victim == nil {
		t.Fatal("the meta leader is the preferred owner of every shard")
	}
	h.waitFor(fmt.Sprintf("shard %d owned by its preferred owner %s", s, victim.id), 20*time.Second, func() bool {
		_, ok := victim.owner.get(s)
		return ok
	})
	h.kill(victim)
	owners := h.waitOwned(20 * time.Second)
	owner := owners[s]
	own, _ := owner.owner.get(s)
	t.Logf("shard %d: %s killed, %s owns it in term %d", s, victim.id, owner.id, own.term)

	// Over more than one transfer interval (5s), every proposal commits.
	refused := 0
	deadline := time.Now().Add(6 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		r := proposeWait(own.log, arriveCmd(s, fmt.Sprintf("c-%d", n)))
		n++
		if r.Err != nil {
			refused++
			t.Logf("proposal %d refused: %v", n, r.Err)
		}
	}
	if refused > 0 {
		t.Fatalf("%d of %d proposals refused while the preferred owner was dead", refused, n)
	}
	if cur, ok := owner.owner.get(s); !ok || cur.term != own.term {
		t.Fatalf("shard %d changed hands (%v, %v) with its preferred owner dead", s, cur, ok)
	}
}

// A leader knows which followers its heartbeats no longer reach, so it does
// not hand a shard to a member that is stopped rather than dead (one that
// accepts connections but answers nothing never fails a dial).
func TestLeaderSeesSilentFollower(t *testing.T) {
	h := newHarness(t, 3, 1)
	o := h.waitOwned(15 * time.Second)[0]
	var f *member
	for _, m := range h.members {
		if m != o {
			f = m
			break
		}
	}
	silent := func() bool {
		o.c.mu.Lock()
		sg := o.c.shards[0]
		o.c.mu.Unlock()
		return sg.g.silence.silent(raft.ServerID(f.id), 10*time.Second)
	}
	if silent() {
		t.Fatalf("%s silent to the leader %s before anything happened", f.id, o.id)
	}
	h.isolate(f)
	h.waitFor("the leader's heartbeats to the cut-off follower to fail", 10*time.Second, silent)
	if _, ok := o.owner.get(0); !ok {
		t.Fatalf("%s lost the shard to a follower's isolation", o.id)
	}
	h.heal()
	h.waitFor("the heartbeats to resume", 10*time.Second, func() bool { return !silent() })
}
