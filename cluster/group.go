package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// Timing is the Raft timing of every group of a node.
type Timing struct {
	// Heartbeat is how long a follower waits without hearing from its leader
	// before standing for election (raft's HeartbeatTimeout); heartbeats go
	// out ten times as often.
	Heartbeat time.Duration
	// Election is how long a candidate waits for votes.
	Election time.Duration
	// LeaderLease is how long a leader keeps acting without hearing from a
	// majority: an owner cut off stops within it.
	LeaderLease time.Duration
}

// DefaultTiming detects a dead owner within a few hundred milliseconds on a
// local network.
func DefaultTiming() Timing {
	return Timing{Heartbeat: 150 * time.Millisecond, Election: 150 * time.Millisecond, LeaderLease: 150 * time.Millisecond}
}

// Validate names the first bad setting.
func (t Timing) Validate() error {
	switch {
	case t.Heartbeat < 10*time.Millisecond:
		return fmt.Errorf("cluster: heartbeat timeout %v; allowed 10ms or more", t.Heartbeat)
	case t.Election < 10*time.Millisecond:
		return fmt.Errorf("cluster: election timeout %v; allowed 10ms or more", t.Election)
	case t.LeaderLease < 5*time.Millisecond || t.LeaderLease > t.Heartbeat:
		return fmt.Errorf("cluster: leader lease %v; allowed 5ms up to the heartbeat timeout (%v)", t.LeaderLease, t.Heartbeat)
	}
	return nil
}

// group is one Raft group replica on this node, with its stores on disk
// under dir: raft-wal for the log and stable state, files for snapshots.
type group struct {
	name   string
	dir    string
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	wal    *wal.WAL
	meta   *metadb.BoltMetaDB
	notify chan bool
	// silence is what this replica, while leading, saw of its followers'
	// heartbeats.
	silence *silence
}

// silence records which peers a leader's heartbeats fail to reach. A peer
// that is down fails to dial (Mux.Unreachable); one that is stopped or hung
// still accepts connections and only stops answering, which only the
// heartbeats show.
type silence struct {
	mu     sync.Mutex
	failed map[raft.ServerID]time.Time // last failed heartbeat; cleared when they resume
}

func newSilence() *silence { return &silence{failed: make(map[raft.ServerID]time.Time)} }

// observe is the filter of the group's Raft observer: it records heartbeat
// failures and resumptions as raft reports them (synchronously, so none is
// dropped) and lets nothing through to the observer's channel.
func (s *silence) observe(o *raft.Observation) bool {
	switch d := o.Data.(type) {
	case raft.FailedHeartbeatObservation:
		s.mu.Lock()
		s.failed[d.PeerID] = time.Now()
		s.mu.Unlock()
	case raft.ResumedHeartbeatObservation:
		s.mu.Lock()
		delete(s.failed, d.PeerID)
		s.mu.Unlock()
	}
	return false
}

// silent reports whether a heartbeat to peer failed within the last d and
// none has succeeded since. Failing heartbeats are retried with a backoff
// capped at half the heartbeat timeout, so a peer that stays silent keeps
// showing here; one this replica no longer leads for fades out after d.
func (s *silence) silent(peer raft.ServerID, d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.failed[peer]
	return ok && time.Since(t) < d
}

// logCacheEntries is how many of the latest entries each group keeps in
// memory for replication.
const logCacheEntries = 1024

type groupConfig struct {
	name   string
	nodeID string
	dir    string
	mux    *Mux
	timing Timing
	log    *slog.Logger
	// trailing is how many applied entries stay in the log after a
	// snapshot, so a briefly lagging follower catches up without one.
	trailing uint64
	// snapshotEvery is how many entries trigger a snapshot.
	snapshotEvery uint64
}

