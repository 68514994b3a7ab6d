package scenario

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/customer"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	voice = pb.Channel_CHANNEL_VOICE
	chat  = pb.Channel_CHANNEL_CHAT
)

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// Basic is one support queue with a wrap-up and two agents.
func Basic() *pb.RoutingConfig {
	return &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{{
			Name:     "support",
			Skills:   []*pb.SkillRequirement{{Skill: "support", MinLevel: 1}},
			Channels: []pb.Channel{voice, chat},
			WrapUp:   dur(time.Minute),
		}},
		Agents: []*pb.AgentProfile{
			{Id: "alice", Skills: map[string]uint32{"support": 3}, Endpoint: "sip:alice@pbx"},
			{Id: "bob", Skills: map[string]uint32{"support": 2}, Endpoint: "sip:bob@pbx"},
		},
	}
}

// All lists every scenario, each named for the acceptance item or
// invariant it guards.
var All = []Scenario{
	{"Lifecycle/ArrivalOfferAcceptConnectedHangupWrapUpAvailable", lifecycle},
	{"MissedOffer/AgentNotReadyContactRequeuedWithWaitCredit", missedOffer},
	{"MissedOffer/StayAvailableWhenQueueSaysSo", missedStayAvailable},
	{"Reject/ContactBackAtItsPlaceOfferedToAnother", reject},
	{"Abandon/WhileQueued", abandonQueued},
	{"Abandon/WhileOfferedWithdrawsTheOffer", abandonOffered},
	{"Multichannel/ChatCapacityAndChatsBlockVoice", multichannelCapacity},
	{"Multichannel/VoiceBlocksChat", voiceBlocksChat},
	{"Ordering/PriorityThenArrival", priorityFIFO},
	{"Ordering/AgeingLetsLowPriorityThrough", ageing},
	{"Strategy/LongestIdle", strategyLongestIdle},
	{"Strategy/MostSkilled", strategyMostSkilled},
	{"Strategy/RoundRobin", strategyRoundRobin},
	{"Strategy/LeastOccupied", strategyLeastOccupied},
	{"BestAcrossQueues/FreedAgentTakesLongestWaiting", bestAcrossQueues},
	{"BestAcrossQueues/AfterAQuietSpell", bestAcrossQueuesAfterQuiet},
	{"Widening/LowerSkillAfterWaiting", wideningSkill},
	{"Widening/OverflowToPartnerQueueKeepsWaitCredit", wideningOverflow},
	{"CustomerContext/TierSetsPriority", tierPriority},
	{"CustomerContext/LastAgentPreferredThenAnyone", lastAgentThenAnyone},
	{"CustomerContext/PreferredAgentBeatsLongestIdle", preferredBeatsIdle},
	{"BadInput/UnknownQueueAgentContact", unknownEntities},
	{"BadInput/IllegalTransitions", illegalTransitions},
	{"BadInput/StaleFenceRefused", staleFence},
	{"Idempotency/RepeatedArrival", repeatedArrival},
	{"Admission/ClosedAndFull", admission},
	{"Events/QueueAgentAndContactStateChanges", eventStream},
}

