package actors_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/customer"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Scenario tests, each named for the acceptance item or invariant it guards.

func accept(h *harness, agent string, offer *pb.Offer) {
	h.t.Helper()
	h.mustAgent(agent, pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, offer.GetOfferId(), func(c *pb.AgentCommand) { c.Fence = offer.GetFence() })
}

// finish hangs up a connected contact and ends the agent's wrap-up.
func finish(h *harness, queue, agent string, offer *pb.Offer) {
	h.t.Helper()
	h.media(queue, offer.GetContactId(), pb.MediaKind_MEDIA_KIND_HUNG_UP)
	h.waitContactState(queue, offer.GetContactId(), pb.ContactState_CONTACT_STATE_WRAP_UP)
	waitFor(h.t, agent+" in wrap-up", func() bool {
		return h.mustAgent(agent, pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent().GetState() == pb.AgentState_AGENT_STATE_WRAP_UP
	})
	h.mustAgent(agent, pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, offer.GetOfferId())
	h.waitContactState(queue, offer.GetContactId(), pb.ContactState_CONTACT_STATE_DONE)
}

func TestMissedOffer_AgentNotReadyAndContactRequeued(t *testing.T) {
	rc := basicConfig()
	rc.Queues[0].OfferTimeout = dur(100 * time.Millisecond)
	h := newHarness(t, rc, 4)
	h.login("alice")
	h.mustArrive("c1", "support", voice)
	first := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
	exp := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER_EXPIRED)
	if exp.GetAgent().GetState() != pb.AgentState_AGENT_STATE_NOT_READY || exp.GetAgent().GetReason() != "missed" {
		t.Fatalf("after a missed offer alice is %v (%q), want not ready (missed)", exp.GetAgent().GetState(), exp.GetAgent().GetReason())
	}
	h.waitContactState("support", "c1", pb.ContactState_CONTACT_STATE_QUEUED)
	c := h.contact("support", "c1")
	if c.Attempts != 1 {
		t.Fatalf("attempts %d", c.Attempts)
	}
	// Bob logs in: the contact goes to him, with its original arrival.
	h.login("bob")
	second := h.notice("bob", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
	if second.GetContactId() != "c1" || second.GetOfferId() == first.GetOfferId() {
		t.Fatalf("second offer %v", second)
	}
	if got := h.contact("support", "c1").Arrival.GetArrivedAt(); got != c.Arrival.GetArrivedAt() {
		t.Fatalf("arrival changed from %d to %d: wait credit lost", c.Arrival.GetArrivedAt(), got)
	}
	// The late accept of the missed offer is refused and changes nothing.
	late := h.agent("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, first.GetOfferId())
	if late.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_UNKNOWN_OFFER {
		t.Fatalf("late accept: %v", late.GetError())
	}
}

func TestMissedOffer_StayAvailableWhenQueueSaysSo(t *testing.T) {
	rc := basicConfig()
	rc.Queues[0].OfferTimeout = dur(100 * time.Millisecond)
	rc.Queues[0].MissedOffer = pb.MissedOfferAction_MISSED_OFFER_ACTION_STAY_AVAILABLE
	h := newHarness(t, rc, 4)
	h.login("alice")
	h.mustArrive("c1", "support", voice)
	h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER)
	exp := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER_EXPIRED)
	if exp.GetAgent().GetPresence() != pb.AgentPresence_AGENT_PRESENCE_AVAILABLE {
		t.Fatalf("alice is %v after a missed offer on a stay-available queue", exp.GetAgent().GetPresence())
	}
}

