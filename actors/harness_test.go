package actors_test

import (
	"log/slog"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/cluster"
	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// The engine driver runs the real actors, state machines and in-memory log.
// recordingBus stands in for NATS at this layer only — it is the other side
// of the Bus seam, recording notices and acknowledging instructions as a
// carrier would. The node's tests run the same scenarios over a real NATS
// server.

type recordingBus struct {
	mu      sync.Mutex
	notices map[string]chan *pb.AgentNotice
	instr   chan *pb.RoutingInstruction
	tracker *scenario.Tracker
}

func (b *recordingBus) ch(agent string) chan *pb.AgentNotice {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.notices[agent]
	if !ok {
		c = make(chan *pb.AgentNotice, 4096)
		b.notices[agent] = c
	}
	return c
}

func (b *recordingBus) Notify(agentID string, n *pb.AgentNotice) { b.ch(agentID) <- n }

func (b *recordingBus) Instruct(_ string, in *pb.RoutingInstruction, acked func(*pb.InstructionAck, error)) {
	b.instr <- in
	acked(&pb.InstructionAck{InstructionId: in.GetInstructionId()}, nil)
}

type engineDriver struct {
	e   *actors.Engine
	bus *recordingBus
}

func await[T any](t testing.TB, call func(func(T))) T {
	t.Helper()
	ch := make(chan T, 1)
	call(func(v T) { ch <- v })
	return <-ch
}

func (d *engineDriver) Arrive(t testing.TB, a *pb.ContactArrival) *pb.ArrivalReply {
	return await(t, func(f func(*pb.ArrivalReply)) { d.e.Arrive(a, f) })
}

func (d *engineDriver) Agent(t testing.TB, id string, c *pb.AgentCommand) *pb.AgentCommandReply {
	return await(t, func(f func(*pb.AgentCommandReply)) { d.e.AgentCommand(id, c, f) })
}

func (d *engineDriver) Media(t testing.TB, queue string, ev *pb.MediaEvent) *pb.MediaEventReply {
	return await(t, func(f func(*pb.MediaEventReply)) { d.e.Media(actors.DefaultCarrier, queue, ev, f) })
}

func (d *engineDriver) QueueStatus(t testing.TB, queue string) *pb.QueueStatusReply {
	return await(t, func(f func(*pb.QueueStatusReply)) { d.e.QueueStatus(queue, f) })
}

func (d *engineDriver) Notices(agent string) <-chan *pb.AgentNotice { return d.bus.ch(agent) }
func (d *engineDriver) Instructions() <-chan *pb.RoutingInstruction { return d.bus.instr }
func (d *engineDriver) Events() *scenario.Tracker                   { return d.bus.tracker }
func (d *engineDriver) record(_ uint32, _ uint64, evs []*pb.Event)  { d.bus.tracker.Add(evs) }
func engineFactory(t *testing.T, rc *pb.RoutingConfig, o scenario.Options) scenario.Driver {
	return newEngine(t, rc, 4, o)
}

func newEngine(t testing.TB, rc *pb.RoutingConfig, shards uint32, o scenario.Options, tune ...func(*actors.Config)) *engineDriver {
	t.Helper()
	return newEngineWithLogs(t, rc, shards, o, nil, tune...)
}

// newEngineWithLogs is newEngine with each shard's log passed through wrap
// (nil: used as is), for tests that make the log misbehave.
func newEngineWithLogs(t testing.TB, rc *pb.RoutingConfig, shards uint32, o scenario.Options, wrap func(uint32, actors.Log) actors.Log, tune ...func(*actors.Config)) *engineDriver {
	t.Helper()
	cfg, err := routing.Compile(rc)
	if err != nil {
		t.Fatalf("compile routing config: %v", err)
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	d := &engineDriver{bus: &recordingBus{notices: make(map[string]chan *pb.AgentNotice), instr: make(chan *pb.RoutingInstruction, 4096), tracker: scenario.NewTracker()}}
	ec := actors.Config{
		Routing: cfg, Shards: shards, System: sys, Bus: d.bus, Events: d.record,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if o.Customers != nil {
		ec.Customers = o.Customers
	}
	for _, f := range tune {
		f(&ec)
	}
	if d.e, err = actors.NewEngine(ec); err != nil {
		t.Fatalf("new engine: %v", err)
	}
	var logs []*cluster.MemoryLog[*shard.Result]
	for i := uint32(0); i < shards; i++ {
		st := shard.New(i, 0)
		l := cluster.NewMemoryLog(d.e.Apply(st), actors.FailResult)
		logs = append(logs, l)
		var log actors.Log = l
		if wrap != nil {
			log = wrap(i, l)
		}
		d.e.Acquire(i, 1, st, log)
	}
	t.Cleanup(func() {
		if n := d.e.Metrics().Panics.Load(); n > 0 {
			t.Errorf("%d actor panics (see log)", n)
		}
		d.e.Stop()
		for _, l := range logs {
			l.Close()
		}
		sys.Shutdown()
	})
	return d
}

// testWriter sends log output to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// TestScenarios runs every routing scenario against the engine.
func TestScenarios(t *testing.T) { scenario.RunAll(t, engineFactory) }
