package actors

import (
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds of a Latency's buckets.
var LatencyBounds = [...]time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
	5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second,
}

// Latency counts durations in the buckets of LatencyBounds (and one
// beyond), for a Prometheus histogram. Safe for concurrent use.
type Latency struct {
	counts [len(LatencyBounds) + 1]atomic.Uint64
	sum    atomic.Int64 // ns
}

// Observe counts one duration.
func (l *Latency) Observe(d time.Duration) {
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sum.Add(int64(d))
}

// Cumulative returns, for each bound of LatencyBounds, how many durations
// were at most that, then the count of all and their sum.
func (l *Latency) Cumulative() (le [len(LatencyBounds)]uint64, count uint64, sum time.Duration) {
	for i := range l.counts {
		count += l.counts[i].Load()
		if i < len(le) {
			le[i] = count
		}
	}
	return le, count, time.Duration(l.sum.Load())
}
