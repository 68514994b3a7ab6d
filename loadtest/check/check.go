package check

import (
	"container/heap"
	"fmt"
	"sort"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// maxDetails bounds the violations a result lists; Count has them all.
const maxDetails = 20

// Result is one check's verdict.
type Result struct {
	Name string `json:"name"`
	// What the check asserts, for reports.
	What string `json:"what"`
	// Checked counts the items looked at (contacts, offers, slots, …).
	Checked int `json:"checked"`
	// Count is the number of violations; Details lists the first ones.
	Count   int      `json:"violations"`
	Details []string `json:"details,omitempty"`
}

// OK reports whether the check passed.
func (r Result) OK() bool { return r.Count == 0 }

func (r *Result) failf(format string, args ...any) {
	r.Count++
	if len(r.Details) < maxDetails {
		r.Details = append(r.Details, fmt.Sprintf(format, args...))
	}
}

// Model is what the checks need to know about the configuration: the
// node's compiled routing configuration (queues, their widening steps and
// offer timeouts, agent profiles).
type Model struct {
	Routing *routing.Config
}

// All runs every check.
func All(t *Trace, m Model, idleBound, fifoGrace time.Duration) []Result {
	return []Result{
		StreamComplete(t),
		Terminal(t),
		SingleHolder(t),
		Capacity(t, m),
		FIFO(t, m, fifoGrace),
		Idle(t, m, idleBound),
	}
}

// StreamComplete fails if the observer missed event batches (a gap in a
// shard's batch seq within a term) or events (a gap in a shard's event
// positions, across terms too): the other checks read the stream and would
// then judge an incomplete history.
func StreamComplete(t *Trace) Result {
	r := Result{Name: "stream-complete", What: "the event stream was received without gaps in batches or event positions"}
	shards := map[[2]uint64]bool{}
	for _, e := range t.Events {
		shards[[2]uint64{uint64(e.Shard), e.Term}] = true
	}
	r.Checked = len(shards)
	for _, g := range t.Gaps {
		r.failf("shard %d term %d: batches %d..%d missed", g.Shard, g.Term, g.After+1, g.Before-1)
	}
	// Positions number a shard's events without gaps, across owners: a
	// missing one is an event nobody published, or one the observer lost.
	last := map[uint32]uint64{}
	for _, e := range commitOrder(t.Events) {
		if e.Position == 0 {
			continue
		}
		if p, ok := last[e.Shard]; ok && e.Position != p+1 {
			r.failf("shard %d: events %d..%d missed", e.Shard, p+1, e.Position-1)
		}
		last[e.Shard] = e.Position
	}
	return r
}

// Terminal checks that every accepted contact reached exactly one terminal
// state on the stream, that the carrier's view of the end agrees with it,
// and that no contact refused at arrival shows up as committed.
func Terminal(t *Trace) Result {
	r := Result{Name: "terminal-once", What: "every accepted contact ends in exactly one terminal state (DONE or ABANDONED), as its carrier saw it"}
	ends := map[string][]pb.ContactState{}
	last := map[string]pb.ContactState{}
	seen := map[string]bool{}
	for _, e := range commitOrder(t.Events) {
		c := e.Contact
		if c == nil {
			continue
		}
		seen[c.ContactID] = true
		last[c.ContactID] = c.State
		if terminal(c.State) {
			ends[c.ContactID] = append(ends[c.ContactID], c.State)
		}
	}
	for _, c := range t.Contacts {
		if !c.Accepted {
			if seen[c.ID] {
				r.failf("contact %s was refused at arrival but has committed events", c.ID)
			}
			continue
		}
		r.Checked++
		e := ends[c.ID]
		switch {
		case len(e) == 0 && !seen[c.ID]:
			r.failf("contact %s was accepted but never appeared on the event stream", c.ID)
		case len(e) == 0:
			r.failf("contact %s never ended: last state %s, carrier saw %s", c.ID, last[c.ID], c.Outcome)
		case len(e) > 1:
			r.failf("contact %s ended %d times: %v", c.ID, len(e), e)
		case c.Outcome == Unended:
			r.failf("contact %s ended %s on the stream but its carrier never saw it end", c.ID, e[0])
		case (c.Outcome == Abandoned) != (e[0] == pb.ContactState_CONTACT_STATE_ABANDONED):
			r.failf("contact %s ended %s on the stream but its carrier saw it %s", c.ID, e[0], c.Outcome)
		}
	}
	return r
}

// SingleHolder checks that a contact is held for at most one agent at a
// time (on the stream, in commit order), that every offer id reached one
// agent only, and that no contact was accepted by two agents.
func SingleHolder(t *Trace) Result {
	r := Result{Name: "single-holder", What: "no contact is offered to, or connected with, two agents at once"}
	holder := map[string]string{}
	for _, e := range commitOrder(t.Events) {
		c := e.Contact
		if c == nil {
			continue
		}
		h := holder[c.ContactID]
		switch c.State {
		case pb.ContactState_CONTACT_STATE_RESERVED:
			r.Checked++
			if h != "" && h != c.AgentID {
				r.failf("contact %s reserved for %s (offer %s) while held for %s", c.ContactID, c.AgentID, c.OfferID, h)
			}
			holder[c.ContactID] = c.AgentID
		case pb.ContactState_CONTACT_STATE_CONNECTED, pb.ContactState_CONTACT_STATE_WRAP_UP:
			if h != "" && c.AgentID != "" && c.AgentID != h {
				r.failf("contact %s %s with %s while held for %s", c.ContactID, c.State, c.AgentID, h)
			}
		case pb.ContactState_CONTACT_STATE_QUEUED, pb.ContactState_CONTACT_STATE_DONE, pb.ContactState_CONTACT_STATE_ABANDONED:
			delete(holder, c.ContactID)
		}
	}
	offeredTo := map[string]string{}
	for _, o := range t.Offers {
		if a, ok := offeredTo[o.OfferID]; ok && a != o.AgentID {
			r.failf("offer %s of contact %s reached both %s and %s", o.OfferID, o.ContactID, a, o.AgentID)
		}
		offeredTo[o.OfferID] = o.AgentID
	}
	for _, c := range t.Contacts {
		if len(c.AcceptedBy) > 1 {
			r.failf("contact %s was accepted by %d agents: %v", c.ID, len(c.AcceptedBy), c.AcceptedBy)
		}
	}
	return r
}

type slot struct {
	ch    pb.Channel
	state pb.SlotState
}

// Capacity checks, agent by agent in commit order, that the slots held per
// channel (offered, busy or in wrap-up) never exceed the agent's capacity,
// that the node's own in-use counts agree, and that a new offer never lands
// on a channel blocked by the agent's other active work.
func Capacity(t *Trace, m Model) Result {
	r := Result{Name: "capacity", What: "no agent holds more than its capacity per channel, or work on a blocked channel"}
	slots := map[string]map[string]slot{}
	for _, e := range commitOrder(t.Events) {
		a := e.Agent
		if a == nil {
			continue
		}
		p, ok := m.Routing.Agents[a.AgentID]
		if !ok {
			continue
		}
		capacity, blocks := shard.Capacity(p), shard.Blocks(p)
		held := slots[a.AgentID]
		if held == nil {
			held = map[string]slot{}
			slots[a.AgentID] = held
		}
		if a.OfferID != "" {
			if a.SlotState == pb.SlotState_SLOT_STATE_UNSPECIFIED {
				delete(held, a.OfferID)
			} else {
				_, existed := held[a.OfferID]
				if !existed {
					r.Checked++
					for id, s := range held {
						if s.state != pb.SlotState_SLOT_STATE_WRAP_UP && (blocks[s.ch]&(1<<a.Channel) != 0 || blocks[a.Channel]&(1<<s.ch) != 0) {
							r.failf("agent %s offered %s on %s while %s (%s on %s) blocks it", a.AgentID, a.OfferID, a.Channel, id, s.state, s.ch)
						}
					}
				}
				held[a.OfferID] = slot{ch: a.Channel, state: a.SlotState}
			}
		}
		var used [numChannels]uint32
		for _, s := range held {
			if s.ch > 0 && int(s.ch) < numChannels {
				used[s.ch]++
			}
		}
		for ch := 1; ch < numChannels; ch++ {
			if used[ch] > capacity[ch] {
				r.failf("agent %s holds %d slots on %s; capacity %d (at %s)", a.AgentID, used[ch], pb.Channel(ch), capacity[ch], stamp(e.At))
			}
			if a.InUse[ch] > capacity[ch] {
				r.failf("agent %s: node reports %d slots in use on %s; capacity %d (at %s)", a.AgentID, a.InUse[ch], pb.Channel(ch), capacity[ch], stamp(e.At))
			}
		}
	}
	return r
}

func stamp(ns int64) string { return time.Unix(0, ns).UTC().Format("15:04:05.000000") }

// waiter is a contact in line, as the FIFO and idle checks follow it.
type waiter struct {
	id        string
	queue     string
	ch        pb.Channel
	priority  int32
	arrivedAt int64
	seq       uint64
	since     int64            // in line since (this time round)
	epoch     int              // bumps each time it goes back in line
	waiting   bool             // in line now
	holder    string           // agent it was last reserved for
	avoid     map[string]int64 // agent -> until (unix ns): rejected or missed
	reported  int              // epoch of the last idle violation reported, +1
	pending   []fifoCase       // FIFO cases waiting for this contact to leave the line
	queueConf *routing.Queue
}

func (w *waiter) older(o *waiter) bool {
	if w.arrivedAt != o.arrivedAt {
		return w.arrivedAt < o.arrivedAt
	}
	return w.seq < o.seq
}

// avoids reports until when w may not go to agent (0: it may).
func (w *waiter) avoids(agent string, now int64) int64 {
	if until := w.avoid[agent]; until > now {
		return until
	}
	return 0
}

type heapEntry struct {
	w     *waiter
	epoch int
}

// line is one group's waiting contacts, oldest first, with lazy deletion:
// entries whose contact has left the line (or come back since) are dropped
// when they reach the top.
type line []heapEntry

func (l line) Len() int           { return len(l) }
func (l line) Less(i, j int) bool { return l[i].w.older(l[j].w) }
func (l line) Swap(i, j int)      { l[i], l[j] = l[j], l[i] }
func (l *line) Push(x any)        { *l = append(*l, x.(heapEntry)) }
func (l *line) Pop() any {
	old := *l
	e := old[len(old)-1]
	*l = old[:len(old)-1]
	return e
}

func (e heapEntry) live() bool { return e.w.waiting && e.w.epoch == e.epoch }

// top returns the oldest contact in line, or nil.
func (l *line) top() *waiter {
	for l.Len() > 0 {
		if e := (*l)[0]; e.live() {
			return e.w
		}
		heap.Pop(l)
	}
	return nil
}

// oldestFor returns the oldest contact in line that does not avoid agent
// at now, or nil. Avoidance is rare (rejects and misses), so the scan past
// the top is too.
func (l *line) oldestFor(agent string, now int64) *waiter {
	t := l.top()
	if t == nil || t.avoids(agent, now) == 0 {
		return t
	}
	var best *waiter
	for _, e := range *l {
		if e.live() && e.w.avoids(agent, now) == 0 && (best == nil || e.w.older(best)) {
			best = e.w
		}
	}
	return best
}

type groupKey struct {
	queue    string
	priority int32
	ch       pb.Channel
}

// tracker follows contacts through their events for FIFO and Idle.
type tracker struct {
	m        Model
	contacts map[string]*waiter
	lines    map[groupKey]*line
}

func newTracker(m Model) *tracker {
	return &tracker{m: m, contacts: map[string]*waiter{}, lines: map[groupKey]*line{}}
}

func (t *tracker) key(w *waiter, byPriority bool) groupKey {
	k := groupKey{queue: w.queue, ch: w.ch}
	if byPriority {
		k.priority = w.priority
	}
	return k
}

// apply moves a contact in or out of line. byPriority picks the grouping:
// FIFO compares within a priority, Idle across priorities.
func (t *tracker) apply(e Event, byPriority bool) (w *waiter, left bool) {
	c := e.Contact
	w = t.contacts[c.ContactID]
	if w == nil {
		q, _ := t.m.Routing.Queue(c.Queue)
		w = &waiter{id: c.ContactID, queue: c.Queue, ch: c.Channel, priority: c.Priority, arrivedAt: c.ArrivedAt, seq: c.Seq, queueConf: q}
		t.contacts[c.ContactID] = w
	}
	wasWaiting := w.waiting
	switch c.State {
	case pb.ContactState_CONTACT_STATE_QUEUED:
		if (c.Reason == "rejected" || c.Reason == "missed") && w.holder != "" && w.queueConf != nil {
			if w.avoid == nil {
				w.avoid = map[string]int64{}
			}
			w.avoid[w.holder] = e.At + int64(w.queueConf.OfferTimeout)
		}
		if !w.waiting {
			w.waiting, w.since = true, e.At
			w.epoch++
			l := t.lines[t.key(w, byPriority)]
			if l == nil {
				l = &line{}
				t.lines[t.key(w, byPriority)] = l
			}
			heap.Push(l, heapEntry{w: w, epoch: w.epoch})
		}
	case pb.ContactState_CONTACT_STATE_RESERVED:
		w.holder = c.AgentID
		w.waiting = false
	default:
		w.waiting = false
	}
	return w, wasWaiting && !w.waiting
}

type fifoCase struct {
	younger, agent string
	at             int64
}

// FIFO checks that within a queue, priority and channel, no contact is
// reserved while an older one waits in line that the same agent could
// take — unless the older one leaves the line within grace (two
// reservations in flight at once commit in either order). An older contact
// that this agent rejected or missed is exempt while the queue keeps it
// away from the agent (one offer timeout).
//
// All contacts of a queue have the queue's requirements, and an older
// contact has waited longer and so is at least as widened: an agent that
// may take the younger one may take the older.
func FIFO(t *Trace, m Model, grace time.Duration) Result {
	r := Result{Name: "fifo", What: fmt.Sprintf("within a queue, priority and channel, contacts are reserved in arrival order (older ones within %v)", grace)}
	tr := newTracker(m)
	resolve := func(w *waiter, at int64) {
		for _, fc := range w.pending {
			if at == 0 || at-fc.at > int64(grace) {
				late := "never left the line"
				if at != 0 {
					late = fmt.Sprintf("left the line %v later", time.Duration(at-fc.at))
				}
				r.failf("queue %s: %s reserved for %s at %s while older %s (priority %d, arrived %v earlier) waited; the older one %s",
					w.queue, fc.younger, fc.agent, stamp(fc.at), w.id, w.priority, time.Duration(tr.contacts[fc.younger].arrivedAt-w.arrivedAt).Abs(), late)
			}
		}
		w.pending = nil
	}
	for _, e := range commitOrder(t.Events) {
		c := e.Contact
		if c == nil {
			continue
		}
		w, left := tr.apply(e, true)
		if left {
			resolve(w, e.At)
		}
		if c.State != pb.ContactState_CONTACT_STATE_RESERVED {
			continue
		}
		r.Checked++
		l := tr.lines[tr.key(w, true)]
		if l == nil {
			continue
		}
		if x := l.oldestFor(c.AgentID, e.At); x != nil && x.older(w) {
			x.pending = append(x.pending, fifoCase{younger: w.id, agent: c.AgentID, at: e.At})
		}
	}
	ids := make([]string, 0, len(tr.contacts))
	for id, w := range tr.contacts {
		if len(w.pending) > 0 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		resolve(tr.contacts[id], 0)
	}
	return r
}

// agentState is an agent as Idle follows it.
type agentState struct {
	id       string
	presence pb.AgentPresence
	slots    map[string]slot
	capacity [numChannels]uint32
	blocks   [numChannels]uint8
	free     [numChannels]bool
	since    [numChannels]int64 // free on the channel since
	member   map[string]int     // queue -> first widening step it may serve
}

func (a *agentState) update(at int64) {
	var used [numChannels]uint32
	var blocked uint8
	for _, s := range a.slots {
		if s.ch <= 0 || int(s.ch) >= numChannels {
			continue
		}
		used[s.ch]++
		if s.state != pb.SlotState_SLOT_STATE_WRAP_UP {
			blocked |= a.blocks[s.ch]
		}
	}
	for ch := 1; ch < numChannels; ch++ {
		free := a.presence == pb.AgentPresence_AGENT_PRESENCE_AVAILABLE && blocked&(1<<ch) == 0 && used[ch] < a.capacity[ch]
		if free && !a.free[ch] {
			a.since[ch] = at
		}
		a.free[ch] = free
	}
}

// Idle checks that no agent stays free and eligible for a waiting contact
// for longer than bound: the pair "agent A free on the contact's channel,
// contact X in line, A eligible for X" (eligibility after X's widening and
// after any time X keeps away from A for a reject or miss) must not last
// beyond bound. The history is swept in commit time, looking every bound/8.
func Idle(t *Trace, m Model, bound time.Duration) Result {
	r := Result{Name: "no-idle-agent", What: fmt.Sprintf("no eligible agent stays free while a contact it could serve waits longer than %v", bound)}
	tr := newTracker(m)
	agents := map[string]*agentState{}
	freeAgents := map[string]*agentState{}
	events := timeOrder(t.Events)
	if len(events) == 0 {
		return r
	}
	step := max(int64(bound)/8, int64(time.Millisecond))
	look := func(now int64) {
		if len(freeAgents) == 0 {
			return
		}
		for k, l := range tr.lines {
			x := l.top()
			if x == nil || x.queueConf == nil {
				continue
			}
			for _, a := range freeAgents {
				if !a.free[k.ch] {
					continue
				}
				stepIdx, ok := a.member[k.queue]
				if !ok {
					continue
				}
				after := int64(x.queueConf.Steps[stepIdx].After)
				y := l.oldestFor(a.id, now)
				if y == nil || now-y.arrivedAt < after || y.reported == y.epoch+1 {
					continue
				}
				start := max(a.since[k.ch], y.since, y.arrivedAt+after)
				if until := y.avoid[a.id]; until > start {
					start = until
				}
				if now-start > int64(bound) {
					y.reported = y.epoch + 1
					r.failf("agent %s was free on %s and eligible for %s (queue %s, in line since %s) for %v (at %s)",
						a.id, k.ch, y.id, y.queue, stamp(y.since), time.Duration(now-start), stamp(now))
				}
			}
		}
	}
	next := events[0].At + step
	for _, e := range events {
		for ; next <= e.At; next += step {
			look(next)
		}
		switch {
		case e.Contact != nil:
			r.Checked++
			tr.apply(e, false)
		case e.Agent != nil:
			ae := e.Agent
			a := agents[ae.AgentID]
			if a == nil {
				p, ok := m.Routing.Agents[ae.AgentID]
				if !ok {
					continue
				}
				a = &agentState{id: ae.AgentID, slots: map[string]slot{}, capacity: shard.Capacity(p), blocks: shard.Blocks(p), member: map[string]int{}}
				for _, ms := range m.Routing.QueuesFor(p) {
					a.member[ms.Queue.Name] = ms.MinStep
				}
				agents[ae.AgentID] = a
			}
			a.presence = ae.Presence
			if ae.OfferID != "" {
				if ae.SlotState == pb.SlotState_SLOT_STATE_UNSPECIFIED {
					delete(a.slots, ae.OfferID)
				} else {
					a.slots[ae.OfferID] = slot{ch: ae.Channel, state: ae.SlotState}
				}
			}
			a.update(e.At)
			if anyFree(a) {
				freeAgents[a.id] = a
			} else {
				delete(freeAgents, a.id)
			}
		}
	}
	look(next)
	return r
}

func anyFree(a *agentState) bool {
	for _, f := range a.free {
		if f {
			return true
		}
	}
	return false
}
