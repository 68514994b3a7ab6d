package customer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/internal/redistest"
)

// storeKinds are the Store implementations every behavioural test runs
// against, so Memory and Redis cannot drift apart.
var storeKinds = []struct {
	name string
	open func(t *testing.T, maxRecent int) Store
}{
	{"Memory", func(t *testing.T, maxRecent int) Store {
		return NewMemory(MemoryConfig{MaxRecent: maxRecent})
	}},
	{"Redis", func(t *testing.T, maxRecent int) Store {
		cfg := testRedisConfig(t, redistest.Start(t))
		cfg.MaxRecent = maxRecent
		return openRedis(t, cfg)
	}},
}

func testRedisConfig(t *testing.T, url string) RedisConfig {
	cfg := DefaultRedisConfig()
	cfg.URL = url
	cfg.KeyPrefix = redistest.KeyPrefix(t)
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	// Generous timeouts: tests check behaviour, not latency, and a loaded
	// machine under -race can stall a 100ms read. A stopped Redis refuses
	// connections at once whatever the timeouts.
	cfg.DialTimeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	return cfg
}

func openRedis(t *testing.T, cfg RedisConfig) *Redis {
	t.Helper()
	s, err := NewRedis(cfg)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// forEachStore runs test against a fresh store of every kind.
func forEachStore(t *testing.T, maxRecent int, test func(t *testing.T, s Store)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.open(t, maxRecent)
			t.Cleanup(func() { _ = s.Close() })
			test(t, s)
		})
	}
}

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 123456789, time.UTC)

// call returns a handled voice interaction of contact id served by agent,
// ending n minutes after t0.
func call(id, agent string, n int) Interaction {
	return Interaction{
		ContactID: id,
		Channel:   "voice",
		Queue:     "billing",
		AgentID:   agent,
		StartedAt: t0.Add(time.Duration(n)*time.Minute - 3*time.Minute),
		EndedAt:   t0.Add(time.Duration(n) * time.Minute),
		Outcome:   "handled",
	}
}

func mustLookup(t *testing.T, s Store, key string) Context {
	t.Helper()
	c, found, err := s.Lookup(context.Background(), key)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", key, err)
	}
	if !found {
		t.Fatalf("Lookup(%q): not found", key)
	}
	if c.Key != key {
		t.Fatalf("Lookup(%q).Key = %q", key, c.Key)
	}
	return c
}

func mustRecord(t *testing.T, s Store, key string, in Interaction) {
	t.Helper()
	if err := s.Record(context.Background(), key, in); err != nil {
		t.Fatalf("Record(%q, %s): %v", key, in.ContactID, err)
	}
}

func mustPut(t *testing.T, s Store, c Context) {
	t.Helper()
	if err := s.Put(context.Background(), c); err != nil {
		t.Fatalf("Put(%q): %v", c.Key, err)
	}
}

// checkRecent compares contact ids and every field, times by instant.
func checkRecent(t *testing.T, got []Interaction, want ...Interaction) {
	t.Helper()
	ids := func(ins []Interaction) string {
		var b strings.Builder
		for _, in := range ins {
			fmt.Fprintf(&b, "%s ", in.ContactID)
		}
		return b.String()
	}
	if len(got) != len(want) {
		t.Fatalf("Recent = [%s], want [%s]", ids(got), ids(want))
	}
	for i := range want {
		if !sameInteraction(got[i], want[i]) {
			t.Fatalf("Recent[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestStore_UnknownKeyIsNotFound(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		c, found, err := s.Lookup(context.Background(), "+33100000000")
		if err != nil || found {
			t.Fatalf("Lookup(unknown) = found %v, err %v; want not found, no error", found, err)
		}
		if c.Key != "" || c.Recent != nil {
			t.Fatalf("Lookup(unknown) context = %+v, want zero", c)
		}
	})
}

func TestStore_PutThenLookup(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		const key = "alice@example.com"
		// Only the profile fields count; the rest belongs to Record.
		mustPut(t, s, Context{Key: key, Tier: "gold", Language: "fr",
			LastAgent: "ignored", LastAgentAt: t0, Recent: []Interaction{call("ignored", "a9", 1)}})
		c := mustLookup(t, s, key)
		if c.Tier != "gold" || c.Language != "fr" {
			t.Fatalf("Tier, Language = %q, %q; want gold, fr", c.Tier, c.Language)
		}
		if c.LastAgent != "" || !c.LastAgentAt.IsZero() || len(c.Recent) != 0 {
			t.Fatalf("Put stored non-profile fields: %+v", c)
		}

		mustPut(t, s, Context{Key: key, Tier: "silver", Language: "de"})
		if c := mustLookup(t, s, key); c.Tier != "silver" || c.Language != "de" {
			t.Fatalf("after second Put: Tier, Language = %q, %q; want silver, de", c.Tier, c.Language)
		}
	})
}