func lifecycle(t *testing.T, f Factory) {
	s := New(t, f, Basic(), Options{})
	s.Login("alice")
	r := s.MustArrive("c1", "support", voice)
	// Alice is free: the contact is held for her in its arrival's commit
	// (no longer waiting, so no position), unless her status reached the
	// queue after the arrival did (then first in line).
	placed := (r.GetState() == pb.ContactState_CONTACT_STATE_RESERVED && r.GetPosition() == 0) ||
		(r.GetState() == pb.ContactState_CONTACT_STATE_QUEUED && r.GetPosition() == 1)
	if !placed || r.GetMediaSubject() != "tsunagu.v1.carriers.default.media.support.c1" || r.GetFence() == nil {
		t.Fatalf("arrival reply: state %v position %d media subject %q fence %v", r.GetState(), r.GetPosition(), r.GetMediaSubject(), r.GetFence())
	}
	o := s.Offer("alice")
	if o.GetContactId() != "c1" || o.GetQueue() != "support" || o.GetDeadline() == nil {
		t.Fatalf("offer %v", o)
	}
	s.Accept("alice", o)
	if st := s.State("alice"); st != pb.AgentState_AGENT_STATE_BUSY {
		t.Fatalf("after accept alice is %v", st)
	}
	in := s.Instruction()
	if in.GetContactId() != "c1" || in.GetAgentEndpoint() != "sip:alice@pbx" || in.GetKind() != pb.InstructionKind_INSTRUCTION_KIND_CONNECT || in.GetInstructionId() == "" {
		t.Fatalf("instruction %v", in)
	}
	s.WaitContact("c1", pb.ContactState_CONTACT_STATE_CONNECTED)
	if r := s.Media("support", "c1", pb.MediaKind_MEDIA_KIND_HOLD); r.GetError() != nil {
		t.Fatalf("hold: %v", r.GetError())
	}
	if n := s.Notice("alice", pb.NoticeKind_NOTICE_KIND_MEDIA); n.GetMedia().GetKind() != pb.MediaKind_MEDIA_KIND_HOLD {
		t.Fatalf("media notice %v", n)
	}
	s.Media("support", "c1", pb.MediaKind_MEDIA_KIND_RESUME)
	if r := s.Media("support", "c1", pb.MediaKind_MEDIA_KIND_HUNG_UP); r.GetError() != nil || r.GetState() != pb.ContactState_CONTACT_STATE_WRAP_UP {
		t.Fatalf("hang-up reply %v", r)
	}
	if st := s.Notice("alice", pb.NoticeKind_NOTICE_KIND_STATE).GetAgent().GetState(); st != pb.AgentState_AGENT_STATE_WRAP_UP {
		t.Fatalf("after hang-up alice is %v", st)
	}
	s.MustCmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, o.GetOfferId())
	done := s.WaitContact("c1", pb.ContactState_CONTACT_STATE_DONE)
	if done.GetAgentId() != "alice" {
		t.Fatalf("done event names agent %q", done.GetAgentId())
	}
	if st := s.State("alice"); st != pb.AgentState_AGENT_STATE_AVAILABLE {
		t.Fatalf("after wrap-up alice is %v", st)
	}
}

func missedOffer(t *testing.T, f Factory) {
	rc := Basic()
	rc.Queues[0].OfferTimeout = dur(100 * time.Millisecond)
	s := New(t, f, rc, Options{})
	s.Login("alice")
	s.MustArrive("c1", "support", voice)
	first := s.Offer("alice")
	exp := s.Notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER_EXPIRED)
	if exp.GetAgent().GetState() != pb.AgentState_AGENT_STATE_NOT_READY || exp.GetAgent().GetReason() != "missed" {
		t.Fatalf("after a missed offer alice is %v (%q), want not ready (missed)", exp.GetAgent().GetState(), exp.GetAgent().GetReason())
	}
	queued := s.WaitContact("c1", pb.ContactState_CONTACT_STATE_QUEUED)
	if queued.GetReason() != "missed" {
		t.Fatalf("requeue reason %q", queued.GetReason())
	}
	s.Login("bob")
	second := s.Offer("bob")
	if second.GetContactId() != "c1" || second.GetOfferId() == first.GetOfferId() {
		t.Fatalf("second offer %v", second)
	}
	evs := s.D.Events().Contact("c1")
	if evs[0].GetArrivedAt() != evs[len(evs)-1].GetArrivedAt() || evs[0].GetSeq() != evs[len(evs)-1].GetSeq() {
		t.Fatalf("arrival or sequence changed across the requeue: wait credit or place lost")
	}
	if r := s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, first.GetOfferId()); r.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_UNKNOWN_OFFER {
		t.Fatalf("late accept of a missed offer: %v", r.GetError())
	}
}

func missedStayAvailable(t *testing.T, f Factory) {
	rc := Basic()
	rc.Queues[0].OfferTimeout = dur(100 * time.Millisecond)
	rc.Queues[0].MissedOffer = pb.MissedOfferAction_MISSED_OFFER_ACTION_STAY_AVAILABLE
	s := New(t, f, rc, Options{})
	s.Login("alice")
	s.MustArrive("c1", "support", voice)
	s.Offer("alice")
	if p := s.Notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER_EXPIRED).GetAgent().GetPresence(); p != pb.AgentPresence_AGENT_PRESENCE_AVAILABLE {
		t.Fatalf("alice is %v after a missed offer on a stay-available queue", p)
	}
}

