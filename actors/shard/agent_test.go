package shard_test

import (
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// a1At is agent a1's record after the standard path's step (upTo).
func a1At(step int) shard.Agent {
	a := shard.Agent{Presence: available, PresenceSince: sec(0), IdleSince: sec(0), Version: 1}
	slot := shard.Slot{
		OfferID: "o1", ContactID: "c1", Queue: "sales", Channel: voice, ContactShard: testShard,
		State: slotOffered, Since: at(stepReserve),
	}
	if step >= stepReserve {
		a.Counters.Offered, a.Version = 1, 2
	}
	if step >= stepAccept {
		slot.State, slot.Since = slotBusy, at(stepAccept)
		a.Counters.Accepted, a.Version = 1, 3
	}
	if step >= stepAgentEnded {
		slot.State, slot.Since, slot.Deadline = slotWrapUp, at(stepAgentEnded), at(stepAgentEnded)+wrapUp
		a.Counters.Handled, a.Version = 1, 4
	}
	if step >= stepReserve && step < stepWrapUpDone {
		a.Slots = []shard.Slot{slot}
	}
	if step >= stepWrapUpDone {
		a.IdleSince, a.Version = at(stepWrapUpDone), 5
		a.Recent = []shard.Finished{{OfferID: "o1", ContactID: "c1", How: pb.FinishedHow_FINISHED_HOW_DONE}}
	}
	return a
}

// left is offer o1 of contact c1 having left agent a1, and how.
func left(how pb.FinishedHow) []shard.Finished {
	return []shard.Finished{{OfferID: "o1", ContactID: "c1", How: how}}
}

func changeAgent(a shard.Agent, edit func(*shard.Agent)) shard.Agent {
	edit(&a)
	return a
}

// a1Event is agent a1's event; with a slot state other than "none" it is
// about offer o1 of contact c1 on voice.
func a1Event(st pb.AgentState, presence pb.AgentPresence, reason string, slot *pb.SlotState, used ...*pb.ChannelCapacity) *pb.AgentEvent {
	e := &pb.AgentEvent{AgentId: "a1", State: st, Presence: presence, Reason: reason, InUse: used}
	if slot != nil {
		e.OfferId, e.ContactId, e.Channel, e.SlotState = "o1", "c1", voice, *slot
	}
	return e
}

func slotState(s pb.SlotState) *pb.SlotState { return &s }

const (
	stAvailable = pb.AgentState_AGENT_STATE_AVAILABLE
	stNotReady  = pb.AgentState_AGENT_STATE_NOT_READY
	stReserved  = pb.AgentState_AGENT_STATE_RESERVED
	stBusy      = pb.AgentState_AGENT_STATE_BUSY
	stWrapUp    = pb.AgentState_AGENT_STATE_WRAP_UP
	stOffline   = pb.AgentState_AGENT_STATE_OFFLINE
)

// TestAgentCommands covers every legal transition of an agent: the record
// it leaves and the one event it emits.
func TestAgentCommands(t *testing.T) {
	fullOffer := reserve("a1", "o1", "c1", voice)
	fullOffer.ContactShard = 7
	fullOffer.Deadline = sec(40)
	fullOffer.CustomerKey = "+81-6-0000-0000"
	fullOffer.Attributes = map[string]string{"reason": "billing"}
	fullOffer.Priority = 4
	fullOffer.ArrivedAt = sec(3)
	offeredAt := func(edit func(*shard.Agent)) shard.Agent { return changeAgent(a1At(stepReserve), edit) }
	busyAt := func(edit func(*shard.Agent)) shard.Agent { return changeAgent(a1At(stepAccept), edit) }
	wrapAt := func(edit func(*shard.Agent)) shard.Agent { return changeAgent(a1At(stepAgentEnded), edit) }
	onVoice := inUse(voice, 1)

	tests := []struct {
		name  string
		given []*pb.Command
		cmd   *pb.Command
		want  shard.Agent // Profile is not compared
		event *pb.AgentEvent
	}{
		// AgentLogin
		{
			name:  "login ready makes the agent available and idle since now",
			cmd:   cmd(sec(0), login("a1", true)),
			want:  a1At(beforeArrival),
			event: a1Event(stAvailable, available, "", nil),
		},
		{
			name:  "login not ready gives reason login",
			cmd:   cmd(sec(0), login("a1", false)),
			want:  changeAgent(a1At(beforeArrival), func(a *shard.Agent) { a.Presence, a.Reason = notReadyP, "login" }),
			event: a1Event(stNotReady, notReadyP, "login", nil),
		},
		{
			name:  "login again after logout keeps version and counters",
			given: then(upTo(stepDone), cmd(sec(30), logout("a1"))),
			cmd:   cmd(sec(40), login("a1", true)),
			want: changeAgent(a1At(stepDone), func(a *shard.Agent) {
				a.PresenceSince, a.IdleSince, a.Version = sec(40), sec(40), 7
			}),
			event: a1Event(stAvailable, available, "", nil),
		},
		// AgentLogout
		{
			name:  "logout of an idle agent",
			given: upTo(beforeArrival),
			cmd:   cmd(sec(30), logout("a1")),
			want: changeAgent(a1At(beforeArrival), func(a *shard.Agent) {
				a.Presence, a.PresenceSince, a.Version = offline, sec(30), 2
			}),
			event: a1Event(stOffline, offline, "", nil),
		},
		{
			name:  "logout from not ready clears the reason",
			given: []*pb.Command{cmd(sec(0), login("a1", false))},
			cmd:   cmd(sec(30), logout("a1")),
			want: changeAgent(a1At(beforeArrival), func(a *shard.Agent) {
				a.Presence, a.PresenceSince, a.Version = offline, sec(30), 2
			}),
			event: a1Event(stOffline, offline, "", nil),
		},
		// AgentPresenceChange
		{
			name:  "not ready with a reason",
			given: upTo(beforeArrival),
			cmd:   cmd(sec(30), notReady("a1", "lunch")),
			want: changeAgent(a1At(beforeArrival), func(a *shard.Agent) {
				a.Presence, a.Reason, a.PresenceSince, a.Version = notReadyP, "lunch", sec(30), 2
			}),
			event: a1Event(stNotReady, notReadyP, "lunch", nil),
		},
		{
			name:  "not ready without a reason says not_ready",
			given: upTo(beforeArrival),
			cmd:   cmd(sec(30), notReady("a1", "")),
			want: changeAgent(a1At(beforeArrival), func(a *shard.Agent) {
				a.Presence, a.Reason, a.PresenceSince, a.Version = notReadyP, "not_ready", sec(30), 2
			}),
			event: a1Event(stNotReady, notReadyP, "not_ready", nil),
		},
		{
			name:  "a new not-ready reason replaces the old one",
			given: then(upTo(beforeArrival), cmd(sec(30), notReady("a1", "break"))),
			cmd:   cmd(sec(40), notReady("a1", "lunch")),
			want: changeAgent(a1At(beforeArrival), func(a *shard.Agent) {
				a.Presence, a.Reason, a.PresenceSince, a.Version = notReadyP, "lunch", sec(40), 3
			}),
			event: a1Event(stNotReady, notReadyP, "lunch", nil),
		},
		{
			name:  "ready from not ready restarts idle time",
			given: then(upTo(beforeArrival), cmd(sec(30), notReady("a1", "break"))),
			cmd:   cmd(sec(40), ready("a1")),
			want: changeAgent(a1At(beforeArrival), func(a *shard.Agent) {
				a.PresenceSince, a.IdleSince, a.Version = sec(40), sec(40), 3
			}),
			event: a1Event(stAvailable, available, "", nil),
		},
		{
			name:  "not ready while busy takes no new work but stays busy",
			given: upTo(stepAccept),
			cmd:   cmd(sec(30), notReady("a1", "after-call")),
			want: busyAt(func(a *shard.Agent) {
				a.Presence, a.Reason, a.PresenceSince, a.Version = notReadyP, "after-call", sec(30), 4
			}),
			event: a1Event(stBusy, notReadyP, "after-call", nil, onVoice),
		},
		{
			name:  "ready from not ready while busy keeps idle time",
			given: then(upTo(stepAccept), cmd(sec(30), notReady("a1", "after-call"))),
			cmd:   cmd(sec(40), ready("a1")),
			want:  busyAt(func(a *shard.Agent) { a.PresenceSince, a.Version = sec(40), 5 }),
			event: a1Event(stBusy, available, "", nil, onVoice),
		},
		// AgentReserve
		{
			name:  "reserve takes one slot and makes the offer",
			given: upTo(stepLock),
			cmd:   upTo(stepReserve)[1+stepReserve],
			want:  a1At(stepReserve),
			event: a1Event(stReserved, available, "", slotState(slotOffered), onVoice),
		},
		{
			name:  "reserve copies the offer details for the desktop",
			given: upTo(beforeArrival),
			cmd:   cmd(at(stepReserve), fullOffer),
			want: offeredAt(func(a *shard.Agent) {
				a.Slots = []shard.Slot{{
					OfferID: "o1", ContactID: "c1", Queue: "sales", Channel: voice, ContactShard: 7,
					State: slotOffered, Since: at(stepReserve), Deadline: sec(40), CustomerKey: "+81-6-0000-0000",
					Attributes: map[string]string{"reason": "billing"}, Priority: 4, ArrivedAt: sec(3),
				}}
			}),
			event: a1Event(stReserved, available, "", slotState(slotOffered), onVoice),
		},
		// AgentOfferOutcome
		{
			name:  "accepted offer makes the slot busy",
			given: upTo(stepReserve),
			cmd:   upTo(stepAccept)[1+stepAccept],
			want:  a1At(stepAccept),
			event: a1Event(stBusy, available, "", slotState(slotBusy), onVoice),
		},
		{
			name:  "rejected offer frees the slot and keeps idle time",
			given: upTo(stepReserve),
			cmd:   cmd(sec(30), reject("a1", "o1")),
			want: offeredAt(func(a *shard.Agent) {
				a.Slots, a.Counters.Rejected, a.Version = nil, 1, 3
				a.Recent = left(pb.FinishedHow_FINISHED_HOW_REJECTED)
			}),
			event: a1Event(stAvailable, available, "", slotState(slotFreed)),
		},
		{
			name:  "missed offer frees the slot and the agent stays available",
			given: upTo(stepReserve),
			cmd:   cmd(sec(30), miss("a1", "o1", false)),
			want: offeredAt(func(a *shard.Agent) {
				a.Slots, a.Counters.Missed, a.Version = nil, 1, 3
				a.Recent = left(pb.FinishedHow_FINISHED_HOW_MISSED)
			}),
			event: a1Event(stAvailable, available, "", slotState(slotFreed)),
		},
		{
			name:  "missed offer with not_ready makes the agent not ready (missed)",
			given: upTo(stepReserve),
			cmd:   cmd(sec(30), miss("a1", "o1", true)),
			want: offeredAt(func(a *shard.Agent) {
				a.Slots, a.Counters.Missed, a.Version = nil, 1, 3
				a.Recent = left(pb.FinishedHow_FINISHED_HOW_MISSED)
				a.Presence, a.Reason, a.PresenceSince = notReadyP, "missed", sec(30)
			}),
			event: a1Event(stNotReady, notReadyP, "missed", slotState(slotFreed)),
		},
		{
			name:  "withdrawn offer frees the slot and counts nothing",
			given: upTo(stepReserve),
			cmd:   cmd(sec(30), withdraw("a1", "o1")),
			want: offeredAt(func(a *shard.Agent) {
				a.Slots, a.Version = nil, 3
				a.Recent = left(pb.FinishedHow_FINISHED_HOW_WITHDRAWN)
			}),
			event: a1Event(stAvailable, available, "", slotState(slotFreed)),
		},
		// AgentContactEnded
		{
			name:  "contact ended with a wrap-up box keeps the slot in wrap-up",
			given: upTo(stepHangUp),
			cmd:   upTo(stepAgentEnded)[1+stepAgentEnded],
			want:  a1At(stepAgentEnded),
			event: a1Event(stWrapUp, available, "", slotState(slotWrapUp), onVoice),
		},
		{
			name:  "contact ended with a fixed wrap-up box",
			given: upTo(stepHangUp),
			cmd:   cmd(at(stepAgentEnded), contactEnded("a1", "o1", at(stepAgentEnded)+wrapUp, true)),
			want: wrapAt(func(a *shard.Agent) {
				a.Slots = []shard.Slot{a.Slots[0]}
				a.Slots[0].WrapUpFixed = true
			}),
			event: a1Event(stWrapUp, available, "", slotState(slotWrapUp), onVoice),
		},
		{
			name:  "contact ended without wrap-up frees the slot and restarts idle time",
			given: upTo(stepHangUp),
			cmd:   cmd(at(stepAgentEnded), contactEnded("a1", "o1", 0, false)),
			want: busyAt(func(a *shard.Agent) {
				a.Slots, a.Counters.Handled, a.IdleSince, a.Version = nil, 1, at(stepAgentEnded), 4
				a.Recent = left(pb.FinishedHow_FINISHED_HOW_DONE)
			}),
			event: a1Event(stAvailable, available, "", slotState(slotFreed)),
		},
		{
			name:  "contact ended with a wrap-up box already over frees the slot",
			given: upTo(stepHangUp),
			cmd:   cmd(at(stepAgentEnded), contactEnded("a1", "o1", at(stepAgentEnded), false)),
			want: busyAt(func(a *shard.Agent) {
				a.Slots, a.Counters.Handled, a.IdleSince, a.Version = nil, 1, at(stepAgentEnded), 4
				a.Recent = left(pb.FinishedHow_FINISHED_HOW_DONE)
			}),
			event: a1Event(stAvailable, available, "", slotState(slotFreed)),
		},
		{
			name:  "contact that moved on before the acceptance frees the slot as withdrawn, nothing handled, idle time kept",
			given: upTo(stepHangUp),
			cmd: cmd(at(stepAgentEnded), func() *pb.AgentContactEnded {
				e := contactEnded("a1", "o1", at(stepAgentEnded)+wrapUp, false)
				e.Withdrawn = true
				return e
			}()),
			want: busyAt(func(a *shard.Agent) {
				a.Slots, a.Version = nil, 4
				a.Recent = left(pb.FinishedHow_FINISHED_HOW_WITHDRAWN)
			}),
			event: a1Event(stAvailable, available, "", slotState(slotFreed)),
		},
		// AgentWrapUpDone
		{
			name:  "wrap-up ended by the agent frees the slot and restarts idle time",
			given: upTo(stepAgentEnded),
			cmd:   upTo(stepWrapUpDone)[1+stepWrapUpDone],
			want:  a1At(stepWrapUpDone),
			event: a1Event(stAvailable, available, "", slotState(slotFreed)),
		},
		{
			name:  "wrap-up ended by its time box",
			given: upTo(stepAgentEnded),
			cmd:   cmd(at(stepAgentEnded)+wrapUp, wrapUpDone("a1", "o1", false)),
			want: changeAgent(a1At(stepWrapUpDone), func(a *shard.Agent) {
				a.IdleSince = at(stepAgentEnded) + wrapUp
			}),
			event: a1Event(stAvailable, available, "", slotState(slotFreed)),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := given(t, tc.given...)
			r := applyNew(t, s, tc.cmd)
			if !r.HasAgent || r.HasContact {
				t.Errorf("result HasAgent=%v HasContact=%v, want an agent result", r.HasAgent, r.HasContact)
			}
			assertAgent(t, r.Agent, tc.want)
			assertAgent(t, agentOf(t, s, "a1"), tc.want)
			assertEvents(t, r.Events, agentEvent(tc.cmd.GetAt(), tc.event))
		})
	}
}