func TestStore_RecordNewestFirstAndLastAgent(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		const key = "+33612345678"
		mustPut(t, s, Context{Key: key, Tier: "gold", Language: "fr"})
		first, second := call("c1", "agent-1", 1), call("c2", "agent-2", 2)
		second.Channel = "chat" // context follows the customer across channels
		mustRecord(t, s, key, first)
		mustRecord(t, s, key, second)

		c := mustLookup(t, s, key)
		checkRecent(t, c.Recent, second, first)
		if c.LastAgent != "agent-2" || !c.LastAgentAt.Equal(second.EndedAt) {
			t.Fatalf("LastAgent = %q at %v, want agent-2 at %v", c.LastAgent, c.LastAgentAt, second.EndedAt)
		}
		if c.Tier != "gold" || c.Language != "fr" {
			t.Fatalf("Record changed the profile: Tier, Language = %q, %q", c.Tier, c.Language)
		}
	})
}

func TestStore_RecentIsBoundedByMaxRecent(t *testing.T) {
	forEachStore(t, 3, func(t *testing.T, s Store) {
		const key = "acct-42"
		var all []Interaction
		for i := 1; i <= 5; i++ {
			in := call(fmt.Sprintf("c%d", i), fmt.Sprintf("agent-%d", i), i)
			all = append(all, in)
			mustRecord(t, s, key, in)
		}
		c := mustLookup(t, s, key)
		checkRecent(t, c.Recent, all[4], all[3], all[2])
		if c.LastAgent != "agent-5" {
			t.Fatalf("LastAgent = %q, want agent-5", c.LastAgent)
		}
	})
}

func TestStore_InteractionWithoutAgentKeepsLastAgent(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		const key = "+4915112345678"
		served := call("c1", "agent-1", 1)
		abandoned := Interaction{ContactID: "c2", Channel: "voice", Queue: "billing",
			StartedAt: t0.Add(time.Hour), EndedAt: t0.Add(time.Hour + time.Minute), Outcome: "abandoned"}
		mustRecord(t, s, key, served)
		mustRecord(t, s, key, abandoned)

		c := mustLookup(t, s, key)
		checkRecent(t, c.Recent, abandoned, served)
		if c.LastAgent != "agent-1" || !c.LastAgentAt.Equal(served.EndedAt) {
			t.Fatalf("LastAgent = %q at %v, want agent-1 at %v", c.LastAgent, c.LastAgentAt, served.EndedAt)
		}
	})
}

func TestStore_AbandonedFirstContactMakesCustomerKnown(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		const key = "+4420700000"
		in := Interaction{ContactID: "c1", Channel: "voice", Outcome: "abandoned", EndedAt: t0}
		mustRecord(t, s, key, in)
		c := mustLookup(t, s, key)
		checkRecent(t, c.Recent, in)
		if c.LastAgent != "" || !c.LastAgentAt.IsZero() {
			t.Fatalf("LastAgent = %q at %v, want none", c.LastAgent, c.LastAgentAt)
		}
	})
}

