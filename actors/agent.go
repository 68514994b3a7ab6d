package actors

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// agentMachine decides for one agent: it alone proposes the agent's
// commands, grants or declines reservations against committed capacity,
// and, whenever the agent has free capacity, runs a round: it asks every
// queue it serves for its best contact and claims the best of them.
type agentMachine struct {
	id    string
	shard uint32
	fence *pb.Fence
	env   *env

	queues []routing.Membership
	rec    shard.Agent
	hasRec bool

	round     uint64
	roundOpen bool
	awaiting  map[string]bool
	best      *pb.Candidate
	claiming  bool
	// quiet: the last round found no candidate, so the agent's next free
	// status invites its queues instead of opening a round.
	quiet bool

	// Messages resent until the contact's shard acknowledges them.
	outcomes map[string]pendingOutcome
	finished map[string]pendingFinished
	// lastSlots remembers where the contact of an offer lives after its
	// slot is gone, until the last message about it is acknowledged.
	lastSlots map[string]target
	// seen is, per queue, the highest hold sequence answered (granted or
	// declined); statuses report it so queues count only holds in flight.
	seen map[string]uint64
	// told is what each queue last heard from a plain status.
	told map[string]told
	// noticed: offers whose notice the desktop was sent by this actor; an
	// offer committed while its reservation looked undecided is noticed
	// when the contact asks again.
	noticed map[string]bool
	// accepting holds the replies to ACCEPTs committed here until the
	// contact's shard answers: an acceptance succeeds only once the contact
	// is connected to it, and fails if the contact has moved on. A busy
	// slot whose acceptance is no longer being resent was confirmed (a
	// refused one is withdrawn before the actor takes other input).
	accepting map[string][]func(*pb.AgentCommandReply)
}

type told struct {
	free [shard.NumChannels]uint32
	seen uint64
}

type pendingOutcome struct {
	to  target
	msg *pb.OfferOutcome
}

type pendingFinished struct {
	to  target
	msg *pb.WrapUpFinished
}

type (
	tagCommand struct {
		cmd   *pb.AgentCommand
		reply func(*pb.AgentCommandReply)
	}
	tagReserve struct{ req *pb.ReserveRequest }
	tagEnded   struct {
		offerID   string
		from      target
		withdrawn bool
	}
	tagMissed   struct{ offerID string }
	tagWrapDone struct{ offerID string }
)

func newAgentMachine(id string, shardID uint32, fence *pb.Fence, e *env) *agentMachine {
	m := &agentMachine{
		id:        id,
		shard:     shardID,
		fence:     fence,
		env:       e,
		awaiting:  make(map[string]bool),
		outcomes:  make(map[string]pendingOutcome),
		finished:  make(map[string]pendingFinished),
		lastSlots: make(map[string]target),
		seen:      make(map[string]uint64),
		told:      make(map[string]told),
		noticed:   make(map[string]bool),
		accepting: make(map[string][]func(*pb.AgentCommandReply)),
	}
	m.queues = e.cfg.Memberships(id)
	return m
}

func (m *agentMachine) step(now int64, in any, fx *effects) {
	switch in := in.(type) {
	case agentCommand:
		m.command(now, in, fx)
	case committed:
		m.committed(now, in, fx)
	case *pb.ShardMessage:
		m.shardMessage(now, in, fx)
	case timerFired:
		m.timer(now, in, fx)
	case rebuild:
		m.rebuild(now, fx)
	case announce:
		if m.hasRec && m.rec.LoggedIn() {
			clear(m.told)
			m.afterChange(now, fx)
		}
	}
}

func (m *agentMachine) view() *pb.AgentView {
	v := &pb.AgentView{AgentId: m.id, State: pb.AgentState_AGENT_STATE_OFFLINE, Presence: pb.AgentPresence_AGENT_PRESENCE_OFFLINE}
	if !m.hasRec {
		return v
	}
	v.State = m.rec.State()
	v.Presence = m.rec.Presence
	v.Reason = m.rec.Reason
	if m.rec.IdleSince != 0 {
		v.IdleSince = timestamppb.New(time.Unix(0, m.rec.IdleSince))
	}
	for _, s := range m.rec.Slots {
		sv := &pb.SlotView{OfferId: s.OfferID, ContactId: s.ContactID, Queue: s.Queue, Channel: s.Channel, State: s.State}
		if s.Deadline != 0 {
			sv.Deadline = timestamppb.New(time.Unix(0, s.Deadline))
		}
		v.Slots = append(v.Slots, sv)
	}
	return v
}

