package customer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

const (
	maxKeyPrefixLen = 128
	maxRedisTimeout = 30 * time.Second
	maxPoolSize     = 10_000
)

// Hash fields of the profile key; see the package doc for the schema.
const (
	fieldTier     = "tier"
	fieldLanguage = "lang"
	fieldAgent    = "agent"
	fieldAgentAt  = "agent_at"
)

// redactedSecret replaces passwords wherever a URL is shown (net/url's choice).
const redactedSecret = "xxxxx"

// RedisConfig configures the Redis store. Start from DefaultRedisConfig.
type RedisConfig struct {
	// URL is redis://[user:password@]host:port[/db], rediss://... for TLS, or
	// unix://[user:password@]/path/to/socket. Query options for what this
	// store sets itself (timeouts, pool, retries) are overridden.
	URL string
	// KeyPrefix starts every key this store touches. Braces are refused:
	// they would make the prefix the Redis Cluster hash tag and put every
	// customer in one slot.
	KeyPrefix string
	// MaxRecent bounds Context.Recent and the Redis list behind it.
	MaxRecent int
	// TTL is the sliding expiry of a customer's keys, reset by every Record
	// and Put; 0 keeps them forever.
	TTL time.Duration
	// DialTimeout, ReadTimeout and WriteTimeout are short on purpose: an
	// arrival waits for its Lookup, and routing without personalisation
	// beats routing late. They bound each attempt; there are no retries.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolSize is the number of connections kept to Redis.
	PoolSize int
	// Logger receives the few events worth a line (unreadable stored data).
	// Nil discards them.
	Logger *slog.Logger
}

// DefaultRedisConfig returns settings for a local Redis.
func DefaultRedisConfig() RedisConfig {
	return RedisConfig{
		URL:          "redis://127.0.0.1:6379/0",
		KeyPrefix:    "tsunagu:cust:",
		MaxRecent:    20,
		TTL:          90 * 24 * time.Hour,
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  100 * time.Millisecond,
		WriteTimeout: 100 * time.Millisecond,
		PoolSize:     32,
	}
}

// Validate reports every setting outside its allowed range. Messages show
// the URL with its password redacted.
func (c RedisConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.URL == "" {
		bad("URL is empty, allowed redis://[user:password@]host:port[/db], rediss://... or unix://...")
	} else if _, err := redis.ParseURL(c.URL); err != nil {
		// *url.Error quotes the raw URL, password included: keep only its cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		bad("URL = %s: %v, allowed redis://[user:password@]host:port[/db], rediss://... or unix://...", redactURL(c.URL), err)
	}
	if c.KeyPrefix == "" || len(c.KeyPrefix) > maxKeyPrefixLen || strings.ContainsAny(c.KeyPrefix, "{}") {
		bad("KeyPrefix = %q, allowed 1..%d bytes without { or }", c.KeyPrefix, maxKeyPrefixLen)
	}
	if c.MaxRecent < 1 || c.MaxRecent > maxMaxRecent {
		bad("MaxRecent = %d, allowed 1..%d", c.MaxRecent, maxMaxRecent)
	}
	if c.TTL != 0 && c.TTL < time.Second {
		bad("TTL = %s, allowed 0 (no expiry) or at least 1s", c.TTL)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout}} {
		if d.v < time.Millisecond || d.v > maxRedisTimeout {
			bad("%s = %s, allowed 1ms..%s", d.name, d.v, maxRedisTimeout)
		}
	}
	if c.PoolSize < 1 || c.PoolSize > maxPoolSize {
		bad("PoolSize = %d, allowed 1..%d", c.PoolSize, maxPoolSize)
	}
	return errors.Join(errs...)
}

// String shows the configuration with the URL's password redacted, so the
// configuration can be logged at start-up.
func (c RedisConfig) String() string {
	return fmt.Sprintf("RedisConfig{URL:%s KeyPrefix:%q MaxRecent:%d TTL:%s DialTimeout:%s ReadTimeout:%s WriteTimeout:%s PoolSize:%d}",
		redactURL(c.URL), c.KeyPrefix, c.MaxRecent, c.TTL, c.DialTimeout, c.ReadTimeout, c.WriteTimeout, c.PoolSize)
}

// LogValue keeps the password out of structured logs too.
func (c RedisConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", redactURL(c.URL)),
		slog.String("key_prefix", c.KeyPrefix),
		slog.Int("max_recent", c.MaxRecent),
		slog.Duration("ttl", c.TTL),
		slog.Duration("dial_timeout", c.DialTimeout),
		slog.Duration("read_timeout", c.ReadTimeout),
		slog.Duration("write_timeout", c.WriteTimeout),
		slog.Int("pool_size", c.PoolSize),
	)
}

