package main

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// BenchmarkNATSRequestFloor measures what the machine gives NATS alone:
// three embedded servers routed together as cluster members route theirs, a
// responder that answers at once on one server, and requests from a client
// of another, 64 in flight. No Raft, no actors: the round trips a second it
// reports bound every figure of the cluster load test, where each routed
// contact costs about seven of them (arrival, offer notice, accept or
// reject, connect instruction and ack, media events) besides its commits.
func BenchmarkNATSRequestFloor(b *testing.B) {
	const members = 3
	routes := make([]string, members)
	for i := range routes {
		routes[i] = "nats-route://" + freeLoopback(b)
	}
	var servers []string
	for i := range members {
		cfg := Config{NodeID: fmt.Sprintf("n%d", i+1), NATSListen: "127.0.0.1:0", NATSClusterListen: routes[i][len("nats-route://"):]}
		for j, r := range routes {
			if j != i {
				cfg.NATSRoutes = append(cfg.NATSRoutes, r)
			}
		}
		ns, err := embeddedNATS(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(ns.Shutdown)
		servers = append(servers, ns.ClientURL())
	}
	responder, err := nats.Connect(servers[1])
	if err != nil {
		b.Fatal(err)
	}
	defer responder.Close()
	if _, err := responder.Subscribe("floor.req", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	if err := responder.Flush(); err != nil {
		b.Fatal(err)
	}
	requester, err := nats.Connect(servers[0])
	if err != nil {
		b.Fatal(err)
	}
	defer requester.Close()
	// The subscription reaches the other servers over the routes: wait
	// until a request is answered.
	payload := make([]byte, 200)
	deadline := time.Now().Add(10 * time.Second)
	for _, err := requester.Request("floor.req", payload, 100*time.Millisecond); err != nil; _, err = requester.Request("floor.req", payload, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("no answer across the route: %v", err)
		}
	}
	const inFlight = 64
	work := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	var failed sync.Once
	b.ResetTimer()
	start := time.Now()
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if _, err := requester.Request("floor.req", payload, 5*time.Second); err != nil {
					failed.Do(func() { b.Error(err) })
				}
			}
		}()
	}
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// freeLoopback returns a free 127.0.0.1 address.
func freeLoopback(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