func (m *agentMachine) replyErr(reply func(*pb.AgentCommandReply), code pb.ErrorCode, format string, args ...any) func() {
	v := m.view()
	e := &pb.Error{Code: code, Message: fmt.Sprintf(format, args...)}
	return func() { reply(&pb.AgentCommandReply{Error: e, Agent: v}) }
}

func (m *agentMachine) command(now int64, c agentCommand, fx *effects) {
	cmd := command(now, m.shard)
	k := c.cmd.GetKind()
	switch k {
	case pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS:
		v := m.view()
		fx.reply(func() { c.reply(&pb.AgentCommandReply{Agent: v}) })
		return
	case pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN:
		p, ok := m.env.cfg.Agents[m.id]
		if !ok {
			fx.reply(m.replyErr(c.reply, pb.ErrorCode_ERROR_CODE_UNKNOWN_AGENT, "agent %q is not configured", m.id))
			return
		}
		cmd.Kind = &pb.Command_AgentLogin{AgentLogin: &pb.AgentLogin{Profile: p, Ready: c.cmd.GetReady()}}
	case pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGOUT:
		cmd.Kind = &pb.Command_AgentLogout{AgentLogout: &pb.AgentLogout{AgentId: m.id}}
	case pb.AgentCommandKind_AGENT_COMMAND_KIND_READY:
		cmd.Kind = &pb.Command_AgentPresence{AgentPresence: &pb.AgentPresenceChange{AgentId: m.id, Presence: pb.AgentPresence_AGENT_PRESENCE_AVAILABLE}}
	case pb.AgentCommandKind_AGENT_COMMAND_KIND_NOT_READY:
		cmd.Kind = &pb.Command_AgentPresence{AgentPresence: &pb.AgentPresenceChange{AgentId: m.id, Presence: pb.AgentPresence_AGENT_PRESENCE_NOT_READY, Reason: c.cmd.GetReason()}}
	case pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT:
		if m.retried(c, pb.FinishedHow_FINISHED_HOW_REJECTED, k == pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT, fx) {
			return
		}
		m.remember(c.cmd.GetOfferId())
		if f := c.cmd.GetFence(); f != nil && (f.GetShard() != m.fence.GetShard() || f.GetTerm() != m.fence.GetTerm()) {
			fx.reply(m.replyErr(c.reply, pb.ErrorCode_ERROR_CODE_STALE_TERM,
				"offer %q carries fence shard %d term %d; the agent's owner is shard %d term %d", c.cmd.GetOfferId(), f.GetShard(), f.GetTerm(), m.fence.GetShard(), m.fence.GetTerm()))
			return
		}
		outcome := pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_ACCEPTED
		if k == pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT {
			outcome = pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_REJECTED
		}
		cmd.Kind = &pb.Command_AgentOfferOutcome{AgentOfferOutcome: &pb.AgentOfferOutcome{AgentId: m.id, OfferId: c.cmd.GetOfferId(), Outcome: outcome}}
	case pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE:
		if m.retried(c, pb.FinishedHow_FINISHED_HOW_DONE, true, fx) {
			return
		}
		m.remember(c.cmd.GetOfferId())
		cmd.Kind = &pb.Command_AgentWrapUpDone{AgentWrapUpDone: &pb.AgentWrapUpDone{AgentId: m.id, OfferId: c.cmd.GetOfferId(), ByAgent: true}}
	default:
		fx.reply(m.replyErr(c.reply, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "unknown command kind %d", int32(k)))
		return
	}
	fx.proposeCmd(cmd, tagCommand(c))
}

// retried answers a repeated REJECT or WRAP_UP_DONE whose offer already
// left the agent that way: the desktop's retry succeeds and changes nothing.
func (m *agentMachine) retried(c agentCommand, how pb.FinishedHow, applies bool, fx *effects) bool {
	if !applies || !m.hasRec {
		return false
	}
	if f, ok := m.rec.Finished(c.cmd.GetOfferId()); ok && f.How == how {
		v := m.view()
		fx.reply(func() { c.reply(&pb.AgentCommandReply{Agent: v}) })
		return true
	}
	return false
}

func (m *agentMachine) committed(now int64, c committed, fx *effects) {
	notices := len(fx.notices)
	m.step2(now, c, fx)
	// Changes the desktop did not ask for reach it as notices: when the step
	// sent none of its own (offer, withdrawal, expiry), a STATE one. A
	// desktop's own command gets the new state in its reply instead.
	if _, asked := c.tag.(tagCommand); !asked && c.res.Err == nil && !c.res.Duplicate && c.res.HasAgent && len(fx.notices) == notices {
		m.stateNotice(fx)
	}
}

