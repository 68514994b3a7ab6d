package match

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// entry is a waiting contact for line tests: arrival arr, sequence seq.
func entry(arr int64, seq uint64) *Waiting {
	return &Waiting{ContactID: fmt.Sprintf("c%d.%d", arr, seq), ArrivedAt: arr, Seq: seq}
}

// walked lists the line's live entries as walk yields them.
func walked(l *line) []*Waiting {
	var out []*Waiting
	l.walk(func(w *Waiting) bool { out = append(out, w); return true })
	return out
}

func ids(ws []*Waiting) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.ContactID
	}
	return out
}

// sortedCopy is the model of a line: live entries in arrival order.
func sortedCopy(ws []*Waiting) []*Waiting {
	out := slices.Clone(ws)
	slices.SortFunc(out, func(a, b *Waiting) int {
		switch {
		case a.before(b):
			return -1
		case b.before(a):
			return 1
		}
		return 0
	})
	return out
}

// checkLine compares l against the model: walk order, peek, each, live.
func checkLine(t *testing.T, l *line, model []*Waiting) {
	t.Helper()
	want := sortedCopy(model)
	if got := walked(l); !slices.Equal(got, want) {
		t.Fatalf("walk order\n\t%v\nwant\n\t%v", ids(got), ids(want))
	}
	var head *Waiting
	if len(want) > 0 {
		head = want[0]
	}
	if got := l.peek(); got != head {
		t.Fatalf("peek %v; want %v", got, head)
	}
	seen := 0
	l.each(func(w *Waiting) bool {
		if w.removed {
			t.Fatalf("each yielded removed %s", w.ContactID)
		}
		seen++
		return true
	})
	if seen != len(want) || l.live != len(want) {
		t.Fatalf("each saw %d, live %d; want %d", seen, l.live, len(want))
	}
}

func TestLine_InOrderPushesStayInTheRing(t *testing.T) {
	l := &line{}
	var model []*Waiting
	for i := range 100 {
		w := entry(int64(i), uint64(i))
		l.push(w)
		model = append(model, w)
	}
	if len(l.side) != 0 || l.n != 100 {
		t.Fatalf("ring %d side %d; want every in-order push in the ring", l.n, len(l.side))
	}
	checkLine(t, l, model)
	// Equal arrival times are ordered by sequence.
	l2 := &line{}
	a, b := entry(5, 2), entry(5, 1)
	l2.push(a)
	l2.push(b)
	if got := walked(l2); !slices.Equal(got, []*Waiting{b, a}) {
		t.Errorf("same arrival: order %v; want seq 1 then 2", ids(got))
	}
	for i := range 100 {
		w := l.peek()
		if w != model[i] {
			t.Fatalf("pop %d: %v; want %v", i, w.ContactID, model[i].ContactID)
		}
		l.remove(w)
	}
	if l.peek() != nil || l.live != 0 {
		t.Errorf("emptied line: peek %v live %d", l.peek(), l.live)
	}
}

func TestLine_OutOfOrderPushes(t *testing.T) {
	tests := []struct {
		name     string
		n        int   // in-order entries first, arrivals 10, 20, ...
		late     int64 // arrival of the out-of-order push
		wantSide int
	}{
		{"a few places back goes into the ring", 100, 955, 0},
		{"just before the tail", 100, 995, 0},
		{"at the edge of the insert reach", 100, 10*(100-ringInsertReach) + 5, 0},
		{"beyond the insert reach goes to the side heap", 100, 10*(100-ringInsertReach-1) + 5, 1},
		{"before everything in a long line goes to the side heap", 100, 1, 1},
		{"before everything in a short line goes into the ring", 10, 1, 0},
		{"before everything at exactly the reach goes to the side heap", ringInsertReach, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &line{}
			var model []*Waiting
			for i := range tt.n {
				w := entry(int64(10*(i+1)), uint64(i+1))
				l.push(w)
				model = append(model, w)
			}
			late := entry(tt.late, 1000)
			l.push(late)
			model = append(model, late)
			if len(l.side) != tt.wantSide {
				t.Errorf("side heap holds %d; want %d", len(l.side), tt.wantSide)
			}
			checkLine(t, l, model)
		})
	}
}

