package chaos

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

var agents = []string{"a1", "a2", "a3", "a4", "a5", "a6"}

// An owner is killed while its queue holds waiting callers, reservations and
// offers. Every caller is still served, by one agent each, and no agent gets
// two calls at once.
func TestKill9OwnerLosesNoCaller(t *testing.T) {
	pc := startProcCluster(t, 3)
	s := newSim(t, pc.connect(), agents)
	// a6 lets its offers time out, so some contact is always "offered".
	s.mu.Lock()
	s.ignore["a6"] = true
	s.mu.Unlock()
	for i := range 40 {
		s.arrive(fmt.Sprintf("k-%d", i))
	}
	owners := pc.waitOwned(10 * time.Second)
	victim := owners[queueShard()]
	acc, conn, _ := s.counts()
	t.Logf("killing %s (owner of queue q's shard %d) with %d accepted, %d connected", victim.id, queueShard(), acc, conn)
	s.setMark()
	pc.kill9(victim)
	killed := time.Now()
	pc.waitOwned(30*time.Second, victim)
	t.Logf("every shard owned again %v after kill -9", time.Since(killed).Round(time.Millisecond))
	// More callers after the failover.
	for i := range 10 {
		s.arrive(fmt.Sprintf("after-%d", i))
	}
	s.mu.Lock()
	s.ignore["a6"] = false
	s.mu.Unlock()
	s.waitAllEnded(60 * time.Second)
	if d, ok := s.sinceMark(); ok {
		t.Logf("first connect instruction %v after kill -9", d.Round(time.Millisecond))
	}
	s.check()
	acc, conn, ended := s.counts()
	if acc != 50 || conn != 50 || ended != 50 {
		t.Fatalf("accepted %d, connected %d, ended %d; want 50 of each", acc, conn, ended)
	}
}

// A stopped (SIGSTOP) owner is cut off as surely as a partitioned one; the
// others take its shards over. When it wakes it still believes it owns them
// for a moment: whatever it sends then carries its old term and is refused
// (the refusals are counted and logged; Engine.Deliver and client.Fences
// have their own tests). Every caller is still served once, by one agent.
func TestStoppedOwnerWakesWithoutDoubleAssigning(t *testing.T) {
	pc := startProcCluster(t, 3)
	s := newSim(t, pc.connect(), agents)
	for i := range 20 {
		s.arrive(fmt.Sprintf("f-%d", i))
	}
	owners := pc.waitOwned(10 * time.Second)
	victim := owners[queueShard()]
	pc.signal(victim, syscall.SIGSTOP)
	pc.waitOwned(30*time.Second, victim)
	for i := range 20 {
		s.arrive(fmt.Sprintf("g-%d", i))
	}
	pc.signal(victim, syscall.SIGCONT)
	pc.waitOwned(30 * time.Second)
	s.waitAllEnded(60 * time.Second)
	s.check()
	t.Logf("stale notices or instructions refused by the clients: %d", s.c.Fences.Stale())
	acc, conn, ended := s.counts()
	if acc != 40 || conn != 40 || ended != 40 {
		t.Fatalf("accepted %d, connected %d, ended %d; want 40 of each", acc, conn, ended)
	}
}

// Every member is restarted in turn (SIGTERM, then started again from its
// disk) while callers keep arriving: none is lost.
func TestRollingRestartUnderTraffic(t *testing.T) {
	pc := startProcCluster(t, 3)
	s := newSim(t, pc.connect(), agents)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			s.arrive(fmt.Sprintf("r-%d", i))
		}
	}()
	for _, p := range pc.procs {
		pc.stop(p)
		pc.waitOwned(30*time.Second, p)
		pc.start(p)
		pc.waitHealthy(p, 60*time.Second)
		pc.waitOwned(30 * time.Second)
	}
	close(stop)
	wg.Wait()
	s.waitAllEnded(60 * time.Second)
	s.check()
	acc, conn, ended := s.counts()
	t.Logf("rolling restart: %d accepted, %d connected, %d ended", acc, conn, ended)
	if acc == 0 || acc != conn || acc != ended {
		t.Fatalf("accepted %d, connected %d, ended %d; want all equal and non-zero", acc, conn, ended)
	}
}

// A member killed and restarted from its disk rejoins and catches up with
// what was committed while it was down.
func TestRestartedMemberCatchesUp(t *testing.T) {
	pc := startProcCluster(t, 3)
	s := newSim(t, pc.connect(), agents)
	owners := pc.waitOwned(10 * time.Second)
	var victim *proc
	for _, p := range pc.procs {
		if p != owners[queueShard()] {
			victim = p
			break
		}
	}
	pc.kill9(victim)
	for i := range 30 {
		s.arrive(fmt.Sprintf("c-%d", i))
	}
	s.waitAllEnded(60 * time.Second)
	pc.start(victim)
	pc.waitHealthy(victim, 60*time.Second)
	qs := queueShard()
	pc.waitFor("the restarted member's replica to reach the owner's applied index", 30*time.Second, func() bool {
		owners, ok := pc.owners(pc.procs)
		if !ok {
			return false
		}
		os, err1 := pc.status(owners[qs])
		vs, err2 := pc.status(victim)
		if err1 != nil || err2 != nil {
			return false
		}
		return vs.Shards[qs].Replica && vs.Shards[qs].Applied > 0 && vs.Shards[qs].Applied >= os.Shards[qs].Applied-1
	})
	s.check()
}
