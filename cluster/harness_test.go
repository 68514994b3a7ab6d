package cluster

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// The harness runs N members in one process, each with its own listener and
// disk, so multi-member tests read like the incidents they guard against:
// kill a member, cut one off, heal, wait for a new owner.

// owner records what the cluster hands a member.
type owner struct {
	mu    sync.Mutex
	owned map[uint32]ownership
	// history of acquisitions, for checking one owner per term.
	acquired []ownership
}

type ownership struct {
	shard uint32
	term  uint64
	state *shard.State
	log   *RaftLog
}

func newOwner() *owner { return &owner{owned: make(map[uint32]ownership)} }

func (o *owner) Prepare(uint32, uint64) {}

func (o *owner) Acquire(id uint32, term uint64, st *shard.State, l *RaftLog) {
	o.mu.Lock()
	defer o.mu.Unlock()
	own := ownership{id, term, st, l}
	o.owned[id] = own
	o.acquired = append(o.acquired, own)
}

func (o *owner) Release(id uint32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.owned, id)
}

func (o *owner) get(id uint32) (ownership, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	own, ok := o.owned[id]
	return own, ok
}

func (o *owner) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.owned)
}

type member struct {
	mu    sync.Mutex // guards c and alive against register goroutines
	id    string
	site  string
	addr  string
	dir   string
	c     *Cluster
	owner *owner
	alive bool
}

type harness struct {
	mu      sync.Mutex // guards members against register goroutines
	t       *testing.T
	shards  uint32
	members []*member
	boot    []*pb.Member
}

func testTiming() Timing {
	return Timing{Heartbeat: 150 * time.Millisecond, Election: 150 * time.Millisecond, LeaderLease: 100 * time.Millisecond}
}

// newHarness starts n members that create a cluster together.
func newHarness(t *testing.T, n int, shards uint32) *harness {
	t.Helper()
	h := &harness{t: t, shards: shards}
	muxes := make([]*Mux, n)
	for i := range n {
		m, err := Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		muxes[i] = m
		id := "n" + strconv.Itoa(i+1)
		site := []string{"east", "west"}[i%2]
		h.add(&member{id: id, site: site, addr: m.Addr(), dir: t.TempDir()})
		h.boot = append(h.boot, &pb.Member{Id: id, Site: site, RaftAddr: m.Addr()})
	}
	for i, m := range h.members {
		h.start(m, muxes[i], h.boot)
	}
	t.Cleanup(h.close)
	return h
}

func (h *harness) start(m *member, mux *Mux, boot []*pb.Member) {
	h.t.Helper()
	c, err := Start(Config{
		Self:      &pb.Member{Id: m.id, Site: m.site, RaftAddr: m.addr},
		Dir:       m.dir,
		Shards:    h.shards,
		Bootstrap: boot,
		Routing:   &pb.RoutingConfig{},
		Timing:    testTiming(),
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("member", m.id),
		Mux:       mux,
		// As the node does over NATS: the meta leader writes the record.
		ReportOwner: func(o *pb.ShardOwner) { h.reportOwner(o) },
	})
	if err != nil {
		h.t.Fatalf("start %s: %v", m.id, err)
	}
	m.mu.Lock()
	m.c, m.owner, m.alive = c, newOwner(), true
	m.mu.Unlock()
	go h.register(m, c)
	c.Run(func(st *shard.State) func([]*pb.Command) []*shard.Result {
		return func(cmds []*pb.Command) []*shard.Result {
			vals := st.ApplyBatch(cmds, nil)
			out := make([]*shard.Result, len(vals))
			for i := range vals {
				out[i] = &vals[i]
			}
			return out
		}
	}, m.owner, nil)
}