func reject(t *testing.T, f Factory) {
	s := New(t, f, Basic(), Options{})
	s.Login("alice")
	s.MustArrive("c1", "support", voice)
	o := s.Offer("alice")
	s.MustArrive("c2", "support", voice)
	s.MustCmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT, o.GetOfferId())
	// alice stays available; c1 avoids her for the offer window, so she
	// gets c2, and c1 — first in line — goes to bob.
	if got := s.Offer("alice").GetContactId(); got != "c2" {
		t.Fatalf("after rejecting c1 alice was offered %s, want c2", got)
	}
	s.Login("bob")
	if got := s.Offer("bob").GetContactId(); got != "c1" {
		t.Fatalf("bob was offered %s, want c1", got)
	}
}

func abandonQueued(t *testing.T, f Factory) {
	s := New(t, f, Basic(), Options{})
	s.MustArrive("c1", "support", voice)
	if r := s.Media("support", "c1", pb.MediaKind_MEDIA_KIND_HUNG_UP); r.GetError() != nil || r.GetState() != pb.ContactState_CONTACT_STATE_ABANDONED {
		t.Fatalf("hang-up while queued: %v", r)
	}
	s.Login("alice")
	s.NoNotice("alice", pb.NoticeKind_NOTICE_KIND_OFFER, 100*time.Millisecond)
	st := s.D.QueueStatus(t, "support")
	if st.GetWaiting() != 0 || st.GetAbandoned() != 1 {
		t.Fatalf("queue status %v", st)
	}
	if r := s.Media("support", "c1", pb.MediaKind_MEDIA_KIND_HUNG_UP); r.GetError() != nil || r.GetState() != pb.ContactState_CONTACT_STATE_ABANDONED {
		t.Fatalf("a repeated hang-up must change nothing and succeed: %v", r)
	}
}

func abandonOffered(t *testing.T, f Factory) {
	s := New(t, f, Basic(), Options{})
	s.Login("alice")
	s.MustArrive("c1", "support", voice)
	o := s.Offer("alice")
	s.Media("support", "c1", pb.MediaKind_MEDIA_KIND_HUNG_UP)
	w := s.Notice("alice", pb.NoticeKind_NOTICE_KIND_OFFER_WITHDRAWN)
	if w.GetOffer().GetOfferId() != o.GetOfferId() || w.GetAgent().GetState() != pb.AgentState_AGENT_STATE_AVAILABLE {
		t.Fatalf("withdrawal %v", w)
	}
	if r := s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, o.GetOfferId()); r.GetError().GetCode() != pb.ErrorCode_ERROR_CODE_UNKNOWN_OFFER {
		t.Fatalf("accepting a withdrawn offer: %v", r.GetError())
	}
	s.WaitContact("c1", pb.ContactState_CONTACT_STATE_ABANDONED)
}

func multichannel() *pb.RoutingConfig {
	return &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{
			{Name: "chat", Channels: []pb.Channel{chat}},
			{Name: "calls", Channels: []pb.Channel{voice}},
		},
		Agents: []*pb.AgentProfile{{Id: "carol", Capacity: []*pb.ChannelCapacity{{Channel: voice, Slots: 1}, {Channel: chat, Slots: 3}}}},
	}
}

