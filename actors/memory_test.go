package actors_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// BenchmarkMemoryWaiting fills an engine with waiting contacts and 100k
// logged-in agents who are not ready (so nothing is routed) and reports the
// memory the Go runtime holds, per waiting contact. Run it with
// -benchtime=1x; the size comes from the sub-benchmark name.
func BenchmarkMemoryWaiting(b *testing.B) {
	for _, waiting := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("waiting=%d/agents=100000", waiting), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				memoryWaiting(b, waiting, 100_000, 10)
			}
		})
	}
}

func memoryWaiting(b *testing.B, waiting, agents, queues int) {
	rc := &pb.RoutingConfig{}
	for q := 0; q < queues; q++ {
		rc.Queues = append(rc.Queues, &pb.QueueConfig{Name: fmt.Sprintf("q%d", q), Skills: []*pb.SkillRequirement{{Skill: fmt.Sprintf("s%d", q), MinLevel: 1}}})
	}
	for a := 0; a < agents; a++ {
		rc.Agents = append(rc.Agents, &pb.AgentProfile{Id: fmt.Sprintf("a%d", a), Skills: map[string]uint32{fmt.Sprintf("s%d", a%queues): 3}})
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// No event consumer: the test tracker would keep every event.
	d := newEngine(b, rc, 16, scenario.Options{}, func(c *actors.Config) { c.Events = nil })
	start := time.Now()
	run := func(n int, send func(i int, done func())) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4096)
		for i := 0; i < n; i++ {
			sem <- struct{}{}
			wg.Add(1)
			send(i, func() { <-sem; wg.Done() })
		}
		wg.Wait()
	}
	run(agents, func(i int, done func()) {
		d.e.AgentCommand(fmt.Sprintf("a%d", i), &pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN}, func(r *pb.AgentCommandReply) {
			if r.GetError() != nil {
				b.Errorf("login: %v", r.GetError())
			}
			done()
		})
	})
	run(waiting, func(i int, done func()) {
		a := &pb.ContactArrival{ContactId: fmt.Sprintf("c%d", i), Queue: fmt.Sprintf("q%d", i%queues), Channel: pb.Channel_CHANNEL_VOICE, Priority: int32(i % 3), CustomerKey: fmt.Sprintf("+8190%08d", i)}
		d.e.Arrive(a, func(r *pb.ArrivalReply) {
			if r.GetError() != nil || r.GetStatus() != pb.ArrivalStatus_ARRIVAL_STATUS_QUEUED {
				b.Errorf("arrival: %v %v", r.GetStatus(), r.GetError())
			}
			done()
		})
	})
	filled := time.Since(start)
	st := d.QueueStatus(b, "q0")
	if int(st.GetWaiting()) != waiting/queues {
		b.Fatalf("q0 has %d waiting, want %d", st.GetWaiting(), waiting/queues)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if path := os.Getenv("TSUNAGU_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	heap := float64(after.HeapInuse - before.HeapInuse)
	b.ReportMetric(heap/float64(1<<20), "heap-MiB")
	b.ReportMetric(float64(after.Sys)/float64(1<<20), "sys-MiB")
	b.ReportMetric(heap/float64(waiting+agents), "B/entity")
	b.ReportMetric(float64(waiting)/filled.Seconds(), "arrivals/s")
}
