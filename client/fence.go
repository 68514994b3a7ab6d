package client

import (
	"sync"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Fences remembers the highest owner term seen per shard. Everything tsunagu
// sends out for a shard (offers, notices, routing instructions) carries the
// sending owner's fence; once a newer owner has been heard from, what a
// deposed owner still sends is stale and must be refused, so it cannot
// double-assign anyone.
type Fences struct {
	mu    sync.Mutex
	terms map[uint32]uint64
	stale uint64
}

// NewFences returns an empty record.
func NewFences() *Fences { return &Fences{terms: make(map[uint32]uint64)} }

// Admit records f and reports whether it is current: not older than the
// newest term seen for its shard. A nil fence (a single node's replies to
// bad input) is admitted.
func (fs *Fences) Admit(f *pb.Fence) bool {
	if f == nil {
		return true
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	known := fs.terms[f.GetShard()]
	if f.GetTerm() < known {
		fs.stale++
		return false
	}
	fs.terms[f.GetShard()] = f.GetTerm()
	return true
}

// Stale returns how many fences were refused.
func (fs *Fences) Stale() uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.stale
}
