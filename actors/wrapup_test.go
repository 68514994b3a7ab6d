package actors_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// offerWithin waits at most d for the agent's next offer.
func offerWithin(s *scenario.S, agent string, d time.Duration, why string) *pb.Offer {
	s.Helper()
	deadline := time.After(d)
	for {
		select {
		case n := <-s.D.Notices(agent):
			if n.GetKind() == pb.NoticeKind_NOTICE_KIND_OFFER {
				return n.GetOffer()
			}
		case <-deadline:
			s.Fatalf("agent %s got no offer within %v: %s", agent, d, why)
			return nil
		}
	}
}

// Wrap-up holds its slot but blocks nothing (shard.Agent.Free): an agent in
// voice wrap-up has its chat capacity free, so a waiting chat is offered as
// soon as the call ends — not when the wrap-up does — while a waiting call
// still is not (the wrap-up holds the only voice slot). Covered for an agent
// serving the channels from two queues (the agent runs a round) and from one
// (a plain status), and for a chat waiting when the call ends as well as one
// arriving during the wrap-up.
func TestWrapUp_VoiceWrapUpLeavesChatFree(t *testing.T) {
	const wrapUp = time.Minute // far longer than any wait below
	profile := func() *pb.AgentProfile {
		return &pb.AgentProfile{Id: "erin", Skills: map[string]uint32{"support": 1},
			Capacity: []*pb.ChannelCapacity{{Channel: pb.Channel_CHANNEL_VOICE, Slots: 1}, {Channel: pb.Channel_CHANNEL_CHAT, Slots: 2}}}
	}
	skills := []*pb.SkillRequirement{{Skill: "support", MinLevel: 1}}
	configs := []struct {
		name             string
		rc               *pb.RoutingConfig
		callQ, chatQ     string
		chatArrivesAfter bool
	}{
		{name: "TwoQueues/ChatWaiting", callQ: "calls", chatQ: "chat", rc: &pb.RoutingConfig{
			Queues: []*pb.QueueConfig{
				{Name: "calls", Skills: skills, Channels: []pb.Channel{pb.Channel_CHANNEL_VOICE}, WrapUp: durationpb.New(wrapUp)},
				{Name: "chat", Skills: skills, Channels: []pb.Channel{pb.Channel_CHANNEL_CHAT}},
			},
			Agents: []*pb.AgentProfile{profile()},
		}},
		{name: "TwoQueues/ChatArrivesDuringWrapUp", callQ: "calls", chatQ: "chat", chatArrivesAfter: true, rc: &pb.RoutingConfig{
			Queues: []*pb.QueueConfig{
				{Name: "calls", Skills: skills, Channels: []pb.Channel{pb.Channel_CHANNEL_VOICE}, WrapUp: durationpb.New(wrapUp)},
				{Name: "chat", Skills: skills, Channels: []pb.Channel{pb.Channel_CHANNEL_CHAT}},
			},
			Agents: []*pb.AgentProfile{profile()},
		}},
		{name: "OneQueue/ChatWaiting", callQ: "support", chatQ: "support", rc: &pb.RoutingConfig{
			Queues: []*pb.QueueConfig{
				{Name: "support", Skills: skills, Channels: []pb.Channel{pb.Channel_CHANNEL_VOICE, pb.Channel_CHANNEL_CHAT}, WrapUp: durationpb.New(wrapUp)},
			},
			Agents: []*pb.AgentProfile{profile()},
		}},
		{name: "OneQueue/ChatArrivesDuringWrapUp", callQ: "support", chatQ: "support", chatArrivesAfter: true, rc: &pb.RoutingConfig{
			Queues: []*pb.QueueConfig{
				{Name: "support", Skills: skills, Channels: []pb.Channel{pb.Channel_CHANNEL_VOICE, pb.Channel_CHANNEL_CHAT}, WrapUp: durationpb.New(wrapUp)},
			},
			Agents: []*pb.AgentProfile{profile()},
		}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			s := &scenario.S{T: t, D: newEngine(t, c.rc, 4, scenario.Options{})}
			s.Login("erin")
			s.MustArrive("call1", c.callQ, pb.Channel_CHANNEL_VOICE)
			call := s.Offer("erin")
			s.Accept("erin", call)
			s.WaitContact("call1", pb.ContactState_CONTACT_STATE_CONNECTED)
			// A second call waits throughout: the wrap-up holds erin's
			// only voice slot, so it must not be offered.
			s.MustArrive("call2", c.callQ, pb.Channel_CHANNEL_VOICE)
			if !c.chatArrivesAfter {
				s.MustArrive("chat1", c.chatQ, pb.Channel_CHANNEL_CHAT)
				// The call blocks chat while it is connected.
				s.NoNotice("erin", pb.NoticeKind_NOTICE_KIND_OFFER, 100*time.Millisecond)
			}
			s.Media(c.callQ, "call1", pb.MediaKind_MEDIA_KIND_HUNG_UP)
			s.WaitContact("call1", pb.ContactState_CONTACT_STATE_WRAP_UP)
			if c.chatArrivesAfter {
				// Only here: with a chat waiting, erin is RESERVED for it
				// as soon as her wrap-up starts.
				s.WaitAgent("erin", pb.AgentState_AGENT_STATE_WRAP_UP)
				s.MustArrive("chat1", c.chatQ, pb.Channel_CHANNEL_CHAT)
			}
			o := offerWithin(s, "erin", 2*time.Second, "in voice wrap-up her chat slots are free")
			if o.GetContactId() != "chat1" || o.GetChannel() != pb.Channel_CHANNEL_CHAT {
				t.Fatalf("during voice wrap-up erin was offered %s on %v, want chat1 on chat", o.GetContactId(), o.GetChannel())
			}
			s.Accept("erin", o)
			// Wrap-up still holds the voice slot.
			s.NoNotice("erin", pb.NoticeKind_NOTICE_KIND_OFFER, 100*time.Millisecond)
			if st := s.Last("call2").GetState(); st != pb.ContactState_CONTACT_STATE_QUEUED {
				t.Fatalf("call2 is %v while erin wraps up her call", st)
			}
			slots := map[string]pb.SlotState{}
			for _, sl := range s.MustCmd("erin", pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent().GetSlots() {
				slots[sl.GetContactId()] = sl.GetState()
			}
			if len(slots) != 2 || slots["call1"] != pb.SlotState_SLOT_STATE_WRAP_UP || slots["chat1"] != pb.SlotState_SLOT_STATE_BUSY {
				t.Fatalf("erin holds %v, want call1 in wrap-up and chat1 busy", slots)
			}
		})
	}
}