func TestReject_ContactBackAtItsPlaceAndOfferedToAnother(t *testing.T) {
	h := newHarness(t, basicConfig(), 4)
	h.login("alice")
	h.mustArrive("c1", "support", voice)
	offer := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
	h.mustArrive("c2", "support", voice) // waits behind c1
	h.mustAgent("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT, offer.GetOfferId())
	// alice is still available but avoided by c1 for the offer window; she
	// gets c2, and c1 (first in line) goes to bob when he logs in.
	next := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
	if next.GetContactId() != "c2" {
		t.Fatalf("after rejecting c1 alice was offered %s, want c2", next.GetContactId())
	}
	h.login("bob")
	if got := h.notice("bob", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer().GetContactId(); got != "c1" {
		t.Fatalf("bob was offered %s, want c1", got)
	}
}

func TestAbandon_WhileQueued(t *testing.T) {
	h := newHarness(t, basicConfig(), 4)
	h.mustArrive("c1", "support", voice)
	r := h.media("support", "c1", pb.MediaKind_MEDIA_KIND_HUNG_UP)
	if r.GetError() != nil || r.GetState() != pb.ContactState_CONTACT_STATE_ABANDONED {
		t.Fatalf("hang-up while queued: %v", r)
	}
	h.login("alice")
	h.noNotice("alice", pb.NoticeKind_NOTICE_KIND_OFFER, 100*time.Millisecond)
	st := await(t, "queue status", func(f func(*pb.QueueStatusReply)) { h.e.QueueStatus("support", f) })
	if st.GetWaiting() != 0 || st.GetAbandoned() != 1 {
		t.Fatalf("queue status %v", st)
	}
	// A second hang-up changes nothing and is not an error.
	if r := h.media("support", "c1", pb.MediaKind_MEDIA_KIND_HUNG_UP); r.GetError() != nil || r.GetState() != pb.ContactState_CONTACT_STATE_ABANDONED {
		t.Fatalf("repeated hang-up: %v", r)
	}
}

func TestAbandon_WhileOfferedWithdrawsTheOffer(t *testing.T) {
	h := newHarness(t, basicConfig(), 4)
	h.login("alice")
	h.mustArrive("c1", "support", voice)
	offer := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
	h.media("support", "c1", pb.MediaKind_MEDIA_KIND_HUNG_UP)
	w := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER_WITHDRAWN)
	if w.GetOffer().GetOfferId() != offer.GetOfferId() || w.GetAgent().GetState() != pb.AgentState_AGENT_STATE_AVAILABLE {
		t.Fatalf("withdrawal %v", w)
	}
	if r := h.agent("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, offer.GetOfferId()); r.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_UNKNOWN_OFFER {
		t.Fatalf("accepting a withdrawn offer: %v", r.GetError())
	}
}

func multichannelConfig() *pb.RoutingConfig {
	return &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{
			{Name: "chat", Channels: []pb.Channel{chat}},
			{Name: "calls", Channels: []pb.Channel{voice}},
		},
		Agents: []*pb.AgentProfile{{Id: "carol", Capacity: []*pb.ChannelCapacity{{Channel: voice, Slots: 1}, {Channel: chat, Slots: 3}}}},
	}
}