func (m *agentMachine) step2(now int64, c committed, fx *effects) {
	res := c.res
	if res.Err == nil && res.HasAgent {
		m.rec, m.hasRec = res.Agent, true
	}
	switch t := c.tag.(type) {
	case tagCommand:
		if res.Err != nil {
			e := errorOf(res.Err)
			v := m.view()
			fx.reply(func() { t.reply(&pb.AgentCommandReply{Error: e, Agent: v}) })
			return
		}
		offer := t.cmd.GetOfferId()
		if t.cmd.GetKind() == pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT {
			m.accepted(now, offer, t.reply, res.Duplicate, fx)
			return
		}
		v := m.view()
		fx.reply(func() { t.reply(&pb.AgentCommandReply{Agent: v}) })
		if res.Duplicate {
			return
		}
		switch t.cmd.GetKind() {
		case pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT:
			fx.cancel("offer/" + offer)
			m.sendOutcome(fx, offer, pb.OutcomeKind_OUTCOME_KIND_REJECTED)
		case pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE:
			fx.cancel("wrap/" + offer)
			m.sendFinished(fx, offer)
		}
		m.afterChange(now, fx)
	case tagReserve:
		r := t.req
		if shard.Undecided(res.Err) {
			// The reservation may still commit: declining it could requeue a
			// contact this agent then holds. The contact asks again.
			return
		}
		if res.Err != nil {
			m.decline(fx, r, res.Err.Error())
			return
		}
		m.replyReserve(fx, r, true, "")
		slot, _ := m.rec.Slot(r.GetOfferId())
		if res.Duplicate && (m.noticed[slot.OfferID] || slot.State != pb.SlotState_SLOT_STATE_OFFERED) {
			return
		}
		m.offerNotice(now, fx, slot)
		fx.timer("offer/"+slot.OfferID, time.Duration(slot.Deadline-now))
		m.afterChange(now, fx)
	case tagEnded:
		if shard.Undecided(res.Err) {
			// Not acknowledged: the contact resends ContactEnded.
			return
		}
		_, held := m.rec.Slot(t.offerID)
		if errors.Is(res.Err, shard.ErrUnknownOffer) || (res.Duplicate && !held) {
			// Committed: the agent holds the offer no more.
			m.endedAnswered(fx, t.offerID, t.from, !t.withdrawn)
			return
		}
		if res.Err != nil {
			fx.log("contact end refused", "agent_id", m.id, "offer_id", t.offerID, "err", res.Err)
		}
		m.ack(fx, t.from, pb.AckKind_ACK_KIND_CONTACT_ENDED, t.offerID)
		if res.Err != nil || res.Duplicate {
			m.forget(t.offerID)
			return
		}
		if slot, ok := m.rec.Slot(t.offerID); ok && slot.State == pb.SlotState_SLOT_STATE_WRAP_UP {
			fx.timer("wrap/"+t.offerID, time.Duration(slot.Deadline-now))
			// Wrap-up holds its slot but blocks nothing (shard.Agent.Free):
			// the busy contact that blocked other channels (voice blocks
			// chat) no longer does, so the queues must hear of the capacity
			// this frees now, not when the wrap-up ends.
			m.afterChange(now, fx)
			return
		}
		fx.cancel("offer/" + t.offerID)
		if f, ok := m.rec.Finished(t.offerID); ok && f.How == pb.FinishedHow_FINISHED_HOW_WITHDRAWN {
			fx.notify(m.id, &pb.AgentNotice{SchemaVersion: 1, Kind: pb.NoticeKind_NOTICE_KIND_OFFER_WITHDRAWN, AgentId: m.id, Offer: &pb.Offer{OfferId: t.offerID, ContactId: f.ContactID}, Agent: m.view(), Fence: m.fence})
			m.forget(t.offerID)
		} else {
			m.sendFinishedTo(fx, t.offerID, t.from)
		}
		m.afterChange(now, fx)
	case tagMissed:
		if res.Err != nil || res.Duplicate {
			return
		}
		m.sendOutcome(fx, t.offerID, pb.OutcomeKind_OUTCOME_KIND_MISSED)
		fx.notify(m.id, &pb.AgentNotice{SchemaVersion: 1, Kind: pb.NoticeKind_NOTICE_KIND_OFFER_EXPIRED, AgentId: m.id, Offer: &pb.Offer{OfferId: t.offerID}, Agent: m.view(), Fence: m.fence})
		m.afterChange(now, fx)
	case tagWrapDone:
		if res.Err != nil || res.Duplicate {
			return
		}
		m.sendFinished(fx, t.offerID)
		m.afterChange(now, fx)
	}
}

