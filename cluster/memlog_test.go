package cluster_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/cluster"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// result is what the test's apply function returns: the command's At and
// the position it was applied in.
type result struct {
	at    int64
	order int
	err   error
}

type recorder struct {
	mu      sync.Mutex
	applied []int64
}

func (r *recorder) apply(cmds []*pb.Command) []result {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]result, len(cmds))
	for i, c := range cmds {
		r.applied = append(r.applied, c.GetAt())
		out[i] = result{at: c.GetAt(), order: len(r.applied)}
	}
	return out
}

func fail(err error) result { return result{err: err} }

func cmd(at int64) *pb.Command { return &pb.Command{Version: 1, At: at} }

// Every proposal is applied once, done is called once with its own result,
// and one proposer's commands are applied in the order proposed.
func TestMemoryLog_AppliesOnceInProposalOrder(t *testing.T) {
	rec := &recorder{}
	l := cluster.NewMemoryLog(rec.apply, fail)
	defer l.Close()
	const proposers, each = 4, 500
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := make(map[int64]result)
	for p := 0; p < proposers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				at := int64(p*each + i)
				l.Propose(cmd(at), func(r result) {
					mu.Lock()
					defer mu.Unlock()
					if _, dup := done[at]; dup {
						t.Errorf("done called twice for %d", at)
					}
					done[at] = r
				})
			}
		}(p)
	}
	wg.Wait()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(done) }
	deadline := time.Now().Add(10 * time.Second)
	for n := count(); n < proposers*each; n = count() {
		if time.Now().After(deadline) {
			t.Fatalf("done called for %d of %d proposals", n, proposers*each)
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for at, r := range done {
		if r.at != at || r.err != nil {
			t.Fatalf("proposal %d got result %+v", at, r)
		}
	}
	for p := 0; p < proposers; p++ {
		prev := 0
		for i := 0; i < each; i++ {
			r := done[int64(p*each+i)]
			if r.order <= prev {
				t.Fatalf("proposer %d: command %d applied at %d, before its predecessor (%d)", p, i, r.order, prev)
			}
			prev = r.order
		}
	}
}

// Close applies what was proposed before it; later proposals get ErrClosed.
func TestMemoryLog_CloseAppliesPendingThenRefuses(t *testing.T) {
	rec := &recorder{}
	l := cluster.NewMemoryLog(rec.apply, fail)
	results := make(chan result, 101)
	for i := 0; i < 100; i++ {
		l.Propose(cmd(int64(i)), func(r result) { results <- r })
	}
	l.Close()
	for i := 0; i < 100; i++ {
		if r := <-results; r.err != nil {
			t.Fatalf("a proposal made before Close failed: %v", r.err)
		}
	}
	l.Propose(cmd(100), func(r result) { results <- r })
	if r := <-results; !errors.Is(r.err, cluster.ErrClosed) {
		t.Fatalf("proposal after Close: %+v, want ErrClosed", r)
	}
	l.Close() // twice is fine
}
