package main

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"time"

	"github.com/tsunagu/tsunagu/actors"
)

// metrics writes the Prometheus text exposition of the node's counters.
func (n *Node) metrics(w http.ResponseWriter, _ *http.Request) {
	if n.engine == nil || n.gw == nil {
		http.Error(w, "not routing yet\n", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	counter := func(name, help string, v uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
	}
	em := n.engine.Metrics()
	counter("tsunagu_proposals_total", "Commands proposed to shard logs.", em.Proposals.Load())
	histogram(w, "tsunagu_commit_seconds", "Time from a command's proposal to its applied result (in a cluster, its commit by a majority of the shard's replicas).", &em.Commit)
	counter("tsunagu_customer_context_fallbacks_total", "Arrivals routed without personalisation because the customer store failed.", em.CustomerFallbacks.Load())
	counter("tsunagu_customer_record_failures_total", "Finished interactions the customer store did not take.", em.RecordFailures.Load())
	counter("tsunagu_undeliverable_total", "Actor messages for shards not served here.", em.Undeliverable.Load())
	counter("tsunagu_actor_spawns_total", "Actors activated.", em.Spawned.Load())
	counter("tsunagu_actor_panics_total", "Inputs dropped because an actor panicked (a bug).", em.Panics.Load())
	counter("tsunagu_fenced_total", "Messages refused because they came from a deposed shard owner.", em.Fenced.Load())
	gm := n.gw.Metrics()
	counter("tsunagu_forwarded_total", "Requests forwarded to the owner of their shard.", gm.Forwarded.Load())
	counter("tsunagu_nats_requests_total", "Requests received over NATS.", gm.Requests.Load())
	counter("tsunagu_nats_refused_total", "Requests refused as malformed, oversized, of an unknown version or out of range.", gm.Refused.Load())
	counter("tsunagu_agent_notices_total", "Notices published to agent desktops.", gm.Notices.Load())
	counter("tsunagu_instructions_total", "Routing instructions sent to carriers (attempts).", gm.Instructions.Load())
	counter("tsunagu_instruction_errors_total", "Routing instruction attempts not acknowledged: no ack in time, or an unreadable or mismatched ack.", gm.InstructionErrors.Load())
	counter("tsunagu_events_total", "Committed events published.", gm.Events.Load())
	counter("tsunagu_publish_errors_total", "Publishes that failed.", gm.PublishErrors.Load())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gauge("tsunagu_heap_bytes", "Go heap in use.", float64(ms.HeapAlloc))
	gauge("tsunagu_goroutines", "Goroutines.", float64(runtime.NumGoroutine()))
	gauge("tsunagu_uptime_seconds", "Seconds since start.", time.Since(n.started).Seconds())
}

// histogram writes l as a Prometheus histogram in seconds.
func histogram(w io.Writer, name, help string, l *actors.Latency) {
	le, count, sum := l.Cumulative()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	for i, b := range actors.LatencyBounds {
		fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", name, b.Seconds(), le[i])
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, count, name, sum.Seconds(), name, count)
}
