package shard_test

import (
	"fmt"
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// caps is a capacity array written as voice, chat, email, sms, callback.
func caps(voice, chat, email, sms, callback uint32) [shard.NumChannels]uint32 {
	var c [shard.NumChannels]uint32
	c[pb.Channel_CHANNEL_VOICE], c[pb.Channel_CHANNEL_CHAT], c[pb.Channel_CHANNEL_EMAIL] = voice, chat, email
	c[pb.Channel_CHANNEL_SMS], c[pb.Channel_CHANNEL_CALLBACK] = sms, callback
	return c
}

func slot(ch pb.Channel, st pb.SlotState) shard.Slot { return shard.Slot{Channel: ch, State: st} }

// voiceWithChat lets voice and chat run together; callback still excludes all.
var voiceWithChat = &pb.BlockingRules{Blocks: []*pb.ChannelBlock{
	{Channel: voice, Blocks: []pb.Channel{email, sms, callback}},
	{Channel: chat, Blocks: []pb.Channel{callback}},
	{Channel: callback, Blocks: []pb.Channel{voice, chat, email, sms}},
}}

func TestCapacity(t *testing.T) {
	tests := []struct {
		name    string
		profile *pb.AgentProfile
		want    [shard.NumChannels]uint32
	}{
		{"nil profile has the defaults", nil, caps(1, 3, 5, 3, 1)},
		{"no capacity listed has the defaults", &pb.AgentProfile{Id: "a1"}, caps(1, 3, 5, 3, 1)},
		{"listed channels only", &pb.AgentProfile{Capacity: []*pb.ChannelCapacity{{Channel: chat, Slots: 2}}}, caps(0, 2, 0, 0, 0)},
		{"repeated channel adds up", &pb.AgentProfile{Capacity: []*pb.ChannelCapacity{{Channel: email, Slots: 2}, {Channel: email, Slots: 4}}}, caps(0, 0, 6, 0, 0)},
		{"channel beyond the enum is ignored", &pb.AgentProfile{Capacity: []*pb.ChannelCapacity{{Channel: 42, Slots: 2}, {Channel: voice, Slots: 1}}}, caps(1, 0, 0, 0, 0)},
	}
	for _, tc := range tests {
		if got := shard.Capacity(tc.profile); got != tc.want {
			t.Errorf("%s: Capacity = %v, want %v", tc.name, got, tc.want)
		}
	}
	if shard.DefaultCapacity != caps(1, 3, 5, 3, 1) {
		t.Errorf("DefaultCapacity = %v, want voice 1, chat 3, email 5, sms 3, callback 1", shard.DefaultCapacity)
	}
}

// TestFree: how many new contacts an agent can take on each channel, given
// the slots they hold. Voice and callback exclude everything else; chat,
// email and SMS mix; wrap-up holds its slot but blocks nothing.
func TestFree(t *testing.T) {
	defaults := &pb.AgentProfile{Id: "a1"}
	tests := []struct {
		name     string
		profile  *pb.AgentProfile
		presence pb.AgentPresence
		slots    []shard.Slot
		want     [shard.NumChannels]uint32
	}{
		{"idle", defaults, available, nil, caps(1, 3, 5, 3, 1)},
		{"not ready takes nothing", defaults, notReadyP, nil, caps(0, 0, 0, 0, 0)},
		{"offline takes nothing", defaults, offline, nil, caps(0, 0, 0, 0, 0)},
		{"voice offered blocks everything", defaults, available, []shard.Slot{slot(voice, slotOffered)}, caps(0, 0, 0, 0, 0)},
		{"voice busy blocks everything", defaults, available, []shard.Slot{slot(voice, slotBusy)}, caps(0, 0, 0, 0, 0)},
		{"voice wrap-up holds voice, blocks nothing", defaults, available, []shard.Slot{slot(voice, slotWrapUp)}, caps(0, 3, 5, 3, 1)},
		{"callback busy blocks everything", defaults, available, []shard.Slot{slot(callback, slotBusy)}, caps(0, 0, 0, 0, 0)},
		{"one chat blocks voice and callback", defaults, available, []shard.Slot{slot(chat, slotBusy)}, caps(0, 2, 5, 3, 0)},
		{"offered chat blocks like a busy one", defaults, available, []shard.Slot{slot(chat, slotOffered)}, caps(0, 2, 5, 3, 0)},
		{"three chats fill chat", defaults, available, []shard.Slot{slot(chat, slotBusy), slot(chat, slotBusy), slot(chat, slotOffered)}, caps(0, 0, 5, 3, 0)},
		{"chat and email mix", defaults, available, []shard.Slot{slot(chat, slotBusy), slot(email, slotOffered), slot(email, slotBusy)}, caps(0, 2, 3, 3, 0)},
		{"chat in wrap-up holds chat only", defaults, available, []shard.Slot{slot(chat, slotWrapUp)}, caps(1, 2, 5, 3, 1)},
		{"email in wrap-up beside a busy sms", defaults, available, []shard.Slot{slot(email, slotWrapUp), slot(sms, slotBusy)}, caps(0, 3, 4, 2, 0)},
		{"custom rules let voice and chat run together", &pb.AgentProfile{Blocking: voiceWithChat}, available, []shard.Slot{slot(voice, slotBusy)}, caps(0, 3, 0, 0, 0)},
		{"custom rules: chat busy still allows voice", &pb.AgentProfile{Blocking: voiceWithChat}, available, []shard.Slot{slot(chat, slotBusy)}, caps(1, 2, 5, 3, 0)},
		{"empty rules block nothing", &pb.AgentProfile{Blocking: &pb.BlockingRules{}}, available, []shard.Slot{slot(voice, slotBusy)}, caps(0, 3, 5, 3, 1)},
		{"custom capacity", &pb.AgentProfile{Capacity: []*pb.ChannelCapacity{{Channel: chat, Slots: 2}, {Channel: email, Slots: 1}}}, available,
			[]shard.Slot{slot(chat, slotBusy)}, caps(0, 1, 1, 0, 0)},
		{"not ready keeps its work but takes nothing", defaults, notReadyP, []shard.Slot{slot(chat, slotBusy)}, caps(0, 0, 0, 0, 0)},
	}
	for _, tc := range tests {
		a := shard.Agent{Profile: tc.profile, Presence: tc.presence, Slots: tc.slots}
		if got := a.Free(); got != tc.want {
			t.Errorf("%s: Free = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestInUseAndOccupancy(t *testing.T) {
	defaults := &pb.AgentProfile{Id: "a1"} // 13 slots in all
	tests := []struct {
		name      string
		profile   *pb.AgentProfile
		slots     []shard.Slot
		inUse     [shard.NumChannels]uint32
		occupancy uint32 // per mille
	}{
		{"idle", defaults, nil, caps(0, 0, 0, 0, 0), 0},
		{"one call", defaults, []shard.Slot{slot(voice, slotBusy)}, caps(1, 0, 0, 0, 0), 1000 / 13},
		{"wrap-up counts as in use", defaults, []shard.Slot{slot(voice, slotWrapUp)}, caps(1, 0, 0, 0, 0), 1000 / 13},
		{"three chats and two emails", defaults,
			[]shard.Slot{slot(chat, slotBusy), slot(chat, slotOffered), slot(chat, slotWrapUp), slot(email, slotBusy), slot(email, slotBusy)},
			caps(0, 3, 2, 0, 0), 5000 / 13},
		{"all of a chat-only agent", &pb.AgentProfile{Capacity: []*pb.ChannelCapacity{{Channel: chat, Slots: 2}}},
			[]shard.Slot{slot(chat, slotBusy), slot(chat, slotBusy)}, caps(0, 2, 0, 0, 0), 1000},
		{"no capacity at all counts as full", &pb.AgentProfile{Capacity: []*pb.ChannelCapacity{{Channel: chat, Slots: 0}}}, nil, caps(0, 0, 0, 0, 0), 1000},
	}
	for _, tc := range tests {
		a := shard.Agent{Profile: tc.profile, Presence: available, Slots: tc.slots}
		if got := a.InUse(); got != tc.inUse {
			t.Errorf("%s: InUse = %v, want %v", tc.name, got, tc.inUse)
		}
		if got := a.Occupancy(); got != tc.occupancy {
			t.Errorf("%s: Occupancy = %d‰, want %d‰", tc.name, got, tc.occupancy)
		}
	}
}

// TestMultichannel_FillEveryMixingChannel drives a default agent through
// Apply to its full mix: 3 chats, 5 emails and 3 SMS at once; one more on
// any channel is refused (DESIGN.md 2: never more than capacity).
func TestMultichannel_FillEveryMixingChannel(t *testing.T) {
	s := given(t, cmd(sec(0), login("a1", true)))
	n := 0
	for _, c := range []struct {
		ch    pb.Channel
		slots int
	}{{chat, 3}, {email, 5}, {sms, 3}} {
		for range c.slots {
			n++
			applyNew(t, s, cmd(sec(int64(n)), reserve("a1", fmt.Sprintf("o%d", n), fmt.Sprintf("c%d", n), c.ch)))
			applyNew(t, s, cmd(sec(int64(n)), accept("a1", fmt.Sprintf("o%d", n))))
		}
	}
	a := agentOf(t, s, "a1")
	if a.InUse() != caps(0, 3, 5, 3, 0) || a.Free() != caps(0, 0, 0, 0, 0) || a.Occupancy() != 11000/13 {
		t.Errorf("full agent: in use %v, free %v, occupancy %d‰", a.InUse(), a.Free(), a.Occupancy())
	}
	for _, ch := range shard.Channels {
		refuse(t, s, cmd(sec(60), reserve("a1", "o-more", "c-more", ch)), shard.ErrIllegalTransition, `"a1"`)
	}
	// One email ends without wrap-up: exactly one email slot is free again.
	applyNew(t, s, cmd(sec(61), contactEnded("a1", "o4", 0, false)))
	if a := agentOf(t, s, "a1"); a.Free() != caps(0, 0, 1, 0, 0) {
		got := a.Free()
		t.Errorf("after one email ended: Free = %v, want one email", got)
	}
}

// TestMultichannel_WrapUpBlocksNothing: an agent writing up a call can be
// offered chats, but not a second call.
func TestMultichannel_WrapUpBlocksNothing(t *testing.T) {
	s := given(t, upTo(stepAgentEnded)...)
	refuse(t, s, cmd(sec(30), reserve("a1", "o2", "c2", voice)), shard.ErrIllegalTransition, `"a1"`)
	r := applyNew(t, s, cmd(sec(30), reserve("a1", "o2", "c2", chat)))
	if r.Agent.State() != stReserved {
		t.Errorf("agent with a chat offer beside a call wrap-up is %v, want reserved", r.Agent.State())
	}
	assertEvents(t, r.Events, agentEvent(sec(30), &pb.AgentEvent{
		AgentId: "a1", State: stReserved, Presence: available,
		OfferId: "o2", ContactId: "c2", Channel: chat, SlotState: slotOffered,
		InUse: []*pb.ChannelCapacity{inUse(voice, 1), inUse(chat, 1)},
	}))
}

// TestMultichannel_CustomRulesAllowVoiceWithChat: with rules that let voice
// and chat mix, an agent on a call takes chats up to their chat capacity.
func TestMultichannel_CustomRulesAllowVoiceWithChat(t *testing.T) {
	s := given(t,
		cmd(sec(0), loginAs(&pb.AgentProfile{Id: "a1", Blocking: voiceWithChat}, true)),
		cmd(sec(1), reserve("a1", "o1", "c1", voice)),
		cmd(sec(2), accept("a1", "o1")))
	for i := range 3 {
		applyNew(t, s, cmd(sec(int64(3+i)), reserve("a1", fmt.Sprintf("o%d", i+2), fmt.Sprintf("c%d", i+2), chat)))
	}
	refuse(t, s, cmd(sec(9), reserve("a1", "o9", "c9", chat)), shard.ErrIllegalTransition, `"a1"`)
	refuse(t, s, cmd(sec(9), reserve("a1", "o9", "c9", email)), shard.ErrIllegalTransition, `"a1"`)
	if a := agentOf(t, s, "a1"); a.InUse() != caps(1, 3, 0, 0, 0) {
		got := a.InUse()
		t.Errorf("InUse = %v, want one call and three chats", got)
	}
}
