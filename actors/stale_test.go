package actors_test

import (
	"testing"

	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// staleDecline delivers to a contact what a deposed owner of the agent's
// shard answers from its out-of-date view: "no capacity" for an offer the
// agent's real owner has granted. Seen under overload, when shards changed
// owners: the contact went back in line and to a second agent, while the
// first accepted the offer it still held and was told yes.
func staleDecline(t *testing.T, d *engineDriver, o *pb.Offer, agent string, granted bool) {
	t.Helper()
	shard, ok := d.e.QueueShard(o.GetQueue())
	if !ok {
		t.Fatalf("no shard for queue %q", o.GetQueue())
	}
	msg := &pb.ShardMessage{Fence: o.GetFence(), Kind: &pb.ShardMessage_ReserveReply{ReserveReply: &pb.ReserveReply{
		OfferId: o.GetOfferId(), ContactId: o.GetContactId(), AgentId: agent, Granted: granted, Reason: "test: a deposed owner's view",
	}}}
	if err := d.e.Deliver(actors.Address{Kind: "contact", Shard: shard, ID: o.GetContactId()}, msg); err != nil {
		t.Fatalf("deliver reserve reply: %v", err)
	}
}

// movedOn offers c1 to alice, then puts c1 back in line with a stale
// decline while alice's shard still holds the offer.
func movedOn(t *testing.T) (*engineDriver, *scenario.S, *pb.Offer) {
	t.Helper()
	d := newEngine(t, scenario.Basic(), 4, scenario.Options{})
	s := &scenario.S{T: t, D: d}
	s.Login("alice")
	s.MustArrive("c1", "support", pb.Channel_CHANNEL_VOICE)
	o := s.Offer("alice")
	staleDecline(t, d, o, "alice", false)
	s.WaitContact("c1", pb.ContactState_CONTACT_STATE_QUEUED)
	return d, s, o
}

// An ACCEPT succeeds only when the contact is connected to that offer: the
// agent whose contact moved on is refused, freed, and then offered the
// contact afresh, which connects once.
func TestAcceptOfAContactThatMovedOnIsRefused(t *testing.T) {
	_, s, o := movedOn(t)

	r := s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, o.GetOfferId(), func(c *pb.AgentCommand) { c.Fence = o.GetFence() })
	if r.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_UNKNOWN_OFFER {
		t.Fatalf("ACCEPT of %s after its contact went back in line: %v; want UNKNOWN_OFFER", o.GetOfferId(), r)
	}
	if n := s.Notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER_WITHDRAWN); n.GetOffer().GetOfferId() != o.GetOfferId() {
		t.Fatalf("withdrawal notice for %s; want %s", n.GetOffer().GetOfferId(), o.GetOfferId())
	}
	// Repeating the ACCEPT does not bring the offer back.
	if r := s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, o.GetOfferId(), func(c *pb.AgentCommand) { c.Fence = o.GetFence() }); r.GetError() == nil {
		t.Fatalf("repeated ACCEPT of withdrawn %s succeeded: %v", o.GetOfferId(), r)
	}

	next := s.Offer("alice")
	if next.GetContactId() != "c1" || next.GetOfferId() == o.GetOfferId() {
		t.Fatalf("next offer %v; want a new hold of c1", next)
	}
	s.Accept("alice", next)
	in := s.Instruction()
	if in.GetContactId() != "c1" || in.GetAgentId() != "alice" || in.GetInstructionId() != next.GetOfferId()+"/connect" {
		t.Fatalf("instruction %v; want c1 connected to alice for %s", in, next.GetOfferId())
	}
	if v := s.MustCmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent(); len(v.GetSlots()) != 1 || v.GetSlots()[0].GetOfferId() != next.GetOfferId() {
		t.Fatalf("alice: %v; want busy on %s alone", v, next.GetOfferId())
	}
	// A repeated ACCEPT of the connected offer succeeds and changes nothing.
	s.Accept("alice", next)
}

// A grant for an offer the contact has moved on from withdraws it at once,
// so the agent is free again without waiting for the offer to expire.
func TestLateGrantOfAStaleOfferIsWithdrawn(t *testing.T) {
	d, s, o := movedOn(t)

	staleDecline(t, d, o, "alice", true)
	if n := s.Notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER_WITHDRAWN); n.GetOffer().GetOfferId() != o.GetOfferId() {
		t.Fatalf("withdrawal notice for %s; want %s", n.GetOffer().GetOfferId(), o.GetOfferId())
	}
	if next := s.Offer("alice"); next.GetContactId() != "c1" || next.GetOfferId() == o.GetOfferId() {
		t.Fatalf("next offer %v; want a new hold of c1", next)
	}
}
