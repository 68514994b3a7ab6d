package client

import (
	"testing"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

func TestFencesRefuseOlderTermsPerShard(t *testing.T) {
	fs := NewFences()
	steps := []struct {
		shard uint32
		term  uint64
		want  bool
	}{
		{1, 3, true},
		{1, 3, true},  // the same owner again
		{1, 2, false}, // older than seen
		{2, 1, true},  // another shard has its own terms
		{1, 4, true},  // a new owner
		{1, 3, false}, // the deposed one, late
	}
	for i, s := range steps {
		if got := fs.Admit(&pb.Fence{Shard: s.shard, Term: s.term}); got != s.want {
			t.Errorf("step %d: Admit(shard %d, term %d) = %v; want %v", i, s.shard, s.term, got, s.want)
		}
	}
	if !fs.Admit(nil) {
		t.Error("a missing fence was refused")
	}
	if fs.Stale() != 2 {
		t.Errorf("Stale() = %d; want 2", fs.Stale())
	}
}
