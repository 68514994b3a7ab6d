package cluster

import (
	"errors"
	"sync"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// ErrClosed is passed to proposals made after a log was closed.
var ErrClosed = errors.New("cluster: log closed")

// maxBatch bounds one group commit.
const maxBatch = 512

// MemoryLog commits commands in memory. R is the apply function's result.
type MemoryLog[R any] struct {
	apply func([]*pb.Command) []R
	fail  func(error) R

	mu     sync.RWMutex
	closed bool
	in     chan proposal[R]
	done   chan struct{}
}

type proposal[R any] struct {
	cmd  *pb.Command
	done func(R)
}

// NewMemoryLog starts a log that applies batches with apply. fail makes the
// result handed to proposals the log can no longer take.
func NewMemoryLog[R any](apply func([]*pb.Command) []R, fail func(error) R) *MemoryLog[R] {
	l := &MemoryLog[R]{apply: apply, fail: fail, in: make(chan proposal[R], 4096), done: make(chan struct{})}
	go l.run()
	return l
}

// Propose commits cmd and then calls done with its result, on the log's
// goroutine; done must not block.
func (l *MemoryLog[R]) Propose(cmd *pb.Command, done func(R)) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		done(l.fail(ErrClosed))
		return
	}
	l.in <- proposal[R]{cmd: cmd, done: done}
	l.mu.RUnlock()
}

// Close stops taking proposals, applies those already taken, and waits.
func (l *MemoryLog[R]) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.in)
	}
	l.mu.Unlock()
	<-l.done
}

func (l *MemoryLog[R]) run() {
	defer close(l.done)
	batch := make([]proposal[R], 0, maxBatch)
	cmds := make([]*pb.Command, 0, maxBatch)
	for p := range l.in {
		batch = append(batch[:0], p)
	fill:
		for len(batch) < maxBatch {
			select {
			case p, ok := <-l.in:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		cmds = cmds[:0]
		for _, p := range batch {
			cmds = append(cmds, p.cmd)
		}
		results := l.apply(cmds)
		for i, p := range batch {
			p.done(results[i])
		}
		clear(batch)
	}
}