// TestAgentState: the one-word state is reserved over busy over wrap-up over
// presence.
func TestAgentState(t *testing.T) {
	slot := func(st pb.SlotState) shard.Slot { return shard.Slot{State: st, Channel: chat} }
	tests := []struct {
		presence pb.AgentPresence
		slots    []shard.Slot
		want     pb.AgentState
	}{
		{offline, nil, stOffline},
		{pb.AgentPresence_AGENT_PRESENCE_UNSPECIFIED, nil, stOffline},
		{available, nil, stAvailable},
		{notReadyP, nil, stNotReady},
		{available, []shard.Slot{slot(slotWrapUp)}, stWrapUp},
		{notReadyP, []shard.Slot{slot(slotWrapUp)}, stWrapUp},
		{available, []shard.Slot{slot(slotWrapUp), slot(slotBusy)}, stBusy},
		{available, []shard.Slot{slot(slotBusy), slot(slotOffered)}, stReserved},
		{notReadyP, []shard.Slot{slot(slotWrapUp), slot(slotOffered)}, stReserved},
		{offline, []shard.Slot{slot(slotBusy)}, stOffline},
	}
	for _, tc := range tests {
		a := shard.Agent{Profile: &pb.AgentProfile{Id: "a1"}, Presence: tc.presence, Slots: tc.slots}
		if got := a.State(); got != tc.want {
			t.Errorf("presence %v, slots %v: State() = %v, want %v", tc.presence, tc.slots, got, tc.want)
		}
	}
}
