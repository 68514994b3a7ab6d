package actors_test

import (
	"sync"
	"testing"

	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/cluster"
	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// gatedLog passes commands on to the in-memory log until one that gate
// picks: from there on, commands wait until release and then go on in the
// order proposed, as a slow commit holds up everything after it in a log.
// Every command proposed is recorded.
type gatedLog struct {
	inner *cluster.MemoryLog[*shard.Result]
	gate  func(*pb.Command) bool

	mu       sync.Mutex
	held     []func()
	open     bool
	proposed []*pb.Command
}

func (l *gatedLog) Propose(cmd *pb.Command, done func(*shard.Result)) {
	l.mu.Lock()
	l.proposed = append(l.proposed, cmd)
	if !l.open && (len(l.held) > 0 || l.gate(cmd)) {
		l.held = append(l.held, func() { l.inner.Propose(cmd, done) })
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.inner.Propose(cmd, done)
}

// releaseFirst lets the first held command go on, the rest still held.
func (l *gatedLog) releaseFirst() {
	l.mu.Lock()
	p := l.held[0]
	l.held = l.held[1:]
	l.mu.Unlock()
	p()
}

func (l *gatedLog) release() {
	l.mu.Lock()
	held := l.held
	l.held, l.open = nil, true
	l.mu.Unlock()
	for _, p := range held {
		p()
	}
}

// arrival returns the ContactArrive proposed for contact, or nil.
func (l *gatedLog) arrival(contact string) *pb.ContactArrive {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.proposed {
		if a := c.GetContactArrive(); a.GetContactId() == contact {
			return a
		}
	}
	return nil
}

// locks counts the ContactLocks proposed.
func (l *gatedLog) locks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.proposed {
		if c.GetContactLock() != nil {
			n++
		}
	}
	return n
}

func gatedEngine(t *testing.T, gate func(*pb.Command) bool) (*scenario.S, map[uint32]*gatedLog) {
	logs := map[uint32]*gatedLog{}
	var mu sync.Mutex
	d := newEngineWithLogs(t, scenario.Basic(), 4, scenario.Options{}, func(id uint32, l actors.Log) actors.Log {
		g := &gatedLog{inner: l.(*cluster.MemoryLog[*shard.Result]), gate: gate}
		mu.Lock()
		logs[id] = g
		mu.Unlock()
		return g
	})
	return &scenario.S{T: t, D: d}, logs
}

func availableIn(s *scenario.S, queue string, n uint32) {
	s.WaitFor("the queue to see the agents free", func() bool {
		return s.D.QueueStatus(s, queue).GetAvailableAgents() == n
	})
}

// A contact that finds an agent free is held for them in its arrival's own
// commit: the carrier's answer already says reserved, the agent gets the
// offer, and no separate ContactLock is committed.
func TestArrival_HeldForAFreeAgentInItsOwnCommit(t *testing.T) {
	s, logs := gatedEngine(t, func(*pb.Command) bool { return false })
	s.Login("alice")
	availableIn(s, "support", 1)

	r := s.MustArrive("c1", "support", pb.Channel_CHANNEL_VOICE)
	if r.GetState() != pb.ContactState_CONTACT_STATE_RESERVED || r.GetPosition() != 0 {
		t.Errorf("arrival reply: %v at position %d; want reserved, no longer waiting", r.GetState(), r.GetPosition())
	}
	o := s.Offer("alice")
	home, _ := s.D.(*engineDriver).e.QueueShard("support")
	if o.GetContactId() != "c1" || o.GetOfferId() != actors.OfferID("c1", home, 1, 1) {
		t.Fatalf("offer %v; want c1's first hold", o)
	}
	q := logs[home]
	if a := q.arrival("c1"); a.GetHoldFor() != "alice" {
		t.Errorf("c1's arrival proposed hold_for %q, want alice", a.GetHoldFor())
	}
	if n := q.locks(); n != 0 {
		t.Errorf("%d ContactLocks proposed; the arrival held the contact", n)
	}
	// It goes on as any held contact does.
	s.Accept("alice", o)
	if in := s.Instruction(); in.GetContactId() != "c1" || in.GetAgentId() != "alice" {
		t.Fatalf("instruction %v; want c1 connected to alice", in)
	}
	s.Finish("support", "alice", o)

	// With nobody free, the next contact waits in line and is held by a
	// ContactLock when alice is free again.
	s.MustCmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_NOT_READY, "")
	availableIn(s, "support", 0)
	if r := s.MustArrive("c2", "support", pb.Channel_CHANNEL_VOICE); r.GetState() != pb.ContactState_CONTACT_STATE_QUEUED || r.GetPosition() != 1 {
		t.Errorf("arrival with nobody free: %v at position %d; want queued first in line", r.GetState(), r.GetPosition())
	}
	if a := q.arrival("c2"); a.GetHoldFor() != "" {
		t.Errorf("c2's arrival proposed hold_for %q with nobody free", a.GetHoldFor())
	}
	s.MustCmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_READY, "")
	if o := s.Offer("alice"); o.GetContactId() != "c2" {
		t.Fatalf("offer %v; want c2", o)
	}
	if n := q.locks(); n != 1 {
		t.Errorf("%d ContactLocks proposed; want c2's", n)
	}
}

