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

// A shard not owned here publishes nothing. When the node is about to own
// it (Prepare), it publishes under the new term the events it applied just
// before — the previous owner may have died without publishing them — and
// then those of commands applied while it catches up (before Acquire).
func TestPreparePublishesCatchUpEvents(t *testing.T) {
	d := newEngine(t, scenario.Basic(), 1, scenario.Options{})
	type batch struct {
		term     uint64
		contacts []string
	}
	got := make(chan batch, 8)
	rc, err := routing.Compile(scenario.Basic())
	if err != nil {
		t.Fatal(err)
	}
	e, err := actors.NewEngine(actors.Config{
		Routing: rc, Shards: 1, System: actor.NewActorSystem(), Bus: d.bus,
		Events: func(_ uint32, term uint64, evs []*pb.Event) {
			b := batch{term: term}
			for _, ev := range evs {
				if c := ev.GetContact(); c != nil {
					b.contacts = append(b.contacts, c.GetContactId())
				}
			}
			got <- b
		},
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
	next := func(want string) {
		t.Helper()
		select {
		case b := <-got:
			if b.term != 9 || len(b.contacts) != 1 || b.contacts[0] != want {
				t.Fatalf("published %+v; want the events of %q under term 9", b, want)
			}
		default:
			t.Fatalf("the events of %q were not published", want)
		}
	}
	e.Prepare(0, 9)
	next("before")
	if r := apply(arrive("catching-up")); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	next("catching-up")
	e.Release(0)
	if r := apply(arrive("after")); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	select {
	case b := <-got:
		t.Fatalf("events published after Release: %+v", b)
	default:
	}
	// Kept for the next owner here, not those published already.
	e.Prepare(0, 11)
	select {
	case b := <-got:
		if b.term != 11 || len(b.contacts) != 1 || b.contacts[0] != "after" {
			t.Fatalf("published %+v; want the events of \"after\" under term 11", b)
		}
	default:
		t.Fatal("events applied after Release were not kept for the next Prepare")
	}
}
