package actors_test

import (
	"testing"

	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// staleReply delivers to a contact what a deposed owner of the agent's
// shard answers from its out-of-date view: "no capacity" (granted false)
// for an offer the agent's real owner has granted, or a grant of an offer
// the contact has moved on from. Seen under overload, when shards changed
// owners: the contact went back in line and to a second agent, while the
// first accepted the offer it still held and was told yes. astray makes the
// reply name another shard as the agent's, so whatever the contact sends
// the agent in return is lost, as messages are in a failover.
func staleReply(t *testing.T, d *engineDriver, o *pb.Offer, agent string, granted, astray bool) {
	t.Helper()
	shard, ok := d.e.QueueShard(o.GetQueue())
	if !ok {
		t.Fatalf("no shard for queue %q", o.GetQueue())
	}
	fence := &pb.Fence{Shard: o.GetFence().GetShard(), Term: o.GetFence().GetTerm()}
	if astray {
		fence.Shard = (fence.Shard + 1) % 4
	}
	msg := &pb.ShardMessage{Fence: fence, Kind: &pb.ShardMessage_ReserveReply{ReserveReply: &pb.ReserveReply{
		OfferId: o.GetOfferId(), ContactId: o.GetContactId(), AgentId: agent, Granted: granted, Reason: "test: a deposed owner's view",
	}}}
	if err := d.e.Deliver(actors.Address{Kind: "contact", Shard: shard, ID: o.GetContactId()}, msg); err != nil {
		t.Fatalf("deliver reserve reply: %v", err)
	}
}

// offered has c1 offered to alice.
func offered(t *testing.T) (*engineDriver, *scenario.S, *pb.Offer) {
	t.Helper()
	d := newEngine(t, scenario.Basic(), 4, scenario.Options{})
	s := &scenario.S{T: t, D: d}
	s.Login("alice")
	s.MustArrive("c1", "support", pb.Channel_CHANNEL_VOICE)
	return d, s, s.Offer("alice")
}

// withdrawnThenOfferedAgain waits for alice's offer o to be withdrawn and
// c1 to be offered to her afresh, and connects it.
func withdrawnThenOfferedAgain(t *testing.T, s *scenario.S, o *pb.Offer) {
	t.Helper()
	if n := s.Notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER_WITHDRAWN); n.GetOffer().GetOfferId() != o.GetOfferId() {
		t.Fatalf("withdrawal notice for %s; want %s", n.GetOffer().GetOfferId(), o.GetOfferId())
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

// A contact declined by a deposed owner withdraws the offer from the agent's
// real owner, which may have granted it.
func TestStaleDeclineWithdrawsTheOffer(t *testing.T) {
	d, s, o := offered(t)
	staleReply(t, d, o, "alice", false, false)
	withdrawnThenOfferedAgain(t, s, o)
}

// An ACCEPT succeeds only when the contact is connected to that offer: the
// agent whose contact moved on (and whose withdrawal was lost) is refused,
// freed, and then offered the contact afresh, which connects once.
func TestAcceptOfAContactThatMovedOnIsRefused(t *testing.T) {
	d, s, o := offered(t)
	staleReply(t, d, o, "alice", false, true)
	s.WaitContact("c1", pb.ContactState_CONTACT_STATE_QUEUED)

	r := s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, o.GetOfferId(), func(c *pb.AgentCommand) { c.Fence = o.GetFence() })
	if r.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_UNKNOWN_OFFER {
		t.Fatalf("ACCEPT of %s after its contact went back in line: %v; want UNKNOWN_OFFER", o.GetOfferId(), r)
	}
	// Repeating the ACCEPT does not bring the offer back.
	if r := s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, o.GetOfferId(), func(c *pb.AgentCommand) { c.Fence = o.GetFence() }); r.GetError() == nil {
		t.Fatalf("repeated ACCEPT of withdrawn %s succeeded: %v", o.GetOfferId(), r)
	}
	withdrawnThenOfferedAgain(t, s, o)
}

// A grant for an offer the contact has moved on from withdraws it at once,
// so the agent is free again without waiting for the offer to expire.
func TestLateGrantOfAStaleOfferIsWithdrawn(t *testing.T) {
	d, s, o := offered(t)
	staleReply(t, d, o, "alice", false, true)
	s.WaitContact("c1", pb.ContactState_CONTACT_STATE_QUEUED)
	staleReply(t, d, o, "alice", true, false)
	withdrawnThenOfferedAgain(t, s, o)
}