// redactURL replaces the password of a Redis URL. A URL that does not parse
// loses its whole user-info part, since where the password ends is unknown.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	scheme, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	if j := strings.LastIndex(rest, "@"); j >= 0 {
		return scheme + redactedSecret + rest[j:]
	}
	return raw
}

// Redis is the Store shared by the nodes of a cluster. It is safe for
// concurrent use. It connects lazily: NewRedis succeeds while Redis is down,
// and each call fails fast with ErrUnavailable until Redis is back.
type Redis struct {
	client    *redis.Client
	prefix    string
	maxRecent int
	ttl       time.Duration
	log       *slog.Logger
	closed    atomic.Bool
}

// NewRedis returns a store for cfg without contacting Redis; use Ping to
// check the connection.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: URL = %s", ErrInvalidConfig, redactURL(cfg.URL)) // Validate parsed it already
	}
	opts.DialTimeout = cfg.DialTimeout
	opts.ReadTimeout = cfg.ReadTimeout
	opts.WriteTimeout = cfg.WriteTimeout
	opts.PoolSize = cfg.PoolSize
	// A caller waits for a free connection no longer than for a reply.
	opts.PoolTimeout = cfg.ReadTimeout
	// Callers' deadlines (the arrival's routing budget) cut calls short.
	opts.ContextTimeoutEnabled = true
	// One attempt per call and per dial: a retry doubles the wait of an
	// arrival that will route without personalisation anyway, and while Redis
	// is down go-redis's pool probes it in the background and fails calls
	// immediately. Record is idempotent, so a caller may retry it.
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	// Every call here is a pipeline or a transaction; without this they would
	// use a second pool that PoolSize does not bound.
	opts.PipelinePoolSize = -1
	// go-redis >= 9.15 sends CLIENT MAINT_NOTIFICATIONS in its default "auto"
	// mode; plain Redis rejects it and go-redis falls back (logging it, in
	// some versions). Redis < 7.2 rejects CLIENT SETINFO. Neither is of use
	// to us; both cost handshake round trips and error replies that would
	// hide real ones in Redis's error statistics.
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	opts.DisableIdentity = true

	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Redis{
		client:    redis.NewClient(opts),
		prefix:    cfg.KeyPrefix,
		maxRecent: cfg.MaxRecent,
		ttl:       cfg.TTL,
		log:       log,
	}, nil
}

// The braces are a Redis Cluster hash tag: a customer's two keys share a
// slot, so Record's transaction stays legal on Redis Cluster.
func (r *Redis) profileKey(key string) string { return r.prefix + "{" + key + "}" }
func (r *Redis) recentKey(key string) string  { return r.prefix + "{" + key + "}:recent" }

// Lookup implements Store in one round trip.
func (r *Redis) Lookup(ctx context.Context, key string) (Context, bool, error) {
	if err := checkKey(key); err != nil {
		return Context{}, false, err
	}
	if r.closed.Load() {
		return Context{}, false, ErrClosed
	}
	var (
		profile *redis.MapStringStringCmd
		recent  *redis.StringSliceCmd
	)
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		profile = p.HGetAll(ctx, r.profileKey(key))
		recent = p.LRange(ctx, r.recentKey(key), 0, int64(r.maxRecent-1))
		return nil
	})
	if err != nil {
		return Context{}, false, r.fail("lookup", key, err)
	}
	fields, entries := profile.Val(), recent.Val()
	if len(fields) == 0 && len(entries) == 0 {
		return Context{}, false, nil
	}

	c := Context{
		Key:       key,
		Tier:      fields[fieldTier],
		Language:  fields[fieldLanguage],
		LastAgent: fields[fieldAgent],
	}
	if s, ok := fields[fieldAgentAt]; ok {
		if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
			c.LastAgentAt = fromUnixNano(ns)
		} else {
			r.log.Warn("customer: unreadable last agent time, ignored", "key", r.profileKey(key), "error", err)
		}
	}
	if len(entries) > 0 {
		c.Recent = make([]Interaction, 0, len(entries))
	}
	for i, e := range entries {
		in, err := decodeInteraction([]byte(e))
		if err != nil {
			// One bad entry must not cost the customer their personalisation.
			r.log.Warn("customer: unreadable recent interaction, skipped", "key", r.recentKey(key), "index", i, "error", err)
			continue
		}
		c.Recent = append(c.Recent, in)
	}
	return c, true, nil
}