// A contact in wrap-up whose WrapUpFinished was lost asks the agent's shard
// again; the agent may by then have handled more contacts than it keeps in
// its recent list (shard.MaxRecent). Its answer must come from the
// committed state — the offer is not held, so the wrap-up is over — and not
// be a bare acknowledgement that leaves the contact in wrap-up for good.
// Here the agent's side ends first (a contact end the engine takes from
// another node), its WrapUpFinished reaching the contact while it is still
// connected; the agent then handles MaxRecent more contacts before the
// caller hangs up.
func TestWrapUp_EndsAfterTheAgentHasMovedOnPastItsRecentList(t *testing.T) {
	d := newEngine(t, scenario.Basic(), 4, scenario.Options{})
	s := &scenario.S{T: t, D: d}
	s.Login("alice")
	s.MustArrive("c1", "support", pb.Channel_CHANNEL_VOICE)
	o1 := s.Offer("alice")
	s.Accept("alice", o1)
	s.WaitContact("c1", pb.ContactState_CONTACT_STATE_CONNECTED)

	contactShard, _ := d.e.QueueShard("support")
	agentShard, _ := d.e.AgentShard("alice")
	end := &pb.ShardMessage{Fence: &pb.Fence{Shard: contactShard, Term: 1}, Kind: &pb.ShardMessage_ContactEnded{ContactEnded: &pb.ContactEnded{
		OfferId: o1.GetOfferId(), ContactId: "c1", AgentId: "alice", Queue: "support",
	}}}
	if err := d.e.Deliver(actors.Address{Kind: "agent", Shard: agentShard, ID: "alice"}, end); err != nil {
		t.Fatalf("deliver contact end: %v", err)
	}
	s.WaitAgent("alice", pb.AgentState_AGENT_STATE_WRAP_UP)
	s.MustCmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, o1.GetOfferId())

	for i := range shard.MaxRecent {
		id := fmt.Sprintf("next%d", i)
		s.MustArrive(id, "support", pb.Channel_CHANNEL_VOICE)
		o := s.Offer("alice")
		if o.GetContactId() != id {
			t.Fatalf("alice was offered %s; want %s", o.GetContactId(), id)
		}
		s.Accept("alice", o)
		s.Finish("support", "alice", o)
	}

	s.Media("support", "c1", pb.MediaKind_MEDIA_KIND_HUNG_UP)
	s.WaitContact("c1", pb.ContactState_CONTACT_STATE_DONE)
	if v := s.MustCmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent(); len(v.GetSlots()) != 0 || v.GetState() != pb.AgentState_AGENT_STATE_AVAILABLE {
		t.Fatalf("alice: %v; want available with no contact", v)
	}
}
