package actors_test

import (
	"errors"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// A message from a shard's deposed owner carries its old term; once a newer
// term of that shard has been seen, Deliver refuses it and counts it.
func TestDeliverRefusesDeposedOwner(t *testing.T) {
	d := newEngine(t, scenario.Basic(), 4, scenario.Options{})
	to := actors.Address{Kind: "agent", Shard: 0, ID: "a1"}
	msg := func(term uint64) *pb.ShardMessage {
		return &pb.ShardMessage{Version: 1, Fence: &pb.Fence{Shard: 2, Term: term}, Kind: &pb.ShardMessage_Ack{Ack: &pb.Ack{}}}
	}
	if err := d.e.Deliver(to, msg(5)); err != nil {
		t.Fatalf("term 5, the first seen: %v", err)
	}
	if got := d.e.ObserveTerm(2, 0); got != 5 {
		t.Fatalf("known term of shard 2 = %d; want 5", got)
	}
	d.e.ObserveTerm(2, 7) // shard 2 has a new owner
	err := d.e.Deliver(to, msg(5))
	if !errors.Is(err, actors.ErrStaleTerm) {
		t.Fatalf("term 5 after term 7 was seen: err = %v; want ErrStaleTerm", err)
	}
	if n := d.e.Metrics().Fenced.Load(); n != 1 {
		t.Fatalf("Fenced = %d; want 1", n)
	}
	if err := d.e.Deliver(to, msg(7)); err != nil {
		t.Fatalf("the current term: %v", err)
	}
	if err := d.e.Deliver(to, &pb.ShardMessage{Version: 1}); err == nil {
		t.Fatal("a message without a fence was delivered")
	}
	if err := d.e.Deliver(actors.Address{Kind: "robot", Shard: 0, ID: "x"}, msg(7)); err == nil {
		t.Fatal("a message to an unknown actor kind was delivered")
	}
}

// Commands applied while a new owner catches up (between Prepare and
// Acquire) have their events published under the new term; without
// Prepare, a shard not owned here publishes nothing.
func TestPreparePublishesCatchUpEvents(t *testing.T) {
	d := newEngine(t, scenario.Basic(), 1, scenario.Options{})
	type batch struct {
		term uint64
		n    int
	}
	got := make(chan batch, 8)
	rc, err := routing.Compile(scenario.Basic())
	if err != nil {
		t.Fatal(err)
	}
	e, err := actors.NewEngine(actors.Config{
		Routing: rc, Shards: 1, System: actor.NewActorSystem(), Bus: d.bus,
		Events: func(_ uint32, term uint64, evs []*pb.Event) { got <- batch{term, len(evs)} },
	})
	if err != nil {
		t.Fatal(err)
	}
	st := shard.New(0, 0)
	apply := e.Apply(st)
	arrive := func(id string) []*pb.Command {
		return []*pb.Command{{Version: shard.CommandVersion, At: 1, Shard: 0, Kind: &pb.Command_ContactArrive{ContactArrive: &pb.ContactArrive{ContactId: id, Queue: "support", Channel: pb.Channel_CHANNEL_VOICE}}}}
	}
	if r := apply(arrive("before")); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	select {
	case b := <-got:
		t.Fatalf("events published for a shard neither owned nor being acquired: %+v", b)
	default:
	}
	e.Prepare(0, 9)
	if r := apply(arrive("catching-up")); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	select {
	case b := <-got:
		if b.term != 9 || b.n == 0 {
			t.Fatalf("catch-up events published as %+v; want term 9 and some events", b)
		}
	default:
		t.Fatal("events applied while acquiring were not published")
	}
	e.Release(0)
	if r := apply(arrive("after")); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	select {
	case b := <-got:
		t.Fatalf("events published after Release: %+v", b)
	default:
	}
}
