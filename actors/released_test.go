package actors

import (
	"log/slog"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

type countingBus struct{ notices, instr int }

func (b *countingBus) Notify(string, *pb.AgentNotice) { b.notices++ }
func (b *countingBus) Instruct(string, *pb.RoutingInstruction, func(*pb.InstructionAck, error)) {
	b.instr++
}

type countingLog struct{ n int }

func (l *countingLog) Propose(*pb.Command, func(*shard.Result)) { l.n++ }

// An actor that is still finishing an input when its node stops owning the
// shard must not act on it: what it sends carries a term the next owner
// may share (this node leading again), so fencing cannot refuse it. Only
// its answers to waiting requests go out.
func TestReleasedHostsActorsFallSilent(t *testing.T) {
	cfg, err := routing.Compile(&pb.RoutingConfig{Queues: []*pb.QueueConfig{{Name: "q"}}, Agents: []*pb.AgentProfile{{Id: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	defer sys.Shutdown()
	bus := &countingBus{}
	e, err := NewEngine(Config{Routing: cfg, Shards: 2, System: sys, Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	log := &countingLog{}
	e.Acquire(0, 3, shard.New(0, 0), log)
	h := e.host(0)
	s := &shell{e: e, h: h, key: target{kind: contactKind, shard: 0, id: "c"}}
	effectsOf := func(replied *int) *effects {
		return &effects{
			propose: &pb.Command{},
			sends:   []outbound{{to: target{kind: agentKind, shard: 1, id: "a"}, msg: &pb.ShardMessage{}}},
			notices: []notice{{agentID: "a", n: &pb.AgentNotice{}}},
			instr:   []instruction{{carrier: "pbx", in: &pb.RoutingInstruction{}}},
			replies: []func(){func() { *replied++ }},
		}
	}

	// Owned: everything is carried out (the send is undeliverable here:
	// shard 1 has no owner and there is no remote).
	var replied int
	s.execute(effectsOf(&replied))
	if log.n != 1 || bus.notices != 1 || bus.instr != 1 || replied != 1 || e.metrics.Undeliverable.Load() != 1 {
		t.Fatalf("owned: proposals %d notices %d instructions %d replies %d sends %d; want 1 of each",
			log.n, bus.notices, bus.instr, replied, e.metrics.Undeliverable.Load())
	}
	s.busy = false

	e.Release(0)
	s.execute(effectsOf(&replied))
	if log.n != 1 || bus.notices != 1 || bus.instr != 1 || e.metrics.Undeliverable.Load() != 1 {
		t.Fatalf("released: proposals %d notices %d instructions %d sends %d; want nothing more",
			log.n, bus.notices, bus.instr, e.metrics.Undeliverable.Load())
	}
	if replied != 2 {
		t.Fatalf("released: %d replies; the waiting request must still be answered", replied)
	}
	if got := e.metrics.Fenced.Load(); got != 3 {
		t.Fatalf("released: %d effects counted as fenced; want 3 (send, notice, instruction)", got)
	}
}
