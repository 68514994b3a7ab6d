package actors_test

import (
	"errors"
	"testing"

	"github.com/tsunagu/tsunagu/actors"
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
