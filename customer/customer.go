package customer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// MaxKeyLen is the longest customer key accepted, in bytes. Keys are phone
// numbers, e-mail addresses and account ids; the bound keeps a malformed
// arrival from growing Redis keys and log lines without limit.
const MaxKeyLen = 256

var (
	// ErrInvalidKey is returned for an empty key or one longer than MaxKeyLen.
	// The store is not touched.
	ErrInvalidKey = errors.New("customer: invalid key")

	// ErrUnavailable wraps failures to reach the store (refused or reset
	// connections, timeouts, a server that is loading or out of memory).
	// Routing treats it as "no personalisation this time" and counts it.
	ErrUnavailable = errors.New("customer: store unavailable")

	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("customer: store closed")

	// ErrInvalidConfig is wrapped by every Validate error.
	ErrInvalidConfig = errors.New("customer: invalid config")
)

// Context is what tsunagu knows about one customer across channels.
type Context struct {
	Key         string
	Tier        string // e.g. "gold"; set by the CRM side via Put
	Language    string // e.g. "fr"; set via Put
	LastAgent   string // agent who last served this customer (any channel)
	LastAgentAt time.Time
	Recent      []Interaction // newest first, at most the store's MaxRecent
}

// Interaction is one finished contact of a customer, on any channel.
type Interaction struct {
	ContactID string
	Channel   string
	Queue     string
	AgentID   string
	StartedAt time.Time
	EndedAt   time.Time
	Outcome   string // "handled", "abandoned", ...
}

// Store reads and writes customer context. Implementations are safe for
// concurrent use.
type Store interface {
	// Lookup returns the customer's context; found is false (and err nil) for an unknown key.
	Lookup(ctx context.Context, key string) (c Context, found bool, err error)
	// Record writes one finished interaction: it becomes the newest Recent entry (list bounded
	// to MaxRecent) and, when AgentID is set, LastAgent/LastAgentAt are updated.
	Record(ctx context.Context, key string, in Interaction) error
	// Put upserts the profile fields (Tier, Language) of c.Key; other fields are ignored.
	Put(ctx context.Context, c Context) error
	Close() error
}

var (
	_ Store = (*Memory)(nil)
	_ Store = (*Redis)(nil)
)

// checkKey reports the length rather than the key: an invalid key may be
// megabytes of garbage, and valid ones are personal data.
func checkKey(key string) error {
	if len(key) == 0 || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: length %d, allowed 1..%d bytes", ErrInvalidKey, len(key), MaxKeyLen)
	}
	return nil
}

// normalize puts times in UTC without a monotonic reading, so both stores
// return the same values and identical interactions encode identically (the
// retry de-duplication compares encodings in Redis).
func normalize(in Interaction) Interaction {
	in.StartedAt = utc(in.StartedAt)
	in.EndedAt = utc(in.EndedAt)
	return in
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// lastAgentAt picks the moment an interaction's agent last served the
// customer; now only fills in for callers that recorded no times at all.
func lastAgentAt(in Interaction, now time.Time) time.Time {
	switch {
	case !in.EndedAt.IsZero():
		return utc(in.EndedAt)
	case !in.StartedAt.IsZero():
		return utc(in.StartedAt)
	default:
		return utc(now)
	}
}

// pushRecent returns recent with in at the front, any identical older entry
// removed and the result bounded to max. recent is not modified.
func pushRecent(recent []Interaction, in Interaction, max int) []Interaction {
	out := make([]Interaction, 0, min(len(recent)+1, max))
	out = append(out, in)
	for _, r := range recent {
		if len(out) == max {
			break
		}
		if sameInteraction(r, in) {
			continue
		}
		out = append(out, r)
	}
	return out
}

func sameInteraction(a, b Interaction) bool {
	return a.ContactID == b.ContactID && a.Channel == b.Channel && a.Queue == b.Queue &&
		a.AgentID == b.AgentID && a.Outcome == b.Outcome &&
		a.StartedAt.Equal(b.StartedAt) && a.EndedAt.Equal(b.EndedAt)
}

func cloneContext(c Context) Context {
	c.Recent = slices.Clone(c.Recent)
	return c
}
