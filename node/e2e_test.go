package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/client"
	"github.com/tsunagu/tsunagu/customer"
	"github.com/tsunagu/tsunagu/gateway"
	"github.com/tsunagu/tsunagu/internal/redistest"
	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// End-to-end: a whole node (embedded NATS server on a random port, engine,
// gateway) driven only through the NATS contract, as carriers and desktops
// would.

func testConfig(t testing.TB, rc *pb.RoutingConfig) Config {
	cfg := DefaultConfig()
	cfg.NATSListen = "127.0.0.1:0"
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.Shards = 8
	cfg.LogLevel = "warn"
	if rc != nil {
		cfg.Routing = rc
	}
	return cfg
}

func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	rc, err := cfg.Validate()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := Start(cfg, rc, log)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		if p := n.engine.Metrics().Panics.Load(); p > 0 {
			t.Errorf("%d actor panics", p)
		}
		_ = n.Shutdown(context.Background())
	})
	return n
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// natsDriver plays every carrier and desktop over one NATS connection.
type natsDriver struct {
	c       *client.Client
	mu      sync.Mutex
	notices map[string]chan *pb.AgentNotice
	instr   chan *pb.RoutingInstruction
	tracker *scenario.Tracker
}

func connect(t testing.TB, n *Node, enc gateway.Encoding) *client.Client {
	t.Helper()
	nc, err := nats.Connect(n.NATSURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return client.New(nc, enc)
}

func newNATSDriver(t testing.TB, n *Node, enc gateway.Encoding) *natsDriver {
	t.Helper()
	d := &natsDriver{c: connect(t, n, enc), notices: make(map[string]chan *pb.AgentNotice), instr: make(chan *pb.RoutingInstruction, 4096), tracker: scenario.NewTracker()}
	if _, err := d.c.AllNotices(func(agent string, no *pb.AgentNotice) { d.ch(agent) <- no }); err != nil {
		t.Fatal(err)
	}
	if _, err := d.c.ServeInstructions("default", func(in *pb.RoutingInstruction) *pb.InstructionAck {
		d.instr <- in
		return &pb.InstructionAck{InstructionId: in.GetInstructionId()}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.c.Events(func(b *pb.EventBatch) { d.tracker.Add(b.GetEvents()) }); err != nil {
		t.Fatal(err)
	}
	if err := d.c.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *natsDriver) ch(agent string) chan *pb.AgentNotice {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.notices[agent]
	if !ok {
		c = make(chan *pb.AgentNotice, 4096)
		d.notices[agent] = c
	}
	return c
}

// must fails on transport errors; error replies are returned to the
// scenario inside the reply.
func must[T any](t testing.TB, r T, err error) T {
	t.Helper()
	var ce *client.Error
	if err != nil && !asClientError(err, &ce) {
		t.Fatalf("request: %v", err)
	}
	return r
}

func asClientError(err error, target **client.Error) bool {
	e, ok := err.(*client.Error)
	if ok {
		*target = e
	}
	return ok
}

func (d *natsDriver) Arrive(t testing.TB, a *pb.ContactArrival) *pb.ArrivalReply {
	c := d.c
	if a.GetCarrier() != "" {
		// The carrier is the subject's: send as that carrier.
		as := *d.c
		as.Carrier = a.GetCarrier()
		c = &as
	}
	r, err := c.Arrive(context.Background(), a)
	return must(t, r, err)
}

func (d *natsDriver) Agent(t testing.TB, id string, c *pb.AgentCommand) *pb.AgentCommandReply {
	r, err := d.c.Agent(context.Background(), id, c)
	return must(t, r, err)
}

func (d *natsDriver) Media(t testing.TB, queue string, ev *pb.MediaEvent) *pb.MediaEventReply {
	r, err := d.c.Media(context.Background(), queue, ev.GetContactId(), ev)
	return must(t, r, err)
}

func (d *natsDriver) QueueStatus(t testing.TB, queue string) *pb.QueueStatusReply {
	r, err := d.c.QueueStatus(context.Background(), queue)
	return must(t, r, err)
}

func (d *natsDriver) Notices(agent string) <-chan *pb.AgentNotice { return d.ch(agent) }
func (d *natsDriver) Instructions() <-chan *pb.RoutingInstruction { return d.instr }
func (d *natsDriver) Events() *scenario.Tracker                   { return d.tracker }

func natsFactory(enc gateway.Encoding, tune ...func(*Config)) scenario.Factory {
	return func(t *testing.T, rc *pb.RoutingConfig, o scenario.Options) scenario.Driver {
		cfg := testConfig(t, rc)
		cfg.Customers = o.Customers
		if enc == gateway.JSON {
			cfg.OutEncoding = "json"
		}
		for _, f := range tune {
			f(&cfg)
		}
		return newNATSDriver(t, startNode(t, cfg), enc)
	}
}

func TestE2E_ScenariosProtobuf(t *testing.T) { scenario.RunAll(t, natsFactory(gateway.Protobuf)) }

func TestE2E_ScenariosJSON(t *testing.T) { scenario.RunAll(t, natsFactory(gateway.JSON)) }

// Tier priority and last-agent routing with the node's customer context in
// a real redis-server (started by the test).
func TestE2E_RedisCustomerContext(t *testing.T) {
	url := redistest.Start(t)
	seed := func(t *testing.T) customer.Store {
		cfg := customer.DefaultRedisConfig()
		cfg.URL = url
		cfg.KeyPrefix = redistest.KeyPrefix(t)
		s, err := customer.NewRedis(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	t.Run("TierSetsPriority", func(t *testing.T) {
		store := seed(t)
		if err := store.Put(context.Background(), customer.Context{Key: "+100", Tier: "gold"}); err != nil {
			t.Fatal(err)
		}
		scenario.TierPriority(t, natsFactory(gateway.Protobuf), store)
	})
	t.Run("LastAgentPreferredThenAnyone", func(t *testing.T) {
		scenario.LastAgentThenAnyone(t, natsFactory(gateway.Protobuf), seed(t))
	})
}

// Redis down: contacts are still routed, without personalisation; the
// fallback is logged and counted in /metrics.
func TestE2E_RedisDownRoutesWithoutPersonalisation(t *testing.T) {
	srv := redistest.StartServer(t)
	srv.Stop()
	cfg := testConfig(t, scenario.Basic())
	cfg.RedisURL = srv.URL()
	var logs syncBuffer
	rc, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(cfg, rc, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("start with Redis down: %v", err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	s := &scenario.S{T: t, D: newNATSDriver(t, n, gateway.Protobuf)}
	s.Login("alice")
	s.MustArrive("c1", "support", pb.Channel_CHANNEL_VOICE, func(a *pb.ContactArrival) { a.CustomerKey = "+8190" })
	if o := s.Offer("alice"); o.GetContactId() != "c1" {
		t.Fatalf("offer %v", o)
	}
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "tsunagu_customer_context_fallbacks_total 1\n") {
		t.Errorf("metrics do not count the fallback:\n%s", body)
	}
	// The commits so far (the login, the arrival held for alice, her
	// reservation) are in the commit histogram, the +Inf bucket holding all.
	var inf, count int
	for _, l := range strings.Split(string(body), "\n") {
		fmt.Sscanf(l, "tsunagu_commit_seconds_bucket{le=\"+Inf\"} %d", &inf)
		fmt.Sscanf(l, "tsunagu_commit_seconds_count %d", &count)
	}
	if count < 3 || inf != count {
		t.Errorf("commit histogram: count %d, +Inf bucket %d; want at least 3, equal:\n%s", count, inf, body)
	}
	scenario.WaitFor(t, "the fallback logged", func() bool {
		return strings.Contains(logs.String(), "customer context unavailable; routing without personalisation")
	})
	if strings.Contains(logs.String(), "+8190") {
		t.Errorf("the log carries the customer key (personal data):\n%s", logs.String())
	}
}