// accepted follows a committed ACCEPT: the desktop hears it succeeded only
// when the contact's shard has connected the contact to this offer. Until
// then the contact may have moved on — its caller hung up, or a deposed
// owner's stale answer put it back in line — and telling the desktop yes
// would give one contact to two agents.
func (m *agentMachine) accepted(now int64, offerID string, reply func(*pb.AgentCommandReply), repeat bool, fx *effects) {
	_, pending := m.outcomes[offerID]
	if repeat && !pending {
		// Asked again after the contact confirmed the connection.
		v := m.view()
		fx.reply(func() { reply(&pb.AgentCommandReply{Agent: v}) })
		return
	}
	m.accepting[offerID] = append(m.accepting[offerID], reply)
	if repeat {
		return // the acceptance is being resent until the contact answers
	}
	fx.cancel("offer/" + offerID)
	m.sendOutcome(fx, offerID, pb.OutcomeKind_OUTCOME_KIND_ACCEPTED)
	m.afterChange(now, fx)
}

// answerAccepts replies to the ACCEPTs of offerID waiting for the contact.
func (m *agentMachine) answerAccepts(fx *effects, offerID string, connected bool) {
	replies := m.accepting[offerID]
	delete(m.accepting, offerID)
	if len(replies) == 0 {
		return
	}
	r := &pb.AgentCommandReply{Agent: m.view()}
	if !connected {
		r.Error = &pb.Error{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_OFFER, Message: fmt.Sprintf("offer %q was withdrawn: its contact had hung up or been routed elsewhere when the acceptance reached it", offerID)}
	}
	fx.reply(func() {
		for _, reply := range replies {
			reply(r)
		}
	})
}

// contactTarget returns where the contact of offerID lives, from the slot or
// the recent list.
func (m *agentMachine) contactTarget(offerID string) (target, bool) {
	if s, ok := m.rec.Slot(offerID); ok {
		return target{kind: contactKind, shard: s.ContactShard, id: s.ContactID}, true
	}
	return target{}, false
}

func (m *agentMachine) sendOutcome(fx *effects, offerID string, k pb.OutcomeKind) {
	to, ok := m.contactTarget(offerID)
	if !ok {
		// The slot is gone (rejected, missed): the offer id names the
		// contact, and the contact's shard is its queue's.
		to, ok = m.targetFromRecent(offerID)
		if !ok {
			return
		}
	}
	o := &pb.OfferOutcome{OfferId: offerID, ContactId: to.id, AgentId: m.id, Outcome: k}
	m.outcomes[offerID] = pendingOutcome{to: to, msg: o}
	m.resendOutcome(fx, offerID)
}

func (m *agentMachine) resendOutcome(fx *effects, offerID string) {
	p, ok := m.outcomes[offerID]
	if !ok {
		return
	}
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_OfferOutcome{OfferOutcome: p.msg}
	fx.send(p.to, msg)
	fx.timer("outcome/"+offerID, m.env.timing.Retry)
}

// targetFromRecent finds the contact of an offer that already left the
// agent. Slots remember their contact's shard; finished offers keep only the
// contact id, so the shard comes from where the last slot for it lived,
// which the machine keeps while the offer is pending.
func (m *agentMachine) targetFromRecent(offerID string) (target, bool) {
	if p, ok := m.outcomes[offerID]; ok {
		return p.to, true
	}
	if p, ok := m.lastSlots[offerID]; ok {
		return p, true
	}
	return target{}, false
}

func (m *agentMachine) sendFinished(fx *effects, offerID string) {
	to, ok := m.lastSlots[offerID]
	if !ok {
		if to, ok = m.contactTarget(offerID); !ok {
			return
		}
	}
	m.sendFinishedTo(fx, offerID, to)
}

func (m *agentMachine) sendFinishedTo(fx *effects, offerID string, to target) {
	m.finished[offerID] = pendingFinished{to: to, msg: &pb.WrapUpFinished{OfferId: offerID, ContactId: to.id, AgentId: m.id}}
	m.resendFinished(fx, offerID)
}

func (m *agentMachine) resendFinished(fx *effects, offerID string) {
	p, ok := m.finished[offerID]
	if !ok {
		return
	}
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_WrapUpFinished{WrapUpFinished: p.msg}
	fx.send(p.to, msg)
	fx.timer("finished/"+offerID, m.env.timing.Retry)
}

func (m *agentMachine) ack(fx *effects, to target, k pb.AckKind, offerID string) {
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_Ack{Ack: &pb.Ack{Kind: k, OfferId: offerID, AgentId: m.id, ContactId: to.id}}
	fx.send(to, msg)
}