func multichannelCapacity(t *testing.T, f Factory) {
	s := New(t, f, multichannel(), Options{})
	s.Login("carol")
	for i := 1; i <= 4; i++ {
		s.MustArrive(fmt.Sprintf("chat%d", i), "chat", chat)
	}
	var offers []*pb.Offer
	for i := 0; i < 3; i++ {
		o := s.Offer("carol")
		offers = append(offers, o)
		s.Accept("carol", o)
	}
	s.NoNotice("carol", pb.NoticeKind_NOTICE_KIND_OFFER, 100*time.Millisecond)
	s.MustArrive("call1", "calls", voice)
	s.NoNotice("carol", pb.NoticeKind_NOTICE_KIND_OFFER, 100*time.Millisecond)
	if st := s.Last("call1").GetState(); st != pb.ContactState_CONTACT_STATE_QUEUED {
		t.Fatalf("voice call is %v while carol chats", st)
	}
	// The freed slot goes to the chat still waiting. Usually that is chat4;
	// rarely a reservation for an older chat crosses one of carol's rounds,
	// is declined back to its place, and chat4 takes the slot first (the
	// known race in actors/README.md; FIFO is checked elsewhere, with the
	// load test's grace window).
	waiting := map[string]bool{"chat1": true, "chat2": true, "chat3": true, "chat4": true}
	for _, o := range offers {
		delete(waiting, o.GetContactId())
	}
	if len(waiting) != 1 {
		t.Fatalf("first three offers %v left %d chats waiting; want 1", offers, len(waiting))
	}
	s.Media("chat", offers[0].GetContactId(), pb.MediaKind_MEDIA_KIND_HUNG_UP)
	if got := s.Offer("carol").GetContactId(); !waiting[got] {
		t.Fatalf("freed chat slot went to %s, want the waiting chat %v", got, waiting)
	}
	if n := len(s.MustCmd("carol", pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent().GetSlots()); n != 3 {
		t.Fatalf("carol holds %d slots; her chat capacity is 3", n)
	}
}

func voiceBlocksChat(t *testing.T, f Factory) {
	s := New(t, f, multichannel(), Options{})
	s.Login("carol")
	s.MustArrive("call1", "calls", voice)
	s.Accept("carol", s.Offer("carol"))
	s.MustArrive("chat1", "chat", chat)
	s.NoNotice("carol", pb.NoticeKind_NOTICE_KIND_OFFER, 100*time.Millisecond)
	s.Media("calls", "call1", pb.MediaKind_MEDIA_KIND_HUNG_UP)
	if got := s.Offer("carol").GetContactId(); got != "chat1" {
		t.Fatalf("after the call carol was offered %s", got)
	}
}

// serve accepts and closes n offers in a row for agent, returning the
// contact ids in the order offered.
func serve(s *S, agent string, n int) []string {
	s.Helper()
	var got []string
	for i := 0; i < n; i++ {
		o := s.Offer(agent)
		got = append(got, o.GetContactId())
		s.Accept(agent, o)
		s.Media(o.GetQueue(), o.GetContactId(), pb.MediaKind_MEDIA_KIND_HUNG_UP)
		s.WaitAgent(agent, pb.AgentState_AGENT_STATE_WRAP_UP)
		s.MustCmd(agent, pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, o.GetOfferId())
	}
	return got
}

func priorityFIFO(t *testing.T, f Factory) {
	s := New(t, f, Basic(), Options{})
	for _, c := range []struct {
		id   string
		prio int32
	}{{"a", 0}, {"b", 5}, {"c", 0}, {"d", 5}, {"e", 2}} {
		s.MustArrive(c.id, "support", voice, func(r *pb.ContactArrival) { r.Priority = c.prio })
	}
	s.Login("alice")
	if got := fmt.Sprint(serve(s, "alice", 5)); got != "[b d e a c]" {
		t.Fatalf("served %s, want [b d e a c]", got)
	}
}

func ageing(t *testing.T, f Factory) {
	rc := Basic()
	rc.Queues[0].Ageing = &pb.PriorityAgeing{Every: dur(20 * time.Millisecond), MaxBoost: 50}
	s := New(t, f, rc, Options{})
	s.MustArrive("old-low", "support", voice)
	time.Sleep(150 * time.Millisecond) // the subject: old-low must be 7+ ageing steps older
	s.MustArrive("new-high", "support", voice, func(r *pb.ContactArrival) { r.Priority = 3 })
	s.Login("alice")
	if got := s.Offer("alice").GetContactId(); got != "old-low" {
		t.Fatalf("offered %s; the aged low-priority contact should go first", got)
	}
}

func strategy(st pb.Strategy) *pb.RoutingConfig {
	cap4 := []*pb.ChannelCapacity{{Channel: chat, Slots: 4}}
	return &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{{Name: "q", Strategy: st, Skills: []*pb.SkillRequirement{{Skill: "x", MinLevel: 1}}}},
		Agents: []*pb.AgentProfile{
			{Id: "a1", Skills: map[string]uint32{"x": 1}, Capacity: cap4},
			{Id: "a2", Skills: map[string]uint32{"x": 5}, Capacity: cap4},
			{Id: "a3", Skills: map[string]uint32{"x": 2}, Capacity: cap4},
		},
	}
}

// offeredTo arrives a chat and returns who got (and accepted) the offer.
func offeredTo(s *S, id string, agents ...string) string {
	s.Helper()
	s.MustArrive(id, "q", chat)
	deadline := time.After(WaitLimit)
	for {
		for _, a := range agents {
			select {
			case n := <-s.D.Notices(a):
				if n.GetKind() == pb.NoticeKind_NOTICE_KIND_OFFER {
					s.Accept(a, n.GetOffer())
					return a
				}
			default:
			}
		}
		select {
		case <-deadline:
			s.Fatalf("no offer for %s", id)
		case <-time.After(time.Millisecond):
		}
	}
}

