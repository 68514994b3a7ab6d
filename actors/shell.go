package actors

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// machine is a pure decision core: an input and the time in, effects out.
type machine interface {
	step(now int64, in any, fx *effects)
}

// passivator is a machine that can tell when its actor may stop, to be
// activated again from its committed record when next needed.
type passivator interface {
	passivatable() bool
}

// shell is the protoactor actor around a machine: it turns messages into
// inputs and carries out effects. While a proposal is in flight it stashes
// further input, so every decision is taken on committed state.
type shell struct {
	e     *Engine
	h     *host
	key   target
	m     machine
	self  *actor.PID
	busy  bool
	stash []any
	// idle reports whether an actor with nothing to do may stop (contacts
	// spawned for a stray message).
	idle func() bool
	// wantStop: the machine asked to stop; it does once nothing is stashed.
	wantStop bool
	// stopping: the actor left the directory; anything still in its mailbox
	// is passed on to whoever holds the name now, so one actor at a time
	// acts for a record.
	stopping bool
	timers   map[string]*armed
	gen      uint64
	// fx is reused for every input: the shell runs one input at a time.
	fx effects
	// remote is reused for the messages of one step bound for other nodes.
	remote []Outgoing
}

type armed struct {
	stop Stopper
	gen  uint64
}

// Receive implements actor.Actor.
func (s *shell) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self = ctx.Self()
	case *actor.Stopping, *actor.Restarting:
	case *actor.Stopped:
		for _, t := range s.timers {
			t.stop.Stop()
		}
	case passivate:
		ctx.Stop(ctx.Self())
	case timerFired:
		if s.stopping {
			return
		}
		if t, ok := s.timers[msg.key]; !ok || t.gen != msg.gen {
			return // cancelled or re-armed since
		}
		delete(s.timers, msg.key)
		s.input(msg)
	case committed:
		s.busy = false
		s.run(msg)
		for !s.busy && len(s.stash) > 0 {
			next := s.stash[0]
			s.stash[0] = nil
			s.stash = s.stash[1:]
			s.run(next)
		}
	case actor.SystemMessage, actor.AutoReceiveMessage:
	default:
		if s.stopping {
			s.e.route(s.key, msg)
			return
		}
		s.input(msg)
	}
}

func (s *shell) input(msg any) {
	if s.busy {
		s.stash = append(s.stash, msg)
		return
	}
	s.run(msg)
}

func (s *shell) run(in any) {
	fx := &s.fx
	fx.reset()
	if !s.step(in, fx) {
		return
	}
	s.execute(fx)
	s.wantStop = s.wantStop || fx.stop
	if s.busy || len(s.stash) > 0 || s.stopping {
		return
	}
	switch {
	case s.wantStop, s.idle != nil && s.idle():
		s.stopSelf()
	case len(s.timers) == 0:
		if p, ok := s.m.(passivator); ok && p.passivatable() {
			s.stopSelf()
		}
	}
}

// step runs the machine, turning a panic into a logged, counted refusal of
// that one input: a bug must not take the node (or the actor's other
// contacts) down, and the tests assert that no panic happened.
func (s *shell) step(in any, fx *effects) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.e.metrics.Panics.Add(1)
			s.e.log.Error("actor panicked; input dropped", "actor", s.key.kind.String(), "id", s.key.id, "input", fmt.Sprintf("%T", in), "panic", r, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	s.m.step(s.e.clock.Now().UnixNano(), in, fx)
	return true
}

func (s *shell) execute(fx *effects) {
	s.h.live.RLock()
	defer s.h.live.RUnlock()
	if s.h.released {
		s.dropReleased(fx)
		return
	}
	for _, key := range fx.cancels {
		if t, ok := s.timers[key]; ok {
			t.stop.Stop()
			delete(s.timers, key)
		}
	}
	if fx.propose != nil {
		s.busy = true
		tag, self, root, clock, m := fx.tag, s.self, s.e.sys.Root, s.e.clock, &s.e.metrics
		m.Proposals.Add(1)
		start := clock.Now()
		s.h.log.Propose(fx.propose, func(r *shard.Result) {
			m.Commit.Observe(clock.Now().Sub(start))
			root.Send(self, committed{tag: tag, res: r})
		})
	}
	s.remote = s.e.routeAll(fx.sends, s.remote)
	for _, n := range fx.notices {
		s.e.bus.Notify(n.agentID, n.n)
	}
	for _, in := range fx.instr {
		self, root, id := s.self, s.e.sys.Root, in.in.GetInstructionId()
		s.e.bus.Instruct(in.carrier, in.in, func(ack *pb.InstructionAck, err error) {
			root.Send(self, instructionAcked{id: id, ack: ack, err: err})
		})
	}
	for _, t := range fx.timers {
		s.arm(t.key, t.after)
	}
	for _, r := range fx.replies {
		r()
	}
	if fx.lookup != nil {
		s.lookup(*fx.lookup)
	}
	for _, r := range fx.records {
		s.e.record(r)
	}
	for _, l := range fx.logs {
		s.e.log.Warn(l.msg, l.args...)
	}
	if len(fx.events) > 0 && s.e.events != nil {
		s.e.events(s.h.id, s.h.fence.GetTerm(), append([]*pb.Event(nil), fx.events...))
	}
}

// dropReleased carries out what is still right for an actor whose shard
// this node no longer owns: answers to requests (the truth about a
// committed command, or an error the asker retries) and logs. Proposals,
// messages, notices, instructions, timers and events are dropped: the
// shard's new owner re-drives what is due from the committed state, and
// whoever waits on a dropped proposal retries.
func (s *shell) dropReleased(fx *effects) {
	for _, r := range fx.replies {
		r()
	}
	for _, l := range fx.logs {
		s.e.log.Warn(l.msg, l.args...)
	}
	if n := len(fx.sends) + len(fx.notices) + len(fx.instr); n > 0 {
		s.e.metrics.Fenced.Add(uint64(n))
	}
}

func (s *shell) arm(key string, after time.Duration) {
	if s.timers == nil {
		s.timers = make(map[string]*armed)
	}
	if t, ok := s.timers[key]; ok {
		t.stop.Stop()
	}
	s.gen++
	gen, self, root := s.gen, s.self, s.e.sys.Root
	s.timers[key] = &armed{gen: gen, stop: s.e.clock.AfterFunc(after, func() {
		root.Send(self, timerFired{key: key, gen: gen})
	})}
}

func (s *shell) lookup(key string) {
	self, root := s.self, s.e.sys.Root
	if s.e.customers == nil {
		root.Send(self, customerLoaded{})
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.e.lookupTimeout)
		defer cancel()
		c, found, err := s.e.customers.Lookup(ctx, key)
		if err != nil {
			s.e.metrics.CustomerFallbacks.Add(1)
		}
		root.Send(self, customerLoaded{ctx: c, found: found, err: err})
	}()
}

// stopSelf leaves the host's directory first, so anything routed to this
// actor afterwards spawns a fresh one, then stops after the messages
// already in the mailbox.
func (s *shell) stopSelf() {
	s.stopping = true
	for _, t := range s.timers {
		t.stop.Stop()
	}
	clear(s.timers)
	if s.h.remove(s.key, s.self) {
		s.e.sys.Root.Send(s.self, passivate{})
	}
}
