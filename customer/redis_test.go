package customer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/tsunagu/tsunagu/internal/redistest"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedis_OutageThenRecovery is the chaos drill in miniature: Redis stops
// under a running store, every call fails at once with ErrUnavailable (so the
// arrival routes without personalisation and counts it), and when Redis comes
// back on the same address the same store serves again without a restart.
func TestRedis_OutageThenRecovery(t *testing.T) {
	srv := redistest.StartServer(t)
	s := openRedis(t, testRedisConfig(t, srv.URL()))
	ctx := context.Background()
	const key = "+33612345678"
	mustPut(t, s, Context{Key: key, Tier: "gold"})
	mustLookup(t, s, key)

	srv.Stop()
	// Several rounds: the first finds a dead pooled connection, later ones a
	// refused dial, then go-redis's dial breaker; all must say unavailable.
	for i := range 5 {
		_, found, err := s.Lookup(ctx, key)
		if !errors.Is(err, ErrUnavailable) || found {
			t.Fatalf("round %d: Lookup with Redis down = found %v, err %v; want ErrUnavailable", i, found, err)
		}
		if strings.Contains(err.Error(), key) {
			t.Fatalf("Lookup error %q carries the customer key, which is personal data and ends up in logs", err)
		}
		if err := s.Record(ctx, key, call("c1", "a1", 1)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("round %d: Record with Redis down: err = %v, want ErrUnavailable", i, err)
		}
		if err := s.Put(ctx, Context{Key: key, Tier: "gold"}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("round %d: Put with Redis down: err = %v, want ErrUnavailable", i, err)
		}
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping with Redis down: err = %v, want ErrUnavailable", err)
	}

	srv.Start()
	waitFor(t, 10*time.Second, "Lookup works after Redis restarts", func() bool {
		_, _, err := s.Lookup(ctx, key)
		return err == nil
	})
	// The restarted Redis kept nothing (no persistence in tests); writes work again.
	mustRecord(t, s, key, call("c2", "agent-2", 2))
	if c := mustLookup(t, s, key); c.LastAgent != "agent-2" {
		t.Fatalf("after recovery LastAgent = %q, want agent-2", c.LastAgent)
	}
}

// TestRedis_SlowRedisIsUnavailable: a Redis that accepts but does not answer
// (here, paused by CLIENT PAUSE) costs a Lookup its ReadTimeout, not more,
// and counts as unavailable.
func TestRedis_SlowRedisIsUnavailable(t *testing.T) {
	url := redistest.StartServer(t).URL()
	cfg := testRedisConfig(t, url)
	cfg.ReadTimeout = 250 * time.Millisecond // well below the pause
	s := openRedis(t, cfg)
	ctx := context.Background()
	mustPut(t, s, Context{Key: "k", Tier: "gold"})

	admin := redisClient(t, url)
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	if _, _, err := s.Lookup(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Lookup while Redis is paused: err = %v, want ErrUnavailable", err)
	}
	// A caller's tighter deadline wins, and also counts as unavailable.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := s.Lookup(short, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Lookup with a 20ms deadline while Redis is paused: err = %v, want ErrUnavailable", err)
	}
	waitFor(t, 10*time.Second, "Lookup works after the pause", func() bool {
		c, found, err := s.Lookup(ctx, "k")
		return err == nil && found && c.Tier == "gold"
	})
}

func TestRedis_NewRedisDoesNotNeedRedis(t *testing.T) {
	cfg := testRedisConfig(t, "redis://127.0.0.1:"+closedPort(t)+"/0")
	s := openRedis(t, cfg)
	if _, _, err := s.Lookup(context.Background(), "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Lookup against nothing: err = %v, want ErrUnavailable", err)
	}
}

// closedPort returns a port nothing listens on (just closed by us).
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}

// roundTrips counts what go-redis sends: single commands and pipelines
// (a MULTI/EXEC transaction is one pipeline).
type roundTrips struct{ cmds, pipelines atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		return next(ctx, cmds)
	}
}

