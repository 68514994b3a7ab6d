package actors

import (
	"time"

	"github.com/tsunagu/tsunagu/customer"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// kind of actor a message goes to.
type kind uint8

const (
	queueKind kind = iota + 1
	agentKind
	contactKind
)

// target names an actor: its kind, shard and id (queue name, agent id or
// contact id).
type target struct {
	kind  kind
	shard uint32
	id    string
}

// effects is what a machine asks its shell to do, in order.
type effects struct {
	// At most one proposal per step: machines that propose wait for the
	// commit before deciding anything else.
	propose *pb.Command
	tag     any

	sends   []outbound
	notices []notice
	instr   []instruction
	timers  []timerReq
	cancels []string
	replies []func()
	lookup  *string
	records []interaction
	logs    []logLine
	// events to publish that are not the result of a commit (queue figures).
	events []*pb.Event
	stop   bool
}

type outbound struct {
	to  target
	msg any
}

type notice struct {
	agentID string
	n       *pb.AgentNotice
}

type instruction struct {
	carrier string
	in      *pb.RoutingInstruction
}

type timerReq struct {
	key   string
	after time.Duration
}

type interaction struct {
	key string
	in  customer.Interaction
}

type logLine struct {
	msg  string
	args []any
}

// reset empties fx for the next input, keeping its slices' capacity and
// dropping what they point to.
func (fx *effects) reset() {
	fx.propose, fx.tag, fx.lookup, fx.stop = nil, nil, nil, false
	clear(fx.sends)
	fx.sends = fx.sends[:0]
	clear(fx.notices)
	fx.notices = fx.notices[:0]
	clear(fx.instr)
	fx.instr = fx.instr[:0]
	fx.timers = fx.timers[:0]
	fx.cancels = fx.cancels[:0]
	clear(fx.replies)
	fx.replies = fx.replies[:0]
	clear(fx.records)
	fx.records = fx.records[:0]
	clear(fx.logs)
	fx.logs = fx.logs[:0]
	clear(fx.events)
	fx.events = fx.events[:0]
}

func (fx *effects) proposeCmd(cmd *pb.Command, tag any) {
	fx.propose, fx.tag = cmd, tag
}

func (fx *effects) send(to target, msg any) { fx.sends = append(fx.sends, outbound{to, msg}) }

func (fx *effects) notify(agentID string, n *pb.AgentNotice) {
	fx.notices = append(fx.notices, notice{agentID, n})
}

func (fx *effects) timer(key string, after time.Duration) {
	fx.timers = append(fx.timers, timerReq{key, max(after, 0)})
}

func (fx *effects) cancel(key string) { fx.cancels = append(fx.cancels, key) }

func (fx *effects) reply(f func()) { fx.replies = append(fx.replies, f) }

func (fx *effects) log(msg string, args ...any) { fx.logs = append(fx.logs, logLine{msg, args}) }

// command builds a command of the current schema version.
func command(at int64, shard uint32) *pb.Command {
	return &pb.Command{Version: 1, At: at, Shard: shard}
}

// shardMsg wraps an inter-shard message with the sender's fence.
func shardMsg(fence *pb.Fence) *pb.ShardMessage {
	return &pb.ShardMessage{Version: 1, Fence: fence}
}
