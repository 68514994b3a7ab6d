package actors_test

import (
	"testing"
	"time"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

const (
	voice = pb.Channel_CHANNEL_VOICE
	chat  = pb.Channel_CHANNEL_CHAT
)

func basicConfig() *pb.RoutingConfig {
	return &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{{
			Name:   "support",
			Skills: []*pb.SkillRequirement{{Skill: "support", MinLevel: 1}},
			WrapUp: dur(time.Minute),
		}},
		Agents: []*pb.AgentProfile{
			{Id: "alice", Skills: map[string]uint32{"support": 3}, Endpoint: "sip:alice@pbx"},
			{Id: "bob", Skills: map[string]uint32{"support": 2}, Endpoint: "sip:bob@pbx"},
		},
	}
}

// A contact's whole life: arrival, offer, accept, connected, hang-up,
// wrap-up, and the agent free again.
func TestLifecycle_ArrivalToWrapUp(t *testing.T) {
	h := newHarness(t, basicConfig(), 4)
	h.login("alice")

	r := h.mustArrive("c1", "support", voice)
	if r.GetPosition() != 1 || r.GetMediaSubject() != "tsunagu.v1.media.support.c1" {
		t.Fatalf("arrival reply: position %d media subject %q", r.GetPosition(), r.GetMediaSubject())
	}
	offer := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
	if offer.GetContactId() != "c1" || offer.GetQueue() != "support" {
		t.Fatalf("offer %v", offer)
	}
	acc := h.mustAgent("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, offer.GetOfferId(), func(c *pb.AgentCommand) { c.Fence = offer.GetFence() })
	if acc.GetAgent().GetState() != pb.AgentState_AGENT_STATE_BUSY {
		t.Fatalf("after accept agent is %v", acc.GetAgent().GetState())
	}
	in := h.instruction()
	if in.GetContactId() != "c1" || in.GetAgentEndpoint() != "sip:alice@pbx" || in.GetKind() != pb.InstructionKind_INSTRUCTION_KIND_CONNECT {
		t.Fatalf("instruction %v", in)
	}
	h.waitContactState("support", "c1", pb.ContactState_CONTACT_STATE_CONNECTED)

	if r := h.media("support", "c1", pb.MediaKind_MEDIA_KIND_HUNG_UP); r.GetError() != nil || r.GetState() != pb.ContactState_CONTACT_STATE_WRAP_UP {
		t.Fatalf("hang-up reply %v", r)
	}
	st := h.notice("alice", pb.NoticeKind_NOTICE_KIND_STATE)
	if st.GetAgent().GetState() != pb.AgentState_AGENT_STATE_WRAP_UP {
		t.Fatalf("after hang-up agent is %v", st.GetAgent().GetState())
	}
	h.mustAgent("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, offer.GetOfferId())
	h.waitContactState("support", "c1", pb.ContactState_CONTACT_STATE_DONE)
	if s := h.mustAgent("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent().GetState(); s != pb.AgentState_AGENT_STATE_AVAILABLE {
		t.Fatalf("after wrap-up agent is %v", s)
	}
	if c := h.contact("support", "c1"); c.HandledBy != "alice" {
		t.Fatalf("handled by %q", c.HandledBy)
	}
}
