package actors_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/cluster"
	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ownerOf starts an engine owning every shard of states under term, as a
// new owner does after failover: from the committed state alone.
func ownerOf(t *testing.T, rc *pb.RoutingConfig, states []*shard.State, term uint64) (*engineDriver, func()) {
	t.Helper()
	cfg, err := routing.Compile(rc)
	if err != nil {
		t.Fatal(err)
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	d := &engineDriver{bus: &recordingBus{notices: make(map[string]chan *pb.AgentNotice), instr: make(chan *pb.RoutingInstruction, 64), tracker: scenario.NewTracker()}}
	d.e, err = actors.NewEngine(actors.Config{Routing: cfg, Shards: uint32(len(states)), System: sys, Bus: d.bus, Events: d.record,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	var logs []*cluster.MemoryLog[*shard.Result]
	for _, st := range states {
		l := cluster.NewMemoryLog(d.e.Apply(st), actors.FailResult)
		logs = append(logs, l)
		d.e.Acquire(st.Shard(), term, st, l)
	}
	stop := func() {
		if n := d.e.Metrics().Panics.Load(); n > 0 {
			t.Errorf("%d actor panics", n)
		}
		d.e.Stop()
		for _, l := range logs {
			l.Close()
		}
		sys.Shutdown()
	}
	return d, stop
}

// The owner stops with an offer out and a contact waiting. The next owner,
// from the shard state alone, re-publishes the offer under its own term,
// refuses the old term, lines the waiting contact up, and re-arms the offer
// timer from the committed deadline.
func TestRebuild_NewOwnerResumesFromCommittedState(t *testing.T) {
	rc := scenario.Basic()
	rc.Queues[0].OfferTimeout = durationpb.New(400 * time.Millisecond)
	rc.Queues[0].MissedOffer = pb.MissedOfferAction_MISSED_OFFER_ACTION_STAY_AVAILABLE
	states := make([]*shard.State, 4)
	for i := range states {
		states[i] = shard.New(uint32(i), 0)
	}

	first, stopFirst := ownerOf(t, rc, states, 1)
	s1 := &scenario.S{T: t, D: first}
	s1.Login("alice")
	s1.MustArrive("c1", "support", pb.Channel_CHANNEL_VOICE)
	old := s1.Offer("alice")
	s1.MustArrive("c2", "support", pb.Channel_CHANNEL_VOICE)
	offeredAt := time.Now()
	stopFirst()

	second, stopSecond := ownerOf(t, rc, states, 2)
	defer stopSecond()
	s2 := &scenario.S{T: t, D: second}
	again := s2.Offer("alice")
	if again.GetOfferId() != old.GetOfferId() || again.GetFence().GetTerm() != 2 || again.GetDeadline().AsTime() != old.GetDeadline().AsTime() {
		t.Fatalf("re-published offer %v; want the same offer id and deadline under term 2 (was %v)", again, old)
	}
	r := s2.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, old.GetOfferId(), func(c *pb.AgentCommand) { c.Fence = old.GetFence() })
	if r.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_STALE_TERM {
		t.Fatalf("accept under the deposed owner's term: %v", r.GetError())
	}
	// Nobody accepts: the re-armed timer expires the offer at the committed
	// deadline, c1 goes back to its place ahead of c2, and alice (who stays
	// available on this queue) gets c2 while c1 avoids her.
	s2.Notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER_EXPIRED)
	if waited := time.Since(offeredAt); waited < 350*time.Millisecond {
		t.Fatalf("offer expired %v after it was made; its deadline was 400ms", waited)
	}
	if got := s2.Offer("alice").GetContactId(); got != "c2" {
		t.Fatalf("after the missed offer alice got %s, want c2 (c1 avoids her)", got)
	}
	s2.Login("bob")
	if got := s2.Offer("bob").GetContactId(); got != "c1" {
		t.Fatalf("bob got %s, want c1 at its original place", got)
	}
}