func (m *agentMachine) replyReserve(fx *effects, r *pb.ReserveRequest, granted bool, reason string) {
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_ReserveReply{ReserveReply: &pb.ReserveReply{OfferId: r.GetOfferId(), ContactId: r.GetContactId(), AgentId: m.id, Granted: granted, Reason: reason}}
	fx.send(target{kind: contactKind, shard: r.GetContactShard(), id: r.GetContactId()}, msg)
}

// decline refuses a reservation and tells the asking queue how the agent
// really stands, so its view is corrected at once.
func (m *agentMachine) decline(fx *effects, r *pb.ReserveRequest, reason string) {
	m.replyReserve(fx, r, false, reason)
	delete(m.told, r.GetQueue())
	fx.send(m.queueTarget(r.GetQueue()), m.status(r.GetQueue(), 0))
}

func (m *agentMachine) queueTarget(name string) target {
	return target{kind: queueKind, shard: m.env.queueShard(name), id: name}
}

func (m *agentMachine) offerNotice(now int64, fx *effects, s shard.Slot) {
	for id := range m.noticed {
		if _, ok := m.rec.Slot(id); !ok {
			delete(m.noticed, id)
		}
	}
	m.noticed[s.OfferID] = true
	offer := &pb.Offer{
		OfferId:     s.OfferID,
		ContactId:   s.ContactID,
		Queue:       s.Queue,
		Channel:     s.Channel,
		CustomerKey: s.CustomerKey,
		Attributes:  s.Attributes,
		Priority:    s.Priority,
		Waited:      durationOf(now - s.ArrivedAt),
		Deadline:    timestamppb.New(time.Unix(0, s.Deadline)),
		Fence:       m.fence,
	}
	fx.notify(m.id, &pb.AgentNotice{SchemaVersion: 1, Kind: pb.NoticeKind_NOTICE_KIND_OFFER, AgentId: m.id, Offer: offer, Agent: m.view(), Fence: m.fence})
}

func (m *agentMachine) stateNotice(fx *effects) {
	fx.notify(m.id, &pb.AgentNotice{SchemaVersion: 1, Kind: pb.NoticeKind_NOTICE_KIND_STATE, AgentId: m.id, Agent: m.view(), Fence: m.fence})
}

func (m *agentMachine) shardMessage(now int64, msg *pb.ShardMessage, fx *effects) {
	switch k := msg.GetKind().(type) {
	case *pb.ShardMessage_ReserveRequest:
		m.reserve(now, k.ReserveRequest, fx)
	case *pb.ShardMessage_Candidate:
		m.candidate(now, k.Candidate, fx)
	case *pb.ShardMessage_ClaimFailed:
		if m.claiming && k.ClaimFailed.GetRound() == m.round {
			m.claiming = false
			m.afterChange(now, fx)
		}
	case *pb.ShardMessage_ContactEnded:
		m.contactEnded(now, k.ContactEnded, msg.GetFence(), fx)
	case *pb.ShardMessage_Ack:
		a := k.Ack
		switch a.GetKind() {
		case pb.AckKind_ACK_KIND_OFFER_OUTCOME:
			delete(m.outcomes, a.GetOfferId())
			fx.cancel("outcome/" + a.GetOfferId())
			m.outcomeAcked(now, a, fx)
		case pb.AckKind_ACK_KIND_WRAP_UP_FINISHED:
			delete(m.finished, a.GetOfferId())
			fx.cancel("finished/" + a.GetOfferId())
		}
		m.forget(a.GetOfferId())
	}
}

// outcomeAcked learns whether an accepted offer's contact was connected to
// it. A contact that had moved on frees the agent: the slot leaves as
// withdrawn, and the desktop's ACCEPT fails.
func (m *agentMachine) outcomeAcked(now int64, a *pb.Ack, fx *effects) {
	offerID := a.GetOfferId()
	m.answerAccepts(fx, offerID, a.GetConnected())
	s, ok := m.rec.Slot(offerID)
	if a.GetConnected() || !m.hasRec || !ok || s.State != pb.SlotState_SLOT_STATE_BUSY {
		return
	}
	to, _ := m.contactTarget(offerID)
	m.lastSlots[offerID] = to
	cmd := command(now, m.shard)
	cmd.Kind = &pb.Command_AgentContactEnded{AgentContactEnded: &pb.AgentContactEnded{AgentId: m.id, OfferId: offerID, Withdrawn: true}}
	fx.proposeCmd(cmd, tagEnded{offerID: offerID, from: to, withdrawn: true})
}

