package actors

import (
	"fmt"
	"math"
	"time"

	"github.com/tsunagu/tsunagu/actors/match"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// maxMatchesPerStep bounds one step's matching so a burst does not starve
// the queue's mailbox; the rest continues on an immediate wake.
const maxMatchesPerStep = 4096

// rateWindow is the time constant of the queue's routed-rate estimate.
const rateWindow = 60 * time.Second

// queueMachine decides for one queue. It proposes nothing: contacts are
// held by their own actors at its request, so it owns only soft state that
// is rebuilt from the shard's contacts and the agents' statuses.
type queueMachine struct {
	name  string
	shard uint32
	fence *pb.Fence
	env   *env
	cfg   *routing.Queue
	idx   *match.Queue
	// lookup reads a contact's committed record (duplicates, rebuild).
	lookup func(id string) (shard.Contact, bool)

	// Admitted arrivals whose commit is in flight, for max size and
	// duplicate detection.
	arriving map[string]bool
	// unheld: arrivals that found no free agent (holdAsk), until their
	// commit puts them in line, with when they asked.
	unheld map[string]int64
	wakeAt int64
	// lockSeq numbers the holds this queue asks for.
	lockSeq uint64
	// peers caches, per agent, the agent's other queues.
	peers map[string][]string

	// reporting: a report timer is armed; changed: figures moved since the
	// last QueueEvent.
	reporting, changed bool

	arrived, routed, abandoned, withinSL uint64
	rate                                 float64 // routed per second, decayed
	rateAt                               int64
}

func newQueueMachine(q *routing.Queue, shardID uint32, fence *pb.Fence, e *env, lookup func(string) (shard.Contact, bool)) *queueMachine {
	return &queueMachine{
		name:     q.Name,
		shard:    shardID,
		fence:    fence,
		env:      e,
		cfg:      q,
		idx:      match.New(e.cfg, q),
		lookup:   lookup,
		arriving: make(map[string]bool),
		unheld:   make(map[string]int64),
		peers:    make(map[string][]string),
	}
}

func (m *queueMachine) contactTarget(id string) target {
	return target{kind: contactKind, shard: m.shard, id: id}
}

// line puts a committed, queued contact in line.
func (m *queueMachine) line(now int64, c *shard.Contact, extras routing.Requirements, avoid ...match.Avoid) {
	w := waitingOf(c.Arrival)
	w.Seq, w.Avoid = c.Seq, avoid
	m.idx.Add(w, extras, now)
}

func (m *queueMachine) step(now int64, in any, fx *effects) {
	switch in := in.(type) {
	case arrival:
		m.arrival(now, in, fx)
		return
	case holdAsk:
		m.holdAtArrival(now, in, fx)
	case enqueued:
		delete(m.arriving, in.rec.ID())
		delete(m.unheld, in.rec.ID())
		if !in.held {
			m.line(now, &in.rec, in.extras)
		}
		for _, r := range in.replies {
			fx.reply(arrivalReplyFunc(r, m.queuedReply(now, &in.rec)))
		}
	case returning:
		m.unheld[in.contactID] = now
		return
	case lineSettled:
		if !in.keepUnheld {
			delete(m.unheld, in.contactID)
		}
		if in.hold.agentID != "" {
			m.idx.Untake(in.hold.agentID, in.hold.seq)
		}
	case dequeued:
		delete(m.arriving, in.contactID)
		if _, ok := m.idx.Remove(in.contactID); ok {
			m.abandoned++
		}
	case requeued:
		delete(m.unheld, in.rec.ID())
		m.line(now, &in.rec, in.extras, in.avoid...)
	case lockFailed:
		m.idx.Untake(in.agentID, in.seq)
		if in.requeue {
			m.line(now, &in.rec, in.extras, in.avoid...)
		}
	case *pb.ShardMessage:
		m.shardMessage(now, in, fx)
	case timerFired:
		if in.key == "report" {
			m.reporting = false
			if m.changed {
				m.report(now, fx)
			}
			return
		}
		m.wakeAt = 0
	case queueStatus:
		r := m.statusReply(now)
		fx.reply(func() { in.reply(r) })
		return
	}
	m.match(now, fx)
	m.changed = true
	if !m.reporting {
		m.reporting = true
		fx.timer("report", reportEvery)
	}
}

// reportEvery paces QueueEvents: at most one a second per queue.
const reportEvery = time.Second

// report publishes the queue's figures.
func (m *queueMachine) report(now int64, fx *effects) {
	m.changed = false
	r := m.statusReply(now)
	fx.events = append(fx.events, &pb.Event{At: now, Shard: m.shard, Kind: &pb.Event_Queue{Queue: &pb.QueueEvent{
		Queue: r.GetQueue(), Waiting: r.GetWaiting(), AvailableAgents: r.GetAvailableAgents(),
		OldestWait: r.GetOldestWait(), EstimatedWait: r.GetEstimatedWait(),
		Arrived: r.GetArrived(), Routed: r.GetRouted(), Abandoned: r.GetAbandoned(), ServiceLevel: r.GetServiceLevel(),
	}}})
	m.reporting = true
	fx.timer("report", reportEvery)
}

func (m *queueMachine) arrival(now int64, a arrival, fx *effects) {
	req := a.req
	id := req.GetContactId()
	reply := func(r *pb.ArrivalReply) { fx.reply(func() { a.reply(r) }) }
	// Refusals name no media subject or fence: nothing was accepted.
	base := &pb.ArrivalReply{ContactId: id, Queue: m.name}
	if !m.cfg.Accepts(req.GetChannel()) {
		base.Error = &pb.Error{Code: pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Message: fmt.Sprintf("queue %q does not take %s contacts", m.name, channelName(req.GetChannel()))}
		reply(base)
		return
	}
	if m.arriving[id] {
		// A retry of an arrival still being committed: the contact actor
		// answers both.
		fx.send(m.contactTarget(id), startContact{req: a.req, reply: a.reply})
		return
	}
	if c, ok := m.lookup(id); ok {
		carrier := req.GetCarrier()
		if carrier == "" {
			carrier = DefaultCarrier
		}
		if c.Arrival.GetCarrier() != carrier {
			// Say nothing about the other carrier's contact.
			base.Error = &pb.Error{Code: pb.ErrorCode_ERROR_CODE_CONFLICT, Message: fmt.Sprintf("contact id %q is in use by another carrier; contact ids must be unique across carriers (prefix them with yours)", id)}
			reply(base)
			return
		}
		if c.Queue() != m.name || c.Arrival.GetChannel() != req.GetChannel() {
			base.Error = &pb.Error{Code: pb.ErrorCode_ERROR_CODE_CONFLICT, Message: fmt.Sprintf("contact %q already exists in queue %q on %s", id, c.Queue(), channelName(c.Arrival.GetChannel()))}
			reply(base)
			return
		}
		reply(m.queuedReply(now, &c))
		return
	}
	if reason := m.admit(now); reason != "" {
		base.Status = pb.ArrivalStatus_ARRIVAL_STATUS_REJECTED
		base.RejectReason = reason
		base.State = pb.ContactState_CONTACT_STATE_REJECTED
		reply(base)
		return
	}
	m.arriving[id] = true
	m.arrived++
	start := startContact{req: a.req, reply: a.reply}
	if req.GetCustomerKey() == "" {
		// Nothing to read first: build the arrival here and decide the
		// hold now, a hop sooner.
		start.arrive, start.extras = arrivalCommand(now, m.shard, m.env.cfg, m.cfg, req, customerLoaded{})
		start.hold = m.holdFor(now, waitingOf(start.arrive.GetContactArrive()), start.extras, fx)
	}
	fx.send(m.contactTarget(id), start)
}

// admit applies the queue's admission rules; it returns why not, or "".
func (m *queueMachine) admit(now int64) string {
	switch {
	case m.cfg.Closed:
		return "closed"
	case m.cfg.MaxWaiting > 0 && uint32(m.idx.Len()+len(m.arriving)) >= m.cfg.MaxWaiting:
		return "queue_full"
	case m.cfg.MaxWait > 0 && m.estimatedWait(now, m.idx.Len()+len(m.arriving)+1) > m.cfg.MaxWait:
		return "estimated_wait"
	}
	return ""
}

func (m *queueMachine) queuedReply(now int64, c *shard.Contact) *pb.ArrivalReply {
	r := &pb.ArrivalReply{
		ContactId:    c.ID(),
		Queue:        m.name,
		Status:       pb.ArrivalStatus_ARRIVAL_STATUS_QUEUED,
		MediaSubject: MediaSubject(c.Arrival.GetCarrier(), m.name, c.ID()),
		Fence:        m.fence,
		State:        c.State,
	}
	if _, waiting := m.idx.Waiting(c.ID()); waiting {
		pos := m.idx.Position(c.Arrival.GetPriority())
		r.Position = uint32(pos)
		r.EstimatedWait = durationOf(int64(m.estimatedWait(now, pos)))
	}
	return r
}

// estimatedWait for the contact at 1-based position pos: from the queue's
// measured routing rate once it has one, else from the configured handle
// time spread over the agents known to the queue.
func (m *queueMachine) estimatedWait(now int64, pos int) time.Duration {
	if pos <= m.idx.AvailableAgents() {
		return 0
	}
	if r := m.currentRate(now); r > 0.05 {
		return time.Duration(float64(pos) / r * float64(time.Second))
	}
	agents := max(1, m.idx.Agents())
	return time.Duration(int64(m.cfg.AverageHandle) * int64(pos) / int64(agents))
}

func (m *queueMachine) currentRate(now int64) float64 {
	dt := time.Duration(now - m.rateAt)
	return m.rate * math.Exp(-dt.Seconds()/rateWindow.Seconds())
}

func (m *queueMachine) countRouted(now int64, w *match.Waiting) {
	m.rate = m.currentRate(now) + 1/rateWindow.Seconds()
	m.rateAt = now
	m.routed++
	if time.Duration(now-w.ArrivedAt) <= m.cfg.SLThreshold {
		m.withinSL++
	}
}

func (m *queueMachine) shardMessage(now int64, msg *pb.ShardMessage, fx *effects) {
	switch k := msg.GetKind().(type) {
	case *pb.ShardMessage_AgentStatus:
		st := k.AgentStatus
		p, known := m.env.cfg.Agents[st.GetAgentId()]
		s := match.Status{
			ID:        st.GetAgentId(),
			Profile:   p,
			IdleSince: st.GetIdleSince(),
			Occupancy: st.GetOccupancy(),
			Version:   st.GetVersion(),
			Shard:     st.GetAgentShard(),
			SeenSeq:   st.GetSeenSeq(),
			Asking:    st.GetRound() != 0,
		}
		for _, f := range st.GetFree() {
			if shard.ValidChannel(f.GetChannel()) {
				s.Free[f.GetChannel()] = f.GetFree()
			}
		}
		ok := known && m.idx.SetAgent(s, now)
		if st.GetRound() == 0 {
			if st.GetInvite() && ok {
				m.invite(now, s, fx)
			}
			return
		}
		c := &pb.Candidate{AgentId: s.ID, Round: st.GetRound(), Queue: m.name}
		if ok {
			if w, found := m.idx.BestContact(s.ID, now); found {
				c.ContactId = w.ContactID
				c.Channel = w.Channel
				c.Priority = m.idx.Priority(w, now)
				c.ArrivedAt = w.ArrivedAt
				c.Seq = w.Seq
				s.Soliciting = true
				m.idx.SetAgent(s, now)
			}
		}
		reply := shardMsg(m.fence)
		reply.Kind = &pb.ShardMessage_Candidate{Candidate: c}
		fx.send(target{kind: agentKind, shard: st.GetAgentShard(), id: s.ID}, reply)
	case *pb.ShardMessage_AgentHeld:
		h := k.AgentHeld
		m.idx.HeldElsewhere(h.GetAgentId(), h.GetChannel(), h.GetVersion(), now)
	case *pb.ShardMessage_Claim:
		cl := k.Claim
		if w, ok := m.idx.Waiting(cl.GetContactId()); ok && m.idx.CanServe(cl.GetAgentId(), w, now) {
			m.hold(now, w, cl.GetAgentId(), cl.GetAgentShard(), cl.GetRound(), fx)
			return
		}
		m.idx.StopSoliciting(cl.GetAgentId())
		reply := shardMsg(m.fence)
		reply.Kind = &pb.ShardMessage_ClaimFailed{ClaimFailed: &pb.ClaimFailed{AgentId: cl.GetAgentId(), Round: cl.GetRound(), Queue: m.name, ContactId: cl.GetContactId()}}
		fx.send(target{kind: agentKind, shard: cl.GetAgentShard(), id: cl.GetAgentId()}, reply)
	}
}

// invite answers a free agent's inviting status: with a contact waiting
// that it may serve, the queue keeps the agent for the round it asks it to
// run (best across queues), instead of holding it for that contact now.
func (m *queueMachine) invite(now int64, s match.Status, fx *effects) {
	if _, found := m.idx.BestContact(s.ID, now); !found {
		return
	}
	s.Soliciting = true
	m.idx.SetAgent(s, now)
	msg := shardMsg(m.fence)
	msg.Kind = &pb.ShardMessage_Candidate{Candidate: &pb.Candidate{AgentId: s.ID, Queue: m.name, Invite: true}}
	fx.send(target{kind: agentKind, shard: s.Shard, id: s.ID}, msg)
}

// hold takes w out of line and asks its contact actor to hold it for agent.
// The agent's other queues hear of it at once (AgentHeld), so they do not
// ask for the same agent meanwhile: every such clash costs a declined
// reservation, two commits and the contact's place in line.
func (m *queueMachine) hold(now int64, w *match.Waiting, agent string, agentShard uint32, round uint64, fx *effects) {
	m.idx.Remove(w.ContactID)
	fx.send(m.contactTarget(w.ContactID), m.take(now, w, agent, agentShard, round, fx))
}

// take counts a slot of agent as held for contact w and returns the
// contact's lock request.
func (m *queueMachine) take(now int64, w *match.Waiting, agent string, agentShard uint32, round uint64, fx *effects) lockContact {
	var version uint64
	if a, ok := m.idx.Agent(agent); ok {
		version = a.Version
	}
	m.lockSeq++
	m.idx.Taken(agent, w.Channel, m.lockSeq, now)
	m.countRouted(now, w)
	for _, other := range m.otherQueues(agent) {
		msg := shardMsg(m.fence)
		msg.Kind = &pb.ShardMessage_AgentHeld{AgentHeld: &pb.AgentHeld{AgentId: agent, Channel: w.Channel, Version: version, Queue: m.name}}
		fx.send(target{kind: queueKind, shard: m.env.queueShard(other), id: other}, msg)
	}
	return lockContact{agentID: agent, agentShard: agentShard, round: round, seq: m.lockSeq}
}

// unheldFor bounds how long an arrival that found no free agent keeps
// later arrivals from being held as they arrive: its commit takes at most
// the Raft log's 5 s apply timeout, and an undecided one is proposed again
// a second later; a lost answer must not stop holds for good.
const unheldFor = int64(15 * time.Second)

// holdAtArrival answers a contact about to be committed: the agent to hold
// it for in the same commit, when the queue would serve it at once. Not
// while an earlier arrival that found no agent is still being committed:
// it is not in line yet, and a later one must not pass it.
func (m *queueMachine) holdAtArrival(now int64, h holdAsk, fx *effects) {
	fx.send(m.contactTarget(h.w.ContactID), holdAnswer{hold: m.holdFor(now, h.w, h.extras, fx)})
}

// holdFor decides the hold of an arrival: the agent it is held for (taken
// here), or none, and then it counts as on its way into line.
func (m *queueMachine) holdFor(now int64, w match.Waiting, extras routing.Requirements, fx *effects) lockContact {
	if m.noneUnheld(now) {
		if a, ok := m.idx.MatchArriving(w, extras, now); ok {
			return m.take(now, &w, a.ID, a.Shard, 0, fx)
		}
	}
	m.unheld[w.ContactID] = now
	return lockContact{}
}

// noneUnheld reports whether no arrival that found no free agent is still
// being committed, forgetting those asked longer than unheldFor ago.
func (m *queueMachine) noneUnheld(now int64) bool {
	for id, at := range m.unheld {
		if now-at > unheldFor {
			delete(m.unheld, id)
		}
	}
	return len(m.unheld) == 0
}

// otherQueues lists the queues other than this one that agent may serve.
func (m *queueMachine) otherQueues(agent string) []string {
	if qs, ok := m.peers[agent]; ok {
		return qs
	}
	var qs []string
	for _, ms := range m.env.cfg.Memberships(agent) {
		if ms.Queue.Name != m.name {
			qs = append(qs, ms.Queue.Name)
		}
	}
	m.peers[agent] = qs
	return qs
}

// match offers waiting contacts to free agents for as long as pairs exist,
// then arms the wake timer for the next eligibility change.
func (m *queueMachine) match(now int64, fx *effects) {
	for n := 0; ; n++ {
		if n == maxMatchesPerStep {
			fx.timer("wake", 0)
			m.wakeAt = now
			return
		}
		w, a, ok := m.idx.NextMatch(now)
		if !ok {
			break
		}
		m.hold(now, w, a.ID, a.Shard, 0, fx)
	}
	if wake := m.idx.NextWake(now); wake > 0 && (m.wakeAt == 0 || wake < m.wakeAt) {
		m.wakeAt = wake
		fx.timer("wake", time.Duration(wake-now))
	}
}

func (m *queueMachine) statusReply(now int64) *pb.QueueStatusReply {
	r := &pb.QueueStatusReply{
		Queue:           m.name,
		Waiting:         uint32(m.idx.Len()),
		AvailableAgents: uint32(m.idx.AvailableAgents()),
		Arrived:         m.arrived,
		Routed:          m.routed,
		Abandoned:       m.abandoned,
		EstimatedWait:   durationOf(int64(m.estimatedWait(now, m.idx.Len()+1))),
	}
	if oldest := m.idx.OldestArrival(); oldest != 0 {
		r.OldestWait = durationOf(now - oldest)
	}
	if m.routed > 0 {
		r.ServiceLevel = float64(m.withinSL) / float64(m.routed)
	}
	return r
}