// Record implements Store in one round trip (MULTI/EXEC).
func (r *Redis) Record(ctx context.Context, key string, in Interaction) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if r.closed.Load() {
		return ErrClosed
	}
	in = normalize(in)
	enc, err := encodeInteraction(in)
	if err != nil {
		return fmt.Errorf("customer: record %q: %w", key, err)
	}
	pk, rk := r.profileKey(key), r.recentKey(key)
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		// Same encoding for the same interaction (normalize), so a retried
		// Record replaces its first attempt instead of duplicating it.
		p.LRem(ctx, rk, 0, enc)
		p.LPush(ctx, rk, enc)
		p.LTrim(ctx, rk, 0, int64(r.maxRecent-1))
		if in.AgentID != "" {
			at := lastAgentAt(in, time.Now())
			p.HSet(ctx, pk, fieldAgent, in.AgentID, fieldAgentAt, strconv.FormatInt(at.UnixNano(), 10))
		}
		r.expire(ctx, p, pk, rk)
		return nil
	})
	if err != nil {
		return r.fail("record", key, err)
	}
	return nil
}

// Put implements Store in one round trip (MULTI/EXEC).
func (r *Redis) Put(ctx context.Context, c Context) error {
	if err := checkKey(c.Key); err != nil {
		return err
	}
	if r.closed.Load() {
		return ErrClosed
	}
	pk, rk := r.profileKey(c.Key), r.recentKey(c.Key)
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, pk, fieldTier, c.Tier, fieldLanguage, c.Language)
		r.expire(ctx, p, pk, rk)
		return nil
	})
	if err != nil {
		return r.fail("put", c.Key, err)
	}
	return nil
}

// expire slides both keys' TTL together, so a customer's profile and
// history are forgotten at the same time.
func (r *Redis) expire(ctx context.Context, p redis.Pipeliner, keys ...string) {
	if r.ttl <= 0 {
		return
	}
	for _, k := range keys {
		p.PExpire(ctx, k, r.ttl)
	}
}

// Ping checks that Redis answers, for readiness probes and start-up logs.
func (r *Redis) Ping(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return wrap("customer: ping", err)
	}
	return nil
}

// Close implements Store: it closes the connections to Redis.
func (r *Redis) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	return r.client.Close()
}

// fail wraps a Redis error with the operation. The customer key stays out
// of the message: it is personal data (a phone number, an e-mail) and
// errors end up in logs.
func (r *Redis) fail(op, _ string, err error) error {
	return wrap("customer: "+op, err)
}

// wrap prefixes err with what was being done and marks failures to reach
// Redis with ErrUnavailable.
func wrap(what string, err error) error {
	switch {
	case errors.Is(err, redis.ErrClosed):
		return fmt.Errorf("%s: %w", what, ErrClosed)
	case unavailable(err):
		return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// unavailable tells failures to reach a working Redis (routing should go on
// without it and count a fallback) from errors in what we asked of it
// (WRONGTYPE, auth, a cancelled caller), which need a person, not a retry.
func unavailable(err error) bool {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		// Checked first: a dial cut short by the caller is also a net.Error.
		return false
	case errors.Is(err, context.DeadlineExceeded), // the caller's budget ran out waiting for Redis
		errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, redis.ErrPoolExhausted),
		errors.As(err, &netErr), // refused, reset, timed out, unresolvable
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	return redis.IsLoadingError(err) || redis.IsMasterDownError(err) ||
		redis.IsClusterDownError(err) || redis.IsTryAgainError(err) ||
		redis.IsMaxClientsError(err) || redis.IsOOMError(err)
}

// wireInteraction is the stored form of an Interaction: short names and
// Unix nanoseconds keep a 20-entry history of a customer around 2 KiB.
type wireInteraction struct {
	ContactID string `json:"c,omitempty"`
	Channel   string `json:"ch,omitempty"`
	Queue     string `json:"q,omitempty"`
	AgentID   string `json:"a,omitempty"`
	StartedAt int64  `json:"s,omitempty"`
	EndedAt   int64  `json:"e,omitempty"`
	Outcome   string `json:"o,omitempty"`
}

func encodeInteraction(in Interaction) ([]byte, error) {
	return json.Marshal(wireInteraction{
		ContactID: in.ContactID,
		Channel:   in.Channel,
		Queue:     in.Queue,
		AgentID:   in.AgentID,
		StartedAt: toUnixNano(in.StartedAt),
		EndedAt:   toUnixNano(in.EndedAt),
		Outcome:   in.Outcome,
	})
}

func decodeInteraction(b []byte) (Interaction, error) {
	var w wireInteraction
	if err := json.Unmarshal(b, &w); err != nil {
		return Interaction{}, err
	}
	return Interaction{
		ContactID: w.ContactID,
		Channel:   w.Channel,
		Queue:     w.Queue,
		AgentID:   w.AgentID,
		StartedAt: fromUnixNano(w.StartedAt),
		EndedAt:   fromUnixNano(w.EndedAt),
		Outcome:   w.Outcome,
	}, nil
}

// toUnixNano maps the zero time to 0 (omitted on the wire); time.Time's own
// UnixNano is undefined for it.
func toUnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