func strategyLongestIdle(t *testing.T, f Factory) {
	s := New(t, f, strategy(pb.Strategy_STRATEGY_LONGEST_IDLE), Options{})
	s.Login("a3", "a1", "a2")
	if got := offeredTo(s, "k1", "a1", "a2", "a3"); got != "a3" {
		t.Fatalf("longest idle chose %s, want a3", got)
	}
}

func strategyMostSkilled(t *testing.T, f Factory) {
	s := New(t, f, strategy(pb.Strategy_STRATEGY_MOST_SKILLED), Options{})
	s.Login("a3", "a1", "a2")
	if got := offeredTo(s, "k1", "a1", "a2", "a3"); got != "a2" {
		t.Fatalf("most skilled chose %s, want a2 (level 5)", got)
	}
}

func strategyRoundRobin(t *testing.T, f Factory) {
	s := New(t, f, strategy(pb.Strategy_STRATEGY_ROUND_ROBIN), Options{})
	s.Login("a1", "a2", "a3")
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		seen[offeredTo(s, fmt.Sprintf("k%d", i), "a1", "a2", "a3")]++
	}
	if seen["a1"] != 2 || seen["a2"] != 2 || seen["a3"] != 2 {
		t.Fatalf("round robin spread %v, want 2 each", seen)
	}
}

func strategyLeastOccupied(t *testing.T, f Factory) {
	s := New(t, f, strategy(pb.Strategy_STRATEGY_LEAST_OCCUPIED), Options{})
	s.Login("a1", "a2", "a3")
	for i := 0; i < 6; i++ {
		offeredTo(s, fmt.Sprintf("k%d", i), "a1", "a2", "a3")
	}
	for _, a := range []string{"a1", "a2", "a3"} {
		s.WaitFor(a+" holding 2 chats", func() bool {
			return len(s.MustCmd(a, pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent().GetSlots()) == 2
		})
	}
}

func bestAcrossQueues(t *testing.T, f Factory) {
	rc := &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{{Name: "sales", WrapUp: dur(time.Minute)}, {Name: "billing", WrapUp: dur(time.Minute)}},
		Agents: []*pb.AgentProfile{{Id: "dave"}},
	}
	s := New(t, f, rc, Options{})
	s.MustArrive("s1", "sales", voice)
	s.MustArrive("b1", "billing", voice)
	s.MustArrive("s2", "sales", voice)
	s.MustArrive("b2", "billing", voice, func(r *pb.ContactArrival) { r.Priority = 1 })
	s.Login("dave")
	if got := fmt.Sprint(serve(s, "dave", 4)); got != "[b2 s1 b1 s2]" {
		t.Fatalf("dave served %s, want [b2 s1 b1 s2] (priority, then longest wait across queues)", got)
	}
}

// An agent whose queues had nobody for it frees while both now have a
// contact waiting: it still takes the one that has waited longest across
// its queues, not whichever queue hears of it first.
func bestAcrossQueuesAfterQuiet(t *testing.T, f Factory) {
	rc := &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{{Name: "sales", WrapUp: dur(time.Minute)}, {Name: "billing", WrapUp: dur(time.Minute)}},
		Agents: []*pb.AgentProfile{{Id: "dave"}},
	}
	s := New(t, f, rc, Options{})
	s.Login("dave")
	s.WaitFor("both queues to know dave free", func() bool {
		return s.D.QueueStatus(s, "sales").GetAvailableAgents() == 1 && s.D.QueueStatus(s, "billing").GetAvailableAgents() == 1
	})
	s.MustArrive("x", "sales", voice)
	o := s.Offer("dave")
	if o.GetContactId() != "x" {
		t.Fatalf("dave offered %s, want x", o.GetContactId())
	}
	s.Accept("dave", o)
	s.MustArrive("b1", "billing", voice)
	s.MustArrive("s1", "sales", voice)
	s.Media("sales", "x", pb.MediaKind_MEDIA_KIND_HUNG_UP)
	s.WaitAgent("dave", pb.AgentState_AGENT_STATE_WRAP_UP)
	s.MustCmd("dave", pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, o.GetOfferId())
	if got := fmt.Sprint(serve(s, "dave", 2)); got != "[b1 s1]" {
		t.Fatalf("dave served %s after x, want [b1 s1] (longest wait across queues)", got)
	}
}

