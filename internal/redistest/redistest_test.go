package redistest

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func client(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", url, err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestStartServer_AnswersWithoutPersistence(t *testing.T) {
	s := StartServer(t)
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Fatalf("URL = %q, want redis://127.0.0.1:<port>/0", s.URL())
	}
	c := client(t, s.URL())
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	for param, want := range map[string]string{"save": "", "appendonly": "no", "bind": "127.0.0.1"} {
		got, err := c.ConfigGet(ctx, param).Result()
		if err != nil {
			t.Fatalf("CONFIG GET %s: %v", param, err)
		}
		if got[param] != want {
			t.Errorf("%s = %q, want %q", param, got[param], want)
		}
	}
}

// TestServer_StopAndStartOnTheSamePort is what outage tests rely on: the
// URL refuses while stopped and works again, empty, after Start.
func TestServer_StopAndStartOnTheSamePort(t *testing.T) {
	s := StartServer(t)
	url := s.URL()
	pid := func() int {
		p, err := probe(s.Addr())
		if err != nil {
			t.Fatalf("probe %s: %v", s.Addr(), err)
		}
		return p
	}
	first := pid()

	s.Stop()
	if _, err := probe(s.Addr()); err == nil {
		t.Fatalf("%s still answers after Stop", s.Addr())
	}
	s.Stop() // stopping twice is harmless

	s.Start()
	if s.URL() != url {
		t.Fatalf("URL changed across restart: %q -> %q", url, s.URL())
	}
	if second := pid(); second == first {
		t.Fatalf("same process %d after Stop and Start", first)
	}
	s.Start() // starting a running server is harmless

	s.Kill()
	if _, err := probe(s.Addr()); err == nil {
		t.Fatalf("%s still answers after Kill", s.Addr())
	}
	s.Start()
	pid()
}

func TestStart_UsesTSUNAGU_REDIS_URL(t *testing.T) {
	const shared = "redis://redis.test.invalid:6379/3"
	t.Setenv("TSUNAGU_REDIS_URL", shared)
	if got := Start(t); got != shared {
		t.Fatalf("Start = %q, want $TSUNAGU_REDIS_URL %q", got, shared)
	}
}

func TestStart_ServersAreSeparate(t *testing.T) {
	t.Setenv("TSUNAGU_REDIS_URL", "")
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two Start calls share %s", a)
	}
	ctx := context.Background()
	if err := client(t, a).Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := client(t, b).Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("key set on %s visible on %s (%d, %v)", a, b, n, err)
	}
}

func TestKeyPrefix(t *testing.T) {
	a, b := KeyPrefix(t), KeyPrefix(t)
	if a == b {
		t.Fatalf("KeyPrefix repeated %q", a)
	}
	t.Run("sub {test}", func(t *testing.T) {
		p := KeyPrefix(t)
		if strings.ContainsAny(p, "{} ") {
			t.Fatalf("KeyPrefix = %q, must not contain braces or spaces", p)
		}
		if !strings.Contains(p, "TestKeyPrefix/sub__test_") {
			t.Fatalf("KeyPrefix = %q, want the test name in it", p)
		}
	})
}
