package actors

import (
	"fmt"
	"math"
	"time"

	"github.com/tsunagu/tsunagu/actors/match"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/customer"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Timing holds the protocol's retry intervals.
type Timing struct {
	// Retry is how often an unanswered cross-shard message is resent.
	Retry time.Duration
	// Probe is how often a long hold (an offer out, a wrap-up) is checked
	// with the other side, so a message lost in a failover is recovered.
	Probe time.Duration
	// Round bounds how long a freed agent waits for its queues' candidates.
	Round time.Duration
	// InstructionRetry is how long to wait for a carrier's ack.
	InstructionRetry time.Duration
}

// DefaultTiming returns the defaults.
func DefaultTiming() Timing {
	return Timing{Retry: time.Second, Probe: 10 * time.Second, Round: 250 * time.Millisecond, InstructionRetry: time.Second}
}

// contactMachine decides for one contact. Its record is the last committed
// copy; everything else is soft state a new owner rebuilds from the record.
type contactMachine struct {
	id     string
	shard  uint32
	fence  *pb.Fence
	cfg    *routing.Config
	timing Timing
	queue  *routing.Queue

	rec    shard.Contact
	hasRec bool

	// While arriving: the request and everyone waiting for its answer.
	req     *pb.ContactArrival
	replies []func(*pb.ArrivalReply)
	// arriving is the arrival waiting for the queue's holdAnswer.
	arriving *tagArrive
	// reserve: the agent has answered the current hold.
	granted bool
	// ended: the agent has acknowledged ContactEnded.
	endedAcked bool
	// The connect instruction to the carrier, until acknowledged.
	instrID    string
	instrAcked bool
	// agentShard is the shard of the agent the contact is held for.
	agentShard uint32
	round      uint64
	queueSeq   uint64
	// avoid keeps agents who rejected or missed this contact from getting
	// it straight back (soft: lost on failover, which only costs a repeat).
	avoid []match.Avoid
}

// Tags saying what a committed proposal was for.
type (
	tagArrive struct {
		cmd    *pb.Command
		extras routing.Requirements
		// hold is the agent the queue held the contact for in the
		// arrival's commit; agentID is empty for none.
		hold lockContact
	}
	tagLock   struct{ l lockContact }
	tagUnlock struct {
		ackAgent bool
		avoid    string
	}
	tagConnect struct{}
	tagEnd     struct {
		reply func(*pb.MediaEventReply)
		was   pb.ContactState
	}
	tagMedia struct {
		reply func(*pb.MediaEventReply)
		ev    *pb.MediaEvent
	}
	tagDone struct{}
)

// idleBeforePassivation is how long a waiting contact's actor stays up:
// with agents free, a contact is held microseconds after it is lined up,
// and stopping and respawning its actor in between costs more than a timer.
const idleBeforePassivation = time.Second

// passivatable: a contact that is simply waiting needs no actor; the queue
// holds its place and the shard its record, and it is activated again when
// it is held for an agent or a media event arrives.
func (m *contactMachine) passivatable() bool {
	return m.hasRec && m.rec.State == pb.ContactState_CONTACT_STATE_QUEUED && m.req == nil && len(m.replies) == 0
}

func (m *contactMachine) queueTarget() target {
	return target{kind: queueKind, shard: m.shard, id: m.queue.Name}
}

func (m *contactMachine) agentTarget() target {
	return target{kind: agentKind, shard: m.agentShard, id: m.rec.AgentID}
}

// step handles one input at time now.
func (m *contactMachine) step(now int64, in any, fx *effects) {
	switch in := in.(type) {
	case startContact:
		m.start(now, in, fx)
	case customerLoaded:
		m.arrive(now, in, fx)
	case holdAnswer:
		m.holdAnswered(in, fx)
	case committed:
		m.committed(now, in, fx)
	case lockContact:
		m.lock(now, in, fx)
	case media:
		m.media(now, in, fx)
	case instructionAcked:
		m.instructionAcked(now, in, fx)
	case timerFired:
		m.timer(now, in, fx)
	case rebuild:
		m.rebuild(now, fx)
	case *pb.ShardMessage:
		m.shardMessage(now, in, fx)
	}
}

func (m *contactMachine) start(now int64, s startContact, fx *effects) {
	if m.hasRec {
		// A retry that raced the first request, after the commit.
		m.settledHold(fx, s.hold)
		fx.reply(arrivalReplyFunc(s.reply, m.replyFor(nil)))
		return
	}
	m.replies = append(m.replies, s.reply)
	if m.req != nil {
		m.settledHold(fx, s.hold)
		return // the first request is on its way; answer both then
	}
	m.req = s.req
	if m.queue == nil {
		m.queue = m.cfg.Queues[s.req.GetQueue()]
	}
	if s.arrive != nil {
		// The queue built the arrival and answered whether to hold it.
		m.propose(&tagArrive{cmd: s.arrive, extras: s.extras, hold: s.hold}, fx)
		return
	}
	if key := s.req.GetCustomerKey(); key != "" {
		fx.lookup = &key
		return
	}
	m.arrive(now, customerLoaded{}, fx)
}

// settled tells the queue that an arrival it answered will not be lined
// by this request, and to forget the hold it gave, if any.
func (m *contactMachine) settled(fx *effects, hold lockContact) {
	fx.send(m.queueTarget(), lineSettled{contactID: m.id, hold: hold})
}

// settledHold gives back a hold that came with a request this actor does
// not propose (a retry racing the first): it says nothing of the first
// request, which is still on its way into line.
func (m *contactMachine) settledHold(fx *effects, hold lockContact) {
	if hold.agentID != "" {
		fx.send(m.queueTarget(), lineSettled{contactID: m.id, hold: hold, keepUnheld: true})
	}
}

// arrive builds the arrival once the customer context is read and asks
// the queue whether to hold it for an agent in the same commit.
func (m *contactMachine) arrive(now int64, cl customerLoaded, fx *effects) {
	req := m.req
	if req == nil || m.hasRec {
		return
	}
	if cl.err != nil {
		fx.log("customer context unavailable; routing without personalisation", "contact_id", m.id, "err", cl.err)
	}
	cmd, extras := arrivalCommand(now, m.shard, m.cfg, m.queue, req, cl)
	m.arriving = &tagArrive{cmd: cmd, extras: extras}
	fx.send(m.queueTarget(), holdAsk{w: waitingOf(cmd.GetContactArrive()), extras: extras})
}

// arrivalCommand builds the ContactArrive of request req at now,
// personalised by the customer context when there is one: tier sets
// priority, language a requirement, the last agent a preferred agent for
// the queue's window. extras are its requirements beyond the queue's.
func arrivalCommand(now int64, shardID uint32, cfg *routing.Config, q *routing.Queue, req *pb.ContactArrival, cl customerLoaded) (*pb.Command, routing.Requirements) {
	a := &pb.ContactArrive{
		ContactId:   req.GetContactId(),
		Queue:       req.GetQueue(),
		Channel:     req.GetChannel(),
		Direction:   req.GetDirection(),
		CustomerKey: req.GetCustomerKey(),
		Attributes:  req.GetAttributes(),
		Skills:      req.GetSkills(),
		Priority:    req.GetPriority(),
		ArrivedAt:   now,
		Carrier:     req.GetCarrier(),
		Language:    req.GetLanguage(),
		Site:        req.GetSite(),
	}
	if a.Direction == pb.Direction_DIRECTION_UNSPECIFIED {
		a.Direction = pb.Direction_DIRECTION_INBOUND
	}
	if a.Carrier == "" {
		a.Carrier = DefaultCarrier
	}
	if ws := req.GetWaitingSince(); ws != nil {
		if t := ws.AsTime().UnixNano(); t < now {
			a.ArrivedAt = t
		}
	}
	if cl.found {
		a.Tier = cl.ctx.Tier
		a.Priority += cfg.TierPriority[cl.ctx.Tier]
		if a.Language == "" {
			a.Language = cl.ctx.Language
		}
		if w := q.PreferredWindow; w > 0 && cl.ctx.LastAgent != "" {
			a.PreferredAgent = cl.ctx.LastAgent
			a.PreferredUntil = now + int64(w)
		}
	}
	if a.Language != "" {
		a.Skills = append(append([]*pb.SkillRequirement(nil), a.Skills...),
			&pb.SkillRequirement{Skill: routing.LanguageSkill(a.Language), MinLevel: 1})
	}
	cmd := command(now, shardID)
	cmd.Kind = &pb.Command_ContactArrive{ContactArrive: a}
	return cmd, routing.NewRequirements(a.Skills)
}

// waitingOf is how arrival a waits in line. Its seq is not known before
// the commit: until set, it ranks after everyone who arrived at the same
// instant.
func waitingOf(a *pb.ContactArrive) match.Waiting {
	return match.Waiting{
		ContactID:      a.GetContactId(),
		Seq:            math.MaxUint64,
		ArrivedAt:      a.GetArrivedAt(),
		Priority:       a.GetPriority(),
		Channel:        a.GetChannel(),
		PreferredAgent: a.GetPreferredAgent(),
		PreferredUntil: a.GetPreferredUntil(),
		Site:           a.GetSite(),
	}
}

// heldBy reports whether the record is this contact held, as it arrived,
// for agent: the commit of an arrival proposed with that hold.
func (m *contactMachine) heldBy(agent string) bool {
	return m.hasRec && m.rec.State == pb.ContactState_CONTACT_STATE_RESERVED && m.rec.AgentID == agent &&
		m.rec.Attempts == 1 && m.rec.OfferID == OfferID(m.id, m.shard, m.rec.Seq, 1)
}

// holdAnswered proposes the arrival once the queue has said whether to hold
// the contact for an agent in the same commit.
func (m *contactMachine) holdAnswered(h holdAnswer, fx *effects) {
	t := m.arriving
	if t == nil || m.hasRec {
		m.settled(fx, h.hold)
		return
	}
	t.hold = h.hold
	m.propose(t, fx)
}

// propose proposes arrival t, held for t.hold's agent if it names one.
func (m *contactMachine) propose(t *tagArrive, fx *effects) {
	m.arriving = nil
	t.cmd.GetContactArrive().HoldFor = t.hold.agentID
	fx.proposeCmd(t.cmd, *t)
}

// Extras returns a contact's requirements beyond its queue's.
func extrasOf(c *shard.Contact) routing.Requirements {
	return routing.NewRequirements(c.Arrival.GetSkills())
}

func (m *contactMachine) replyFor(err error) *pb.ArrivalReply {
	r := &pb.ArrivalReply{ContactId: m.id, Queue: m.queue.Name}
	if err != nil {
		r.Error = errorOf(err)
		return r
	}
	r.MediaSubject = MediaSubject(m.rec.Arrival.GetCarrier(), m.queue.Name, m.id)
	r.Fence = m.fence
	r.Status = pb.ArrivalStatus_ARRIVAL_STATUS_QUEUED
	r.State = m.rec.State
	return r
}

func arrivalReplyFunc(f func(*pb.ArrivalReply), r *pb.ArrivalReply) func() {
	return func() { f(r) }
}

func (m *contactMachine) committed(now int64, c committed, fx *effects) {
	res := c.res
	if res.Err == nil && res.HasContact {
		m.rec, m.hasRec = res.Contact, true
	}
	switch t := c.tag.(type) {
	case tagArrive:
		replies := m.replies
		m.replies = nil
		if shard.Undecided(res.Err) {
			// It may still commit, hold and all: the callers retry, and
			// this actor proposes the same arrival again, which a commit
			// in between makes a duplicate.
			for _, r := range replies {
				fx.reply(arrivalReplyFunc(r, m.replyFor(res.Err)))
			}
			m.arriving = &t
			fx.timer("arrive", m.timing.Retry)
			return
		}
		m.req = nil
		held := t.hold.agentID != "" && res.Err == nil && (!res.Duplicate || m.heldBy(t.hold.agentID))
		if !held {
			// The queue forgets what it answered for this arrival.
			m.settled(fx, t.hold)
		}
		if res.Err != nil {
			for _, r := range replies {
				fx.reply(arrivalReplyFunc(r, m.replyFor(res.Err)))
			}
			fx.stop = true
			return
		}
		if held {
			fx.send(m.queueTarget(), enqueued{rec: m.rec, extras: t.extras, replies: replies, held: true})
			m.locked(t.hold, fx)
			return
		}
		if m.rec.State == pb.ContactState_CONTACT_STATE_QUEUED {
			fx.send(m.queueTarget(), enqueued{rec: m.rec, extras: t.extras, replies: replies})
			fx.timer("idle", idleBeforePassivation)
			return
		}
		for _, r := range replies {
			fx.reply(arrivalReplyFunc(r, m.replyFor(nil)))
		}
	case tagLock:
		if res.Err != nil {
			queued := m.hasRec && m.rec.State == pb.ContactState_CONTACT_STATE_QUEUED
			fx.send(m.queueTarget(), lockFailed{contactID: m.id, agentID: t.l.agentID, seq: t.l.seq, requeue: queued, rec: m.rec, extras: extrasOf(&m.rec), avoid: m.liveAvoid(now)})
			return
		}
		m.locked(t.l, fx)
	case tagUnlock:
		if res.Err != nil {
			fx.log("unlock refused", "contact_id", m.id, "err", res.Err)
			m.settled(fx, lockContact{})
			return
		}
		fx.cancel("reserve")
		if t.avoid != "" {
			m.avoid = append(m.avoid, match.Avoid{Agent: t.avoid, Until: now + int64(m.queue.OfferTimeout)})
		}
		fx.send(m.queueTarget(), requeued{rec: m.rec, extras: extrasOf(&m.rec), avoid: m.liveAvoid(now)})
		fx.timer("idle", idleBeforePassivation)
	case tagConnect:
		if shard.Undecided(res.Err) {
			// The connect may still commit under a new leader: withdrawing
			// the offer now could free an agent who is about to be put
			// through. The agent resends its acceptance until answered.
			fx.log("connect not committed; waiting for the agent's resend", "contact_id", m.id, "offer_id", m.rec.OfferID, "err", res.Err)
			return
		}
		if res.Err != nil {
			// The contact ended while the agent accepted: free the agent.
			m.sendEnded(fx, true)
			m.ackAgentOffer(fx, pb.AckKind_ACK_KIND_OFFER_OUTCOME, m.rec.OfferID, m.rec.AgentID, m.agentShard, false)
			return
		}
		fx.cancel("reserve")
		m.ackAgentOffer(fx, pb.AckKind_ACK_KIND_OFFER_OUTCOME, m.rec.OfferID, m.rec.AgentID, m.agentShard, true)
		m.instruct(fx, 1)
	case tagEnd:
		m.ended(now, t, res, fx)
	case tagMedia:
		if res.Err != nil {
			fx.reply(func() { t.reply(&pb.MediaEventReply{ContactId: m.id, State: m.rec.State, Error: errorOf(res.Err)}) })
			return
		}
		fx.reply(func() { t.reply(&pb.MediaEventReply{ContactId: m.id, State: m.rec.State}) })
		if !res.Duplicate {
			m.mediaNotice(t.ev, fx)
		}
	case tagDone:
		if res.Err != nil {
			fx.log("done refused", "contact_id", m.id, "err", res.Err)
			return
		}
		m.ackAgent(fx, pb.AckKind_ACK_KIND_WRAP_UP_FINISHED)
		m.recordInteraction(fx, "handled")
		fx.stop = true
	}
}

func (m *contactMachine) lock(now int64, l lockContact, fx *effects) {
	if !m.hasRec || m.rec.State != pb.ContactState_CONTACT_STATE_QUEUED {
		fx.send(m.queueTarget(), lockFailed{contactID: m.id, agentID: l.agentID, seq: l.seq})
		return
	}
	cmd := command(now, m.shard)
	cmd.Kind = &pb.Command_ContactLock{ContactLock: &pb.ContactLock{
		ContactId: m.id,
		AgentId:   l.agentID,
		OfferId:   OfferID(m.id, m.shard, m.rec.Seq, m.rec.Attempts+1),
	}}
	fx.proposeCmd(cmd, tagLock{l: l})
}

// locked asks the agent's shard to reserve the agent the contact is now
// held for.
func (m *contactMachine) locked(l lockContact, fx *effects) {
	m.agentShard, m.round, m.queueSeq, m.granted = l.agentShard, l.round, l.seq, false
	m.sendReserve(fx)
	fx.timer("reserve", m.timing.Retry)
}

func (m *contactMachine) sendReserve(fx *effects) {
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_ReserveRequest{ReserveRequest: &pb.ReserveRequest{
		OfferId:      m.rec.OfferID,
		ContactId:    m.id,
		Queue:        m.queue.Name,
		Channel:      m.rec.Arrival.GetChannel(),
		AgentId:      m.rec.AgentID,
		ContactShard: m.shard,
		Priority:     m.rec.Arrival.GetPriority(),
		ArrivedAt:    m.rec.Arrival.GetArrivedAt(),
		CustomerKey:  m.rec.Arrival.GetCustomerKey(),
		Attributes:   m.rec.Arrival.GetAttributes(),
		Round:        m.round,
		QueueSeq:     m.queueSeq,
	}}
	fx.send(m.agentTarget(), msg)
}

func (m *contactMachine) shardMessage(now int64, msg *pb.ShardMessage, fx *effects) {
	switch k := msg.GetKind().(type) {
	case *pb.ShardMessage_ReserveReply:
		r := k.ReserveReply
		if r.GetGranted() && r.GetOfferId() != m.rec.OfferID {
			// The agent's shard holds an offer this contact has moved on
			// from (a stale decline put it back in line): free the agent
			// before its desktop accepts a contact that will not come.
			m.withdraw(fx, r.GetOfferId(), r.GetAgentId(), msg.GetFence().GetShard())
			return
		}
		if !m.hasRec || m.rec.State != pb.ContactState_CONTACT_STATE_RESERVED || r.GetOfferId() != m.rec.OfferID {
			return
		}
		if r.GetGranted() {
			m.granted = true
			fx.timer("reserve", m.timing.Probe)
			return
		}
		// A decline from a deposed owner of the agent's shard may come after
		// the real owner granted the offer: withdraw it there too, so the
		// agent is not left holding a contact that is back in line.
		m.withdraw(fx, r.GetOfferId(), r.GetAgentId(), msg.GetFence().GetShard())
		m.unlock(now, pb.UnlockReason_UNLOCK_REASON_DECLINED, false, fx)
	case *pb.ShardMessage_OfferOutcome:
		m.outcome(now, k.OfferOutcome, msg.GetFence().GetShard(), fx)
	case *pb.ShardMessage_Ack:
		if k.Ack.GetKind() == pb.AckKind_ACK_KIND_CONTACT_ENDED && k.Ack.GetOfferId() == m.rec.OfferID {
			m.endedAcked = true
			if m.rec.Terminal() {
				fx.cancel("ended")
				fx.stop = true
				return
			}
			// In wrap-up: keep probing in case WrapUpFinished is lost.
			fx.timer("ended", m.wrapUpProbe())
		}
	case *pb.ShardMessage_WrapUpFinished:
		w := k.WrapUpFinished
		switch {
		case m.rec.State == pb.ContactState_CONTACT_STATE_WRAP_UP && w.GetOfferId() == m.rec.OfferID:
			cmd := command(now, m.shard)
			cmd.Kind = &pb.Command_ContactDone{ContactDone: &pb.ContactDone{ContactId: m.id, OfferId: w.GetOfferId()}}
			fx.proposeCmd(cmd, tagDone{})
		default:
			// Already done, or about an older offer: acknowledge so the
			// agent stops resending.
			m.ackAgentOffer(fx, pb.AckKind_ACK_KIND_WRAP_UP_FINISHED, w.GetOfferId(), w.GetAgentId(), msg.GetFence().GetShard(), false)
		}
	}
}

func (m *contactMachine) outcome(now int64, o *pb.OfferOutcome, from uint32, fx *effects) {
	current := m.hasRec && o.GetOfferId() == m.rec.OfferID
	if !current || m.rec.State != pb.ContactState_CONTACT_STATE_RESERVED {
		if current && o.GetOutcome() == pb.OutcomeKind_OUTCOME_KIND_ACCEPTED && m.rec.State == pb.ContactState_CONTACT_STATE_ABANDONED {
			// The caller hung up as the agent accepted: release the agent.
			m.sendEnded(fx, true)
		}
		// An acceptance of any other offer than the one this contact is
		// connected to stands for nothing: the unset connected flag makes
		// the agent's shard free the slot and refuse the ACCEPT.
		connected := current && m.rec.ConnectedAt != 0
		m.ackAgentOffer(fx, pb.AckKind_ACK_KIND_OFFER_OUTCOME, o.GetOfferId(), o.GetAgentId(), from, connected)
		return
	}
	switch o.GetOutcome() {
	case pb.OutcomeKind_OUTCOME_KIND_ACCEPTED:
		cmd := command(now, m.shard)
		cmd.Kind = &pb.Command_ContactConnect{ContactConnect: &pb.ContactConnect{ContactId: m.id, OfferId: m.rec.OfferID}}
		fx.proposeCmd(cmd, tagConnect{})
	case pb.OutcomeKind_OUTCOME_KIND_REJECTED:
		m.unlock(now, pb.UnlockReason_UNLOCK_REASON_REJECTED, true, fx)
	case pb.OutcomeKind_OUTCOME_KIND_MISSED:
		m.unlock(now, pb.UnlockReason_UNLOCK_REASON_MISSED, true, fx)
	}
}

func (m *contactMachine) unlock(now int64, reason pb.UnlockReason, ackAgent bool, fx *effects) {
	if ackAgent {
		m.ackAgent(fx, pb.AckKind_ACK_KIND_OFFER_OUTCOME)
	}
	cmd := command(now, m.shard)
	cmd.Kind = &pb.Command_ContactUnlock{ContactUnlock: &pb.ContactUnlock{ContactId: m.id, OfferId: m.rec.OfferID, Reason: reason}}
	tag := tagUnlock{ackAgent: ackAgent}
	if reason != pb.UnlockReason_UNLOCK_REASON_DECLINED {
		tag.avoid = m.rec.AgentID
	}
	// Until it is back in line, the queue holds no later arrival for an
	// agent as it arrives: it would pass this contact.
	fx.send(m.queueTarget(), returning{contactID: m.id})
	fx.proposeCmd(cmd, tag)
}

// liveAvoid drops avoidances that have ended.
func (m *contactMachine) liveAvoid(now int64) []match.Avoid {
	live := m.avoid[:0]
	for _, a := range m.avoid {
		if a.Until > now {
			live = append(live, a)
		}
	}
	m.avoid = live
	return append([]match.Avoid(nil), live...)
}

// withdraw tells an agent's shard, once, to drop an offer of this contact
// that is not its current one.
func (m *contactMachine) withdraw(fx *effects, offerID, agentID string, agentShard uint32) {
	if agentID == "" {
		return
	}
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_ContactEnded{ContactEnded: &pb.ContactEnded{OfferId: offerID, ContactId: m.id, AgentId: agentID, Withdrawn: true}}
	fx.send(target{kind: agentKind, shard: agentShard, id: agentID}, msg)
}

func (m *contactMachine) ackAgent(fx *effects, k pb.AckKind) {
	m.ackAgentOffer(fx, k, m.rec.OfferID, m.rec.AgentID, m.agentShard, false)
}

// ackAgentOffer stops an agent's resends about one of this contact's offers;
// for an acceptance, connected says whether the contact is connected to it.
func (m *contactMachine) ackAgentOffer(fx *effects, k pb.AckKind, offerID, agentID string, agentShard uint32, connected bool) {
	if agentID == "" {
		return
	}
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_Ack{Ack: &pb.Ack{Kind: k, OfferId: offerID, AgentId: agentID, ContactId: m.id, Connected: connected}}
	fx.send(target{kind: agentKind, shard: agentShard, id: agentID}, msg)
}

// instruct sends (or resends) the connect instruction to the carrier. The
// instruction id is fixed per offer, so carriers can drop repeats.
func (m *contactMachine) instruct(fx *effects, attempt uint32) {
	id := m.rec.OfferID + "/connect"
	if m.instrID != id {
		m.instrID, m.instrAcked = id, false
	}
	endpoint := ""
	if p, ok := m.cfg.Agents[m.rec.AgentID]; ok {
		endpoint = p.GetEndpoint()
	}
	fx.instr = append(fx.instr, instruction{carrier: m.rec.Arrival.GetCarrier(), in: &pb.RoutingInstruction{
		SchemaVersion: 1,
		InstructionId: id,
		Kind:          pb.InstructionKind_INSTRUCTION_KIND_CONNECT,
		ContactId:     m.id,
		Queue:         m.queue.Name,
		AgentId:       m.rec.AgentID,
		AgentEndpoint: endpoint,
		Channel:       m.rec.Arrival.GetChannel(),
		Fence:         m.fence,
		Attempt:       attempt,
	}})
	fx.timer(fmt.Sprintf("instr/%d", attempt), instructionBackoff(m.timing.InstructionRetry, attempt))
}

// maxInstructionBackoff caps the wait between resends of an instruction.
const maxInstructionBackoff = 30 * time.Second

// instructionBackoff doubles the wait after each unanswered attempt.
func instructionBackoff(base time.Duration, attempt uint32) time.Duration {
	d := base
	for i := uint32(1); i < attempt && d < maxInstructionBackoff; i++ {
		d *= 2
	}
	return min(d, maxInstructionBackoff)
}

// OfferID names the attempt-th hold of a contact (shard.OfferID).
func OfferID(contactID string, shardID uint32, seq uint64, attempt uint32) string {
	return shard.OfferID(contactID, shardID, seq, attempt)
}

func (m *contactMachine) instructionAcked(now int64, a instructionAcked, fx *effects) {
	if a.id != m.instrID || m.instrAcked {
		return
	}
	if a.err != nil {
		// Timeout or no responder: the retry timer resends.
		return
	}
	m.instrAcked = true
	if e := a.ack.GetError(); e != nil {
		fx.log("carrier could not carry out instruction", "contact_id", m.id, "instruction_id", a.id, "code", e.GetCode().String(), "message", e.GetMessage())
	}
}

func (m *contactMachine) media(now int64, md media, fx *effects) {
	if !m.hasRec {
		fx.reply(func() {
			md.reply(&pb.MediaEventReply{ContactId: m.id, Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE, Message: fmt.Sprintf("contact %q is still being accepted; retry", m.id)}})
		})
		return
	}
	switch md.ev.GetKind() {
	case pb.MediaKind_MEDIA_KIND_HUNG_UP:
		cmd := command(now, m.shard)
		cmd.Kind = &pb.Command_ContactEnd{ContactEnd: &pb.ContactEnd{ContactId: m.id, Reason: pb.EndReason_END_REASON_HANGUP}}
		fx.proposeCmd(cmd, tagEnd{reply: md.reply, was: m.rec.State})
	case pb.MediaKind_MEDIA_KIND_DTMF:
		state := m.rec.State
		fx.reply(func() { md.reply(&pb.MediaEventReply{ContactId: m.id, State: state}) })
		m.mediaNotice(md.ev, fx)
	default:
		cmd := command(now, m.shard)
		cmd.Kind = &pb.Command_ContactMedia{ContactMedia: &pb.ContactMedia{ContactId: m.id, Kind: md.ev.GetKind()}}
		fx.proposeCmd(cmd, tagMedia{reply: md.reply, ev: md.ev})
	}
}