func widening() *pb.RoutingConfig {
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

func wideningSkill(t *testing.T, f Factory) {
	s := New(t, f, widening(), Options{})
	s.Login("junior")
	start := time.Now()
	s.MustArrive("c1", "tech", voice)
	o := s.Offer("junior")
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Fatalf("junior (level 2) was offered the contact after %v, before the 150ms widening step", waited)
	}
	if o.GetWaited().AsDuration() < 150*time.Millisecond {
		t.Fatalf("offer says the customer waited %v", o.GetWaited().AsDuration())
	}
}

func wideningOverflow(t *testing.T, f Factory) {
	s := New(t, f, widening(), Options{})
	s.Login("partner1")
	start := time.Now()
	s.MustArrive("c1", "tech", voice)
	o := s.Offer("partner1")
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("partner agent got the contact after %v, before the 300ms overflow step", waited)
	}
	if o.GetQueue() != "tech" || o.GetWaited().AsDuration() < 300*time.Millisecond {
		t.Fatalf("overflow offer %v: it must stay a tech contact with its wait credit", o)
	}
}

func personalised() *pb.RoutingConfig {
	rc := Basic()
	rc.Queues[0].PreferredAgentWindow = dur(300 * time.Millisecond)
	rc.TierPriority = map[string]int32{"gold": 10}
	return rc
}

func tierPriority(t *testing.T, f Factory) {
	store := customer.NewMemory(customer.DefaultMemoryConfig())
	if err := store.Put(context.Background(), customer.Context{Key: "+100", Tier: "gold"}); err != nil {
		t.Fatal(err)
	}
	TierPriority(t, f, store)
}

// TierPriority: a gold customer's contact (tier from the customer store)
// overtakes an earlier plain one.
func TierPriority(t *testing.T, f Factory, store customer.Store) {
	s := New(t, f, personalised(), Options{Customers: store})
	s.MustArrive("plain", "support", voice, func(r *pb.ContactArrival) { r.CustomerKey = "+200" })
	s.MustArrive("gold", "support", voice, func(r *pb.ContactArrival) { r.CustomerKey = "+100" })
	if p := s.WaitContact("gold", pb.ContactState_CONTACT_STATE_QUEUED).GetPriority(); p != 10 {
		t.Fatalf("gold customer's priority %d, want 10", p)
	}
	s.Login("alice")
	if got := s.Offer("alice").GetContactId(); got != "gold" {
		t.Fatalf("offered %s first, want the gold customer", got)
	}
}

func lastAgentThenAnyone(t *testing.T, f Factory) {
	LastAgentThenAnyone(t, f, customer.NewMemory(customer.DefaultMemoryConfig()))
}

// LastAgentThenAnyone: the agent who served a customer is written to the
// store at the end; the customer's next contact waits for that agent during
// the queue's window, then goes to anyone.
func LastAgentThenAnyone(t *testing.T, f Factory, store customer.Store) {
	s := New(t, f, personalised(), Options{Customers: store})
	s.Login("bob")
	s.MustArrive("first", "support", voice, func(r *pb.ContactArrival) { r.CustomerKey = "+300" })
	o := s.Offer("bob")
	s.Accept("bob", o)
	s.Finish("support", "bob", o)
	s.WaitFor("interaction recorded", func() bool {
		c, _, _ := store.Lookup(context.Background(), "+300")
		return c.LastAgent == "bob" && len(c.Recent) > 0 && c.Recent[0].Outcome == "handled"
	})
	s.MustCmd("bob", pb.AgentCommandKind_AGENT_COMMAND_KIND_NOT_READY, "", func(c *pb.AgentCommand) { c.Reason = "break" })
	s.Login("alice")
	start := time.Now()
	s.MustArrive("second", "support", voice, func(r *pb.ContactArrival) { r.CustomerKey = "+300" })
	o2 := s.Offer("alice")
	if o2.GetContactId() != "second" || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("alice got %s after %v; the contact should wait 300ms for bob", o2.GetContactId(), time.Since(start))
	}
}

