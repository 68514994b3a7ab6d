package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/client"
	"github.com/tsunagu/tsunagu/gateway"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Failover and hand-over time, from the fault (kill -9, or the drain
// request) to the first routing decision for the affected shard: an offer
// reaching a desktop for a contact of queue q, whose shard moved. Before
// each fault, contacts wait in q and the one logged-in agent is not ready;
// from the fault on, the agent's desktop says "ready" every 5 ms until an
// offer comes, so the first offer is the first decision the new owner could
// make. Run:
//
//	go test -run '^$' -bench 'Failover|Drain' -benchtime 20x ./chaos/

func BenchmarkFailoverKill9(b *testing.B) {
	measureMove(b, func(pc *procCluster, owner *proc) {
		pc.kill9(owner)
	}, func(pc *procCluster, owner *proc) {
		pc.start(owner)
		pc.waitHealthy(owner, 60*time.Second)
	})
}

func BenchmarkDrainHandOver(b *testing.B) {
	measureMove(b, func(pc *procCluster, owner *proc) {
		resp, err := http.Post("http://"+owner.httpAddr+"/cluster/drain", "", nil)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("drain: %s: %s", resp.Status, body)
		}
	}, func(pc *procCluster, owner *proc) {
		resp, err := http.Post("http://"+owner.httpAddr+"/cluster/drain?undo=1", "", nil)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("undo drain: %s: %s", resp.Status, body)
		}
	})
}