// mediaNotice tells the agent holding the contact about a media event.
func (m *contactMachine) mediaNotice(ev *pb.MediaEvent, fx *effects) {
	if m.rec.State != pb.ContactState_CONTACT_STATE_CONNECTED || m.rec.AgentID == "" {
		return
	}
	fx.notify(m.rec.AgentID, &pb.AgentNotice{SchemaVersion: 1, Kind: pb.NoticeKind_NOTICE_KIND_MEDIA, AgentId: m.rec.AgentID, Media: ev, Fence: m.fence})
}

func (m *contactMachine) ended(now int64, t tagEnd, res *shard.Result, fx *effects) {
	state := m.rec.State
	if res.Err != nil {
		fx.reply(func() { t.reply(&pb.MediaEventReply{ContactId: m.id, State: state, Error: errorOf(res.Err)}) })
		return
	}
	fx.reply(func() { t.reply(&pb.MediaEventReply{ContactId: m.id, State: state}) })
	if res.Duplicate {
		return
	}
	switch t.was {
	case pb.ContactState_CONTACT_STATE_QUEUED:
		fx.send(m.queueTarget(), dequeued{contactID: m.id})
		m.recordInteraction(fx, "abandoned")
		fx.stop = true
	case pb.ContactState_CONTACT_STATE_RESERVED:
		fx.cancel("reserve")
		m.recordInteraction(fx, "abandoned")
		m.sendEnded(fx, true)
	case pb.ContactState_CONTACT_STATE_CONNECTED:
		m.sendEnded(fx, false)
	}
}