func (m *agentMachine) reserve(now int64, r *pb.ReserveRequest, fx *effects) {
	if r.GetQueueSeq() > m.seen[r.GetQueue()] {
		m.seen[r.GetQueue()] = r.GetQueueSeq()
	}
	if m.hasRec {
		if s, ok := m.rec.Slot(r.GetOfferId()); ok {
			if s.State == pb.SlotState_SLOT_STATE_OFFERED {
				m.replyReserve(fx, r, true, "")
				if !m.noticed[s.OfferID] {
					m.offerNotice(now, fx, s)
					fx.timer("offer/"+s.OfferID, time.Duration(s.Deadline-now))
				}
			} else {
				// The contact missed our acceptance: tell it again.
				m.sendOutcome(fx, r.GetOfferId(), pb.OutcomeKind_OUTCOME_KIND_ACCEPTED)
			}
			return
		}
		if f, ok := m.rec.Finished(r.GetOfferId()); ok {
			to := target{kind: contactKind, shard: r.GetContactShard(), id: r.GetContactId()}
			m.lastSlots[r.GetOfferId()] = to
			switch f.How {
			case pb.FinishedHow_FINISHED_HOW_REJECTED:
				m.sendOutcome(fx, r.GetOfferId(), pb.OutcomeKind_OUTCOME_KIND_REJECTED)
			case pb.FinishedHow_FINISHED_HOW_MISSED:
				m.sendOutcome(fx, r.GetOfferId(), pb.OutcomeKind_OUTCOME_KIND_MISSED)
			default:
				m.replyReserve(fx, r, false, "offer already ended")
				m.forget(r.GetOfferId())
			}
			return
		}
	}
	q, ok := m.env.cfg.Queue(r.GetQueue())
	if !ok {
		m.replyReserve(fx, r, false, fmt.Sprintf("unknown queue %q", r.GetQueue()))
		return
	}
	ch := r.GetChannel()
	if !m.hasRec || !shard.ValidChannel(ch) || m.rec.Free()[ch] == 0 {
		m.decline(fx, r, "no free capacity")
		return
	}
	cmd := command(now, m.shard)
	cmd.Kind = &pb.Command_AgentReserve{AgentReserve: &pb.AgentReserve{
		AgentId:      m.id,
		OfferId:      r.GetOfferId(),
		ContactId:    r.GetContactId(),
		Queue:        r.GetQueue(),
		Channel:      ch,
		ContactShard: r.GetContactShard(),
		Deadline:     now + int64(q.OfferTimeout),
		CustomerKey:  r.GetCustomerKey(),
		Attributes:   r.GetAttributes(),
		Priority:     r.GetPriority(),
		ArrivedAt:    r.GetArrivedAt(),
	}}
	fx.proposeCmd(cmd, tagReserve{req: r})
}

func (m *agentMachine) contactEnded(now int64, e *pb.ContactEnded, fence *pb.Fence, fx *effects) {
	from := target{kind: contactKind, shard: fence.GetShard(), id: e.GetContactId()}
	offerID := e.GetOfferId()
	m.lastSlots[offerID] = from
	s, held := m.rec.Slot(offerID)
	if _, left := m.rec.Finished(offerID); !held && left {
		// The offer left this agent for good; a contact still asking is in
		// wrap-up and lost our WrapUpFinished: send it again.
		m.endedAnswered(fx, offerID, from, !e.GetWithdrawn())
		return
	}
	cmd := command(now, m.shard)
	switch {
	case s.State == pb.SlotState_SLOT_STATE_OFFERED:
		cmd.Kind = &pb.Command_AgentOfferOutcome{AgentOfferOutcome: &pb.AgentOfferOutcome{AgentId: m.id, OfferId: offerID, Outcome: pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_WITHDRAWN}}
	case s.State == pb.SlotState_SLOT_STATE_BUSY || !held:
		// Not held in this view: the offer left the agent before the last
		// shard.MaxRecent, or this view is behind the log. Only a commit
		// tells which, so the end is proposed all the same; its refusal as
		// an unknown offer is the committed answer that the agent holds it
		// no more.
		queue := s.Queue
		if !held {
			queue = e.GetQueue()
		}
		var until int64
		fixed := false
		if q, ok := m.env.cfg.Queue(queue); ok && !e.GetWithdrawn() && q.WrapUp > 0 {
			until = now + int64(q.WrapUp)
			fixed = q.WrapUpFixed
		}
		cmd.Kind = &pb.Command_AgentContactEnded{AgentContactEnded: &pb.AgentContactEnded{AgentId: m.id, OfferId: offerID, WrapUpUntil: until, WrapUpFixed: fixed, Withdrawn: e.GetWithdrawn()}}
	default:
		m.ack(fx, from, pb.AckKind_ACK_KIND_CONTACT_ENDED, offerID)
		return
	}
	fx.proposeCmd(cmd, tagEnded{offerID: offerID, from: from, withdrawn: e.GetWithdrawn()})
}