// reportOwner hands an owner record to the meta leader, retrying while one
// is elected (for up to 10s).
func (h *harness) reportOwner(o *pb.ShardOwner) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		others := slices.Clone(h.members)
		h.mu.Unlock()
		for _, m := range others {
			if c := m.cluster(); c != nil && c.IsMetaLeader() && c.RecordOwner(o) == nil {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// register asks the meta leader to admit m until it is, as a node does over
// NATS.
func (h *harness) register(m *member, c *Cluster) {
	for c.NeedsJoin() {
		select {
		case <-c.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		h.mu.Lock()
		others := slices.Clone(h.members)
		h.mu.Unlock()
		for _, o := range others {
			if oc := o.cluster(); oc != nil && oc.IsMetaLeader() {
				_ = oc.Join(c.Self())
			}
		}
	}
}

func (h *harness) close() {
	for _, m := range h.members {
		if c := m.cluster(); c != nil {
			m.mu.Lock()
			m.alive = false
			m.mu.Unlock()
			_ = c.Close()
		}
	}
}

// kill stops a member abruptly: no hand-over.
func (h *harness) kill(m *member) {
	m.c.Mux().Isolate()
	m.mu.Lock()
	m.alive = false
	m.mu.Unlock()
	_ = m.c.Close()
}

func (m *member) cluster() *Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.alive {
		return nil
	}
	return m.c
}

// replicaHas reports whether m's replica of shard s has applied contact id.
func (m *member) replicaHas(s uint32, id string) bool {
	m.c.mu.Lock()
	sg := m.c.shards[s]
	m.c.mu.Unlock()
	if sg == nil {
		return false
	}
	_, ok := sg.state.Contact(id)
	return ok
}

func (h *harness) add(m *member) {
	h.mu.Lock()
	h.members = append(h.members, m)
	h.mu.Unlock()
}

// restart starts a killed member again from its disk.
func (h *harness) restart(m *member) {
	h.t.Helper()
	mux, err := Listen(m.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.start(m, mux, nil)
}

// isolate cuts m off from every other member, both ways.
func (h *harness) isolate(m *member) {
	m.c.Mux().Isolate()
	for _, o := range h.members {
		if o != m && o.alive {
			o.c.Mux().Isolate(m.addr)
		}
	}
}

func (h *harness) heal() {
	for _, m := range h.members {
		if m.alive {
			m.c.Mux().Heal()
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func (h *harness) waitFor(what string, d time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// owners returns, per shard, the live members owning it.
func (h *harness) owners() map[uint32][]*member {
	out := make(map[uint32][]*member)
	for _, m := range h.members {
		if !m.alive {
			continue
		}
		for s := range h.shards {
			if _, ok := m.owner.get(s); ok {
				out[s] = append(out[s], m)
			}
		}
	}
	return out
}

// waitOwned waits until every shard has exactly one live owner, and returns
// them.
func (h *harness) waitOwned(d time.Duration) map[uint32]*member {
	h.t.Helper()
	var got map[uint32]*member
	h.waitFor("every shard to have one owner", d, func() bool {
		all := h.owners()
		got = make(map[uint32]*member)
		for s := range h.shards {
			if len(all[s]) != 1 {
				return false
			}
			got[s] = all[s][0]
		}
		return true
	})
	return got
}

// commit proposes cmd through shard s's owner and waits for the result,
// retrying while ownership moves, as a carrier retries an UNAVAILABLE reply.
func (h *harness) commit(s uint32, cmd *pb.Command) (*shard.Result, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range h.members {
			if !m.alive {
				continue
			}
			if own, ok := m.owner.get(s); ok {
				r := proposeWait(own.log, cmd)
				if shard.CodeOf(r.Err) != pb.ErrorCode_ERROR_CODE_UNAVAILABLE {
					return r, nil
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, fmt.Errorf("no owner of shard %d committed within 10s", s)
}

func proposeWait(l *RaftLog, cmd *pb.Command) *shard.Result {
	ch := make(chan *shard.Result, 1)
	l.Propose(cmd, func(r *shard.Result) { ch <- r })
	return <-ch
}

func arriveCmd(s uint32, id string) *pb.Command {
	return &pb.Command{Version: shard.CommandVersion, At: time.Now().UnixNano(), Shard: s, Kind: &pb.Command_ContactArrive{ContactArrive: &pb.ContactArrive{
		ContactId: id, Queue: "sales", Channel: pb.Channel_CHANNEL_VOICE, ArrivedAt: time.Now().UnixNano(),
	}}}
}

func dirHasFiles(t *testing.T, dir string) bool {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "meta"))
	return err == nil && len(entries) > 0
}