func TestMultichannel_ChatCapacityAndVoiceBlocking(t *testing.T) {
	h := newHarness(t, multichannelConfig(), 4)
	h.login("carol")
	for i := 1; i <= 4; i++ {
		h.mustArrive(fmt.Sprintf("chat%d", i), "chat", chat)
	}
	var offers []*pb.Offer
	for i := 0; i < 3; i++ {
		o := h.notice("carol", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
		offers = append(offers, o)
		accept(h, "carol", o)
	}
	// Three chats fill carol's chat capacity: the fourth waits.
	h.noNotice("carol", pb.NoticeKind_NOTICE_KIND_OFFER, 100*time.Millisecond)
	// Chats in progress block voice by default.
	h.mustArrive("call1", "calls", voice)
	h.noNotice("carol", pb.NoticeKind_NOTICE_KIND_OFFER, 100*time.Millisecond)
	if c := h.contact("calls", "call1"); c.State != pb.ContactState_CONTACT_STATE_QUEUED {
		t.Fatalf("voice call is %v while carol chats", c.State)
	}
	// One chat ends (no wrap-up on this queue): the waiting chat, not the
	// blocked call, takes the freed slot.
	h.media("chat", offers[0].GetContactId(), pb.MediaKind_MEDIA_KIND_HUNG_UP)
	if got := h.notice("carol", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer().GetContactId(); got != "chat4" {
		t.Fatalf("freed chat slot went to %s, want chat4", got)
	}
	st := h.mustAgent("carol", pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent()
	if n := len(st.GetSlots()); n != 3 {
		t.Fatalf("carol holds %d slots, capacity is 3 chats", n)
	}
}

func TestMultichannel_VoiceBlocksChat(t *testing.T) {
	h := newHarness(t, multichannelConfig(), 4)
	h.login("carol")
	h.mustArrive("call1", "calls", voice)
	accept(h, "carol", h.notice("carol", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer())
	h.mustArrive("chat1", "chat", chat)
	h.noNotice("carol", pb.NoticeKind_NOTICE_KIND_OFFER, 100*time.Millisecond)
	h.media("calls", "call1", pb.MediaKind_MEDIA_KIND_HUNG_UP)
	if got := h.notice("carol", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer().GetContactId(); got != "chat1" {
		t.Fatalf("after the call carol was offered %s", got)
	}
}

func TestOrdering_PriorityThenArrival(t *testing.T) {
	h := newHarness(t, basicConfig(), 4)
	// Contacts wait with no agent: low, high, low, high(2), mid.
	for _, c := range []struct {
		id   string
		prio int32
	}{{"a", 0}, {"b", 5}, {"c", 0}, {"d", 5}, {"e", 2}} {
		h.mustArrive(c.id, "support", voice, func(r *pb.ContactArrival) { r.Priority = c.prio })
	}
	h.login("alice")
	var got []string
	for i := 0; i < 5; i++ {
		o := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
		got = append(got, o.GetContactId())
		accept(h, "alice", o)
		h.media("support", o.GetContactId(), pb.MediaKind_MEDIA_KIND_HUNG_UP)
		waitFor(t, "alice in wrap-up", func() bool {
			return h.mustAgent("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent().GetState() == pb.AgentState_AGENT_STATE_WRAP_UP
		})
		h.mustAgent("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, o.GetOfferId())
	}
	if want := "b d e a c"; fmt.Sprint(got) != "["+want+"]" {
		t.Fatalf("served %v, want [%s]", got, want)
	}
}

func TestOrdering_AgeingLetsLowPriorityThrough(t *testing.T) {
	rc := basicConfig()
	rc.Queues[0].Ageing = &pb.PriorityAgeing{Every: dur(20 * time.Millisecond), MaxBoost: 50}
	h := newHarness(t, rc, 4)
	h.mustArrive("old-low", "support", voice)
	time.Sleep(150 * time.Millisecond) // ageing is the subject: old-low must be older by 7+ steps
	h.mustArrive("new-high", "support", voice, func(r *pb.ContactArrival) { r.Priority = 3 })
	h.login("alice")
	if got := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer().GetContactId(); got != "old-low" {
		t.Fatalf("offered %s; the aged low-priority contact should go first", got)
	}
}

// strategyConfig has four agents whose idle order, skills and occupancy
// differ, so each strategy picks someone else.
func strategyConfig(s pb.Strategy) *pb.RoutingConfig {
	return &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{{Name: "q", Strategy: s, Skills: []*pb.SkillRequirement{{Skill: "x", MinLevel: 1}}}},
		Agents: []*pb.AgentProfile{
			{Id: "a1", Skills: map[string]uint32{"x": 1}, Capacity: []*pb.ChannelCapacity{{Channel: chat, Slots: 4}}},
			{Id: "a2", Skills: map[string]uint32{"x": 5}, Capacity: []*pb.ChannelCapacity{{Channel: chat, Slots: 4}}},
			{Id: "a3", Skills: map[string]uint32{"x": 2}, Capacity: []*pb.ChannelCapacity{{Channel: chat, Slots: 4}}},
		},
	}
}

// offeredTo arrives a chat and returns who got the offer.
func offeredTo(h *harness, id string, agents ...string) string {
	h.t.Helper()
	h.mustArrive(id, "q", chat)
	deadline := time.After(waitLimit)
	for {
		for _, a := range agents {
			select {
			case n := <-h.bus.ch(a):
				if n.GetKind() == pb.NoticeKind_NOTICE_KIND_OFFER {
					accept(h, a, n.GetOffer())
					return a
				}
			default:
			}
		}
		select {
		case <-deadline:
			h.t.Fatalf("no offer for %s", id)
		case <-time.After(time.Millisecond):
		}
	}
}

func TestStrategy_LongestIdle(t *testing.T) {
	h := newHarness(t, strategyConfig(pb.Strategy_STRATEGY_LONGEST_IDLE), 4)
	h.login("a3", "a1", "a2") // idle order: a3 longest
	if got := offeredTo(h, "k1", "a1", "a2", "a3"); got != "a3" {
		t.Fatalf("longest idle chose %s, want a3", got)
	}
}

func TestStrategy_MostSkilled(t *testing.T) {
	h := newHarness(t, strategyConfig(pb.Strategy_STRATEGY_MOST_SKILLED), 4)
	h.login("a3", "a1", "a2")
	if got := offeredTo(h, "k1", "a1", "a2", "a3"); got != "a2" {
		t.Fatalf("most skilled chose %s, want a2 (level 5)", got)
	}
}

func TestStrategy_RoundRobin(t *testing.T) {
	h := newHarness(t, strategyConfig(pb.Strategy_STRATEGY_ROUND_ROBIN), 4)
	h.login("a1", "a2", "a3")
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		seen[offeredTo(h, fmt.Sprintf("k%d", i), "a1", "a2", "a3")]++
	}
	if seen["a1"] != 2 || seen["a2"] != 2 || seen["a3"] != 2 {
		t.Fatalf("round robin spread %v, want 2 each", seen)
	}
}

func TestStrategy_LeastOccupied(t *testing.T) {
	h := newHarness(t, strategyConfig(pb.Strategy_STRATEGY_LEAST_OCCUPIED), 4)
	h.login("a1", "a2", "a3")
	// Each new chat goes to an agent with the fewest chats: after six,
	// everyone holds two.
	for i := 0; i < 6; i++ {
		offeredTo(h, fmt.Sprintf("k%d", i), "a1", "a2", "a3")
	}
	for _, a := range []string{"a1", "a2", "a3"} {
		waitFor(t, a+" holding 2 chats", func() bool {
			return len(h.mustAgent(a, pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent().GetSlots()) == 2
		})
	}
}

func TestBestAcrossQueues_FreedAgentTakesTheLongestWaiting(t *testing.T) {
	rc := &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{{Name: "sales"}, {Name: "billing"}},
		Agents: []*pb.AgentProfile{{Id: "dave"}},
	}
	h := newHarness(t, rc, 8)
	h.mustArrive("s1", "sales", voice)
	h.mustArrive("b1", "billing", voice)
	h.mustArrive("s2", "sales", voice)
	h.mustArrive("b2", "billing", voice, func(r *pb.ContactArrival) { r.Priority = 1 })
	h.login("dave")
	var got []string
	for i := 0; i < 4; i++ {
		o := h.notice("dave", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
		got = append(got, o.GetContactId())
		accept(h, "dave", o)
		h.media(o.GetQueue(), o.GetContactId(), pb.MediaKind_MEDIA_KIND_HUNG_UP)
	}
	if fmt.Sprint(got) != "[b2 s1 b1 s2]" {
		t.Fatalf("dave served %v, want [b2 s1 b1 s2] (priority, then longest wait across queues)", got)
	}
}

func wideningConfig() *pb.RoutingConfig {
	return &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{
			{
				Name:   "tech",
				Skills: []*pb.SkillRequirement{{Skill: "tech", MinLevel: 4}},
				Widening: []*pb.WideningStep{
					{After: dur(150 * time.Millisecond), Skills: []*pb.SkillRequirement{{Skill: "tech", MinLevel: 2}}},
					{After: dur(300 * time.Millisecond), OverflowQueues: []string{"bpo"}},
				},
			},
			{Name: "bpo", Skills: []*pb.SkillRequirement{{Skill: "partner", MinLevel: 1}}},
		},
		Agents: []*pb.AgentProfile{
			{Id: "junior", Skills: map[string]uint32{"tech": 2}},
			{Id: "partner1", Skills: map[string]uint32{"partner": 1}},
		},
	}
}

func TestWidening_LowerSkillAfterWaiting(t *testing.T) {
	h := newHarness(t, wideningConfig(), 4)
	h.login("junior")
	start := time.Now()
	h.mustArrive("c1", "tech", voice)
	o := h.notice("junior", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Fatalf("junior (level 2) was offered the contact after %v, before the 150ms widening step", waited)
	}
	if o.GetWaited().AsDuration() < 150*time.Millisecond {
		t.Fatalf("offer says the customer waited %v", o.GetWaited().AsDuration())
	}
}

func TestWidening_OverflowToPartnerQueueKeepsWaitCredit(t *testing.T) {
	h := newHarness(t, wideningConfig(), 4)
	h.login("partner1")
	start := time.Now()
	h.mustArrive("c1", "tech", voice)
	o := h.notice("partner1", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("partner agent got the contact after %v, before the 300ms overflow step", waited)
	}
	if o.GetQueue() != "tech" || o.GetWaited().AsDuration() < 300*time.Millisecond {
		t.Fatalf("overflow offer %v: it must stay a tech contact with its wait credit", o)
	}
}

func personalisedConfig() *pb.RoutingConfig {
	rc := basicConfig()
	rc.Queues[0].PreferredAgentWindow = dur(300 * time.Millisecond)
	rc.TierPriority = map[string]int32{"gold": 10}
	return rc
}

func withCustomers(store actors.Customers) func(*actors.Config) {
	return func(c *actors.Config) { c.Customers = store }
}

func TestCustomerContext_TierSetsPriority(t *testing.T) {
	store := customer.NewMemory(customer.DefaultMemoryConfig())
	ctx := context.Background()
	if err := store.Put(ctx, customer.Context{Key: "+100", Tier: "gold"}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, personalisedConfig(), 4, withCustomers(store))
	h.mustArrive("plain", "support", voice, func(r *pb.ContactArrival) { r.CustomerKey = "+200" })
	h.mustArrive("gold", "support", voice, func(r *pb.ContactArrival) { r.CustomerKey = "+100" })
	if p := h.contact("support", "gold").Arrival.GetPriority(); p != 10 {
		t.Fatalf("gold customer's priority %d, want 10", p)
	}
	h.login("alice")
	if got := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer().GetContactId(); got != "gold" {
		t.Fatalf("offered %s first, want the gold customer", got)
	}
}

func TestCustomerContext_LastAgentPreferredThenAnyone(t *testing.T) {
	store := customer.NewMemory(customer.DefaultMemoryConfig())
	h := newHarness(t, personalisedConfig(), 4, withCustomers(store))
	// bob serves the customer once; the interaction is written at the end.
	h.login("bob")
	h.mustArrive("first", "support", voice, func(r *pb.ContactArrival) { r.CustomerKey = "+300" })
	o := h.notice("bob", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
	accept(h, "bob", o)
	finish(h, "support", "bob", o)
	waitFor(t, "interaction recorded", func() bool {
		c, _, _ := store.Lookup(context.Background(), "+300")
		return c.LastAgent == "bob"
	})
	// Now bob is busy elsewhere (not ready) and alice is free: the
	// customer's next contact waits for bob during the window...
	h.mustAgent("bob", pb.AgentCommandKind_AGENT_COMMAND_KIND_NOT_READY, "", func(c *pb.AgentCommand) { c.Reason = "break" })
	h.login("alice")
	start := time.Now()
	h.mustArrive("second", "support", voice, func(r *pb.ContactArrival) { r.CustomerKey = "+300" })
	if got := h.contact("support", "second").Arrival.GetPreferredAgent(); got != "bob" {
		t.Fatalf("preferred agent %q, want bob", got)
	}
	// ...and goes to alice once the window closes.
	o2 := h.notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
	if o2.GetContactId() != "second" || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("alice got %s after %v; the preferred window is 300ms", o2.GetContactId(), time.Since(start))
	}
}

func TestCustomerContext_PreferredAgentBeatsLongestIdle(t *testing.T) {
	store := customer.NewMemory(customer.DefaultMemoryConfig())
	ctx := context.Background()
	if err := store.Record(ctx, "+400", customer.Interaction{ContactID: "old", AgentID: "bob", EndedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, personalisedConfig(), 4, withCustomers(store))
	h.login("alice", "bob") // alice idle longer
	h.mustArrive("c1", "support", voice, func(r *pb.ContactArrival) { r.CustomerKey = "+400" })
	if got := h.notice("bob", pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer().GetContactId(); got != "c1" {
		t.Fatalf("bob offered %s", got)
	}
	h.noNotice("alice", pb.NoticeKind_NOTICE_KIND_OFFER, 50*time.Millisecond)
}