func TestLine_SideHeapMergesWithTheRing(t *testing.T) {
	l := &line{}
	var model []*Waiting
	for i := range 200 {
		w := entry(int64(1000+10*i), uint64(i))
		l.push(w)
		model = append(model, w)
	}
	// Returned contacts from long ago, in scrambled order, interleaving
	// with the ring and each other.
	for _, arr := range []int64{1505, 3, 1001, 999, 1205, 7, 1995, 500, 1006} {
		w := entry(arr, uint64(arr)+10000)
		l.push(w)
		model = append(model, w)
	}
	if len(l.side) == 0 {
		t.Fatalf("no entry went to the side heap")
	}
	checkLine(t, l, model)
	// Remove some from each structure; walk and peek skip them.
	for _, i := range []int{0, 1, 50, 199, 201, 204} {
		l.remove(model[i])
	}
	live := slices.DeleteFunc(slices.Clone(model), func(w *Waiting) bool { return w.removed })
	checkLine(t, l, live)
	// Walk stops when told.
	n := 0
	l.walk(func(*Waiting) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("walk went on after false: %d calls", n)
	}
	n = 0
	l.each(func(*Waiting) bool { n++; return false })
	if n != 1 {
		t.Errorf("each went on after false: %d calls", n)
	}
}

func TestLine_LazyRemoval(t *testing.T) {
	l := &line{}
	var model []*Waiting
	for i := range 10 {
		w := entry(int64(i), uint64(i))
		l.push(w)
		model = append(model, w)
	}
	l.remove(model[0])
	l.remove(model[1])
	l.remove(model[5])
	l.remove(model[5]) // twice: counted once
	if l.live != 7 {
		t.Fatalf("live %d; want 7", l.live)
	}
	if l.n != 10 {
		t.Errorf("ring holds %d before peek; removal is lazy, want 10", l.n)
	}
	if h := l.peek(); h != model[2] {
		t.Fatalf("peek %v; want c2", h.ContactID)
	}
	if l.n != 8 {
		t.Errorf("ring holds %d after peek; want the 2 removed in front dropped", l.n)
	}
	if model[0].where != l || !model[0].removed {
		t.Errorf("removed entry lost its marks")
	}
	// Removing an entry of another line is a no-op.
	other := &line{}
	stranger := entry(3, 3)
	other.push(stranger)
	l.remove(stranger)
	if stranger.removed || l.live != 7 {
		t.Errorf("remove of another line's entry changed it")
	}
	checkLine(t, l, []*Waiting{model[2], model[3], model[4], model[6], model[7], model[8], model[9]})
}

// TestLine_CompactsWhenTombstonesDominate: removals from the middle of a
// long line (abandons, matches by overflow agents) must not keep the line's
// memory at its peak.
func TestLine_CompactsWhenTombstonesDominate(t *testing.T) {
	l := &line{}
	var all []*Waiting
	for i := range 5000 {
		w := entry(int64(i), uint64(i))
		l.push(w)
		all = append(all, w)
	}
	// A few old contacts returned to their place sit in the side heap.
	for i := range 50 {
		w := entry(-int64(100*i)-1, uint64(100000+i))
		l.push(w)
		all = append(all, w)
	}
	peakRing := len(l.ring)
	var kept []*Waiting
	for i, w := range all {
		if i%10 == 0 {
			kept = append(kept, w)
			continue
		}
		l.remove(w)
	}
	if l.live != len(kept) {
		t.Fatalf("live %d; want %d", l.live, len(kept))
	}
	checkLine(t, l, kept)
	if tomb := l.n + len(l.side) - l.live; tomb > 1024 && tomb > 2*l.live {
		t.Errorf("%d tombstones for %d live entries after compaction", tomb, l.live)
	}
	if len(l.ring) >= peakRing/4 {
		t.Errorf("ring capacity %d after removing 90%% (peak %d); want it shrunk", len(l.ring), peakRing)
	}
	// Pushes after compaction still keep order.
	for i := range 100 {
		w := entry(int64(5000+i), uint64(5000+i))
		l.push(w)
		kept = append(kept, w)
	}
	late := entry(4999, 99999)
	l.push(late)
	kept = append(kept, late)
	checkLine(t, l, kept)
}