func preferredBeatsIdle(t *testing.T, f Factory) {
	store := customer.NewMemory(customer.DefaultMemoryConfig())
	if err := store.Record(context.Background(), "+400", customer.Interaction{ContactID: "old", AgentID: "bob", EndedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s := New(t, f, personalised(), Options{Customers: store})
	s.Login("alice", "bob")
	s.MustArrive("c1", "support", voice, func(r *pb.ContactArrival) { r.CustomerKey = "+400" })
	if got := s.Offer("bob").GetContactId(); got != "c1" {
		t.Fatalf("bob offered %s", got)
	}
	s.NoNotice("alice", pb.NoticeKind_NOTICE_KIND_OFFER, 50*time.Millisecond)
}

func wantCode(t *testing.T, what string, e *pb.Error, code pb.ErrorCode) {
	t.Helper()
	if e.GetCode() != code || e.GetMessage() == "" {
		t.Fatalf("%s: got %v %q, want %v with a message", what, e.GetCode(), e.GetMessage(), code)
	}
}

func unknownEntities(t *testing.T, f Factory) {
	s := New(t, f, Basic(), Options{})
	wantCode(t, "arrival in an unknown queue", s.Arrive("c1", "nope", voice).GetError(), pb.ErrorCode_ERROR_CODE_UNKNOWN_QUEUE)
	wantCode(t, "command for an unknown agent", s.Cmd("mallory", pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN, "").GetError(), pb.ErrorCode_ERROR_CODE_UNKNOWN_AGENT)
	wantCode(t, "media for an unknown contact", s.Media("support", "ghost", pb.MediaKind_MEDIA_KIND_HUNG_UP).GetError(), pb.ErrorCode_ERROR_CODE_UNKNOWN_CONTACT)
	wantCode(t, "status of an unknown queue", s.D.QueueStatus(t, "nope").GetError(), pb.ErrorCode_ERROR_CODE_UNKNOWN_QUEUE)
	wantCode(t, "a channel the queue does not take", s.Arrive("c2", "support", pb.Channel_CHANNEL_EMAIL).GetError(), pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	s.MustArrive("c3", "support", voice)
	if st := s.D.QueueStatus(t, "support"); st.GetArrived() != 1 || st.GetWaiting() != 1 {
		t.Fatalf("refused input changed the queue: %v", st)
	}
}

func illegalTransitions(t *testing.T, f Factory) {
	s := New(t, f, Basic(), Options{})
	wantCode(t, "ready before login", s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_READY, "").GetError(), pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION)
	s.Login("alice")
	wantCode(t, "login twice", s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN, "").GetError(), pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION)
	wantCode(t, "accept without an offer", s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, "c9#1").GetError(), pb.ErrorCode_ERROR_CODE_UNKNOWN_OFFER)
	wantCode(t, "ready while available", s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_READY, "").GetError(), pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION)
	s.MustArrive("c1", "support", voice)
	o := s.Offer("alice")
	s.Accept("alice", o)
	r := s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_READY, "")
	wantCode(t, "ready while busy", r.GetError(), pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION)
	if r.GetAgent().GetState() != pb.AgentState_AGENT_STATE_BUSY {
		t.Fatalf("refused ready changed alice to %v", r.GetAgent().GetState())
	}
	wantCode(t, "logout while busy", s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGOUT, "").GetError(), pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION)
	wantCode(t, "wrap-up done while busy", s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, o.GetOfferId()).GetError(), pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION)
	wantCode(t, "accept twice", s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT, o.GetOfferId()).GetError(), pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION)
	wantCode(t, "resume when not on hold", s.Media("support", "c1", pb.MediaKind_MEDIA_KIND_RESUME).GetError(), pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION)
	if st := s.State("alice"); st != pb.AgentState_AGENT_STATE_BUSY {
		t.Fatalf("after refused commands alice is %v", st)
	}
}

func staleFence(t *testing.T, f Factory) {
	s := New(t, f, Basic(), Options{})
	s.Login("alice")
	s.MustArrive("c1", "support", voice)
	o := s.Offer("alice")
	old := &pb.Fence{Shard: o.GetFence().GetShard(), Term: o.GetFence().GetTerm() - 1}
	r := s.Cmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, o.GetOfferId(), func(c *pb.AgentCommand) { c.Fence = old })
	wantCode(t, "accept with an older term", r.GetError(), pb.ErrorCode_ERROR_CODE_STALE_TERM)
	if st := r.GetAgent().GetState(); st != pb.AgentState_AGENT_STATE_RESERVED {
		t.Fatalf("refused accept changed alice to %v", st)
	}
	s.Accept("alice", o)
}