// sendEnded tells the agent the contact is over; resent until acknowledged.
func (m *contactMachine) sendEnded(fx *effects, withdrawn bool) {
	m.endedAcked = false
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_ContactEnded{ContactEnded: &pb.ContactEnded{
		OfferId:   m.rec.OfferID,
		ContactId: m.id,
		AgentId:   m.rec.AgentID,
		Queue:     m.queue.Name,
		Withdrawn: withdrawn,
	}}
	fx.send(m.agentTarget(), msg)
	fx.timer("ended", m.timing.Retry)
}

// wrapUpProbe is how long a contact in wrap-up waits for WrapUpFinished
// before asking again. A queue without wrap-up finishes the agent with the
// acknowledgement of the end, so its WrapUpFinished is overdue at once.
func (m *contactMachine) wrapUpProbe() time.Duration {
	if m.queue != nil && m.queue.WrapUp == 0 {
		return m.timing.Retry
	}
	return m.timing.Probe
}

func (m *contactMachine) recordInteraction(fx *effects, outcome string) {
	key := m.rec.Arrival.GetCustomerKey()
	if key == "" {
		return
	}
	fx.records = append(fx.records, interaction{key: key, in: customer.Interaction{
		ContactID: m.id,
		Channel:   channelName(m.rec.Arrival.GetChannel()),
		Queue:     m.queue.Name,
		AgentID:   m.rec.HandledBy,
		StartedAt: time.Unix(0, m.rec.Arrival.GetArrivedAt()),
		EndedAt:   time.Unix(0, m.rec.EndedAt),
		Outcome:   outcome,
	}})
}

