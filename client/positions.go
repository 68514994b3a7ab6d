package client

import (
	"sync"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Positions follows the event stream's positions per shard, so an observer
// can drop the copies a new owner publishes again and notice events it
// missed (nats-contract §2.7). Every committed event carries its number in
// its shard's history, 1, 2, 3, … across owners; queue figures carry none.
type Positions struct {
	mu     sync.Mutex
	shards map[uint32]position
	copies uint64
	missed uint64
}

type position struct {
	last, term uint64
}

// NewPositions returns an empty record.
func NewPositions() *Positions { return &Positions{shards: make(map[uint32]position)} }

// Admit returns the events of b not seen before, in order, and how many
// events of b's shard were missed before them. An event at or below the
// last position seen for its shard is a copy and is left out. A single
// node's log does not survive a restart, so each of its lives numbers from
// its term × 2²⁰: the jump to a new life is not a gap.
func (ps *Positions) Admit(b *pb.EventBatch) (fresh []*pb.Event, missed uint64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	id, term := b.GetShard(), b.GetTerm()
	p, known := ps.shards[id]
	for _, ev := range b.GetEvents() {
		n := ev.GetPosition()
		switch {
		case n == 0: // queue figures: not commits
		case known && n <= p.last:
			ps.copies++
			continue
		case known && n > p.last+1:
			missed += n - p.expected(term, n)
		}
		if n > 0 {
			p, known = position{last: n, term: max(term, p.term)}, true
		}
		fresh = append(fresh, ev)
	}
	if known {
		ps.shards[id] = p
	}
	ps.missed += missed
	return fresh, missed
}

// expected returns the position that should have come after p, before n
// in a batch of term: the next one, or the first of a single node's new
// life when n belongs to it.
func (p position) expected(term, n uint64) uint64 {
	if term > p.term && term < 1<<44 {
		if life := term << 20; n >= life && life > p.last {
			return life
		}
	}
	return p.last + 1
}

// Copies returns how many events were left out as copies.
func (ps *Positions) Copies() uint64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.copies
}

// Missed returns how many events were missed in all.
func (ps *Positions) Missed() uint64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.missed
}
