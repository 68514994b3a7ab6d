package match

import (
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"time"
)

// Agent is a queue's view of one agent: its last status, less the holds
// this queue sent that the agent had not answered when it sent the status.
type Agent struct {
	ID      string
	Profile *pb.AgentProfile
	// Free is what the queue may still ask of the agent per channel: base
	// minus the holds in flight.
	Free      [shard.NumChannels]uint32
	IdleSince int64
	Occupancy uint32
	Version   uint64
	Shard     uint32

	base     [shard.NumChannels]uint32
	inflight []inflight
	// capacity is the agent's total slots; occupancy is Occupancy with the
	// holds in flight counted in, for least-occupied ordering.
	capacity  uint32
	occupancy uint32

	minStep int
	mask    uint64
	// queues is how many queues the agent serves, queueIdx this one's
	// place among them (see Queue.spread).
	queues, queueIdx int
	// away: the agent serves other queues and this one is not its home for
	// its current idle period (see Queue.home).
	away        bool
	score       int32
	lastOffered uint64
	// soliciting: the agent is choosing among its queues' candidates; it is
	// not offered contacts by this queue until its next status.
	soliciting bool
	pools      [shard.NumChannels]*pool
	idx        [shard.NumChannels]int
}

// MinStep is the first widening step at which the agent may serve the queue.
func (a *Agent) MinStep() int { return a.minStep }

// inflight is a hold the queue sent for the agent that the agent had not
// answered as of its last status.
type inflight struct {
	seq uint64
	ch  pb.Channel
	at  int64
	// foreign: another queue's hold (HeldElsewhere), kept until a status
	// newer than version or foreignTTL.
	foreign bool
	version uint64
}

// foreignTTL forgets another queue's hold that no status of the agent
// followed (the hold never reached the agent).
const foreignTTL = int64(time.Second)

// inflightTTL forgets a hold the agent never reported on (its shard moved
// and lost the count), so the queue does not under-count it for ever.
const inflightTTL = int64(10e9)

// recompute derives Free from base and the holds in flight, applying the
// agent's blocking rules for each.
func (a *Agent) recompute() {
	a.Free = a.base
	a.occupancy = a.Occupancy
	if a.capacity > 0 {
		a.occupancy = min(1000, a.Occupancy+uint32(len(a.inflight))*1000/a.capacity)
	}
	if len(a.inflight) == 0 {
		return
	}
	blocks := shard.Blocks(a.Profile)
	for _, h := range a.inflight {
		if a.Free[h.ch] > 0 {
			a.Free[h.ch]--
		}
		for _, x := range shard.Channels {
			if blocks[h.ch]&(1<<x) != 0 {
				a.Free[x] = 0
			}
		}
	}
}

type poolKey struct {
	channel pb.Channel
	minStep int
	mask    uint64
}

// pool is a heap of free agents with the same channel, first eligible step
// and class mask, best first by the queue's strategy.
type pool struct {
	key   poolKey
	heap  []*Agent
	index int // position in Queue.pools[channel]
}

func (q *Queue) poolPush(p *pool, a *Agent) {
	ch := p.key.channel
	a.pools[ch] = p
	a.idx[ch] = len(p.heap)
	p.heap = append(p.heap, a)
	q.poolUp(p, len(p.heap)-1)
}

func (q *Queue) poolRemove(a *Agent, ch pb.Channel) {
	p := a.pools[ch]
	if p == nil {
		return
	}
	i := a.idx[ch]
	last := len(p.heap) - 1
	if i != last {
		p.heap[i] = p.heap[last]
		p.heap[i].idx[ch] = i
	}
	p.heap[last] = nil
	p.heap = p.heap[:last]
	if i < len(p.heap) {
		q.poolDown(p, i)
		q.poolUp(p, i)
	}
	a.pools[ch] = nil
	if len(p.heap) == 0 {
		q.dropPool(p)
	}
}

func (q *Queue) poolUp(p *pool, i int) {
	ch := p.key.channel
	h := p.heap
	for i > 0 {
		parent := (i - 1) / 2
		if !q.agentBefore(h[i], h[parent]) {
			return
		}
		h[i], h[parent] = h[parent], h[i]
		h[i].idx[ch], h[parent].idx[ch] = i, parent
		i = parent
	}
}

func (q *Queue) poolDown(p *pool, i int) {
	ch := p.key.channel
	h := p.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && q.agentBefore(h[r], h[l]) {
			m = r
		}
		if !q.agentBefore(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		h[i].idx[ch], h[m].idx[ch] = i, m
		i = m
	}
}

// agentBefore orders free agents by the queue's strategy; longest idle
// breaks every tie, then the id so the order is total.
func (q *Queue) agentBefore(a, b *Agent) bool {
	switch q.cfg.Strategy {
	case pb.Strategy_STRATEGY_MOST_SKILLED:
		if a.score != b.score {
			return a.score > b.score
		}
	case pb.Strategy_STRATEGY_ROUND_ROBIN:
		if a.lastOffered != b.lastOffered {
			return a.lastOffered < b.lastOffered
		}
	case pb.Strategy_STRATEGY_LEAST_OCCUPIED:
		if a.occupancy != b.occupancy {
			return a.occupancy < b.occupancy
		}
	}
	// An agent shared with other queues goes first to its home queue: to
	// the others it counts as idle homeGrace less. Queues that share
	// agents then rarely ask for the same one at once.
	ai, bi := a.IdleSince, b.IdleSince
	if a.away {
		ai += homeGrace
	}
	if b.away {
		bi += homeGrace
	}
	if ai != bi {
		return ai < bi
	}
	return a.ID < b.ID
}

// poolFor returns the pool for key, making it active. Emptied pools stay
// in poolIdx for reuse (an agent freeing and going busy would otherwise
// allocate one each time); only active pools are iterated.
func (q *Queue) poolFor(key poolKey) *pool {
	p, ok := q.poolIdx[key]
	if !ok {
		p = &pool{key: key, index: -1}
		q.poolIdx[key] = p
	}
	if p.index < 0 {
		p.index = len(q.pools[key.channel])
		q.pools[key.channel] = append(q.pools[key.channel], p)
	}
	return p
}

// dropPool takes an emptied pool out of the active list.
func (q *Queue) dropPool(p *pool) {
	list := q.pools[p.key.channel]
	last := len(list) - 1
	list[p.index] = list[last]
	list[p.index].index = p.index
	list[last] = nil
	q.pools[p.key.channel] = list[:last]
	p.index = -1
}

// place puts a into the pools of every channel it has free capacity on,
// unless it is soliciting.
func (q *Queue) place(a *Agent) {
	was := a.pooled()
	for _, ch := range shard.Channels {
		q.poolRemove(a, ch)
		if a.Free[ch] == 0 || a.soliciting || !q.cfg.Accepts(ch) {
			continue
		}
		q.poolPush(q.poolFor(poolKey{channel: ch, minStep: a.minStep, mask: a.mask}), a)
	}
	q.countPooled(was, a)
}

func (q *Queue) unplace(a *Agent) {
	was := a.pooled()
	for _, ch := range shard.Channels {
		q.poolRemove(a, ch)
	}
	q.countPooled(was, a)
}

func (a *Agent) pooled() bool {
	for _, p := range a.pools {
		if p != nil {
			return true
		}
	}
	return false
}

func (q *Queue) countPooled(was bool, a *Agent) {
	switch now := a.pooled(); {
	case now && !was:
		q.pooled++
	case was && !now:
		q.pooled--
	}
}