// An arrival that found nobody free is not in line until its commit. An
// agent freed meanwhile must not go to a later arrival held as it arrives:
// the earlier contact is served first (DESIGN.md, invariant 3).
func TestArrival_LaterArrivalDoesNotPassOneStillCommitting(t *testing.T) {
	s, logs := gatedEngine(t, func(c *pb.Command) bool { return c.GetContactArrive().GetContactId() == "c1" })
	replies := make(chan *pb.ArrivalReply, 1)
	go func() { replies <- s.Arrive("c1", "support", pb.Channel_CHANNEL_VOICE) }()
	var q *gatedLog
	s.WaitFor("c1's arrival to be proposed", func() bool {
		for _, l := range logs {
			if l.arrival("c1") != nil {
				q = l
				return true
			}
		}
		return false
	})
	s.Login("alice")
	availableIn(s, "support", 1)
	c2 := make(chan *pb.ArrivalReply, 1)
	go func() { c2 <- s.Arrive("c2", "support", pb.Channel_CHANNEL_VOICE) }()
	s.WaitFor("c2's arrival to be proposed", func() bool { return q.arrival("c2") != nil })
	if h := q.arrival("c2").GetHoldFor(); h != "" {
		t.Errorf("c2 was held for %s while c1, earlier, was still being committed", h)
	}
	// c1's commit, then (c2 behind it in the log) c2's: the queue holds
	// c1 for alice as soon as it is in line.
	q.releaseFirst()
	s.WaitFor("a hold to be proposed", func() bool { return q.locks() == 1 })
	q.release()
	if o := s.Offer("alice"); o.GetContactId() != "c1" {
		t.Errorf("alice offered %s first; want c1, which arrived first", o.GetContactId())
	}
	for _, ch := range []chan *pb.ArrivalReply{replies, c2} {
		if r := <-ch; r.GetError() != nil {
			t.Errorf("arrival %s: %v", r.GetContactId(), r.GetError())
		}
	}
}

// An arrival held for an agent whose commit is undecided (the leader
// stepped down; the entry may commit) is proposed again; when the first
// did commit, the repeat finds it and the reservation goes ahead.
func TestArrival_UndecidedHeldArrivalGoesAheadWhenItCommitted(t *testing.T) {
	undecided := undecidedOnce(func(c *pb.Command) bool { return c.GetContactArrive().GetHoldFor() != "" })
	d := newEngineWithLogs(t, scenario.Basic(), 4, scenario.Options{}, func(_ uint32, l actors.Log) actors.Log {
		return undecidedLog{inner: l.(*cluster.MemoryLog[*shard.Result]), undecided: undecided}
	}, retrying)
	s := &scenario.S{T: t, D: d}
	s.Login("alice")
	availableIn(s, "support", 1)
	r := s.Arrive("c1", "support", pb.Channel_CHANNEL_VOICE)
	if shard.CodeOf(errOf(r)) != pb.ErrorCode_ERROR_CODE_UNAVAILABLE {
		t.Fatalf("first answer %v; want UNAVAILABLE (the commit is undecided)", r)
	}
	o := s.Offer("alice")
	if o.GetContactId() != "c1" {
		t.Fatalf("offer %v; want c1", o)
	}
	// The carrier's retry is answered from the committed record.
	if r := s.MustArrive("c1", "support", pb.Channel_CHANNEL_VOICE); r.GetState() != pb.ContactState_CONTACT_STATE_RESERVED {
		t.Errorf("retry answered %v; want reserved", r.GetState())
	}
	s.Accept("alice", o)
	if in := s.Instruction(); in.GetContactId() != "c1" || in.GetAgentId() != "alice" {
		t.Fatalf("instruction %v; want c1 connected to alice", in)
	}
}

func errOf(r *pb.ArrivalReply) error {
	if e := r.GetError(); e != nil {
		return &shard.Error{Code: e.GetCode(), Msg: e.GetMessage()}
	}
	return nil
}

// refusingLog refuses, as the state would a conflicting or malformed
// arrival, the commands refuse picks, once each; it passes the rest on.
type refusingLog struct {
	inner  *cluster.MemoryLog[*shard.Result]
	refuse func(*pb.Command) bool
}

func (l refusingLog) Propose(cmd *pb.Command, done func(*shard.Result)) {
	if l.refuse(cmd) {
		done(&shard.Result{Err: &shard.Error{Code: pb.ErrorCode_ERROR_CODE_CONFLICT, Msg: "test: refused"}})
		return
	}
	l.inner.Propose(cmd, done)
}

// An arrival held for a free agent but refused by its commit gives the
// agent back: the next contact goes to them at once (DESIGN.md, invariant
// 3: no eligible agent idle while a contact waits).
func TestArrival_RefusedHeldArrivalGivesTheAgentBack(t *testing.T) {
	refuse := undecidedOnce(func(c *pb.Command) bool { return c.GetContactArrive().GetHoldFor() != "" })
	d := newEngineWithLogs(t, scenario.Basic(), 4, scenario.Options{}, func(_ uint32, l actors.Log) actors.Log {
		return refusingLog{inner: l.(*cluster.MemoryLog[*shard.Result]), refuse: refuse}
	})
	s := &scenario.S{T: t, D: d}
	s.Login("alice")
	availableIn(s, "support", 1)
	if r := s.Arrive("c1", "support", pb.Channel_CHANNEL_VOICE); r.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_CONFLICT {
		t.Fatalf("first arrival answered %v; want the refusal", r)
	}
	availableIn(s, "support", 1)
	s.MustArrive("c2", "support", pb.Channel_CHANNEL_VOICE)
	if o := s.Offer("alice"); o.GetContactId() != "c2" {
		t.Fatalf("alice offered %s; want c2", o.GetContactId())
	}
}