func repeatedArrival(t *testing.T, f Factory) {
	s := New(t, f, Basic(), Options{})
	first := s.MustArrive("c1", "support", voice)
	again := s.MustArrive("c1", "support", voice)
	if again.GetPosition() != first.GetPosition() || again.GetState() != pb.ContactState_CONTACT_STATE_QUEUED {
		t.Fatalf("retry answered %v, first %v", again, first)
	}
	if st := s.D.QueueStatus(t, "support"); st.GetWaiting() != 1 || st.GetArrived() != 1 {
		t.Fatalf("a retried arrival was queued twice: %v", st)
	}
	s.Login("alice")
	o := s.Offer("alice")
	s.Accept("alice", o)
	s.WaitContact("c1", pb.ContactState_CONTACT_STATE_CONNECTED)
	if r := s.MustArrive("c1", "support", voice); r.GetState() != pb.ContactState_CONTACT_STATE_CONNECTED || r.GetPosition() != 0 {
		t.Fatalf("retry after routing answered %v", r)
	}
	wantCode(t, "same id on another channel", s.Arrive("c1", "support", chat).GetError(), pb.ErrorCode_ERROR_CODE_CONFLICT)
	other := s.Arrive("c1", "support", voice, func(a *pb.ContactArrival) { a.Carrier = "other-carrier" })
	wantCode(t, "same id from another carrier", other.GetError(), pb.ErrorCode_ERROR_CODE_CONFLICT)
	if other.GetMediaSubject() != "" || other.GetState() != pb.ContactState_CONTACT_STATE_UNSPECIFIED {
		t.Fatalf("a refusal told another carrier about the contact: %v", other)
	}
}

// eventStream: observers see contact, agent and queue state changes.
func eventStream(t *testing.T, f Factory) {
	s := New(t, f, Basic(), Options{})
	s.MustArrive("c1", "support", voice)
	s.MustArrive("c2", "support", voice)
	s.WaitFor("a queue event with 2 waiting", func() bool {
		for _, q := range s.D.Events().Queue("support") {
			if q.GetWaiting() == 2 && q.GetArrived() == 2 {
				return true
			}
		}
		return false
	})
	s.Login("alice")
	s.Accept("alice", s.Offer("alice"))
	s.WaitContact("c1", pb.ContactState_CONTACT_STATE_CONNECTED)
	s.WaitFor("agent events up to busy", func() bool {
		var states []pb.AgentState
		for _, a := range s.D.Events().Agent("alice") {
			states = append(states, a.GetState())
		}
		return fmt.Sprint(states) == fmt.Sprint([]pb.AgentState{pb.AgentState_AGENT_STATE_AVAILABLE, pb.AgentState_AGENT_STATE_RESERVED, pb.AgentState_AGENT_STATE_BUSY})
	})
	var states []pb.ContactState
	for _, c := range s.D.Events().Contact("c1") {
		states = append(states, c.GetState())
	}
	if fmt.Sprint(states) != fmt.Sprint([]pb.ContactState{pb.ContactState_CONTACT_STATE_QUEUED, pb.ContactState_CONTACT_STATE_RESERVED, pb.ContactState_CONTACT_STATE_CONNECTED}) {
		t.Fatalf("contact c1 went through %v", states)
	}
	s.WaitFor("a queue event with 1 waiting and 1 routed", func() bool {
		evs := s.D.Events().Queue("support")
		return len(evs) > 0 && evs[len(evs)-1].GetWaiting() == 1 && evs[len(evs)-1].GetRouted() == 1
	})
}

func admission(t *testing.T, f Factory) {
	rc := &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{
			{Name: "closed", Admission: &pb.Admission{Closed: true}},
			{Name: "small", Admission: &pb.Admission{MaxWaiting: 2}},
		},
		Agents: []*pb.AgentProfile{{Id: "x"}},
	}
	s := New(t, f, rc, Options{})
	r := s.Arrive("c1", "closed", voice)
	if r.GetStatus() != pb.ArrivalStatus_ARRIVAL_STATUS_REJECTED || r.GetRejectReason() != "closed" {
		t.Fatalf("closed queue answered %v", r)
	}
	s.MustArrive("s1", "small", voice)
	s.MustArrive("s2", "small", voice)
	r = s.Arrive("s3", "small", voice)
	if r.GetStatus() != pb.ArrivalStatus_ARRIVAL_STATUS_REJECTED || r.GetRejectReason() != "queue_full" {
		t.Fatalf("full queue answered %v", r)
	}
	if s.Last("s3") != nil || s.Last("c1") != nil {
		t.Fatalf("rejected contacts left events: nothing may be stored for them")
	}
}