// endedAnswered answers a contact's end of an offer the agent no longer
// holds: acknowledged and, unless the contact withdrew it, finished, so a
// contact in wrap-up completes.
func (m *agentMachine) endedAnswered(fx *effects, offerID string, to target, finished bool) {
	m.ack(fx, to, pb.AckKind_ACK_KIND_CONTACT_ENDED, offerID)
	if finished {
		m.sendFinishedTo(fx, offerID, to)
	}
	m.forget(offerID)
}

func (m *agentMachine) timer(now int64, t timerFired, fx *effects) {
	key, arg, _ := strings.Cut(t.key, "/")
	switch key {
	case "offer":
		s, ok := m.rec.Slot(arg)
		if !ok || s.State != pb.SlotState_SLOT_STATE_OFFERED {
			return
		}
		if s.Deadline > now {
			fx.timer(t.key, time.Duration(s.Deadline-now))
			return
		}
		notReady := true
		if q, ok := m.env.cfg.Queue(s.Queue); ok {
			notReady = q.MissedNotReady
		}
		m.lastSlots[arg] = target{kind: contactKind, shard: s.ContactShard, id: s.ContactID}
		cmd := command(now, m.shard)
		cmd.Kind = &pb.Command_AgentOfferOutcome{AgentOfferOutcome: &pb.AgentOfferOutcome{AgentId: m.id, OfferId: arg, Outcome: pb.OfferOutcomeKind_OFFER_OUTCOME_KIND_MISSED, NotReady: notReady}}
		fx.proposeCmd(cmd, tagMissed{offerID: arg})
	case "wrap":
		s, ok := m.rec.Slot(arg)
		if !ok || s.State != pb.SlotState_SLOT_STATE_WRAP_UP {
			return
		}
		if s.Deadline > now {
			fx.timer(t.key, time.Duration(s.Deadline-now))
			return
		}
		m.lastSlots[arg] = target{kind: contactKind, shard: s.ContactShard, id: s.ContactID}
		cmd := command(now, m.shard)
		cmd.Kind = &pb.Command_AgentWrapUpDone{AgentWrapUpDone: &pb.AgentWrapUpDone{AgentId: m.id, OfferId: arg}}
		fx.proposeCmd(cmd, tagWrapDone{offerID: arg})
	case "outcome":
		m.resendOutcome(fx, arg)
	case "finished":
		m.resendFinished(fx, arg)
	case "round":
		if m.roundOpen && arg == fmt.Sprint(m.round) {
			m.decide(now, fx)
		}
	case "claim":
		if m.claiming && arg == fmt.Sprint(m.round) {
			m.claiming = false
			m.afterChange(now, fx)
		}
	}
}

// remember keeps where an offer's contact lives, for messages sent after the
// command that removes its slot.
func (m *agentMachine) remember(offerID string) {
	if to, ok := m.contactTarget(offerID); ok {
		m.lastSlots[offerID] = to
	}
}

// forget drops an offer's contact address once nothing about it is pending.
func (m *agentMachine) forget(offerID string) {
	_, slot := m.rec.Slot(offerID)
	_, o := m.outcomes[offerID]
	_, f := m.finished[offerID]
	if !slot && !o && !f {
		delete(m.lastSlots, offerID)
	}
}

// status is the agent's availability for one of its queues.
func (m *agentMachine) status(queue string, round uint64) *pb.ShardMessage {
	st := &pb.AgentStatus{AgentId: m.id, Round: round, AgentShard: m.shard, SeenSeq: m.seen[queue]}
	if m.hasRec {
		st.Version = m.rec.Version
		st.IdleSince = m.rec.IdleSince
		st.Occupancy = m.rec.Occupancy()
		st.Site = m.rec.Profile.GetSite()
		free := m.rec.Free()
		for _, ch := range shard.Channels {
			if free[ch] > 0 {
				st.Free = append(st.Free, &pb.ChannelSlots{Channel: ch, Free: free[ch]})
			}
		}
	}
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_AgentStatus{AgentStatus: st}
	return msg
}

