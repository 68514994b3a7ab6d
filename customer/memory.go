package customer

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

const (
	maxMemoryCustomers = 100_000_000
	maxMaxRecent       = 1000
)

// MemoryConfig configures the in-process store.
type MemoryConfig struct {
	// MaxCustomers bounds how many customers are kept; beyond it the least
	// recently used customer is forgotten. A context costs roughly
	// 0.2 KiB + 0.2 KiB per Recent entry, so the default of 100 000 with
	// full histories is about 400 MiB at worst.
	MaxCustomers int
	// MaxRecent bounds Context.Recent.
	MaxRecent int
}

// DefaultMemoryConfig returns the settings used for zero fields.
func DefaultMemoryConfig() MemoryConfig {
	return MemoryConfig{MaxCustomers: 100_000, MaxRecent: 20}
}

// Validate reports every setting outside its allowed range.
func (c MemoryConfig) Validate() error {
	var errs []error
	if c.MaxCustomers < 1 || c.MaxCustomers > maxMemoryCustomers {
		errs = append(errs, fmt.Errorf("%w: MaxCustomers = %d, allowed 1..%d", ErrInvalidConfig, c.MaxCustomers, maxMemoryCustomers))
	}
	if c.MaxRecent < 1 || c.MaxRecent > maxMaxRecent {
		errs = append(errs, fmt.Errorf("%w: MaxRecent = %d, allowed 1..%d", ErrInvalidConfig, c.MaxRecent, maxMaxRecent))
	}
	return errors.Join(errs...)
}

// withDefaults fills zero fields only, so an explicit bad value (negative)
// still fails Validate instead of silently becoming the default.
func (c MemoryConfig) withDefaults() MemoryConfig {
	d := DefaultMemoryConfig()
	if c.MaxCustomers == 0 {
		c.MaxCustomers = d.MaxCustomers
	}
	if c.MaxRecent == 0 {
		c.MaxRecent = d.MaxRecent
	}
	return c
}

// Memory is the in-process Store, the default for a single node. Its contents
// are local to the process and lost on restart, so nodes of a cluster share
// Redis instead. It is safe for concurrent use and bounded by MaxCustomers
// with least-recently-used eviction; entries never expire.
type Memory struct {
	maxCustomers int
	maxRecent    int

	mu     sync.Mutex
	closed bool
	byKey  map[string]*list.Element // of *Context
	lru    *list.List               // front is the most recently used
}

// NewMemory returns an empty in-process store. Zero fields of cfg take their
// DefaultMemoryConfig values. A configuration that fails Validate is a
// programming error and panics; check configuration from outside with
// Validate first.
func NewMemory(cfg MemoryConfig) *Memory {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Memory{
		maxCustomers: cfg.MaxCustomers,
		maxRecent:    cfg.MaxRecent,
		byKey:        make(map[string]*list.Element),
		lru:          list.New(),
	}
}

// Lookup implements Store. A lookup counts as use for eviction.
func (m *Memory) Lookup(ctx context.Context, key string) (Context, bool, error) {
	if err := checkKey(key); err != nil {
		return Context{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return Context{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Context{}, false, ErrClosed
	}
	e, ok := m.byKey[key]
	if !ok {
		return Context{}, false, nil
	}
	m.lru.MoveToFront(e)
	// A copy: callers may keep or modify what they got without racing later writes.
	return cloneContext(*e.Value.(*Context)), true, nil
}

// Record implements Store.
func (m *Memory) Record(ctx context.Context, key string, in Interaction) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	in = normalize(in)
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.entry(key)
	if err != nil {
		return err
	}
	c.Recent = pushRecent(c.Recent, in, m.maxRecent)
	if in.AgentID != "" {
		c.LastAgent = in.AgentID
		c.LastAgentAt = lastAgentAt(in, now)
	}
	return nil
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, c Context) error {
	if err := checkKey(c.Key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.entry(c.Key)
	if err != nil {
		return err
	}
	e.Tier = c.Tier
	e.Language = c.Language
	return nil
}

// Close implements Store. It drops all contents.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.byKey = nil
	m.lru.Init()
	return nil
}

// Len returns the number of customers held.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}

// entry returns key's context for writing, creating it (and evicting the
// least recently used customer if that exceeds the bound). m.mu must be held.
func (m *Memory) entry(key string) (*Context, error) {
	if m.closed {
		return nil, ErrClosed
	}
	if e, ok := m.byKey[key]; ok {
		m.lru.MoveToFront(e)
		return e.Value.(*Context), nil
	}
	c := &Context{Key: key}
	m.byKey[key] = m.lru.PushFront(c)
	for m.lru.Len() > m.maxCustomers {
		oldest := m.lru.Back()
		m.lru.Remove(oldest)
		delete(m.byKey, oldest.Value.(*Context).Key)
	}
	return c, nil
}
