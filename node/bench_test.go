package main

import (
	"fmt"
	"sort"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/client"
	"github.com/tsunagu/tsunagu/gateway"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The end-to-end benchmarks drive a whole node over NATS. Simulated
// desktops accept every offer at once; a simulated carrier acknowledges the
// connect instruction and hangs up at once; wrap-up is zero. So every
// contact runs its full life — arrival, offer, accept, connected,
// instruction, hang-up, done — and its agent is free again for the next.

type sim struct {
	b        *testing.B
	n        *Node
	c        *client.Client
	offers   atomic.Int64
	sentAt   []int64 // unix ns per contact index, when its arrival was sent
	offerLat []int64 // arrival sent -> offer received, per contact index
}

func benchRouting(agents int) *pb.RoutingConfig {
	rc := &pb.RoutingConfig{Queues: []*pb.QueueConfig{{Name: "q", OfferTimeout: durationpb.New(time.Minute)}}}
	for i := 0; i < agents; i++ {
		rc.Agents = append(rc.Agents, &pb.AgentProfile{Id: fmt.Sprintf("a%d", i), Capacity: []*pb.ChannelCapacity{{Channel: pb.Channel_CHANNEL_VOICE, Slots: 1}}})
	}
	return rc
}

func newSim(b *testing.B, agents, contacts int) *sim {
	b.Helper()
	cfg := testConfig(b, benchRouting(agents))
	cfg.LogLevel = "error"
	s := &sim{b: b, n: startNode(b, cfg), sentAt: make([]int64, contacts), offerLat: make([]int64, contacts)}
	nc, err := nats.Connect(s.n.NATSURL(), nats.ReconnectBufSize(64<<20))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	s.c = client.New(nc, gateway.Protobuf)
	var pbh nats.Header // protobuf: no header
	// Desktops: accept every offer (fire and forget; replies are ignored).
	sub, err := nc.Subscribe("tsunagu.v1.agents.*.notices", func(m *nats.Msg) {
		n := &pb.AgentNotice{}
		if proto.Unmarshal(m.Data, n) != nil || n.GetKind() != pb.NoticeKind_NOTICE_KIND_OFFER {
			return
		}
		now := time.Now().UnixNano()
		var idx int
		fmt.Sscanf(n.GetOffer().GetContactId(), "c%d", &idx)
		if idx >= 0 && idx < len(s.sentAt) {
			atomic.StoreInt64(&s.offerLat[idx], now-atomic.LoadInt64(&s.sentAt[idx]))
		}
		s.offers.Add(1)
		data, _ := proto.Marshal(&pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, OfferId: n.GetOffer().GetOfferId(), Fence: n.GetOffer().GetFence()})
		_ = nc.PublishMsg(&nats.Msg{Subject: gateway.AgentCommandSubject(n.GetAgentId()), Data: data, Header: pbh})
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	// Carrier: ack the instruction, then hang up.
	isub, err := nc.Subscribe(gateway.InstructionSubject("default"), func(m *nats.Msg) {
		in := &pb.RoutingInstruction{}
		if proto.Unmarshal(m.Data, in) != nil {
			return
		}
		ack, _ := proto.Marshal(&pb.InstructionAck{InstructionId: in.GetInstructionId()})
		_ = nc.PublishMsg(&nats.Msg{Subject: m.Reply, Data: ack, Header: pbh})
		ev, _ := proto.Marshal(&pb.MediaEvent{Kind: pb.MediaKind_MEDIA_KIND_HUNG_UP})
		_ = nc.PublishMsg(&nats.Msg{Subject: gateway.MediaSubject("default", in.GetQueue(), in.GetContactId()), Data: ev, Header: pbh})
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = isub.SetPendingLimits(-1, -1)
	for i := 0; i < agents; i++ {
		if _, err := s.c.Agent(b.Context(), fmt.Sprintf("a%d", i), &pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN, Ready: true}); err != nil {
			b.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	return s
}

// run publishes contacts arrivals, one every interval (0: as fast as
// possible), and waits until all were offered.
func (s *sim) run(contacts int, interval time.Duration) time.Duration {
	nc := s.c.Conn()
	replies := atomic.Int64{}
	inbox := nats.NewInbox()
	rsub, err := nc.Subscribe(inbox+".*", func(*nats.Msg) { replies.Add(1) })
	if err != nil {
		s.b.Fatal(err)
	}
	defer rsub.Unsubscribe()
	_ = rsub.SetPendingLimits(-1, -1)
	var pbh nats.Header
	start := time.Now()
	for i := 0; i < contacts; i++ {
		if interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
		}
		data, _ := proto.Marshal(&pb.ContactArrival{ContactId: fmt.Sprintf("c%d", i), Queue: "q", Channel: pb.Channel_CHANNEL_VOICE})
		atomic.StoreInt64(&s.sentAt[i], time.Now().UnixNano())
		if err := nc.PublishMsg(&nats.Msg{Subject: gateway.ArriveSubject("default"), Reply: fmt.Sprintf("%s.%d", inbox, i), Data: data, Header: pbh}); err != nil {
			s.b.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for s.offers.Load() < int64(contacts) || replies.Load() < int64(contacts) {
		if time.Now().After(deadline) {
			s.b.Fatalf("after 2m: %d of %d offered, %d replies", s.offers.Load(), contacts, replies.Load())
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (s *sim) percentiles(n int) (p50, p99, max time.Duration) {
	lat := append([]int64(nil), s.offerLat[:n]...)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return time.Duration(lat[n/2]), time.Duration(lat[n*99/100]), time.Duration(lat[n-1])
}

// BenchmarkE2EThroughput: contacts routed per second, end to end, when
// arrivals come as fast as one connection publishes them.
func BenchmarkE2EThroughput(b *testing.B) {
	const contacts = 100_000
	s := newSim(b, 2000, contacts*b.N)
	b.ResetTimer()
	var total time.Duration
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		s.offers.Store(0)
		total += s.run(contacts, 0)
	}
	b.ReportMetric(float64(contacts*b.N)/total.Seconds(), "contacts/s")
	// CPU per contact is steadier than the rate on a shared machine; it
	// counts the node, the embedded NATS server and the simulator together.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(contacts*b.N), "cpu-µs/contact")
	p50, p99, mx := s.percentiles(contacts)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(mx.Microseconds()), "max-µs")
}

// BenchmarkE2ELatency: arrival -> offer latency at 1,000 arrivals/s with
// free agents waiting (so the arrival is the moment contact and agent both
// exist: this is the routing latency of docs/architecture.md).
func BenchmarkE2ELatency(b *testing.B) {
	const contacts = 5000
	s := newSim(b, 500, contacts)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.offers.Store(0)
		s.run(contacts, time.Millisecond)
	}
	p50, p99, mx := s.percentiles(contacts)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(mx.Microseconds()), "max-µs")
}

// BenchmarkE2ERouting: contacts routed per second — carrier's arrival over
// NATS to the offer on the agent's subject — with capacity for every
// contact (20,000 agents with 5 e-mail slots), so routing is measured
// without the accept, connect and hang-up traffic of the full lifecycle
// (BenchmarkE2EThroughput measures that).
func BenchmarkE2ERouting(b *testing.B) {
	const agents, contacts = 20_000, 100_000
	rc := &pb.RoutingConfig{Queues: []*pb.QueueConfig{{Name: "q", OfferTimeout: durationpb.New(10 * time.Minute)}}}
	for i := 0; i < agents; i++ {
		rc.Agents = append(rc.Agents, &pb.AgentProfile{Id: fmt.Sprintf("a%d", i), Capacity: []*pb.ChannelCapacity{{Channel: pb.Channel_CHANNEL_EMAIL, Slots: 5}}})
	}
	cfg := testConfig(b, rc)
	cfg.LogLevel = "error"
	n := startNode(b, cfg)
	nc, err := nats.Connect(n.NATSURL(), nats.ReconnectBufSize(64<<20))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	c := client.New(nc, gateway.Protobuf)
	var offers atomic.Int64
	sub, err := nc.Subscribe("tsunagu.v1.agents.*.notices", func(m *nats.Msg) {
		no := &pb.AgentNotice{}
		if proto.Unmarshal(m.Data, no) == nil && no.GetKind() == pb.NoticeKind_NOTICE_KIND_OFFER {
			offers.Add(1)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	for i := 0; i < agents; i++ {
		if _, err := c.Agent(b.Context(), fmt.Sprintf("a%d", i), &pb.AgentCommand{Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN, Ready: true}); err != nil {
			b.Fatal(err)
		}
	}
	// Carriers wait for the committed reply: arrivals are requests, their
	// replies counted on one inbox.
	var replies atomic.Int64
	inbox := nats.NewInbox()
	rsub, err := nc.Subscribe(inbox+".*", func(*nats.Msg) { replies.Add(1) })
	if err != nil {
		b.Fatal(err)
	}
	_ = rsub.SetPendingLimits(-1, -1)
	b.ResetTimer()
	var total time.Duration
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		offers.Store(0)
		replies.Store(0)
		start := time.Now()
		for j := 0; j < contacts; j++ {
			data, _ := proto.Marshal(&pb.ContactArrival{ContactId: fmt.Sprintf("r%d-%d", i, j), Queue: "q", Channel: pb.Channel_CHANNEL_EMAIL})
			if err := nc.PublishRequest(gateway.ArriveSubject("default"), fmt.Sprintf("%s.%d", inbox, j), data); err != nil {
				b.Fatal(err)
			}
		}
		deadline := time.Now().Add(2 * time.Minute)
		for offers.Load() < contacts || replies.Load() < contacts {
			if time.Now().After(deadline) {
				b.Fatalf("after 2m: %d of %d offered, %d replies", offers.Load(), contacts, replies.Load())
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(contacts*b.N)/total.Seconds(), "contacts/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(contacts*b.N), "cpu-µs/contact")
}