func measureMove(b *testing.B, fault, repair func(pc *procCluster, owner *proc)) {
	pc := startProcCluster(b, 3)
	nc := pc.connect()
	c := client.New(nc, gateway.Protobuf)
	type offer struct {
		at time.Time
		n  *pb.AgentNotice
	}
	offered := make(chan offer, 1024)
	if _, err := c.Notices("a1", func(n *pb.AgentNotice) {
		if n.GetKind() == pb.NoticeKind_NOTICE_KIND_OFFER {
			offered <- offer{time.Now(), n}
		}
	}); err != nil {
		b.Fatal(err)
	}
	ask := func(cmd *pb.AgentCommand) (*pb.AgentCommandReply, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		cmd.SchemaVersion = 1
		return c.Agent(ctx, "a1", cmd)
	}
	do := func(cmd *pb.AgentCommand) error {
		_, err := ask(cmd)
		return err
	}
	untilOK := func(what string, f func() error) {
		deadline := time.Now().Add(30 * time.Second)
		for err := f(); err != nil; err = f() {
			if time.Now().After(deadline) {
				b.Fatalf("%s: %v", what, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	reject := func(offerID string, fence *pb.Fence) {
		untilOK("reject", func() error {
			err := do(&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT, OfferId: offerID, Fence: fence})
			var ce *client.Error
			if errors.As(err, &ce) && ce.Code != pb.ErrorCode_ERROR_CODE_UNAVAILABLE {
				return nil // expired or withdrawn meanwhile
			}
			return err
		})
	}
	// With TSUNAGU_BENCH_TRACE set, the committed events of each iteration,
	// to show where a slow sample's time went (not collected otherwise: the
	// subscription would be part of what is measured).
	trace := os.Getenv("TSUNAGU_BENCH_TRACE") != ""
	var evMu sync.Mutex
	var evs []string
	var evStart time.Time
	if trace {
		if _, err := c.Events(func(batch *pb.EventBatch) {
			evMu.Lock()
			defer evMu.Unlock()
			if evStart.IsZero() {
				return
			}
			for _, ev := range batch.GetEvents() {
				if ev.GetQueue() != nil {
					continue
				}
				evs = append(evs, fmt.Sprintf("+%v (commit +%v) shard %d term %d: %v", time.Since(evStart).Round(100*time.Microsecond),
					time.Unix(0, ev.GetAt()).Sub(evStart).Round(100*time.Microsecond), batch.GetShard(), batch.GetTerm(), ev))
			}
		}); err != nil {
			b.Fatal(err)
		}
		// Every notice to a1 as it arrives, before the fence check, so a
		// lost offer shows whether it was never sent or refused as stale.
		if _, err := nc.Subscribe(gateway.AgentNoticeSubject("a1"), func(m *nats.Msg) {
			n := &pb.AgentNotice{}
			err := client.Decode(m, n)
			evMu.Lock()
			defer evMu.Unlock()
			switch {
			case evStart.IsZero():
			case err != nil:
				evs = append(evs, fmt.Sprintf("+%v undecodable notice (%d bytes): %v", time.Since(evStart).Round(100*time.Microsecond), len(m.Data), err))
			default:
				evs = append(evs, fmt.Sprintf("+%v notice %v offer %s fence %v", time.Since(evStart).Round(100*time.Microsecond), n.GetKind(), n.GetOffer().GetOfferId(), n.GetFence()))
			}
		}); err != nil {
			b.Fatal(err)
		}
	}
	untilOK("login", func() error { return do(&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN}) })
	var samples []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		pc.waitSettled(60 * time.Second)
		owners := pc.waitOwned(60 * time.Second)
		owner := owners[queueShard()]
		for j := range 3 {
			id := fmt.Sprintf("m-%d-%d", i, j)
			untilOK("arrive", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err := c.Arrive(ctx, &pb.ContactArrival{SchemaVersion: 1, ContactId: id, Queue: "q", Channel: pb.Channel_CHANNEL_VOICE})
				return err
			})
		}
		for len(offered) > 0 {
			<-offered
		}
		logAt := make([]int64, len(pc.procs))
		if trace {
			for k, p := range pc.procs {
				logAt[k] = pc.logSize(p)
			}
		}
		b.StartTimer()
		start := time.Now()
		evMu.Lock()
		evs, evStart = nil, start
		evMu.Unlock()
		fault(pc, owner)
		faulted := time.Since(start)
		var wg sync.WaitGroup
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := make(map[string]bool)
			for {
				r, _ := ask(&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_READY})
				if trace {
					// The desktop also sees its offers in every reply.
					for _, sl := range r.GetAgent().GetSlots() {
						if sl.GetState() == pb.SlotState_SLOT_STATE_OFFERED && !seen[sl.GetOfferId()] {
							seen[sl.GetOfferId()] = true
							evMu.Lock()
							evs = append(evs, fmt.Sprintf("+%v reply shows offer %s", time.Since(start).Round(100*time.Microsecond), sl.GetOfferId()))
							evMu.Unlock()
						}
					}
				}
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		var got offer
		select {
		case got = <-offered:
		case <-time.After(30 * time.Second):
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			ar, aerr := c.Agent(ctx, "a1", &pb.AgentCommand{SchemaVersion: 1, Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS})
			qs, qerr := c.QueueStatus(ctx, "q")
			cancel()
			owners, _ := pc.owners(pc.procs)
			b.Fatalf("iteration %d: no offer within 30s of the fault; a1 %v (%v); queue q %v (%v); owners %v", i, ar.GetAgent(), aerr, qs, qerr, owners)
		}
		close(done)
		wg.Wait()
		samples = append(samples, got.at.Sub(start))
		b.StopTimer()
		if trace && got.at.Sub(start) > 60*time.Millisecond {
			evMu.Lock()
			fmt.Fprintf(os.Stderr, "%s slow sample %d: %v (fault returned after %v)\n%s\n", start.Format(time.StampMicro), i, got.at.Sub(start), faulted, strings.Join(evs, "\n"))
			for k, p := range pc.procs {
				fmt.Fprintf(os.Stderr, "%s: %s\n", p.id, pc.metrics(p, "tsunagu_publish_errors_total", "tsunagu_agent_notices_total"))
				fmt.Fprintf(os.Stderr, "--- %s logged since the fault:\n%s\n", p.id, pc.logSince(p, logAt[k], 300))
			}
			evMu.Unlock()
		}
		evMu.Lock()
		evStart = time.Time{}
		evMu.Unlock()
		// Back to a clean start: the agent not ready, then the offer
		// rejected (the contact keeps its place), the member repaired. Not
		// ready first: an agent still ready when its slot frees is offered
		// the next contact at once, and an offer left pending into the next
		// iteration would be the one it waits for, its notice already
		// drained (a 2 s sample: the offer's timeout).
		untilOK("not ready", func() error {
			return do(&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_NOT_READY, Reason: "bench"})
		})
		reject(got.n.GetOffer().GetOfferId(), got.n.GetFence())
		untilOK("no offer pending", func() error {
			r, err := ask(&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS})
			if err != nil {
				return err
			}
			for _, sl := range r.GetAgent().GetSlots() {
				reject(sl.GetOfferId(), nil)
				return fmt.Errorf("offer %s still pending", sl.GetOfferId())
			}
			return nil
		})
		repair(pc, owner)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(samples)
	q := func(p float64) time.Duration { return samples[min(len(samples)-1, int(p*float64(len(samples))))] }
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(samples[len(samples)-1].Microseconds())/1000, "max-ms")
	b.Logf("n=%d samples (ms): %v", len(samples), samples)
}
