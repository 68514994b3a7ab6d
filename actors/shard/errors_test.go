package shard_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

var sentinels = []*shard.Error{
	shard.ErrUnknownContact, shard.ErrUnknownAgent, shard.ErrUnknownOffer, shard.ErrIllegalTransition,
	shard.ErrInvalidCommand, shard.ErrUnsupportedVersion, shard.ErrConflict,
}

// TestErrors_MatchByCode: callers (the NATS reply, the actor answering a
// desktop) switch on the sentinel or the code, never on the message.
func TestErrors_MatchByCode(t *testing.T) {
	codes := map[pb.ErrorCode]bool{}
	for _, e := range sentinels {
		if codes[e.Code] {
			t.Errorf("two sentinels share code %v", e.Code)
		}
		codes[e.Code] = true
		if !strings.HasPrefix(e.Error(), "shard: ") {
			t.Errorf("sentinel %q is not prefixed with the package", e)
		}
		specific := &shard.Error{Code: e.Code, Msg: `agent "a1" says something specific`}
		wrapped := fmt.Errorf("node: apply: %w", specific)
		if !errors.Is(specific, e) || !errors.Is(wrapped, e) {
			t.Errorf("an error with code %v (wrapped or not) does not match its sentinel", e.Code)
		}
		if shard.CodeOf(wrapped) != e.Code {
			t.Errorf("CodeOf(wrapped) = %v, want %v", shard.CodeOf(wrapped), e.Code)
		}
		for _, other := range sentinels {
			if other != e && errors.Is(specific, other) {
				t.Errorf("code %v matches the sentinel for %v", e.Code, other.Code)
			}
		}
	}
	if plain := errors.New("shard: conflict"); errors.Is(plain, shard.ErrConflict) {
		t.Errorf("a plain error with the same text matches a sentinel")
	}
	if got := shard.CodeOf(nil); got != pb.ErrorCode_ERROR_CODE_UNSPECIFIED {
		t.Errorf("CodeOf(nil) = %v", got)
	}
	if got := shard.CodeOf(errors.New("disk on fire")); got != pb.ErrorCode_ERROR_CODE_INTERNAL {
		t.Errorf("CodeOf(foreign error) = %v, want INTERNAL", got)
	}
}