func (m *contactMachine) timer(now int64, t timerFired, fx *effects) {
	switch {
	case t.key == "reserve":
		if m.rec.State != pb.ContactState_CONTACT_STATE_RESERVED {
			return
		}
		// Unanswered, or a long-standing offer: ask again. The agent's shard
		// answers a repeat with what became of the offer.
		m.sendReserve(fx)
		if m.granted {
			fx.timer("reserve", m.timing.Probe)
		} else {
			fx.timer("reserve", m.timing.Retry)
		}
	case t.key == "arrive":
		if a := m.arriving; a != nil && !m.hasRec {
			m.propose(a, fx)
		}
	case t.key == "ended":
		switch {
		case m.rec.State == pb.ContactState_CONTACT_STATE_WRAP_UP:
			m.sendEnded(fx, false)
			if m.endedAcked {
				fx.timer("ended", m.wrapUpProbe())
			}
		case m.rec.State == pb.ContactState_CONTACT_STATE_ABANDONED && !m.endedAcked:
			m.sendEnded(fx, true)
		}
	case len(t.key) > 6 && t.key[:6] == "instr/":
		if m.instrAcked || m.instrID == "" {
			return
		}
		if s := m.rec.State; s != pb.ContactState_CONTACT_STATE_CONNECTED {
			return // the contact ended: nothing left to connect
		}
		var attempt uint32
		fmt.Sscanf(t.key[6:], "%d", &attempt)
		m.instruct(fx, attempt+1)
	}
}