// afterChange runs after every committed change: an agent with free
// capacity and several queues starts a round; otherwise it tells its queues
// how it stands.
func (m *agentMachine) afterChange(now int64, fx *effects) {
	m.roundOpen, m.claiming, m.best = false, false, nil
	clear(m.awaiting)
	free := false
	if m.hasRec {
		for _, n := range m.rec.Free() {
			free = free || n > 0
		}
	}
	// With one queue there is nothing to choose between: the queue's own
	// matching gives the agent the best contact it can serve, so a plain
	// status does what a round would, with two messages fewer.
	if !free || len(m.queues) <= 1 {
		var capacity [shard.NumChannels]uint32
		if m.hasRec {
			capacity = m.rec.Free()
		}
		for _, q := range m.queues {
			// An unavailable agent whose queue already knows it (same free
			// capacity, same holds answered) has nothing to tell it: after
			// an accept, say.
			was, ok := m.told[q.Queue.Name]
			now := told{free: capacity, seen: m.seen[q.Queue.Name]}
			if !free && ok && was == now {
				continue
			}
			m.told[q.Queue.Name] = now
			fx.send(m.queueTarget(q.Queue.Name), m.status(q.Queue.Name, 0))
		}
		return
	}
	clear(m.told)
	if m.quiet {
		// Nothing waited for the agent last time: queues that have
		// someone for it now invite it to a round; the others keep it
		// free for their arrivals, and answer nothing.
		for _, q := range m.queues {
			st := m.status(q.Queue.Name, 0)
			st.GetAgentStatus().Invite = true
			fx.send(m.queueTarget(q.Queue.Name), st)
		}
		return
	}
	m.openRound(fx)
}

// openRound asks every queue of the agent for its best contact for it.
func (m *agentMachine) openRound(fx *effects) {
	m.round++
	m.roundOpen = true
	for _, q := range m.queues {
		m.awaiting[q.Queue.Name] = true
		fx.send(m.queueTarget(q.Queue.Name), m.status(q.Queue.Name, m.round))
	}
	fx.timer(fmt.Sprintf("round/%d", m.round), m.env.timing.Round)
}

// invited opens a round at a queue's invitation, if the agent is still free
// and not choosing already.
func (m *agentMachine) invited(fx *effects) {
	m.quiet = false
	if m.roundOpen || m.claiming || !m.hasRec || len(m.queues) < 2 {
		return
	}
	for _, n := range m.rec.Free() {
		if n > 0 {
			clear(m.awaiting)
			m.best = nil
			m.openRound(fx)
			return
		}
	}
}

func (m *agentMachine) candidate(now int64, c *pb.Candidate, fx *effects) {
	if c.GetInvite() {
		m.invited(fx)
		return
	}
	if !m.roundOpen || c.GetRound() != m.round {
		if c.GetContactId() != "" && !m.claiming && !m.roundOpen {
			// A late answer from a round that was given up: the queue holds
			// us as soliciting; our current status releases it.
			fx.send(m.queueTarget(c.GetQueue()), m.status(c.GetQueue(), 0))
		}
		return
	}
	delete(m.awaiting, c.GetQueue())
	if c.GetContactId() != "" && better(c, m.best) {
		m.best = c
	}
	if len(m.awaiting) == 0 {
		m.decide(now, fx)
	}
}

// better orders candidates across queues: priority after ageing, then the
// longest wait, then queue name for a total order.
func better(c, than *pb.Candidate) bool {
	if than == nil {
		return true
	}
	if c.GetPriority() != than.GetPriority() {
		return c.GetPriority() > than.GetPriority()
	}
	if c.GetArrivedAt() != than.GetArrivedAt() {
		return c.GetArrivedAt() < than.GetArrivedAt()
	}
	return c.GetQueue() < than.GetQueue()
}

func (m *agentMachine) decide(now int64, fx *effects) {
	m.roundOpen = false
	clear(m.awaiting)
	best := m.best
	m.best = nil
	m.quiet = best == nil
	if best == nil {
		return
	}
	m.claiming = true
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_Claim{Claim: &pb.Claim{AgentId: m.id, Round: m.round, Queue: best.GetQueue(), ContactId: best.GetContactId(), AgentShard: m.shard}}
	fx.send(m.queueTarget(best.GetQueue()), msg)
	fx.timer(fmt.Sprintf("claim/%d", m.round), 4*m.env.timing.Round)
}

// rebuild re-drives the agent's work from its committed record.
func (m *agentMachine) rebuild(now int64, fx *effects) {
	if !m.hasRec || !m.rec.LoggedIn() {
		return
	}
	for _, s := range m.rec.Slots {
		switch s.State {
		case pb.SlotState_SLOT_STATE_OFFERED:
			m.offerNotice(now, fx, s)
			fx.timer("offer/"+s.OfferID, time.Duration(s.Deadline-now))
		case pb.SlotState_SLOT_STATE_BUSY:
			m.sendOutcome(fx, s.OfferID, pb.OutcomeKind_OUTCOME_KIND_ACCEPTED)
		case pb.SlotState_SLOT_STATE_WRAP_UP:
			fx.timer("wrap/"+s.OfferID, time.Duration(s.Deadline-now))
		}
	}
	m.afterChange(now, fx)
}
