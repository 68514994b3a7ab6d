package match

import (
	"math"
	"slices"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// slowClass collects every requirement set beyond the first 63 of a queue.
// Its contacts are checked agent by agent, so matching them scans instead
// of taking a heap top; real centres stay far below this.
const slowClass = 63

// Queue is one queue's matching state.
type Queue struct {
	all *routing.Config
	cfg *routing.Queue

	classes []routing.Requirements

	lines   []*line
	lineIdx map[lineKey]*line
	waiting map[string]*Waiting
	// perPriority counts waiting contacts by base priority (for positions).
	perPriority map[int32]int

	// Contacts inside their preferred-agent window wait here, per agent,
	// instead of in lines; prefExpiry orders them by window end.
	pref       map[string][]*Waiting
	prefExpiry []*Waiting

	// Contacts inside their site window wait in lines of a class that
	// requires their site; siteExpiry orders them by window end, when they
	// move to the line of their base class.
	siteExpiry []*Waiting

	// avoidEnds is a min-heap of times at which some avoidance ends.
	avoidEnds []int64
	// foreign lists other queues' holds of agents (HeldElsewhere) in the
	// order they end (each lasts foreignTTL), to forget them then.
	foreign []foreignEnd

	agents  map[string]*Agent
	pooled  int // agents in at least one pool
	pools   [shard.NumChannels][]*pool
	poolIdx map[poolKey]*pool
	rr      uint64
}

// New returns an empty index for queue q of configuration all.
func New(all *routing.Config, q *routing.Queue) *Queue {
	return &Queue{
		all:         all,
		cfg:         q,
		classes:     []routing.Requirements{nil},
		lineIdx:     make(map[lineKey]*line),
		waiting:     make(map[string]*Waiting),
		perPriority: make(map[int32]int),
		pref:        make(map[string][]*Waiting),
		agents:      make(map[string]*Agent),
		poolIdx:     make(map[poolKey]*pool),
	}
}

// Config returns the queue's compiled configuration.
func (q *Queue) Config() *routing.Queue { return q.cfg }

// Len is the number of waiting contacts.
func (q *Queue) Len() int { return len(q.waiting) }

// Waiting returns the waiting contact with id.
func (q *Queue) Waiting(id string) (*Waiting, bool) {
	w, ok := q.waiting[id]
	return w, ok
}

// Agents is the number of agents known to the queue, free or not.
func (q *Queue) Agents() int { return len(q.agents) }

// CanServe reports whether agent id may take waiting contact w now.
func (q *Queue) CanServe(id string, w *Waiting, now int64) bool {
	a, ok := q.agents[id]
	if !ok {
		return false
	}
	if w.PreferredAgent != "" && w.where == nil && w.PreferredAgent != id {
		return false
	}
	return q.eligible(a, w, q.stepOf(w, now)) && !w.avoids(id, now)
}

// AvailableAgents is the number of agents in a pool: free for the queue on
// some channel and not soliciting.
func (q *Queue) AvailableAgents() int { return q.pooled }

// Add puts a contact in line and returns its entry. extras are its
// requirements beyond the queue's own (language, contact skills). Adding a
// contact already waiting returns the existing entry. w is copied: entries
// are never reused, because removed ones linger in lines until they reach
// the front; for the same reason a contact's entry is replaced when its
// site window closes, so callers look entries up (Waiting) rather than keep
// them.
//
// A contact with a site, in a queue with a site window, also requires its
// site until it has waited that long (the window counts from ArrivedAt, so
// a requeued or rebuilt contact gets only what is left of it). The site
// requirement is part of its class like any other, so a contact in its
// preferred-agent window may go to its preferred agent before the site
// window closes only if that agent works at its site.
func (q *Queue) Add(in Waiting, extras routing.Requirements, now int64) *Waiting {
	if w, ok := q.waiting[in.ContactID]; ok {
		return w
	}
	if !shard.ValidChannel(in.Channel) {
		return nil // committed contacts always have a valid channel
	}
	w := &in
	w.where, w.removed, w.extras = nil, false, nil
	w.siteUntil, w.baseClass = 0, 0
	for _, a := range w.Avoid {
		if a.Until > now {
			q.avoidEnds = append(q.avoidEnds, a.Until)
			upInt64(q.avoidEnds, len(q.avoidEnds)-1)
		}
	}
	w.class = q.classOf(extras)
	if w.class == slowClass {
		w.extras = extras
	}
	if until := w.ArrivedAt + int64(q.cfg.SiteWindow); q.cfg.SiteWindow > 0 && w.Site != "" && now < until {
		w.baseClass = uint8(w.class)
		w.class = q.classOf(extras.With(routing.Requirement{Skill: routing.SiteSkill(w.Site), Level: 1}))
		w.siteUntil = until
		pushBy(&q.siteExpiry, w, siteEnd)
	}
	q.waiting[w.ContactID] = w
	q.perPriority[w.Priority]++
	if w.PreferredAgent != "" && now < w.PreferredUntil {
		q.pref[w.PreferredAgent] = append(q.pref[w.PreferredAgent], w)
		w.where = nil
		w.removed = false
		pushBy(&q.prefExpiry, w, preferredEnd)
		return w
	}
	q.lineFor(lineKey{channel: w.Channel, priority: w.Priority, class: w.class}).push(w)
	return w
}

// Remove takes a contact out of line (matched, abandoned).
func (q *Queue) Remove(id string) (*Waiting, bool) {
	w, ok := q.waiting[id]
	if !ok {
		return nil, false
	}
	delete(q.waiting, id)
	if n := q.perPriority[w.Priority] - 1; n > 0 {
		q.perPriority[w.Priority] = n
	} else {
		delete(q.perPriority, w.Priority)
	}
	if w.where != nil {
		l := w.where
		l.remove(w)
		if l.live == 0 {
			q.dropLine(l)
		}
		return w, true
	}
	// A preferred-window contact: drop it from its agent's list; its entry
	// in prefExpiry (and siteExpiry) is skipped when it comes up.
	list := q.pref[w.PreferredAgent]
	for i, x := range list {
		if x == w {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(q.pref, w.PreferredAgent)
	} else {
		q.pref[w.PreferredAgent] = list
	}
	w.removed = true
	return w, true
}

// Position is the 1-based place of a contact of priority p that arrived
// now: everyone waiting at that priority or above is ahead (ageing aside).
func (q *Queue) Position(p int32) int {
	n := 0
	for prio, c := range q.perPriority {
		if prio >= p {
			n += c
		}
	}
	return n
}

// OldestArrival returns the earliest arrival among waiting contacts, or 0.
func (q *Queue) OldestArrival() int64 {
	var oldest int64
	for _, l := range q.lines {
		if h := l.peek(); h != nil && (oldest == 0 || h.ArrivedAt < oldest) {
			oldest = h.ArrivedAt
		}
	}
	for _, w := range q.prefExpiry {
		if !w.removed && (oldest == 0 || w.ArrivedAt < oldest) {
			oldest = w.ArrivedAt
		}
	}
	return oldest
}

func (q *Queue) lineFor(k lineKey) *line {
	if l, ok := q.lineIdx[k]; ok {
		return l
	}
	l := &line{key: k, index: len(q.lines)}
	q.lines = append(q.lines, l)
	q.lineIdx[k] = l
	return l
}

func (q *Queue) dropLine(l *line) {
	last := len(q.lines) - 1
	q.lines[l.index] = q.lines[last]
	q.lines[l.index].index = l.index
	q.lines[last] = nil
	q.lines = q.lines[:last]
	delete(q.lineIdx, l.key)
	// Entries still marked in the ring point at l; they are garbage now.
}

// classOf returns the class of a set of extra requirements, creating it
// (and updating every agent's mask) the first time it is seen.
func (q *Queue) classOf(extras routing.Requirements) int {
	// Classes are few: comparing beats building a key on every arrival.
	for c, reqs := range q.classes {
		if slices.Equal(reqs, extras) {
			return c
		}
	}
	if len(q.classes) >= slowClass {
		return slowClass
	}
	c := len(q.classes)
	q.classes = append(q.classes, extras)
	for _, a := range q.agents {
		if extras.MetByProfile(a.Profile) {
			a.mask |= 1 << c
			q.place(a)
		}
	}
	return c
}

func (q *Queue) maskFor(p *pb.AgentProfile) uint64 {
	m := uint64(1) << slowClass
	for c, reqs := range q.classes {
		if reqs.MetByProfile(p) {
			m |= 1 << c
		}
	}
	return m
}

// Status is an agent's availability as its last status message gave it.
type Status struct {
	ID        string
	Profile   *pb.AgentProfile
	Free      [shard.NumChannels]uint32
	IdleSince int64
	Occupancy uint32
	Version   uint64
	Shard     uint32
	// SeenSeq: the highest of this queue's holds the agent had answered.
	SeenSeq uint64
	// Soliciting: the agent asks for a candidate and must not be offered
	// contacts by the queue until its next status.
	Soliciting bool
	// Asking: this status opens one of the agent's rounds (it asks its
	// queues for candidates). It is the agent's own word on what it has
	// free, so other queues' holds (HeldElsewhere) are forgotten.
	Asking bool
}

// SetAgent records an agent's status at now. It returns false when the
// status is older than one already applied or the agent can never serve the
// queue.
func (q *Queue) SetAgent(st Status, now int64) bool {
	a, ok := q.agents[st.ID]
	if ok && st.Version < a.Version {
		return false
	}
	if !ok || a.Profile != st.Profile {
		step := q.all.MinStep(q.cfg, st.Profile)
		if step < 0 {
			if ok {
				q.RemoveAgent(st.ID)
			}
			return false
		}
		if !ok {
			a = &Agent{ID: st.ID}
			q.agents[st.ID] = a
		}
		a.Profile = st.Profile
		a.minStep = step
		a.mask = q.maskFor(st.Profile)
		a.score = q.cfg.Score(st.Profile)
		qs := q.all.Memberships(st.ID)
		a.queues, a.queueIdx = len(qs), 0
		for i, m := range qs {
			if m.Queue.Name == q.cfg.Name {
				a.queueIdx = i
			}
		}
	}
	a.base = st.Free
	keep := a.inflight[:0]
	for _, h := range a.inflight {
		switch {
		case h.foreign:
			if !st.Asking && st.Version <= h.version && now-h.at < foreignTTL {
				keep = append(keep, h)
			}
		case h.seq > st.SeenSeq && now-h.at < inflightTTL:
			keep = append(keep, h)
		}
	}
	a.inflight = keep
	a.IdleSince = st.IdleSince
	a.away = a.queues > 1 && !q.home(a)
	a.Occupancy = st.Occupancy
	a.capacity = 0
	for _, c := range shard.Capacity(a.Profile) {
		a.capacity += c
	}
	a.recompute()
	a.Version = st.Version
	a.Shard = st.Shard
	a.soliciting = st.Soliciting
	q.place(a)
	return true
}

// Agent returns the queue's view of an agent.
func (q *Queue) Agent(id string) (*Agent, bool) {
	a, ok := q.agents[id]
	return a, ok
}

// RemoveAgent forgets an agent (logged out).
func (q *Queue) RemoveAgent(id string) {
	if a, ok := q.agents[id]; ok {
		q.unplace(a)
		delete(q.agents, id)
	}
}

// StopSoliciting makes a soliciting agent eligible for offers again.
func (q *Queue) StopSoliciting(id string) {
	if a, ok := q.agents[id]; ok && a.soliciting {
		a.soliciting = false
		q.place(a)
	}
}

// Taken records that the queue sent hold seq for agent id on ch at now:
// one slot fewer (and the agent's blocking rules applied) until the agent
// reports on it, and last in round-robin order.
func (q *Queue) Taken(id string, ch pb.Channel, seq uint64, now int64) {
	a, ok := q.agents[id]
	if !ok || !shard.ValidChannel(ch) {
		return
	}
	q.rr++
	a.lastOffered = q.rr
	a.inflight = append(a.inflight, inflight{seq: seq, ch: ch, at: now})
	a.recompute()
	q.place(a)
}

// HeldElsewhere records that another queue has just asked to hold agent id
// on ch, knowing its status version: the slot counts as taken here until a
// status newer than that arrives (or for foreignTTL), so this queue does not
// ask for the same agent at the same moment and get declined.
func (q *Queue) HeldElsewhere(id string, ch pb.Channel, version uint64, now int64) {
	a, ok := q.agents[id]
	if !ok || !shard.ValidChannel(ch) {
		return
	}
	// Until a status newer than the newest either queue knew: the hold may
	// have been decided on an older status than this queue's.
	a.inflight = append(a.inflight, inflight{ch: ch, at: now, foreign: true, version: max(version, a.Version)})
	a.recompute()
	q.place(a)
	q.foreign = append(q.foreign, foreignEnd{at: now + foreignTTL, agent: id})
}

// foreignEnd is when an agent's hold by another queue is forgotten.
type foreignEnd struct {
	at    int64
	agent string
}

// expireForeign forgets other queues' holds older than foreignTTL. They
// end in the order they were made, so only the front of the list is due.
func (q *Queue) expireForeign(now int64) {
	n := 0
	for n < len(q.foreign) && q.foreign[n].at <= now {
		a, ok := q.agents[q.foreign[n].agent]
		n++
		if !ok {
			continue
		}
		keep := a.inflight[:0]
		for _, h := range a.inflight {
			if !h.foreign || now-h.at < foreignTTL {
				keep = append(keep, h)
			}
		}
		if len(keep) != len(a.inflight) {
			clear(a.inflight[len(keep):])
			a.inflight = keep
			a.recompute()
			q.place(a)
		}
	}
	if n > 0 {
		q.foreign = append(q.foreign[:0], q.foreign[n:]...)
	}
}

// Untake forgets hold seq, which never reached the agent (the contact could
// not be held), so an idle agent is not left out of the pools.
func (q *Queue) Untake(id string, seq uint64) {
	a, ok := q.agents[id]
	if !ok {
		return
	}
	for i, h := range a.inflight {
		if h.seq == seq {
			a.inflight = append(a.inflight[:i], a.inflight[i+1:]...)
			a.recompute()
			q.place(a)
			return
		}
	}
}

// eligible reports whether agent a may serve contact w at step s.
func (q *Queue) eligible(a *Agent, w *Waiting, step int) bool {
	if a.minStep > step || a.Free[w.Channel] == 0 {
		return false
	}
	if w.class == slowClass {
		return q.slowMet(w, a.Profile)
	}
	return a.mask&(1<<w.class) != 0
}

// slowMet reports whether an agent with profile p meets the extra
// requirements of w, a contact of the slow class: its requirements without
// its site (kept in extras when they are the slow class too), and in its
// site window its site.
func (q *Queue) slowMet(w *Waiting, p *pb.AgentProfile) bool {
	if w.siteUntil == 0 {
		return w.extras.MetByProfile(p)
	}
	base := w.extras
	if w.baseClass != slowClass {
		base = q.classes[w.baseClass]
	}
	return p.GetSite() == w.Site && base.MetByProfile(p)
}

func (q *Queue) stepOf(w *Waiting, now int64) int {
	return q.cfg.StepAt(time.Duration(now - w.ArrivedAt))
}

// Priority is w's priority after ageing at now.
func (q *Queue) Priority(w *Waiting, now int64) int32 {
	return q.cfg.EffectivePriority(w.Priority, time.Duration(now-w.ArrivedAt))
}

// ahead reports whether contact w should be served before x at now.
func (q *Queue) ahead(w, x *Waiting, now int64) bool {
	if x == nil {
		return true
	}
	pw, px := q.Priority(w, now), q.Priority(x, now)
	if pw != px {
		return pw > px
	}
	return w.before(x)
}

// bestAgentFor returns the best free agent for contact w at now, skipping
// agents w avoids.
func (q *Queue) bestAgentFor(w *Waiting, now int64) *Agent {
	step := q.stepOf(w, now)
	avoiding := w.avoiding(now)
	var best *Agent
	for _, p := range q.pools[w.Channel] {
		if p.key.minStep > step {
			continue
		}
		if w.class != slowClass && !avoiding {
			if p.key.mask&(1<<w.class) == 0 {
				continue
			}
			if top := p.heap[0]; best == nil || q.agentBefore(top, best) {
				best = top
			}
			continue
		}
		if w.class != slowClass {
			if p.key.mask&(1<<w.class) == 0 {
				continue
			}
			if a := q.bestInPool(p, w, now); a != nil && (best == nil || q.agentBefore(a, best)) {
				best = a
			}
			continue
		}
		for _, a := range p.heap {
			if (best == nil || q.agentBefore(a, best)) && q.slowMet(w, a.Profile) && !w.avoids(a.ID, now) {
				best = a
			}
		}
	}
	return best
}

// bestInPool finds the best agent of a heap that w does not avoid, looking
// past avoided ones best-first: the walk visits at most the avoided agents
// and their children.
func (q *Queue) bestInPool(p *pool, w *Waiting, now int64) *Agent {
	frontier := []int{0}
	for len(frontier) > 0 {
		bi := 0
		for i := 1; i < len(frontier); i++ {
			if q.agentBefore(p.heap[frontier[i]], p.heap[frontier[bi]]) {
				bi = i
			}
		}
		n := frontier[bi]
		frontier = append(frontier[:bi], frontier[bi+1:]...)
		a := p.heap[n]
		if !w.avoids(a.ID, now) {
			return a
		}
		for _, c := range []int{2*n + 1, 2*n + 2} {
			if c < len(p.heap) {
				frontier = append(frontier, c)
			}
		}
	}
	return nil
}

// MatchArriving returns the agent to hold a contact for as it arrives, if
// the queue would serve it at once: a free agent may serve it and, put in
// line now, it would be the next contact held. With the queue matched up
// (no free agent able to serve anyone waiting), that is exactly when some
// free agent can serve it, so no one waiting is passed over. It changes
// nothing; the caller calls Taken. in.Seq may be unknown (the contact is
// not committed yet): it then ranks after everyone who arrived at the same
// instant.
func (q *Queue) MatchArriving(in Waiting, extras routing.Requirements, now int64) (*Agent, bool) {
	if _, ok := q.waiting[in.ContactID]; ok {
		return nil, false
	}
	if q.pooled == 0 {
		return nil, false
	}
	w := q.Add(in, extras, now)
	if w == nil {
		return nil, false
	}
	next, a, ok := q.NextMatch(now)
	q.Remove(in.ContactID)
	if !ok || next != w {
		return nil, false
	}
	return a, true
}

// NextMatch returns the next contact to hold and the agent to offer it to:
// contacts waiting for a preferred agent who is free first, then the best
// contact (priority after ageing, then arrival) that some free agent can
// serve, with the best such agent by the queue's strategy. It changes
// nothing; the caller removes the contact and calls Taken.
func (q *Queue) NextMatch(now int64) (*Waiting, *Agent, bool) {
	q.expireForeign(now)
	q.expireSite(now)
	q.expirePreferred(now)
	for id, list := range q.pref {
		a, ok := q.agents[id]
		if !ok || a.soliciting {
			continue
		}
		// An agent's preferred contacts go in priority, then arrival order
		// (the list is in the order they were added).
		var best *Waiting
		for _, w := range list {
			if q.eligible(a, w, q.stepOf(w, now)) && !w.avoids(id, now) && q.ahead(w, best, now) {
				best = w
			}
		}
		if best != nil {
			return best, a, true
		}
	}
	var bestW *Waiting
	var bestA *Agent
	for _, l := range q.lines {
		h := l.peek()
		if h == nil || !q.ahead(h, bestW, now) {
			continue
		}
		if l.key.class == slowClass {
			// Heads of the slow class do not stand for the rest of the
			// line: look at each contact.
			l.each(func(w *Waiting) bool {
				if q.ahead(w, bestW, now) {
					if a := q.bestAgentFor(w, now); a != nil {
						bestW, bestA = w, a
					}
				}
				return true
			})
			continue
		}
		// A head that avoids someone does not stand for the contacts
		// behind it: walk on past avoiding contacts until one that avoids
		// nobody, which stands for the rest of the line.
		l.walk(func(w *Waiting) bool {
			if !q.ahead(w, bestW, now) {
				return false
			}
			if a := q.bestAgentFor(w, now); a != nil {
				bestW, bestA = w, a
				return false
			}
			return w.avoiding(now)
		})
	}
	if bestA != nil {
		bestA = q.spread(bestW, bestA, now)
	}
	return bestW, bestA, bestW != nil
}

// Queues that share agents rank them alike, so two of them deciding within
// the time a hold takes to reach the other pick the same agent, and one is
// declined: a commit to lock the contact, one to unlock it, and the contact
// waits for another try. When the best agent serves other queues too,
// spread chooses among the agents that rank with it (the same strategy key,
// idle since within spreadWindow of its; at most spreadMax of them, best
// first): the best of those whose home this queue is — each agent's home,
// for one idle period, is one of its queues, drawn by a hash of the agent
// and its idle start — or, with none, the one this queue's hash of them
// ranks first. Queues then pick apart unless one finds no agent of its own
// among the few. An agent passed over waits, in idle time, at most
// spreadWindow more than the strategy alone gives it.
func (q *Queue) spread(w *Waiting, best *Agent, now int64) *Agent {
	p := best.pools[w.Channel]
	if best.queues < 2 || p == nil || best.idx[w.Channel] != 0 || w.class == slowClass || w.avoiding(now) {
		return best
	}
	if q.home(best) {
		return best
	}
	chosen, top := best, q.affinity(best)
	// Each visit takes one node off the frontier and puts two on.
	var buf [spreadMax + 2]int
	frontier := append(buf[:0], 1, 2)
	for seen := 1; seen < spreadMax && len(frontier) > 0; seen++ {
		bi := -1
		for i, n := range frontier {
			if n < len(p.heap) && (bi < 0 || q.agentBefore(p.heap[n], p.heap[frontier[bi]])) {
				bi = i
			}
		}
		if bi < 0 {
			break
		}
		n := frontier[bi]
		frontier = append(frontier[:bi], frontier[bi+1:]...)
		a := p.heap[n]
		if !q.ranksWith(a, best) {
			break
		}
		if q.home(a) {
			return a
		}
		if h := q.affinity(a); h > top {
			chosen, top = a, h
		}
		frontier = append(frontier, 2*n+1, 2*n+2)
	}
	return chosen
}

const (
	// spreadWindow bounds how much longer than another an agent may have
	// been idle and still count as ranking with it.
	spreadWindow = int64(50 * time.Millisecond)
	// spreadMax bounds the agents spread chooses among.
	spreadMax = 16
	// homeGrace is how much longer than an agent of its own an agent whose
	// home is another queue must have been idle before a queue takes it.
	homeGrace = int64(250 * time.Millisecond)
)

// ranksWith reports whether a ranks with best (best is at least as good).
func (q *Queue) ranksWith(a, best *Agent) bool {
	switch q.cfg.Strategy {
	case pb.Strategy_STRATEGY_MOST_SKILLED:
		if a.score != best.score {
			return false
		}
	case pb.Strategy_STRATEGY_ROUND_ROBIN:
		if a.lastOffered != best.lastOffered {
			return false
		}
	case pb.Strategy_STRATEGY_LEAST_OCCUPIED:
		if a.occupancy != best.occupancy {
			return false
		}
	}
	return a.IdleSince-best.IdleSince <= spreadWindow
}

// home reports whether this queue is agent a's home for its current idle
// period. Every queue of the agent works it out alike.
func (q *Queue) home(a *Agent) bool {
	return a.queues > 0 && int(idleHash("", a)%uint64(a.queues)) == a.queueIdx
}

// affinity is this queue's preference for agent a in its current idle
// period.
func (q *Queue) affinity(a *Agent) uint64 { return idleHash(q.cfg.Name, a) }

// idleHash is FNV-1a of salt, the agent id and the start of its idle
// period.
func idleHash(salt string, a *Agent) uint64 {
	h := uint64(14695981039346656037)
	mix := func(b byte) { h = (h ^ uint64(b)) * 1099511628211 }
	for i := 0; i < len(salt); i++ {
		mix(salt[i])
	}
	mix(0)
	for i := 0; i < len(a.ID); i++ {
		mix(a.ID[i])
	}
	for i := 0; i < 8; i++ {
		mix(byte(a.IdleSince >> (8 * i)))
	}
	return h
}

// BestContact returns the best waiting contact agent id may serve now, for
// a soliciting agent: its preferred contacts first, then by priority after
// ageing and arrival. The agent must have been given with SetAgent.
func (q *Queue) BestContact(id string, now int64) (*Waiting, bool) {
	q.expireForeign(now)
	q.expireSite(now)
	q.expirePreferred(now)
	a, ok := q.agents[id]
	if !ok {
		return nil, false
	}
	var best *Waiting
	for _, w := range q.pref[id] {
		if q.eligible(a, w, q.stepOf(w, now)) && q.ahead(w, best, now) && !w.avoids(id, now) {
			best = w
		}
	}
	if best != nil {
		return best, true
	}
	for _, l := range q.lines {
		if a.Free[l.key.channel] == 0 {
			continue
		}
		if l.key.class != slowClass && a.mask&(1<<l.key.class) == 0 {
			continue
		}
		h := l.peek()
		if h == nil || !q.ahead(h, best, now) {
			continue
		}
		if l.key.class == slowClass {
			l.each(func(w *Waiting) bool {
				if q.ahead(w, best, now) && q.eligible(a, w, q.stepOf(w, now)) && !w.avoids(id, now) {
					best = w
				}
				return true
			})
			continue
		}
		l.walk(func(w *Waiting) bool {
			if !q.ahead(w, best, now) {
				return false
			}
			if w.avoids(id, now) {
				return true
			}
			if q.eligible(a, w, q.stepOf(w, now)) {
				best = w
			}
			return false
		})
	}
	return best, best != nil
}

// NextWake returns the earliest time after now at which eligibility changes
// without any message arriving — a line head reaching its next widening
// step, a preferred-agent or site window closing — or 0 if none.
func (q *Queue) NextWake(now int64) int64 {
	wake := int64(math.MaxInt64)
	// Look at every contact matching would look at: each line's head, the
	// contacts behind heads that avoid someone, every contact of the slow
	// class, and contacts in a preferred-agent window, which reach widening
	// steps too.
	stepWake := func(w *Waiting) {
		if next := q.cfg.NextStepAfter(q.stepOf(w, now)); next >= 0 {
			if t := w.ArrivedAt + int64(next); t < wake {
				wake = t
			}
		}
	}
	for _, l := range q.lines {
		if l.key.class == slowClass {
			l.each(func(w *Waiting) bool { stepWake(w); return true })
			continue
		}
		l.walk(func(w *Waiting) bool {
			stepWake(w)
			return w.avoiding(now)
		})
	}
	for _, list := range q.pref {
		for _, w := range list {
			stepWake(w)
		}
	}
	for len(q.prefExpiry) > 0 && q.prefExpiry[0].removed {
		popBy(&q.prefExpiry, preferredEnd)
	}
	if len(q.prefExpiry) > 0 && q.prefExpiry[0].PreferredUntil < wake {
		wake = q.prefExpiry[0].PreferredUntil
	}
	for len(q.siteExpiry) > 0 && q.siteExpiry[0].removed {
		popBy(&q.siteExpiry, siteEnd)
	}
	if len(q.siteExpiry) > 0 && q.siteExpiry[0].siteUntil < wake {
		wake = q.siteExpiry[0].siteUntil
	}
	// Another queue's hold being forgotten can free an agent.
	if len(q.waiting) > 0 && len(q.foreign) > 0 && q.foreign[0].at < wake {
		wake = max(q.foreign[0].at, now+1)
	}
	// An avoidance ending can make a waiting contact servable.
	for len(q.avoidEnds) > 0 && q.avoidEnds[0] <= now {
		popInt64(&q.avoidEnds)
	}
	if len(q.avoidEnds) > 0 && q.avoidEnds[0] < wake {
		wake = q.avoidEnds[0]
	}
	if wake == math.MaxInt64 {
		return 0
	}
	return max(wake, now)
}

// expirePreferred moves contacts whose preferred window closed into lines,
// at their original place.
func (q *Queue) expirePreferred(now int64) {
	for len(q.prefExpiry) > 0 {
		w := q.prefExpiry[0]
		if !w.removed && w.PreferredUntil > now {
			return
		}
		popBy(&q.prefExpiry, preferredEnd)
		if w.removed {
			continue
		}
		list := q.pref[w.PreferredAgent]
		for i, x := range list {
			if x == w {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(q.pref, w.PreferredAgent)
		} else {
			q.pref[w.PreferredAgent] = list
		}
		q.lineFor(lineKey{channel: w.Channel, priority: w.Priority, class: w.class}).push(w)
	}
}

// expireSite moves contacts whose site window closed out of their site
// class: one in a line goes to the line of its base class at its original
// place — as a copy, because line entries are never reused (the old one is
// marked removed and lingers until it reaches the front); one in its
// preferred-agent window is in no line and just changes class.
func (q *Queue) expireSite(now int64) {
	for len(q.siteExpiry) > 0 {
		w := q.siteExpiry[0]
		if !w.removed && w.siteUntil > now {
			return
		}
		popBy(&q.siteExpiry, siteEnd)
		if w.removed {
			continue
		}
		if w.where == nil {
			w.class, w.siteUntil = int(w.baseClass), 0
			continue
		}
		l := w.where
		l.remove(w)
		if l.live == 0 {
			q.dropLine(l)
		}
		moved := *w
		moved.class, moved.siteUntil = int(w.baseClass), 0
		q.waiting[moved.ContactID] = &moved
		q.lineFor(lineKey{channel: moved.Channel, priority: moved.Priority, class: moved.class}).push(&moved)
	}
}

func preferredEnd(w *Waiting) int64 { return w.PreferredUntil }
func siteEnd(w *Waiting) int64      { return w.siteUntil }

// pushBy adds w to the min-heap h ordered by key.
func pushBy(h *[]*Waiting, w *Waiting, key func(*Waiting) int64) {
	s := append(*h, w)
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if key(s[i]) >= key(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
	*h = s
}

// popBy drops the top of the min-heap h ordered by key.
func popBy(h *[]*Waiting, key func(*Waiting) int64) {
	s := *h
	last := len(s) - 1
	s[0] = s[last]
	s[last] = nil
	s = s[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && key(s[r]) < key(s[l]) {
			m = r
		}
		if key(s[m]) >= key(s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
}

func upInt64(h []int64, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[i] >= h[p] {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func popInt64(h *[]int64) {
	s := *h
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s[r] < s[l] {
			m = r
		}
		if s[m] >= s[i] {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
}