func TestStore_LastAgentAtFallsBackToStart(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		const key = "k"
		in := Interaction{ContactID: "c1", AgentID: "agent-1", StartedAt: t0} // still no end time
		mustRecord(t, s, key, in)
		if c := mustLookup(t, s, key); !c.LastAgentAt.Equal(t0) {
			t.Fatalf("LastAgentAt = %v, want StartedAt %v", c.LastAgentAt, t0)
		}

		before := time.Now()
		mustRecord(t, s, key, Interaction{ContactID: "c2", AgentID: "agent-2"}) // no times at all
		if c := mustLookup(t, s, key); c.LastAgentAt.Before(before.Add(-time.Second)) || c.LastAgentAt.After(time.Now().Add(time.Second)) {
			t.Fatalf("LastAgentAt = %v, want about now (%v)", c.LastAgentAt, before)
		}
	})
}

func TestStore_RetriedRecordIsNotDuplicated(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		const key = "k"
		in := call("c1", "agent-1", 1)
		mustRecord(t, s, key, in)
		// The retry carries the same instants in another zone: still the same interaction.
		retry := in
		retry.StartedAt = in.StartedAt.In(time.FixedZone("CET", 3600))
		retry.EndedAt = in.EndedAt.In(time.FixedZone("CET", 3600))
		mustRecord(t, s, key, retry)
		checkRecent(t, mustLookup(t, s, key).Recent, in)

		// The same contact with a different outcome is a different record.
		other := in
		other.Outcome = "transferred"
		mustRecord(t, s, key, other)
		checkRecent(t, mustLookup(t, s, key).Recent, other, in)
	})
}

func TestStore_TimesComeBackInUTC(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		const key = "k"
		tokyo := time.FixedZone("JST", 9*3600)
		in := call("c1", "agent-1", 1)
		in.StartedAt, in.EndedAt = in.StartedAt.In(tokyo), in.EndedAt.In(tokyo)
		mustRecord(t, s, key, in)
		got := mustLookup(t, s, key)
		r := got.Recent[0]
		if r.EndedAt.Location() != time.UTC || got.LastAgentAt.Location() != time.UTC {
			t.Fatalf("locations %v, %v; want UTC", r.EndedAt.Location(), got.LastAgentAt.Location())
		}
		if !r.EndedAt.Equal(in.EndedAt) || !r.StartedAt.Equal(in.StartedAt) {
			t.Fatalf("times %v..%v, want %v..%v", r.StartedAt, r.EndedAt, in.StartedAt, in.EndedAt)
		}
	})
}

func TestStore_CustomersAreSeparate(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		mustRecord(t, s, "alice", call("c1", "agent-1", 1))
		// A key that is a prefix of another, and one with Redis hash-tag braces.
		for _, key := range []string{"alic", "ali}ce", "{alice}"} {
			if _, found, err := s.Lookup(context.Background(), key); err != nil || found {
				t.Fatalf("Lookup(%q) = found %v, err %v; want not found", key, found, err)
			}
		}
		mustRecord(t, s, "{alice}", call("c2", "agent-2", 2))
		checkRecent(t, mustLookup(t, s, "alice").Recent, call("c1", "agent-1", 1))
	})
}

func TestStore_LookupReturnsACopy(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		in := call("c1", "agent-1", 1)
		mustRecord(t, s, "k", in)
		c := mustLookup(t, s, "k")
		c.Recent[0].AgentID = "scribbled"
		checkRecent(t, mustLookup(t, s, "k").Recent, in)
	})
}