// rebuild re-drives whatever was in flight when the record was committed
// by a previous owner (or before this actor was passivated).
func (m *contactMachine) rebuild(now int64, fx *effects) {
	switch m.rec.State {
	case pb.ContactState_CONTACT_STATE_QUEUED:
		// The queue actor lines queued contacts up from the shard state.
	case pb.ContactState_CONTACT_STATE_RESERVED:
		m.sendReserve(fx)
		fx.timer("reserve", m.timing.Retry)
	case pb.ContactState_CONTACT_STATE_CONNECTED:
		m.instruct(fx, 1)
	case pb.ContactState_CONTACT_STATE_WRAP_UP:
		m.sendEnded(fx, false)
	case pb.ContactState_CONTACT_STATE_ABANDONED:
		if m.rec.OfferID != "" && m.rec.ConnectedAt == 0 {
			m.sendEnded(fx, true)
			return
		}
		fx.stop = true
	default:
		fx.stop = true
	}
}

func channelName(ch pb.Channel) string {
	switch ch {
	case pb.Channel_CHANNEL_VOICE:
		return "voice"
	case pb.Channel_CHANNEL_CHAT:
		return "chat"
	case pb.Channel_CHANNEL_EMAIL:
		return "email"
	case pb.Channel_CHANNEL_SMS:
		return "sms"
	case pb.Channel_CHANNEL_CALLBACK:
		return "callback"
	}
	return "unknown"
}

// DefaultCarrier names the carrier of contacts handed over without one
// (engine tests; the NATS contract always names the carrier).
const DefaultCarrier = "default"

// MediaSubject is where carrier publishes a contact's media events (the
// gateway's subject scheme, repeated here so the engine can answer it).
func MediaSubject(carrier, queue, contactID string) string {
	return "tsunagu.v1.carriers." + carrier + ".media." + queue + "." + contactID
}

func durationOf(ns int64) *durationpb.Duration { return durationpb.New(time.Duration(ns)) }

// errorOf turns an error into the contract's error.
func errorOf(err error) *pb.Error {
	if err == nil {
		return nil
	}
	return &pb.Error{Code: shard.CodeOf(err), Message: err.Error()}
}