// TestRedis_OneRoundTripPerCall: an arrival pays one Redis round trip for its
// context, and the end of a contact one for its record.
func TestRedis_OneRoundTripPerCall(t *testing.T) {
	s := openRedis(t, testRedisConfig(t, redistest.Start(t)))
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil { // connect outside the count
		t.Fatal(err)
	}
	h := &roundTrips{}
	s.client.AddHook(h)
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"Put", func() error { return s.Put(ctx, Context{Key: "k", Tier: "gold"}) }},
		{"Record", func() error { return s.Record(ctx, "k", call("c1", "a1", 1)) }},
		{"Record without agent", func() error { return s.Record(ctx, "k", Interaction{ContactID: "c2"}) }},
		{"Lookup", func() error { _, _, err := s.Lookup(ctx, "k"); return err }},
		{"Lookup unknown", func() error { _, _, err := s.Lookup(ctx, "nobody"); return err }},
	} {
		h.cmds.Store(0)
		h.pipelines.Store(0)
		if err := op.do(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if c, p := h.cmds.Load(), h.pipelines.Load(); c != 0 || p != 1 {
			t.Errorf("%s took %d commands and %d pipelines, want one pipeline", op.name, c, p)
		}
	}
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestRedis_KeySchema pins the stored layout documented in doc.go: other
// tools (and older nodes during a rolling upgrade) read it.
func TestRedis_KeySchema(t *testing.T) {
	url := redistest.Start(t)
	cfg := testRedisConfig(t, url)
	cfg.TTL = time.Hour
	s := openRedis(t, cfg)
	ctx := context.Background()
	mustPut(t, s, Context{Key: "+331", Tier: "gold", Language: "fr"})
	mustRecord(t, s, "+331", call("c1", "agent-1", 1))

	raw := redisClient(t, url)
	hash, list := cfg.KeyPrefix+"{+331}", cfg.KeyPrefix+"{+331}:recent"
	fields, err := raw.HGetAll(ctx, hash).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"tier": "gold", "lang": "fr", "agent": "agent-1", "agent_at": "1793610060123456789"}
	if len(fields) != len(want) {
		t.Fatalf("%s = %v, want %v", hash, fields, want)
	}
	for k, v := range want {
		if fields[k] != v {
			t.Fatalf("%s = %v, want %v", hash, fields, want)
		}
	}
	entries, err := raw.LRange(ctx, list, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	const entry = `{"c":"c1","ch":"voice","q":"billing","a":"agent-1","s":1793609880123456789,"e":1793610060123456789,"o":"handled"}`
	if len(entries) != 1 || entries[0] != entry {
		t.Fatalf("%s = %q, want [%s]", list, entries, entry)
	}
	for _, k := range []string{hash, list} {
		ttl, err := raw.PTTL(ctx, k).Result()
		if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
			t.Fatalf("PTTL %s = %v, %v; want about 1h", k, ttl, err)
		}
	}

	// An entry another writer got wrong is skipped, not fatal.
	raw.LPush(ctx, list, "not json")
	c := mustLookup(t, s, "+331")
	checkRecent(t, c.Recent, call("c1", "agent-1", 1))
}

func TestRedis_TTLZeroKeepsKeys(t *testing.T) {
	url := redistest.Start(t)
	cfg := testRedisConfig(t, url)
	cfg.TTL = 0
	s := openRedis(t, cfg)
	mustPut(t, s, Context{Key: "k", Tier: "gold"})
	mustRecord(t, s, "k", call("c1", "a1", 1))
	raw := redisClient(t, url)
	for _, k := range []string{cfg.KeyPrefix + "{k}", cfg.KeyPrefix + "{k}:recent"} {
		if ttl, err := raw.PTTL(context.Background(), k).Result(); err != nil || ttl != -1 {
			t.Fatalf("PTTL %s = %v, %v; want -1 (no expiry)", k, ttl, err)
		}
	}
}

// lockedWriter collects go-redis's global log output.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestRedis_QuietAgainstPlainRedis: go-redis >= 9.15 probes for maintenance
// notifications on every new connection and, against plain Redis, falls back
// (and in some versions logs it through its process-wide logger). Our client
// must not provoke any go-redis log line in normal operation, nor any error
// reply. Not parallel: it swaps go-redis's global logger.
func TestRedis_QuietAgainstPlainRedis(t *testing.T) {
	var out lockedWriter
	redis.SetLogger(GoRedisLogger{Logger: slog.New(slog.NewTextHandler(&out, nil))})
	t.Cleanup(logging.Enable) // go-redis's default logger

	// A server of our own: its error count is ours.
	s := openRedis(t, testRedisConfig(t, redistest.StartServer(t).URL()))
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 { // several connections, each with its own handshake
		wg.Go(func() {
			for range 20 {
				_ = s.Put(ctx, Context{Key: "k", Tier: "gold"})
				_ = s.Record(ctx, "k", call("c1", "a1", 1))
				_, _, _ = s.Lookup(ctx, "k")
			}
		})
	}
	wg.Wait()
	mustLookup(t, s, "k")
	// Nor does the handshake send what plain Redis rejects (CLIENT
	// MAINT_NOTIFICATIONS; CLIENT SETINFO before Redis 7.2): that is where
	// the fallbacks and their log lines come from. Asked through our own
	// client: a default go-redis client would add its own rejections.
	errorstats, err := s.client.Info(ctx, "errorstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "" {
		t.Fatalf("go-redis logged:\n%s", got)
	}
	if strings.Contains(errorstats, "errorstat_") {
		t.Fatalf("Redis answered our client with errors:\n%s", errorstats)
	}
}
