package actors

import (
	"context"
	"time"

	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/customer"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Log commits commands to one shard's replicated state. The in-memory log
// and the Raft log keep the same contract: Propose returns at once; done is
// called exactly once, after the command is committed and applied (with its
// Result, which the callee may keep), or with Result.Err set when it could
// not be committed.
// Commands proposed by one caller are applied in the order proposed, and
// done callbacks of one shard run in apply order.
type Log interface {
	Propose(cmd *pb.Command, done func(*shard.Result))
}

// Bus is the node's side of the NATS contract: what the actors tell the
// outside world.
type Bus interface {
	// Notify publishes a notice to an agent's desktop.
	Notify(agentID string, n *pb.AgentNotice)
	// Instruct sends a routing instruction to a carrier; acked is called
	// once with the carrier's acknowledgement or an error (timeout, no
	// responder). The caller retries.
	Instruct(carrier string, in *pb.RoutingInstruction, acked func(*pb.InstructionAck, error))
}

// Customers is the customer-context store.
type Customers interface {
	Lookup(ctx context.Context, key string) (customer.Context, bool, error)
	Record(ctx context.Context, key string, in customer.Interaction) error
}

// Clock is the time source of the shells; machines get time as an input.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Stopper
}

// Stopper stops a timer.
type Stopper interface{ Stop() bool }

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc runs f after d.
func (SystemClock) AfterFunc(d time.Duration, f func()) Stopper { return time.AfterFunc(d, f) }
