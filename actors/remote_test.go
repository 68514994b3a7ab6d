package actors_test

import (
	"fmt"
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

// What one actor's step sends to shards owned elsewhere goes to Remote in
// one call, in the order sent: an agent that logs in tells each of its six
// queues (all on shards owned elsewhere) in one batch, which the node sends
// as one envelope per owner.
func TestRemote_OneStepsMessagesGoTogether(t *testing.T) {
	const shards = 64
	rc := &pb.RoutingConfig{}
	for i := range 6 {
		rc.Queues = append(rc.Queues, &pb.QueueConfig{Name: fmt.Sprintf("q%d", i)})
	}
	// An agent whose shard holds none of the queues.
	agent := ""
	for i := 0; agent == ""; i++ {
		agent = fmt.Sprintf("agent-%d", i)
		for _, q := range rc.Queues {
			if actors.ShardOf("q:"+q.GetName(), shards) == actors.ShardOf("a:"+agent, shards) {
				agent = ""
				break
			}
		}
	}
	rc.Agents = []*pb.AgentProfile{{Id: agent}}
	cfg, err := routing.Compile(rc)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls [][]actors.Outgoing
	remote := func(msgs []actors.Outgoing) int {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, append([]actors.Outgoing(nil), msgs...))
		return 0
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	t.Cleanup(sys.Shutdown)
	bus := &recordingBus{notices: make(map[string]chan *pb.AgentNotice), instr: make(chan *pb.RoutingInstruction, 8), tracker: scenario.NewTracker()}
	e, err := actors.NewEngine(actors.Config{Routing: cfg, Shards: shards, System: sys, Bus: bus, Remote: remote})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	home, _ := e.AgentShard(agent)
	for q := range 6 {
		if s, _ := e.QueueShard(fmt.Sprintf("q%d", q)); s == home {
			t.Fatalf("queue q%d shares %s's shard %d", q, agent, home)
		}
	}
	st := shard.New(home, 0)
	l := cluster.NewMemoryLog(e.Apply(st), actors.FailResult)
	t.Cleanup(l.Close)
	e.Acquire(home, 1, st, l)

	reply := await(t, func(f func(*pb.AgentCommandReply)) {
		e.AgentCommand(agent, &pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN, Ready: true}, f)
	})
	if reply.GetError() != nil {
		t.Fatalf("login: %v", reply.GetError())
	}
	scenario.WaitFor(t, "the agent's statuses to leave", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, m := range calls[0] {
		if m.Msg.GetAgentStatus() == nil {
			t.Errorf("sent %v to %s %s; want the agent's status", m.Msg.GetKind(), m.To.Kind, m.To.ID)
		}
		got = append(got, m.To.ID)
	}
	if want := fmt.Sprint([]string{"q0", "q1", "q2", "q3", "q4", "q5"}); fmt.Sprint(got) != want {
		t.Errorf("the first call carried statuses for %v; want all six queues, in order: %s", got, want)
	}
}