// openGroup opens (or creates) the group's stores and starts its Raft
// instance. It does not bootstrap.
func openGroup(c groupConfig, fsm raft.FSM) (*group, error) {
	if err := os.MkdirAll(c.dir, 0o750); err != nil {
		return nil, fmt.Errorf("cluster: group %s: %w", c.name, err)
	}
	hl := hclogTo(c.log.With("group", c.name))
	if err := os.MkdirAll(filepath.Join(c.dir, "wal"), 0o750); err != nil {
		return nil, fmt.Errorf("cluster: group %s: %w", c.name, err)
	}
	// wal.Close leaves its meta store open (and its file lock held), so the
	// group keeps the store to close it itself.
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(filepath.Join(c.dir, "wal"), wal.WithSegmentSize(8<<20), wal.WithLogger(hl), wal.WithMetaStore(meta))
	if err != nil {
		_ = meta.Close()
		return nil, fmt.Errorf("cluster: group %s: open log: %w", c.name, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.dir, 2, hl)
	if err != nil {
		_ = w.Close()
		_ = meta.Close()
		return nil, fmt.Errorf("cluster: group %s: snapshot store: %w", c.name, err)
	}
	layer, err := c.mux.Layer(c.name)
	if err != nil {
		_ = w.Close()
		_ = meta.Close()
		return nil, err
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: 3,
		Timeout: 2 * time.Second,
		Logger:  hl,
	})
	notify := make(chan bool, 16)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.nodeID)
	rc.HeartbeatTimeout = c.timing.Heartbeat
	rc.ElectionTimeout = c.timing.Election
	rc.LeaderLeaseTimeout = c.timing.LeaderLease
	// Without new entries a leader still sends each follower an append every
	// CommitTimeout, per group: short values cost CPU in every idle group.
	rc.CommitTimeout = 50 * time.Millisecond
	rc.NotifyCh = notify
	rc.Logger = hl
	rc.SnapshotThreshold = max(c.snapshotEvery, 1024)
	rc.SnapshotInterval = 10 * time.Second
	rc.TrailingLogs = max(c.trailing, 1024)
	// Leaders read each new entry back to send it to their followers: the
	// cache answers those reads from memory instead of the segment file.
	logs, err := raft.NewLogCache(logCacheEntries, w)
	if err != nil {
		_ = trans.Close()
		_ = w.Close()
		_ = meta.Close()
		return nil, fmt.Errorf("cluster: group %s: log cache: %w", c.name, err)
	}
	r, err := raft.NewRaft(rc, fsm, logs, w, snaps, trans)
	if err != nil {
		_ = trans.Close()
		_ = w.Close()
		_ = meta.Close()
		return nil, fmt.Errorf("cluster: group %s: start raft: %w", c.name, err)
	}
	sil := newSilence()
	r.RegisterObserver(raft.NewObserver(nil, false, sil.observe))
	return &group{name: c.name, dir: c.dir, raft: r, trans: trans, wal: w, meta: meta, notify: notify, silence: sil}, nil
}

// hasState reports whether the group has a log or snapshot on disk, in
// which case it must not be bootstrapped again.
func (g *group) hasState() bool {
	return g.raft.LastIndex() > 0
}

// bootstrap starts a new group with servers as its voters. Every initial
// member may call it with the same servers; it does nothing when the group
// already has state.
func (g *group) bootstrap(servers []raft.Server) error {
	if g.hasState() {
		return nil
	}
	err := g.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("cluster: group %s: bootstrap: %w", g.name, err)
	}
	return nil
}

// servers returns the group's latest configuration.
func (g *group) servers() ([]raft.Server, error) {
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// close stops the group and its stores; remove also deletes its files (the
// replica moved elsewhere).
func (g *group) close(remove bool) error {
	err := g.raft.Shutdown().Error()
	if terr := g.trans.Close(); err == nil {
		err = terr
	}
	if werr := g.wal.Close(); err == nil {
		err = werr
	}
	if merr := g.meta.Close(); err == nil {
		err = merr
	}
	if remove {
		if rerr := os.RemoveAll(g.dir); err == nil {
			err = rerr
		}
	}
	return err
}

// hclogTo sends hashicorp logs of level warn and above to l, line by line.
func hclogTo(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Warn,
		Output: slogWriter{l},
		// No colour, no timestamp: slog adds its own.
		DisableTime: true,
	})
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		if len(line) > 0 {
			w.l.Warn(string(line))
		}
	}
	return len(p), nil
}