// TestLine_MatchesSortedModel drives a line with random pushes (mostly in
// order, some a little late, some returned from long ago), removals
// anywhere and pops from the front, and compares it with a sorted slice
// after every operation.
func TestLine_MatchesSortedModel(t *testing.T) {
	compactions := 0
	for seed := range uint64(10) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0x11e))
			l := &line{}
			var model []*Waiting
			var clock int64
			var seq uint64
			for op := range 8000 {
				// Grow, then shrink mostly by removals from anywhere, so
				// tombstones pile up and the line compacts.
				pushShare := 70
				if op >= 4000 {
					pushShare = 10
				}
				held := l.n + len(l.side)
				switch x := r.IntN(100); {
				case x < pushShare:
					seq++
					arr := clock
					switch y := r.IntN(10); {
					case y < 6:
						clock += int64(r.IntN(3))
						arr = clock
					case y < 9:
						arr = clock - int64(r.IntN(200))
					default:
						arr = clock - int64(r.IntN(100000))
					}
					w := entry(arr, seq)
					l.push(w)
					model = append(model, w)
				case x < pushShare+(100-pushShare)*9/10 && len(model) > 0:
					i := r.IntN(len(model))
					l.remove(model[i])
					model = slices.Delete(model, i, i+1)
					if l.n+len(l.side) < held {
						compactions++ // only compaction drops entries on remove
					}
				case len(model) > 0:
					h := l.peek()
					want := sortedCopy(model)[0]
					if h != want {
						t.Fatalf("op %d: peek %v; want %v", op, h.ContactID, want.ContactID)
					}
					l.remove(h)
					model = slices.DeleteFunc(model, func(w *Waiting) bool { return w == h })
				}
				if op%200 == 0 || len(model) < 5 {
					checkLine(t, l, model)
				}
			}
			checkLine(t, l, model)
			// Drain: the line empties in order.
			want := sortedCopy(model)
			for i := range want {
				h := l.peek()
				if h != want[i] {
					t.Fatalf("drain %d: %v; want %v", i, h.ContactID, want[i].ContactID)
				}
				l.remove(h)
			}
			if l.peek() != nil || l.live != 0 {
				t.Fatalf("drained line: peek %v live %d", l.peek(), l.live)
			}
		})
	}
	if compactions == 0 {
		t.Errorf("no run compacted its line; the model test does not cover compaction")
	}
}

// TestLine_MassRemovalFromTheMiddle: the compaction path under random
// removals keeps order and bounds memory to a constant factor of live.
func TestLine_MassRemovalFromTheMiddle(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	l := &line{}
	var model []*Waiting
	for i := range 20000 {
		arr := int64(i)
		if r.IntN(50) == 0 {
			arr -= int64(r.IntN(20000))
		}
		w := entry(arr, uint64(i))
		l.push(w)
		model = append(model, w)
	}
	r.Shuffle(len(model), func(i, j int) { model[i], model[j] = model[j], model[i] })
	for len(model) > 300 {
		l.remove(model[len(model)-1])
		model = model[:len(model)-1]
		if tomb := l.n + len(l.side) - l.live; tomb > 1025 && tomb > 2*l.live+1 {
			t.Fatalf("%d tombstones for %d live", tomb, l.live)
		}
	}
	checkLine(t, l, model)
	if len(l.ring) > 4096 {
		t.Errorf("ring capacity %d for %d live entries", len(l.ring), l.live)
	}
}
