package client

import (
	"slices"
	"testing"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

func batch(shard uint32, term uint64, positions ...uint64) *pb.EventBatch {
	b := &pb.EventBatch{Shard: shard, Term: term}
	for _, p := range positions {
		b.Events = append(b.Events, &pb.Event{Shard: shard, Position: p})
	}
	return b
}

func positionsOf(evs []*pb.Event) []uint64 {
	var out []uint64
	for _, ev := range evs {
		out = append(out, ev.GetPosition())
	}
	return out
}

func TestPositions(t *testing.T) {
	ps := NewPositions()
	steps := []struct {
		name       string
		b          *pb.EventBatch
		want       []uint64
		wantMissed uint64
	}{
		{"first batch, joined mid-stream", batch(1, 3, 41, 42, 43), []uint64{41, 42, 43}, 0},
		{"another shard is its own count", batch(2, 3, 7), []uint64{7}, 0},
		{"queue figures pass", batch(1, 3, 0, 44), []uint64{0, 44}, 0},
		{"a new owner's copies are dropped", batch(1, 5, 43, 44, 45), []uint64{45}, 0},
		{"a gap is counted", batch(1, 5, 48), []uint64{48}, 2},
		{"a copy from before the gap is dropped", batch(1, 5, 46), nil, 0},
		{"a single node's new life is no gap", batch(2, 1795430906885, 1795430906885<<20, 1795430906885<<20+1), []uint64{1795430906885 << 20, 1795430906885<<20 + 1}, 0},
		{"missing the start of a new life is", batch(2, 1795430999999, 1795430999999<<20+3), []uint64{1795430999999<<20 + 3}, 3},
	}
	for _, s := range steps {
		fresh, missed := ps.Admit(s.b)
		if got := positionsOf(fresh); !slices.Equal(got, s.want) || missed != s.wantMissed {
			t.Errorf("%s: admitted %v, missed %d; want %v, missed %d", s.name, got, missed, s.want, s.wantMissed)
		}
	}
	if ps.Copies() != 3 || ps.Missed() != 5 {
		t.Errorf("copies %d, missed %d; want 3 and 5", ps.Copies(), ps.Missed())
	}
}
