package actors

import "github.com/asynkron/protoactor-go/actor"

// workerDispatcher runs actor mailboxes on a pool of long-lived goroutines.
// protoactor's default dispatcher starts a goroutine for every mailbox run,
// and each one grows its stack again through our handlers (stack copying
// was an eighth of the CPU under load). Our actors never block — every I/O
// is asynchronous — so a small pool serves them all; when the pool is
// saturated, a run falls back to its own goroutine rather than wait.
type workerDispatcher struct {
	runs       chan func()
	throughput int
}

func newWorkerDispatcher(workers, throughput int) *workerDispatcher {
	d := &workerDispatcher{runs: make(chan func(), 1<<14), throughput: throughput}
	for i := 0; i < workers; i++ {
		go func() {
			for run := range d.runs {
				run()
			}
		}()
	}
	return d
}

var _ actor.Dispatcher = (*workerDispatcher)(nil)

// Schedule implements actor.Dispatcher.
func (d *workerDispatcher) Schedule(run func()) {
	select {
	case d.runs <- run:
	default:
		go run()
	}
}

// Throughput implements actor.Dispatcher: messages per mailbox run.
func (d *workerDispatcher) Throughput() int { return d.throughput }
