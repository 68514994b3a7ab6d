package actors_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/cluster"
	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// undecidedLog commits every command, but tells the proposer of the
// commands undecided picks that their fate is unknown (UNAVAILABLE), as the
// Raft log does when its leader steps down after replicating an entry.
type undecidedLog struct {
	inner     *cluster.MemoryLog[*shard.Result]
	undecided func(*pb.Command) bool
}

func (l undecidedLog) Propose(cmd *pb.Command, done func(*shard.Result)) {
	if !l.undecided(cmd) {
		l.inner.Propose(cmd, done)
		return
	}
	l.inner.Propose(cmd, func(*shard.Result) {
		done(actors.FailResult(&shard.Error{Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE, Msg: "test: leader stepped down; entry may commit"}))
	})
}

// retrying sets the protocol's retry interval short, so a resent message
// comes within the test's patience.
func retrying(c *actors.Config) {
	c.Timing = actors.DefaultTiming()
	c.Timing.Retry = 50 * time.Millisecond
}

// The contact's connect is committed, but its owner steps down before it
// hears so and is told only that the outcome is unknown. It must not
// withdraw the agent's offer on that: the carrier is about to put the call
// through (the next owner re-sends the connect). Withdrawing freed the agent
// for a second call while on the first — seen in the kill -9 chaos test.
func TestUndecidedConnectKeepsTheAgent(t *testing.T) {
	undecided := undecidedOnce(func(c *pb.Command) bool { return c.GetContactConnect() != nil })
	d := newEngineWithLogs(t, scenario.Basic(), 4, scenario.Options{}, func(_ uint32, l actors.Log) actors.Log {
		return undecidedLog{inner: l.(*cluster.MemoryLog[*shard.Result]), undecided: undecided}
	}, retrying)
	s := &scenario.S{T: t, D: d}
	s.Login("alice")
	s.MustArrive("c1", "support", pb.Channel_CHANNEL_VOICE)
	s.MustArrive("c2", "support", pb.Channel_CHANNEL_VOICE)
	o := s.Offer("alice")
	s.Accept("alice", o)

	// The agent's resent acceptance gets the connect through.
	in := s.Instruction()
	if in.GetContactId() != o.GetContactId() || in.GetAgentId() != "alice" || in.GetKind() != pb.InstructionKind_INSTRUCTION_KIND_CONNECT {
		t.Fatalf("instruction %v; want %s connected to alice", in, o.GetContactId())
	}
	v := s.MustCmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent()
	if v.GetState() != pb.AgentState_AGENT_STATE_BUSY || len(v.GetSlots()) != 1 || v.GetSlots()[0].GetOfferId() != o.GetOfferId() {
		t.Fatalf("alice after the connect: %v; want busy on %s alone", v, o.GetOfferId())
	}
	// Alice stays on the call: the other caller waits for her.
	s.Media("support", o.GetContactId(), pb.MediaKind_MEDIA_KIND_HUNG_UP)
	s.MustCmd("alice", pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, o.GetOfferId())
	if next := s.Offer("alice"); next.GetContactId() == o.GetContactId() {
		t.Fatalf("alice offered %s again", next.GetContactId())
	}
}

func undecidedOnce(match func(*pb.Command) bool) func(*pb.Command) bool {
	var once sync.Once
	return func(c *pb.Command) bool {
		hit := false
		if match(c) {
			once.Do(func() { hit = true })
		}
		return hit
	}
}

// The agent's reservation is committed but its actor hears only that the
// outcome is unknown. Declining would put the contact back in line while
// the agent holds its offer unseen; instead the contact asks again, and the
// agent's desktop gets the offer then.
func TestUndecidedReservationIsOfferedOnTheNextAsk(t *testing.T) {
	reserve := undecidedOnce(func(c *pb.Command) bool { return c.GetAgentReserve() != nil })
	d := newEngineWithLogs(t, scenario.Basic(), 4, scenario.Options{}, func(_ uint32, l actors.Log) actors.Log {
		return undecidedLog{inner: l.(*cluster.MemoryLog[*shard.Result]), undecided: reserve}
	}, retrying)
	s := &scenario.S{T: t, D: d}
	s.Login("alice")
	s.MustArrive("c1", "support", pb.Channel_CHANNEL_VOICE)
	o := s.Offer("alice")
	if o.GetContactId() != "c1" || o.GetOfferId() != "c1#1-1-1" {
		t.Fatalf("offer %v; want c1's first hold", o)
	}
	s.Accept("alice", o)
	if in := s.Instruction(); in.GetContactId() != "c1" || in.GetAgentId() != "alice" {
		t.Fatalf("instruction %v; want c1 connected to alice", in)
	}
}
