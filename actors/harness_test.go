package actors_test

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/cluster"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The engine harness runs the real actors, the real state machines and the
// in-memory log. recordingBus stands in for NATS at this layer only: it is
// the Bus seam's other side, recording notices and answering instructions
// the way a carrier would. The gateway's tests use a real NATS server.

const waitLimit = 5 * time.Second

type recordingBus struct {
	mu       sync.Mutex
	notices  map[string]chan *pb.AgentNotice
	instr    chan *pb.RoutingInstruction
	noAck    bool
	eventsMu sync.Mutex
	events   []*pb.Event
}

func newRecordingBus() *recordingBus {
	return &recordingBus{notices: make(map[string]chan *pb.AgentNotice), instr: make(chan *pb.RoutingInstruction, 1024)}
}

func (b *recordingBus) ch(agent string) chan *pb.AgentNotice {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.notices[agent]
	if !ok {
		c = make(chan *pb.AgentNotice, 1024)
		b.notices[agent] = c
	}
	return c
}

func (b *recordingBus) Notify(agentID string, n *pb.AgentNotice) { b.ch(agentID) <- n }

func (b *recordingBus) Instruct(carrier string, in *pb.RoutingInstruction, acked func(*pb.InstructionAck, error)) {
	b.instr <- in
	if !b.noAck {
		acked(&pb.InstructionAck{InstructionId: in.GetInstructionId()}, nil)
	}
}

func (b *recordingBus) record(_ uint32, _ uint64, evs []*pb.Event) {
	b.eventsMu.Lock()
	b.events = append(b.events, evs...)
	b.eventsMu.Unlock()
}

func (b *recordingBus) allEvents() []*pb.Event {
	b.eventsMu.Lock()
	defer b.eventsMu.Unlock()
	return append([]*pb.Event(nil), b.events...)
}

type harness struct {
	t      testing.TB
	e      *actors.Engine
	bus    *recordingBus
	states []*shard.State
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func newHarness(t testing.TB, rc *pb.RoutingConfig, shards uint32, tune ...func(*actors.Config)) *harness {
	t.Helper()
	cfg, err := routing.Compile(rc)
	if err != nil {
		t.Fatalf("compile routing config: %v", err)
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	bus := newRecordingBus()
	ec := actors.Config{Routing: cfg, Shards: shards, System: sys, Bus: bus, Events: bus.record, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for _, f := range tune {
		f(&ec)
	}
	e, err := actors.NewEngine(ec)
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	h := &harness{t: t, e: e, bus: bus}
	var logs []*cluster.MemoryLog[shard.Result]
	for i := uint32(0); i < shards; i++ {
		st := shard.New(i, 0)
		l := cluster.NewMemoryLog(e.Apply(st), func(err error) shard.Result { return shard.Result{Err: err} })
		logs = append(logs, l)
		h.states = append(h.states, st)
		e.Acquire(i, 1, st, l)
	}
	t.Cleanup(func() {
		if n := e.Metrics().Panics.Load(); n > 0 {
			t.Errorf("%d actor panics (see log)", n)
		}
		e.Stop()
		for _, l := range logs {
			l.Close()
		}
		sys.Shutdown()
	})
	return h
}

func await[T any](t testing.TB, what string, call func(func(T))) T {
	t.Helper()
	ch := make(chan T, 1)
	call(func(v T) { ch <- v })
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("no reply to %s within %v", what, waitLimit)
	}
	var zero T
	return zero
}

func (h *harness) agent(id string, kind pb.AgentCommandKind, offer string, mods ...func(*pb.AgentCommand)) *pb.AgentCommandReply {
	h.t.Helper()
	cmd := &pb.AgentCommand{Kind: kind, OfferId: offer}
	for _, m := range mods {
		m(cmd)
	}
	return await(h.t, fmt.Sprintf("%s %v", id, kind), func(f func(*pb.AgentCommandReply)) { h.e.AgentCommand(id, cmd, f) })
}

func (h *harness) mustAgent(id string, kind pb.AgentCommandKind, offer string, mods ...func(*pb.AgentCommand)) *pb.AgentCommandReply {
	h.t.Helper()
	r := h.agent(id, kind, offer, mods...)
	if r.GetError() != nil {
		h.t.Fatalf("agent %s %v %s: %v", id, kind, offer, r.GetError())
	}
	return r
}

func (h *harness) login(ids ...string) {
	h.t.Helper()
	for _, id := range ids {
		h.mustAgent(id, pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN, "", func(c *pb.AgentCommand) { c.Ready = true })
	}
}

func (h *harness) arrive(req *pb.ContactArrival) *pb.ArrivalReply {
	h.t.Helper()
	return await(h.t, "arrival "+req.GetContactId(), func(f func(*pb.ArrivalReply)) { h.e.Arrive(req, f) })
}

func (h *harness) mustArrive(id, queue string, ch pb.Channel, mods ...func(*pb.ContactArrival)) *pb.ArrivalReply {
	h.t.Helper()
	req := &pb.ContactArrival{ContactId: id, Queue: queue, Channel: ch}
	for _, m := range mods {
		m(req)
	}
	r := h.arrive(req)
	if r.GetError() != nil || r.GetStatus() != pb.ArrivalStatus_ARRIVAL_STATUS_QUEUED {
		h.t.Fatalf("arrival %s: status %v error %v", id, r.GetStatus(), r.GetError())
	}
	return r
}

func (h *harness) media(queue, id string, k pb.MediaKind) *pb.MediaEventReply {
	h.t.Helper()
	ev := &pb.MediaEvent{ContactId: id, Kind: k}
	return await(h.t, fmt.Sprintf("media %v %s", k, id), func(f func(*pb.MediaEventReply)) { h.e.Media(queue, ev, f) })
}

// notice waits for the agent's next notice of kind k, skipping others.
func (h *harness) notice(agent string, k pb.NoticeKind) *pb.AgentNotice {
	h.t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case n := <-h.bus.ch(agent):
			if n.GetKind() == k {
				return n
			}
		case <-deadline:
			h.t.Fatalf("agent %s got no %v notice within %v", agent, k, waitLimit)
			return nil
		}
	}
}

// noNotice asserts the agent gets no notice of kind k within d.
func (h *harness) noNotice(agent string, k pb.NoticeKind, d time.Duration) {
	h.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case n := <-h.bus.ch(agent):
			if n.GetKind() == k {
				h.t.Fatalf("agent %s got an unexpected %v notice: %v", agent, k, n)
			}
		case <-deadline:
			return
		}
	}
}

func (h *harness) instruction() *pb.RoutingInstruction {
	h.t.Helper()
	select {
	case in := <-h.bus.instr:
		return in
	case <-time.After(waitLimit):
		h.t.Fatalf("no routing instruction within %v", waitLimit)
	}
	return nil
}

// contact reads a contact's committed record.
func (h *harness) contact(queue, id string) shard.Contact {
	h.t.Helper()
	c, ok := h.states[actors.QueueShard(queue, uint32(len(h.states)))].Contact(id)
	if !ok {
		h.t.Fatalf("contact %s not in the shard state", id)
	}
	return c
}

// waitFor polls cond until it holds or the wait limit passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) waitContactState(queue, id string, want pb.ContactState) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("contact %s to be %v", id, want), func() bool {
		c, ok := h.states[actors.QueueShard(queue, uint32(len(h.states)))].Contact(id)
		return ok && c.State == want
	})
}

// testWriter sends log output to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
