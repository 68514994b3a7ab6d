package shard_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// BenchmarkApplyLifecycle applies the nine commands of one contact's happy
// path (arrive, lock, reserve, accept, connect, hang-up, contact-ended,
// wrap-up done, done) per iteration, with one agent. Contacts start 1 ms
// apart and their commands are 10 µs apart, so time only moves forward;
// with a one-second retention the shard holds a steady ~1000 ended
// contacts. Commands are built in chunks with the timer stopped.
func BenchmarkApplyLifecycle(b *testing.B) {
	const chunk = 4096
	const gap, every = int64(time.Millisecond), int64(10 * time.Microsecond)
	s := shard.New(testShard, int64(time.Second))
	if r := s.Apply(cmd(t0, login("agent-1", true))); r.Err != nil {
		b.Fatal(r.Err)
	}
	paths := make([][]*pb.Command, chunk)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if n%chunk == 0 {
			b.StopTimer()
			for i := range paths {
				k := n + i
				paths[i] = lifecycleEvery(t0+int64(k+1)*gap, every, fmt.Sprintf("contact-%08d", k), "agent-1", fmt.Sprintf("offer-%08d", k))
				paths[i][stepArrive].GetContactArrive().ArrivedAt = t0 + int64(k)*gap // wait credit, as carriers send it
			}
			b.StartTimer()
		}
		for j, c := range paths[n%chunk] {
			if r := s.Apply(c); r.Err != nil {
				b.Fatalf("contact %d step %d: %v", n, j, r.Err)
			}
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*len(paths[0])), "ns/command")
}

// BenchmarkSnapshot takes a snapshot of a shard holding 100k contacts (in
// every state of the path) and 1000 agents.
func BenchmarkSnapshot(b *testing.B) {
	s := bigShard(b, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		if snap := s.Snapshot(); len(snap.GetContacts()) != 100_000 {
			b.Fatalf("%d contacts", len(snap.GetContacts()))
		}
	}
}

// BenchmarkRestore installs the same snapshot into a fresh state.
func BenchmarkRestore(b *testing.B) {
	snap := bigShard(b, 100_000).Snapshot()
	b.ReportAllocs()
	for b.Loop() {
		if err := shard.New(testShard, 0).Restore(snap); err != nil {
			b.Fatal(err)
		}
	}
}

// bigShard holds n contacts: every 100th goes through its lifecycle, with
// an agent of its own, up to a step that depends on it; the rest queue.
func bigShard(b *testing.B, n int) *shard.State {
	b.Helper()
	s := shard.New(testShard, 1<<62)
	for i := range n {
		id := fmt.Sprintf("contact-%06d", i)
		a := arrive(id, "sales", chat)
		a.CustomerKey, a.Priority = fmt.Sprintf("+81-6-%08d", i), int32(i%3)
		a.Attributes = map[string]string{"language": "ja", "reason": "billing"}
		if r := s.Apply(cmd(int64(i+2), a)); r.Err != nil {
			b.Fatal(r.Err)
		}
		if i%100 != 0 {
			continue
		}
		agent, offer := fmt.Sprintf("agent-%06d", i), fmt.Sprintf("offer-%06d", i)
		path := then([]*pb.Command{cmd(1, login(agent, true))}, lifecycle(int64(i+2), id, agent, offer)[stepLock:]...)
		for _, c := range path[:1+(i/100)%len(path)] {
			if r := s.Apply(c); r.Err != nil {
				b.Fatalf("%s: %v", describe(c), r.Err)
			}
		}
	}
	return s
}
