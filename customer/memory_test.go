package customer

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

func TestMemory_EvictsLeastRecentlyUsed(t *testing.T) {
	m := NewMemory(MemoryConfig{MaxCustomers: 3})
	for _, k := range []string{"a", "b", "c"} {
		mustPut(t, m, Context{Key: k, Tier: "gold"})
	}
	mustLookup(t, m, "a")                     // a is used again: b is now the oldest
	mustRecord(t, m, "c", call("c1", "x", 1)) // and c
	mustPut(t, m, Context{Key: "d"})          // one too many

	if m.Len() != 3 {
		t.Fatalf("Len = %d, want 3", m.Len())
	}
	if _, found, _ := m.Lookup(context.Background(), "b"); found {
		t.Fatalf("b was the least recently used and is still there")
	}
	for _, k := range []string{"a", "c", "d"} {
		mustLookup(t, m, k)
	}
}

func TestMemory_BoundHoldsUnderConcurrency(t *testing.T) {
	const maxCustomers = 50
	m := NewMemory(MemoryConfig{MaxCustomers: maxCustomers, MaxRecent: 2})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			ctx := context.Background()
			for i := range 500 {
				key := fmt.Sprintf("w%d-%d", w, i%120)
				if err := m.Record(ctx, key, call(fmt.Sprint(i), "a", i)); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := m.Lookup(ctx, fmt.Sprintf("w%d-%d", (w+1)%8, i%120)); err != nil {
					t.Error(err)
					return
				}
				if n := m.Len(); n > maxCustomers {
					t.Errorf("Len = %d, above MaxCustomers %d", n, maxCustomers)
					return
				}
			}
		})
	}
	wg.Wait()
	if m.Len() != maxCustomers {
		t.Fatalf("Len = %d, want %d", m.Len(), maxCustomers)
	}
}

func TestNewMemory_ZeroFieldsTakeDefaults(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	d := DefaultMemoryConfig()
	if m.maxCustomers != d.MaxCustomers || m.maxRecent != d.MaxRecent {
		t.Fatalf("NewMemory(zero) bounds = %d, %d; want %d, %d", m.maxCustomers, m.maxRecent, d.MaxCustomers, d.MaxRecent)
	}
}

func TestNewMemory_InvalidConfigPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatalf("NewMemory(MaxRecent: -1) did not panic")
		}
	}()
	NewMemory(MemoryConfig{MaxRecent: -1})
}
