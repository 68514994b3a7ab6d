package cluster

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
)

// notCommitted is the result of a proposal Raft could not commit: the
// leader lost its leadership, or the group stopped. The command may still be
// committed by a later leader, so callers answer UNAVAILABLE ("retry"),
// which idempotent commands make safe.
func notCommitted(shardID uint32, err error) *shard.Result {
	return &shard.Result{Err: &shard.Error{
		Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE,
		Msg:  fmt.Sprintf("shard %d: not committed (%v); retry", shardID, err),
	}}
}

// shardFSM is a shard's replicated state machine: every replica applies the
// committed CommandBatch entries to its shard.State.
type shardFSM struct {
	state *shard.State
	apply func([]*pb.Command) []*shard.Result
}

// Apply applies one committed entry. Its return value reaches the proposer
// through the future (on the leader; followers drop it).
func (f *shardFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var batch pb.CommandBatch
	if err := proto.Unmarshal(l.Data, &batch); err != nil {
		// Only this package writes entries: an undecodable one is a bug or a
		// corrupt disk, and applying nothing keeps replicas equal.
		return fmt.Errorf("cluster: entry %d of shard %d is not a CommandBatch: %w", l.Index, f.state.Shard(), err)
	}
	return f.apply(batch.GetCommands())
}

// Snapshot captures the state under its read lock; raft persists it while
// applying goes on.
func (f *shardFSM) Snapshot() (raft.FSMSnapshot, error) {
	return protoSnapshot{f.state.Snapshot()}, nil
}

// Restore replaces the state with a snapshot's.
func (f *shardFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	var snap pb.ShardSnapshot
	if err := proto.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("cluster: snapshot of shard %d: %w", f.state.Shard(), err)
	}
	return f.state.Restore(&snap)
}

// protoSnapshot persists a protobuf message.
type protoSnapshot struct{ m proto.Message }

func (s protoSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := proto.Marshal(s.m)
	if err == nil {
		_, err = sink.Write(data)
	}
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (protoSnapshot) Release() {}

// maxEntryBytes bounds one log entry; a batch is cut before it.
const maxEntryBytes = 512 << 10

// maxInflightEntries bounds the entries of a shard proposed and not yet
// committed. Commands arriving meanwhile wait and go together in the next
// entry, so under load each entry carries more commands and every replica
// writes (and fsyncs) fewer, larger entries. On the 1,000 arrivals/s load
// test of docs/loadtest.md (medians of three runs) 64 in flight made about
// 100,000 entries and routing p50 14.8 ms; 2 make about 50,000 and 12.1 ms.
const maxInflightEntries = 2

// RaftLog proposes a shard's commands to its Raft group: the same contract
// as MemoryLog (done runs once, after the commit and apply, in proposal
// order), for the term this node leads the group in. Commands waiting while
// an entry is proposed go together in the next one; up to
// maxInflightEntries entries are pipelined, and raft writes those that
// queue up together in one disk write.
type RaftLog struct {
	r     *raft.Raft
	shard uint32

	mu       sync.RWMutex
	closed   bool
	in       chan proposal[*shard.Result]
	inflight chan inflight
	// window holds a token per entry proposed and not yet committed.
	window chan struct{}
	done   chan struct{}
}

type inflight struct {
	f     raft.ApplyFuture
	dones []func(*shard.Result)
	err   error
}

func newRaftLog(r *raft.Raft, shardID uint32) *RaftLog {
	l := &RaftLog{
		r:        r,
		shard:    shardID,
		in:       make(chan proposal[*shard.Result], 4096),
		inflight: make(chan inflight, maxInflightEntries),
		window:   make(chan struct{}, maxInflightEntries),
		done:     make(chan struct{}),
	}
	go l.propose()
	go l.complete()
	return l
}

// Propose commits cmd and then calls done with its result; done must not
// block.
func (l *RaftLog) Propose(cmd *pb.Command, done func(*shard.Result)) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		done(notCommitted(l.shard, ErrClosed))
		return
	}
	l.in <- proposal[*shard.Result]{cmd: cmd, done: done}
	l.mu.RUnlock()
}

// Close stops taking proposals; those taken are still proposed, and their
// callers told the outcome, before Close returns.
func (l *RaftLog) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.in)
	}
	l.mu.Unlock()
	<-l.done
}

func (l *RaftLog) propose() {
	defer close(l.inflight)
	batch := &pb.CommandBatch{}
	var dones []func(*shard.Result)
	size := 0
	for p := range l.in {
		// Wait for room in the window first: what arrives meanwhile joins
		// this entry.
		l.window <- struct{}{}
		batch.Commands = append(batch.Commands[:0], p.cmd)
		dones = append(dones[:0:0], p.done)
		size = proto.Size(p.cmd)
	fill:
		for len(dones) < maxBatch && size < maxEntryBytes {
			select {
			case p, ok := <-l.in:
				if !ok {
					break fill
				}
				batch.Commands = append(batch.Commands, p.cmd)
				dones = append(dones, p.done)
				size += proto.Size(p.cmd)
			default:
				break fill
			}
		}
		data, err := proto.Marshal(batch)
		if err != nil {
			l.inflight <- inflight{dones: dones, err: err}
			continue
		}
		l.inflight <- inflight{f: l.r.Apply(data, 5*time.Second), dones: dones}
		clear(batch.Commands)
	}
}

func (l *RaftLog) complete() {
	defer close(l.done)
	for in := range l.inflight {
		err := in.err
		var results []*shard.Result
		if err == nil {
			if err = in.f.Error(); err == nil {
				switch r := in.f.Response().(type) {
				case []*shard.Result:
					results = r
				case error:
					err = r
				}
			}
		}
		<-l.window
		for i, done := range in.dones {
			if err != nil || i >= len(results) {
				if err == nil {
					err = fmt.Errorf("cluster: shard %d: entry applied %d of %d commands", l.shard, len(results), len(in.dones))
				}
				done(notCommitted(l.shard, err))
				continue
			}
			done(results[i])
		}
	}
}