func TestStore_InvalidKey(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		ctx := context.Background()
		for _, key := range []string{"", strings.Repeat("x", MaxKeyLen+1), strings.Repeat("x", 1<<20)} {
			want := fmt.Sprintf("length %d", len(key))
			_, found, err := s.Lookup(ctx, key)
			checkInvalidKey(t, "Lookup", err, want)
			if found {
				t.Fatalf("Lookup(invalid) found")
			}
			checkInvalidKey(t, "Record", s.Record(ctx, key, call("c1", "a", 1)), want)
			checkInvalidKey(t, "Put", s.Put(ctx, Context{Key: key, Tier: "gold"}), want)
		}
		// The longest allowed key works.
		long := strings.Repeat("x", MaxKeyLen)
		mustPut(t, s, Context{Key: long, Tier: "gold"})
		if c := mustLookup(t, s, long); c.Tier != "gold" {
			t.Fatalf("Tier = %q, want gold", c.Tier)
		}
	})
}

func checkInvalidKey(t *testing.T, op string, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("%s: err = %v, want ErrInvalidKey", op, err)
	}
	if !strings.Contains(err.Error(), want) || len(err.Error()) > 200 {
		t.Fatalf("%s: err = %.300q, want it to say %q (and not echo the key)", op, err, want)
	}
}

func TestStore_ClosedStoreRefuses(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		ctx := context.Background()
		mustPut(t, s, Context{Key: "k", Tier: "gold"})
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, _, err := s.Lookup(ctx, "k"); !errors.Is(err, ErrClosed) {
			t.Fatalf("Lookup after Close: err = %v, want ErrClosed", err)
		}
		if err := s.Record(ctx, "k", call("c1", "a", 1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Record after Close: err = %v, want ErrClosed", err)
		}
		if err := s.Put(ctx, Context{Key: "k"}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Put after Close: err = %v, want ErrClosed", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestStore_CancelledContext(t *testing.T) {
	forEachStore(t, 20, func(t *testing.T, s Store) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := s.Lookup(ctx, "k"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Lookup: err = %v, want context.Canceled", err)
		}
		// A caller giving up is not Redis being down: it must not count as a fallback.
		if _, _, err := s.Lookup(ctx, "k"); errors.Is(err, ErrUnavailable) {
			t.Fatalf("Lookup: err = %v, must not be ErrUnavailable", err)
		}
	})
}

// TestStore_Concurrent has writers on shared and private keys while readers
// look up; run with -race. Each writer's records must stay in its own order
// and the history within its bound.
func TestStore_Concurrent(t *testing.T) {
	const (
		writers   = 8
		perWriter = 50
		maxRecent = 10
	)
	forEachStore(t, maxRecent, func(t *testing.T, s Store) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, writers*perWriter*3)
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					in := call(fmt.Sprintf("w%d-%03d", w, i), fmt.Sprintf("agent-%d", w), i)
					if err := s.Record(ctx, "shared", in); err != nil {
						errs <- err
					}
					if err := s.Put(ctx, Context{Key: fmt.Sprintf("own-%d", w), Tier: fmt.Sprint(i)}); err != nil {
						errs <- err
					}
					if _, _, err := s.Lookup(ctx, "shared"); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}

		c := mustLookup(t, s, "shared")
		if len(c.Recent) != maxRecent {
			t.Fatalf("len(Recent) = %d, want %d", len(c.Recent), maxRecent)
		}
		last := map[string]string{} // writer -> contact id seen before (newer)
		for _, in := range c.Recent {
			w := in.ContactID[:strings.Index(in.ContactID, "-")]
			if prev, ok := last[w]; ok && in.ContactID >= prev {
				t.Fatalf("writer %s's records out of order: %s after %s", w, in.ContactID, prev)
			}
			last[w] = in.ContactID
		}
		if c.LastAgent != c.Recent[0].AgentID {
			t.Fatalf("LastAgent = %q, but the newest record is %q's", c.LastAgent, c.Recent[0].AgentID)
		}
		for w := range writers {
			if c := mustLookup(t, s, fmt.Sprintf("own-%d", w)); c.Tier != fmt.Sprint(perWriter-1) {
				t.Fatalf("own-%d Tier = %q, want %d", w, c.Tier, perWriter-1)
			}
		}
	})
}
