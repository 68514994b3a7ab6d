package shard

import (
	"slices"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

func (s *State) agentResult(a *Agent, ev *pb.Event) Result {
	r := Result{Agent: *a, HasAgent: true}
	if ev != nil {
		r.Events = []*pb.Event{ev}
	}
	return r
}

// loggedIn returns the agent's record if the agent is logged in.
func (s *State) loggedIn(id string) (*Agent, error) {
	if id == "" {
		return nil, errorf(ErrInvalidCommand, "shard: agent_id is empty")
	}
	a, ok := s.agents[id]
	if !ok || !a.LoggedIn() {
		// The engine refuses agents that are not configured; here the agent
		// is known but not working, so the command is out of order.
		return nil, errorf(ErrIllegalTransition, "agent %q is not logged in", id)
	}
	return a, nil
}

func (s *State) agentLogin(at int64, l *pb.AgentLogin) Result {
	id := l.GetProfile().GetId()
	if id == "" {
		return Result{Err: errorf(ErrInvalidCommand, "shard: login without an agent id")}
	}
	if a, ok := s.agents[id]; ok && a.LoggedIn() {
		return Result{Err: errorf(ErrIllegalTransition, "agent %q is already logged in", id)}
	}
	a := &Agent{Profile: l.GetProfile(), PresenceSince: at, IdleSince: at}
	if old, ok := s.agents[id]; ok {
		a.Version = old.Version
		a.Counters = old.Counters
		a.Recent = old.Recent
	}
	a.Version++
	if l.GetReady() {
		a.Presence = pb.AgentPresence_AGENT_PRESENCE_AVAILABLE
	} else {
		a.Presence = pb.AgentPresence_AGENT_PRESENCE_NOT_READY
		a.Reason = "login"
	}
	s.agents[id] = a
	return s.agentResult(a, s.agentEvent(at, a, nil))
}

func (s *State) agentLogout(at int64, l *pb.AgentLogout) Result {
	a, err := s.loggedIn(l.GetAgentId())
	if err != nil {
		return Result{Err: err}
	}
	if len(a.Slots) > 0 {
		return Result{Err: errorf(ErrIllegalTransition, "agent %q has %d contacts in progress; finish them before logging out", a.ID(), len(a.Slots))}
	}
	a.Presence = pb.AgentPresence_AGENT_PRESENCE_OFFLINE
	a.Reason = ""
	a.PresenceSince = at
	a.Version++
	return s.agentResult(a, s.agentEvent(at, a, nil))
}

func (s *State) agentPresence(at int64, p *pb.AgentPresenceChange) Result {
	a, err := s.loggedIn(p.GetAgentId())
	if err != nil {
		return Result{Err: err}
	}
	switch p.GetPresence() {
	case pb.AgentPresence_AGENT_PRESENCE_AVAILABLE:
		if a.Presence != pb.AgentPresence_AGENT_PRESENCE_NOT_READY {
			if st := a.State(); st != pb.AgentState_AGENT_STATE_AVAILABLE {
				return Result{Err: errorf(ErrIllegalTransition, "agent %q is %s; ready is allowed only from not ready", a.ID(), stateWord(st))}
			}
			return Result{Err: errorf(ErrIllegalTransition, "agent %q is already available", a.ID())}
		}
		a.Presence = pb.AgentPresence_AGENT_PRESENCE_AVAILABLE
		a.Reason = ""
		if len(a.Slots) == 0 {
			a.IdleSince = at
		}
	case pb.AgentPresence_AGENT_PRESENCE_NOT_READY:
		reason := p.GetReason()
		if reason == "" {
			reason = "not_ready"
		}
		if a.Presence == pb.AgentPresence_AGENT_PRESENCE_NOT_READY && a.Reason == reason {
			r := s.agentResult(a, nil)
			r.Duplicate = true
			return r
		}
		a.Presence = pb.AgentPresence_AGENT_PRESENCE_NOT_READY
		a.Reason = reason
	default:
		return Result{Err: errorf(ErrInvalidCommand, "shard: presence %v of agent %q cannot be set directly", p.GetPresence(), a.ID())}
	}
	a.PresenceSince = at
	a.Version++
	return s.agentResult(a, s.agentEvent(at, a, nil))
}

func finishedWord(h pb.FinishedHow) string {
	switch h {
	case pb.FinishedHow_FINISHED_HOW_REJECTED:
		return "rejected"
	case pb.FinishedHow_FINISHED_HOW_MISSED:
		return "missed"
	case pb.FinishedHow_FINISHED_HOW_WITHDRAWN:
		return "withdrawn"
	}
	return "handled"
}

func stateWord(st pb.AgentState) string {
	switch st {
	case pb.AgentState_AGENT_STATE_RESERVED:
		return "reserved"
	case pb.AgentState_AGENT_STATE_BUSY:
		return "busy"
	case pb.AgentState_AGENT_STATE_WRAP_UP:
		return "in wrap-up"
	case pb.AgentState_AGENT_STATE_AVAILABLE:
		return "available"
	case pb.AgentState_AGENT_STATE_NOT_READY:
		return "not ready"
	}
	return "offline"
}

func (s *State) agentReserve(at int64, r *pb.AgentReserve) Result {
	a, err := s.loggedIn(r.GetAgentId())
	if err != nil {
		return Result{Err: err}
	}
	if r.GetOfferId() == "" || r.GetContactId() == "" {
		return Result{Err: errorf(ErrInvalidCommand, "shard: reservation for agent %q needs offer_id and contact_id", a.ID())}
	}
	if slot, ok := a.Slot(r.GetOfferId()); ok {
		if slot.ContactID != r.GetContactId() {
			return Result{Err: errorf(ErrConflict, "offer %q to agent %q is for contact %q, not %q", r.GetOfferId(), a.ID(), slot.ContactID, r.GetContactId())}
		}
		res := s.agentResult(a, nil)
		res.Duplicate = true
		return res
	}
	if f, ok := a.Finished(r.GetOfferId()); ok {
		return Result{Err: errorf(ErrIllegalTransition, "offer %q to agent %q already ended (%s); it is never granted again", r.GetOfferId(), a.ID(), finishedWord(f.How))}
	}
	ch := r.GetChannel()
	if !ValidChannel(ch) {
		return Result{Err: errorf(ErrInvalidCommand, "shard: reservation %q has channel %v", r.GetOfferId(), ch)}
	}
	if a.Presence != pb.AgentPresence_AGENT_PRESENCE_AVAILABLE {
		return Result{Err: errorf(ErrIllegalTransition, "agent %q is not ready (%s)", a.ID(), a.Reason)}
	}
	if a.Free()[ch] == 0 {
		return Result{Err: errorf(ErrIllegalTransition, "agent %q has no free %v capacity", a.ID(), ch)}
	}
	slot := Slot{
		OfferID:      r.GetOfferId(),
		ContactID:    r.GetContactId(),
		Queue:        r.GetQueue(),
		Channel:      ch,
		ContactShard: r.GetContactShard(),
		State:        pb.SlotState_SLOT_STATE_OFFERED,
		Since:        at,
		Deadline:     r.GetDeadline(),
		CustomerKey:  r.GetCustomerKey(),
		Attributes:   r.GetAttributes(),
		Priority:     r.GetPriority(),
		ArrivedAt:    r.GetArrivedAt(),
	}
	a.Slots = append(slices.Clip(a.Slots), slot)
	a.Counters.Offered++
	a.Version++
	return s.agentResult(a, s.agentEvent(at, a, &slot))
}

// slotIndex finds the slot for offerID.
func (s *State) slotIndex(a *Agent, offerID string) (int, error) {
	if offerID == "" {
		return 0, errorf(ErrInvalidCommand, "shard: offer_id is empty")
	}
	for i := range a.Slots {
		if a.Slots[i].OfferID == offerID {
			return i, nil
		}
	}
	return 0, errorf(ErrUnknownOffer, "agent %q has no offer %q", a.ID(), offerID)
}

// setSlot replaces slot i without touching the array copies may share.
func setSlot(a *Agent, i int, slot Slot) {
	slots := slices.Clone(a.Slots)
	slots[i] = slot
	a.Slots = slots
}

// dropSlot removes slot i, remembering how it ended; the agent becomes idle
// when it was the last.
func dropSlot(a *Agent, i int, at int64, how pb.FinishedHow) {
	recent := a.Recent
	if len(recent) >= MaxRecent {
		recent = recent[len(recent)-MaxRecent+1:]
	}
	a.Recent = append(slices.Clip(recent), Finished{OfferID: a.Slots[i].OfferID, ContactID: a.Slots[i].ContactID, How: how})
	slots := make([]Slot, 0, len(a.Slots)-1)
	slots = append(slots, a.Slots[:i]...)
	slots = append(slots, a.Slots[i+1:]...)
	a.Slots = slots
	if len(slots) == 0 {
		a.IdleSince = at
	}
}

func (s *State) agentOfferOutcome(at int64, o *pb.AgentOfferOutcome) Result {
	a, err := s.loggedIn(o.GetAgentId())
	if err != nil {
		return Result{Err: err}
	}
	i, err := s.slotIndex(a, o.GetOfferId())
	if err != nil {
		return Result{Err: err}
	}
	slot := a.Slots[i]
	if slot.State != pb.SlotState_SLOT_STATE_OFFERED {
		if slot.State == pb.SlotState_SLOT_STATE_BUSY && o.GetOutcome() == pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_ACCEPTED {
			res := s.agentResult(a, nil)
			res.Duplicate = true
			return res
		}
		return Result{Err: errorf(ErrIllegalTransition, "offer %q to agent %q was already accepted", o.GetOfferId(), a.ID())}
	}
	switch o.GetOutcome() {
	case pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_ACCEPTED:
		slot.State = pb.SlotState_SLOT_STATE_BUSY
		slot.Since = at
		slot.Deadline = 0
		setSlot(a, i, slot)
		a.Counters.Accepted++
	case pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_REJECTED, pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_WITHDRAWN:
		// Rejecting or losing an offer does not restart the idle clock.
		idle := a.IdleSince
		how := pb.FinishedHow_FINISHED_HOW_WITHDRAWN
		if o.GetOutcome() == pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_REJECTED {
			how = pb.FinishedHow_FINISHED_HOW_REJECTED
		}
		dropSlot(a, i, at, how)
		a.IdleSince = idle
		if o.GetOutcome() == pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_REJECTED {
			a.Counters.Rejected++
		}
		slot.State = pb.SlotState_SLOT_STATE_UNSPECIFIED
	case pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_MISSED:
		idle := a.IdleSince
		dropSlot(a, i, at, pb.FinishedHow_FINISHED_HOW_MISSED)
		a.IdleSince = idle
		a.Counters.Missed++
		if o.GetNotReady() {
			a.Presence = pb.AgentPresence_AGENT_PRESENCE_NOT_READY
			a.Reason = "missed"
			a.PresenceSince = at
		}
		slot.State = pb.SlotState_SLOT_STATE_UNSPECIFIED
	default:
		return Result{Err: errorf(ErrInvalidCommand, "shard: offer outcome %v for agent %q is not valid", o.GetOutcome(), a.ID())}
	}
	a.Version++
	return s.agentResult(a, s.agentEvent(at, a, &slot))
}

func (s *State) agentContactEnded(at int64, e *pb.AgentContactEnded) Result {
	a, err := s.loggedIn(e.GetAgentId())
	if err != nil {
		if e.GetAgentId() != "" {
			// An agent that is not logged in holds no offer: the contact
			// learns, from the committed state, that it has no agent left.
			err = errorf(ErrUnknownOffer, "agent %q is not logged in: it holds no offer %q", e.GetAgentId(), e.GetOfferId())
		}
		return Result{Err: err}
	}
	i, err := s.slotIndex(a, e.GetOfferId())
	if err != nil {
		if _, ok := a.Finished(e.GetOfferId()); ok {
			// Told twice (the contact, and the agent's own withdrawal).
			res := s.agentResult(a, nil)
			res.Duplicate = true
			return res
		}
		return Result{Err: err}
	}
	slot := a.Slots[i]
	switch slot.State {
	case pb.SlotState_SLOT_STATE_WRAP_UP:
		res := s.agentResult(a, nil)
		res.Duplicate = true
		return res
	case pb.SlotState_SLOT_STATE_OFFERED:
		return Result{Err: errorf(ErrIllegalTransition, "offer %q to agent %q was never accepted; withdraw it instead", e.GetOfferId(), a.ID())}
	}
	if e.GetWithdrawn() {
		// Accepted, but the contact had moved on: the agent never had it.
		idle := a.IdleSince
		dropSlot(a, i, at, pb.FinishedHow_FINISHED_HOW_WITHDRAWN)
		a.IdleSince = idle
		slot.State = pb.SlotState_SLOT_STATE_UNSPECIFIED
		a.Version++
		return s.agentResult(a, s.agentEvent(at, a, &slot))
	}
	a.Counters.Handled++
	if e.GetWrapUpUntil() > at {
		slot.State = pb.SlotState_SLOT_STATE_WRAP_UP
		slot.Since = at
		slot.Deadline = e.GetWrapUpUntil()
		slot.WrapUpFixed = e.GetWrapUpFixed()
		setSlot(a, i, slot)
	} else {
		dropSlot(a, i, at, pb.FinishedHow_FINISHED_HOW_DONE)
		slot.State = pb.SlotState_SLOT_STATE_UNSPECIFIED
	}
	a.Version++
	return s.agentResult(a, s.agentEvent(at, a, &slot))
}

func (s *State) agentWrapUpDone(at int64, w *pb.AgentWrapUpDone) Result {
	a, err := s.loggedIn(w.GetAgentId())
	if err != nil {
		return Result{Err: err}
	}
	i, err := s.slotIndex(a, w.GetOfferId())
	if err != nil {
		return Result{Err: err}
	}
	slot := a.Slots[i]
	if slot.State != pb.SlotState_SLOT_STATE_WRAP_UP {
		return Result{Err: errorf(ErrIllegalTransition, "contact %q of agent %q is not in wrap-up", slot.ContactID, a.ID())}
	}
	if w.GetByAgent() && slot.WrapUpFixed && at < slot.Deadline {
		return Result{Err: errorf(ErrIllegalTransition, "wrap-up of contact %q cannot end early: queue %q fixes it", slot.ContactID, slot.Queue)}
	}
	dropSlot(a, i, at, pb.FinishedHow_FINISHED_HOW_DONE)
	slot.State = pb.SlotState_SLOT_STATE_UNSPECIFIED
	a.Version++
	return s.agentResult(a, s.agentEvent(at, a, &slot))
}

func (s *State) agentEvent(at int64, a *Agent, slot *Slot) *pb.Event {
	ev := &pb.AgentEvent{
		AgentId:  a.ID(),
		State:    a.State(),
		Presence: a.Presence,
		Reason:   a.Reason,
	}
	used := a.InUse()
	for _, ch := range Channels {
		if used[ch] > 0 {
			ev.InUse = append(ev.InUse, &pb.ChannelCapacity{Channel: ch, Slots: used[ch]})
		}
	}
	if slot != nil {
		ev.OfferId = slot.OfferID
		ev.ContactId = slot.ContactID
		ev.Channel = slot.Channel
		ev.SlotState = slot.State
	}
	return &pb.Event{At: at, Shard: s.shard, Kind: &pb.Event_Agent{Agent: ev}}
}
