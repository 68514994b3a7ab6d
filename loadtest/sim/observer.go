package sim

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tsunagu/tsunagu/loadtest/check"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// observer keeps every committed contact and agent event from the stream
// and notes the batches it missed.
type observer struct {
	mu     sync.Mutex
	events []check.Event
	gaps   []check.Gap
	last   map[[2]uint64]uint64 // shard, term -> last batch seq
	// terminals counts terminal events of this run's contacts, so the run
	// knows when the stream has caught up.
	terminals atomic.Int64
}

// onBatch returns the handler for event batches; prefix picks this run's
// contacts out for the terminal count.
func (o *observer) onBatch(prefix string) func(*pb.EventBatch) {
	return func(b *pb.EventBatch) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.last == nil {
			o.last = map[[2]uint64]uint64{}
		}
		key := [2]uint64{uint64(b.GetShard()), b.GetTerm()}
		if last, ok := o.last[key]; ok && b.GetSeq() != last+1 {
			o.gaps = append(o.gaps, check.Gap{Shard: b.GetShard(), Term: b.GetTerm(), After: last, Before: b.GetSeq()})
		}
		o.last[key] = max(o.last[key], b.GetSeq())
		for i := range b.GetEvents() {
			ev, ok := check.FromProto(b, i)
			if !ok {
				continue
			}
			if c := ev.Contact; c != nil && (c.State == pb.ContactState_CONTACT_STATE_DONE || c.State == pb.ContactState_CONTACT_STATE_ABANDONED) && strings.HasPrefix(c.ContactID, prefix) {
				o.terminals.Add(1)
			}
			o.events = append(o.events, ev)
		}
	}
}

// take returns what was recorded.
func (o *observer) take() ([]check.Event, []check.Gap) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.events, o.gaps
}
