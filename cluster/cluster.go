package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
)

// Owner hosts the shards this node leads: the routing engine.
type Owner interface {
	// Prepare is called when this member became the shard's leader in
	// term, before it has caught up; Acquire or Release follows.
	Prepare(shard uint32, term uint64)
	// Acquire makes this node the shard's owner under term: state is the
	// replicated state (up to date with every committed command) and log
	// commits new commands.
	Acquire(shard uint32, term uint64, state *shard.State, log *RaftLog)
	// Release stops hosting the shard.
	Release(shard uint32)
}

// Config configures a Cluster member.
type Config struct {
	// Self describes this member: id, site and the addresses others reach
	// it at. Self.RaftAddr is also where it listens (port 0 picks one).
	Self *pb.Member
	// Dir holds the Raft logs and snapshots.
	Dir string
	// Shards is the fixed number of shards, chosen when the cluster is
	// created.
	Shards uint32
	// Replicas is how many members hold each shard (default 3).
	Replicas int
	// Bootstrap lists the initial members (Self among them) when the
	// cluster is created; they must all be given the same list. Empty: this
	// member joins an existing cluster, or restarts from its disk.
	Bootstrap []*pb.Member
	// Routing is proposed as the cluster's routing configuration when the
	// cluster has none yet.
	Routing *pb.RoutingConfig
	Timing  Timing
	Logger  *slog.Logger
	// Mux is a listener already open (tests); nil opens Self.RaftAddr.
	Mux *Mux
	// ReportOwner passes the owner record of a shard this member has just
	// acquired to the meta leader when that is another member (the node
	// sends it over NATS, to be applied with RecordOwner). Nil: a record is
	// written only when the owner also leads the meta group.
	ReportOwner func(*pb.ShardOwner)
}

// Errors of the Cluster API.
var (
	ErrNotLeader    = errors.New("cluster: this member does not lead the meta group")
	ErrInvalidInput = errors.New("cluster: invalid input")
)

// Cluster is this node's membership in the cluster: the meta group, the
// shard groups it holds a replica of, and the reconciler that keeps them
// where the placement says.
type Cluster struct {
	cfg  Config
	log  *slog.Logger
	mux  *Mux
	meta *group
	mfsm *metaFSM
	// created: this member bootstrapped the meta group in this process, so
	// it also bootstraps the shard groups (never on a restart from disk).
	created bool

	mu     sync.Mutex
	owner  Owner
	apply  func(*shard.State) func([]*pb.Command) []*shard.Result
	shards map[uint32]*shardGroup
	// observe is told the term of every shard leadership seen, for fencing.
	observe func(shardID uint32, term uint64)

	kick    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	stopped bool
}

// shardGroup is this member's replica of one shard.
type shardGroup struct {
	id    uint32
	g     *group
	state *shard.State
	done  chan struct{}
	// nextTransfer and nextDrainTransfer hold back leadership transfers
	// after one was tried (reconciler only).
	nextTransfer      time.Time
	nextDrainTransfer time.Time

	mu     sync.Mutex
	closed bool
	// Set while this member owns the shard.
	log  *RaftLog
	term uint64
}

// Start opens the listener and the meta group, bootstrapping it when the
// cluster is being created.
func Start(cfg Config) (*Cluster, error) {
	if cfg.Self == nil || cfg.Self.GetId() == "" {
		return nil, fmt.Errorf("%w: Self.Id is empty", ErrInvalidInput)
	}
	if cfg.Shards == 0 {
		return nil, fmt.Errorf("%w: Shards is 0; allowed 1 or more", ErrInvalidInput)
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 3
	}
	if cfg.Timing == (Timing{}) {
		cfg.Timing = DefaultTiming()
	}
	if err := cfg.Timing.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mux := cfg.Mux
	if mux == nil {
		var err error
		if mux, err = Listen(cfg.Self.GetRaftAddr()); err != nil {
			return nil, err
		}
	}
	self := proto.Clone(cfg.Self).(*pb.Member)
	self.RaftAddr = mux.Addr()
	cfg.Self = self
	c := &Cluster{
		cfg:    cfg,
		log:    cfg.Logger,
		mux:    mux,
		mfsm:   newMetaFSM(),
		shards: make(map[uint32]*shardGroup),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	var err error
	c.meta, err = openGroup(c.groupConfig("meta"), c.mfsm)
	if err != nil {
		_ = mux.Close()
		return nil, err
	}
	if len(cfg.Bootstrap) > 0 && !c.meta.hasState() {
		if err := c.meta.bootstrap(voters(cfg.Bootstrap, self)); err != nil {
			_ = c.meta.close(false)
			_ = mux.Close()
			return nil, err
		}
		c.created = true
	}
	c.wg.Add(1)
	go c.runMeta()
	return c, nil
}

func voters(members []*pb.Member, self *pb.Member) []raft.Server {
	out := make([]raft.Server, 0, len(members))
	for _, m := range members {
		addr := m.GetRaftAddr()
		if m.GetId() == self.GetId() {
			addr = self.GetRaftAddr()
		}
		out = append(out, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.GetId()), Address: raft.ServerAddress(addr)})
	}
	return out
}

func (c *Cluster) groupConfig(name string) groupConfig {
	return groupConfig{
		name:          name,
		nodeID:        c.cfg.Self.GetId(),
		dir:           filepath.Join(c.cfg.Dir, name),
		mux:           c.mux,
		timing:        c.cfg.Timing,
		log:           c.log,
		trailing:      10240,
		snapshotEvery: 65536,
	}
}

// Self returns this member as the cluster knows it (with its actual Raft
// address).
func (c *Cluster) Self() *pb.Member { return proto.Clone(c.cfg.Self).(*pb.Member) }

// Mux is the shared Raft listener (tests cut members off through it).
func (c *Cluster) Mux() *Mux { return c.mux }

// WaitRouting waits until the cluster has a routing configuration (and this
// member is among its members) and returns it.
func (c *Cluster) WaitRouting(ctx context.Context) (*pb.RoutingConfig, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		_, rc := c.mfsm.view()
		if _, joined := c.mfsm.member(c.cfg.Self.GetId()); rc != nil && joined {
			return rc, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: no routing configuration from the meta group: %w (is the member bootstrapped or joined?)", ctx.Err())
		case <-t.C:
		}
	}
}

// Run starts holding shards: apply makes a shard's apply function (the
// routing engine's), owner hosts the shards this member leads, observe
// (optional) learns every shard term seen.
func (c *Cluster) Run(apply func(*shard.State) func([]*pb.Command) []*shard.Result, owner Owner, observe func(uint32, uint64)) {
	c.mu.Lock()
	c.apply, c.owner, c.observe = apply, owner, observe
	c.mu.Unlock()
	c.wg.Add(1)
	go c.reconcile()
}

// runMeta keeps the meta group's side of things: its leader writes the
// bootstrap members, the routing configuration and voters for new members.
func (c *Cluster) runMeta() {
	defer c.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.mfsm.changed:
			c.poke()
			c.observeOwners()
		case <-c.meta.notify:
		case <-t.C:
		}
		if c.meta.raft.State() != raft.Leader {
			continue
		}
		c.leadMeta()
	}
}

// observeOwners passes the meta group's owner records on. Owners also tell
// every member themselves once they have acquired a shard (the node does,
// by actor message); a replica's own view of its leader is not used, since
// it can learn of a new leader before that leader hosts the shard.
func (c *Cluster) observeOwners() {
	c.mu.Lock()
	observe := c.observe
	c.mu.Unlock()
	if observe == nil {
		return
	}
	for s := range c.cfg.Shards {
		if o, ok := c.mfsm.owner(s); ok {
			observe(s, o.GetTerm())
		}
	}
}

func (c *Cluster) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Cluster) leadMeta() {
	members, rc := c.mfsm.view()
	if c.NeedsJoin() {
		if err := c.applyMeta(&pb.MetaCommand{Kind: &pb.MetaCommand_Join{Join: c.Self()}}); err != nil {
			return
		}
	}
	if rc == nil && c.cfg.Routing != nil {
		if err := c.applyMeta(&pb.MetaCommand{Kind: &pb.MetaCommand_Routing{Routing: c.cfg.Routing}}); err != nil {
			return
		}
	}
	servers, err := c.meta.servers()
	if err != nil {
		return
	}
	in := make(map[string]bool, len(servers))
	for _, s := range servers {
		in[string(s.ID)] = true
	}
	for _, m := range members {
		switch {
		case m.GetState() == pb.MemberState_MEMBER_STATE_LEFT && in[m.GetId()] && m.GetId() != c.cfg.Self.GetId():
			_ = c.meta.raft.RemoveServer(raft.ServerID(m.GetId()), 0, time.Second).Error()
		case m.GetState() != pb.MemberState_MEMBER_STATE_LEFT && in[m.GetId()]:
			// A member that came back on another address registered it;
			// adding it again with the same suffrage moves it there.
			for _, sv := range servers {
				if string(sv.ID) != m.GetId() || string(sv.Address) == m.GetRaftAddr() || m.GetRaftAddr() == "" {
					continue
				}
				var f raft.IndexFuture
				if sv.Suffrage == raft.Voter {
					f = c.meta.raft.AddVoter(sv.ID, raft.ServerAddress(m.GetRaftAddr()), 0, time.Second)
				} else {
					f = c.meta.raft.AddNonvoter(sv.ID, raft.ServerAddress(m.GetRaftAddr()), 0, time.Second)
				}
				if err := f.Error(); err != nil {
					c.log.Warn("could not move member to its new address in the meta group", "member", m.GetId(), "err", err)
				}
			}
		case m.GetState() != pb.MemberState_MEMBER_STATE_LEFT && !in[m.GetId()]:
			// Five voters keep the meta group available through two failures;
			// more would only slow its commits.
			var f raft.IndexFuture
			if len(servers) >= 5 {
				f = c.meta.raft.AddNonvoter(raft.ServerID(m.GetId()), raft.ServerAddress(m.GetRaftAddr()), 0, time.Second)
			} else {
				f = c.meta.raft.AddVoter(raft.ServerID(m.GetId()), raft.ServerAddress(m.GetRaftAddr()), 0, time.Second)
			}
			if err := f.Error(); err != nil {
				c.log.Warn("could not add member to the meta group", "member", m.GetId(), "err", err)
			}
		}
	}
}

// applyMeta commits a meta command; only the meta leader can.
func (c *Cluster) applyMeta(cmd *pb.MetaCommand) error {
	cmd.Version = MetaVersion
	data, err := proto.Marshal(cmd)
	if err != nil {
		return err
	}
	f := c.meta.raft.Apply(data, 2*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return ErrNotLeader
		}
		return err
	}
	if err, ok := f.Response().(error); ok {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return nil
}

// NeedsJoin reports whether the meta group does not know this member as it
// is (new, or restarted with other addresses). Members register themselves:
// the meta leader directly, the others by asking it (Join on the leader).
func (c *Cluster) NeedsJoin() bool {
	m, ok := c.mfsm.member(c.cfg.Self.GetId())
	if !ok {
		return true
	}
	self := c.cfg.Self
	return m.GetSite() != self.GetSite() || m.GetRaftAddr() != self.GetRaftAddr() ||
		m.GetRemoteAddr() != self.GetRemoteAddr() || m.GetHttpAddr() != self.GetHttpAddr()
}

// IsMetaLeader reports whether this member leads the meta group (and so
// takes Join, Drain and Leave).
func (c *Cluster) IsMetaLeader() bool { return c.meta.raft.State() == raft.Leader }

// MetaLeader returns the member leading the meta group, if one is known.
func (c *Cluster) MetaLeader() (*pb.Member, bool) {
	_, id := c.meta.raft.LeaderWithID()
	if id == "" {
		return nil, false
	}
	return c.mfsm.member(string(id))
}

// Join admits a member (on the meta leader).
func (c *Cluster) Join(m *pb.Member) error {
	if m.GetId() == "" || m.GetRaftAddr() == "" {
		return fmt.Errorf("%w: a member needs an id and a raft address", ErrInvalidInput)
	}
	if old, ok := c.mfsm.member(m.GetId()); ok && old.GetState() == pb.MemberState_MEMBER_STATE_LEFT {
		return fmt.Errorf("%w: member %q left the cluster; a new member needs a new id", ErrInvalidInput, m.GetId())
	}
	return c.applyMeta(&pb.MetaCommand{Kind: &pb.MetaCommand_Join{Join: m}})
}

// Drain marks a member draining (or active again): it hands the shards it
// owns to other replicas.
func (c *Cluster) Drain(id string, draining bool) error {
	return c.applyMeta(&pb.MetaCommand{Kind: &pb.MetaCommand_Drain{Drain: &pb.MemberDrain{Id: id, Draining: draining}}})
}

// RecordOwner writes a shard's owner record (on the meta leader). Records
// of an older term than the one kept change nothing.
func (c *Cluster) RecordOwner(o *pb.ShardOwner) error {
	switch {
	case o.GetShard() >= c.cfg.Shards:
		return fmt.Errorf("%w: shard %d; the cluster has shards 0 to %d", ErrInvalidInput, o.GetShard(), c.cfg.Shards-1)
	case o.GetTerm() == 0:
		return fmt.Errorf("%w: owner record of shard %d has term 0", ErrInvalidInput, o.GetShard())
	}
	if m, ok := c.mfsm.member(o.GetMember()); !ok || m.GetState() == pb.MemberState_MEMBER_STATE_LEFT {
		return fmt.Errorf("%w: owner %q of shard %d is not a member", ErrInvalidInput, o.GetMember(), o.GetShard())
	}
	return c.applyMeta(&pb.MetaCommand{Kind: &pb.MetaCommand_Owner{Owner: o}})
}

// Leave removes a member for good: its replicas move to others.
func (c *Cluster) Leave(id string) error {
	return c.applyMeta(&pb.MetaCommand{Kind: &pb.MetaCommand_Leave{Leave: &pb.MemberLeave{Id: id}}})
}

// ShardInfo is one shard as this member sees it.
type ShardInfo struct {
	Shard     uint32   `json:"shard"`
	Placement []string `json:"placement"`
	Owner     string   `json:"owner"`
	Term      uint64   `json:"term"`
	Replica   bool     `json:"replica"`
	// Applied is the replica's last applied log index (0 without one).
	Applied uint64 `json:"applied"`
}

// Status is what `tsunagu status` shows: members and who owns what.
type Status struct {
	Self       string       `json:"self"`
	MetaLeader string       `json:"meta_leader"`
	Members    []*pb.Member `json:"-"`
	Shards     []ShardInfo  `json:"shards"`
}

// Status reports members, placement and owners.
func (c *Cluster) Status() Status {
	members, _ := c.mfsm.view()
	place := Placement(members, c.cfg.Shards, c.cfg.Replicas)
	_, leader := c.meta.raft.LeaderWithID()
	st := Status{Self: c.cfg.Self.GetId(), MetaLeader: string(leader), Members: members}
	for s := range c.cfg.Shards {
		info := ShardInfo{Shard: s, Placement: place[s]}
		if id, term, ok := c.Owner(s); ok {
			info.Owner, info.Term = id, term
		}
		c.mu.Lock()
		sg, ok := c.shards[s]
		c.mu.Unlock()
		if ok {
			info.Replica, info.Applied = true, sg.g.raft.AppliedIndex()
		}
		st.Shards = append(st.Shards, info)
	}
	return st
}

// Owner returns the member owning shardID and its term, as far as this
// member knows: the leader of its own replica, or else the meta group's
// record.
func (c *Cluster) Owner(shardID uint32) (member string, term uint64, ok bool) {
	c.mu.Lock()
	sg := c.shards[shardID]
	c.mu.Unlock()
	if sg != nil {
		if _, id := sg.g.raft.LeaderWithID(); id != "" {
			return string(id), sg.g.raft.CurrentTerm(), true
		}
	}
	if o, found := c.mfsm.owner(shardID); found {
		return o.GetMember(), o.GetTerm(), true
	}
	return "", 0, false
}

// Member returns a member by id.
func (c *Cluster) Member(id string) (*pb.Member, bool) { return c.mfsm.member(id) }

// Owned lists the shards this member owns now.
func (c *Cluster) Owned() []uint32 {
	// Never hold c.mu while taking a shard's lock: acquire holds the shard's
	// while the owner calls back into the cluster.
	c.mu.Lock()
	groups := make([]*shardGroup, 0, len(c.shards))
	for _, sg := range c.shards {
		groups = append(groups, sg)
	}
	c.mu.Unlock()
	var out []uint32
	for _, sg := range groups {
		sg.mu.Lock()
		if sg.log != nil {
			out = append(out, sg.id)
		}
		sg.mu.Unlock()
	}
	slices.Sort(out)
	return out
}

// Members returns the members the meta group knows, by id.
func (c *Cluster) Members() []*pb.Member {
	members, _ := c.mfsm.view()
	return members
}

// reconcile keeps this member's replicas and the groups it leads where the
// placement says, every tick and after every meta change.
func (c *Cluster) reconcile() {
	defer c.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		c.reconcileOnce()
		select {
		case <-c.stop:
			return
		case <-c.kick:
		case <-t.C:
		}
	}
}

func (c *Cluster) reconcileOnce() {
	members, _ := c.mfsm.view()
	byID := make(map[string]*pb.Member, len(members))
	for _, m := range members {
		byID[m.GetId()] = m
	}
	if _, ok := byID[c.cfg.Self.GetId()]; !ok {
		return // not admitted yet
	}
	place := Placement(members, c.cfg.Shards, c.cfg.Replicas)
	var initial [][]string
	if c.created {
		initial = Placement(c.cfg.Bootstrap, c.cfg.Shards, c.cfg.Replicas)
	}
	self := c.cfg.Self.GetId()
	for s := range c.cfg.Shards {
		c.mu.Lock()
		sg := c.shards[s]
		c.mu.Unlock()
		placed := slices.Contains(place[s], self)
		if sg == nil {
			if !placed {
				continue
			}
			var err error
			if sg, err = c.openShard(s); err != nil {
				c.log.Error("could not open shard replica", "shard", s, "err", err)
				continue
			}
			if initial != nil && slices.Contains(initial[s], self) {
				var servers []raft.Server
				for _, id := range initial[s] {
					for _, v := range voters(c.cfg.Bootstrap, c.cfg.Self) {
						if string(v.ID) == id {
							servers = append(servers, v)
						}
					}
				}
				if err := sg.g.bootstrap(servers); err != nil {
					c.log.Error("could not bootstrap shard", "shard", s, "err", err)
				}
			}
		}
		if sg.g.raft.State() == raft.Leader {
			c.leadShard(sg, place[s], byID)
			continue
		}
		if !placed {
			// Wait until the leader has taken this replica out of the group.
			servers, err := sg.g.servers()
			if err == nil && !slices.ContainsFunc(servers, func(sv raft.Server) bool { return string(sv.ID) == self }) {
				c.closeShard(sg, true)
			}
		}
	}
}

// leadShard brings a group this member leads to its placement: voters
// added, removed replicas dropped, ownership handed to the preferred member.
func (c *Cluster) leadShard(sg *shardGroup, place []string, byID map[string]*pb.Member) {
	self := c.cfg.Self.GetId()
	servers, err := sg.g.servers()
	if err != nil {
		return
	}
	in := make(map[string]bool, len(servers))
	for _, s := range servers {
		in[string(s.ID)] = true
	}
	complete := true
	for _, id := range place {
		if in[id] {
			continue
		}
		complete = false
		m := byID[id]
		if err := sg.g.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(m.GetRaftAddr()), 0, time.Second).Error(); err != nil {
			c.log.Warn("could not add replica", "shard", sg.id, "member", id, "err", err)
			return
		}
	}
	if !complete {
		return
	}
	for _, s := range servers {
		// A replica that came back on another address: move it there.
		if m := byID[string(s.ID)]; m != nil && m.GetRaftAddr() != "" && string(s.Address) != m.GetRaftAddr() && slices.Contains(place, string(s.ID)) {
			if err := sg.g.raft.AddVoter(s.ID, raft.ServerAddress(m.GetRaftAddr()), 0, time.Second).Error(); err != nil {
				c.log.Warn("could not move replica to its new address", "shard", sg.id, "member", s.ID, "err", err)
				return
			}
		}
	}
	for _, s := range servers {
		id := string(s.ID)
		if id != self && !slices.Contains(place, id) {
			if err := sg.g.raft.RemoveServer(s.ID, 0, time.Second).Error(); err != nil {
				c.log.Warn("could not remove replica", "shard", sg.id, "member", id, "err", err)
				return
			}
		}
	}
	if len(place) == 0 || place[0] == self {
		return
	}
	me := byID[self]
	to := byID[place[0]]
	if to == nil || to.GetState() != pb.MemberState_MEMBER_STATE_ACTIVE {
		return
	}
	// Hand over when this member should not own the shard: it is draining or
	// not placed, or the preferred owner is a healthy voter. Transfers are
	// spaced so an unreachable preferred owner cannot make ownership thrash;
	// a draining member retries sooner, on its own schedule.
	now := time.Now()
	if me.GetState() == pb.MemberState_MEMBER_STATE_DRAINING {
		if now.Before(sg.nextDrainTransfer) {
			return
		}
		sg.nextDrainTransfer = now.Add(500 * time.Millisecond)
	} else {
		if now.Before(sg.nextTransfer) {
			return
		}
		sg.nextTransfer = now.Add(5 * time.Second)
	}
	if me.GetState() != pb.MemberState_MEMBER_STATE_DRAINING &&
		(c.mux.Unreachable(to.GetRaftAddr(), 10*time.Second) || sg.g.silence.silent(raft.ServerID(to.GetId()), 10*time.Second)) {
		// A transfer to a member that is down or stopped (yet still active
		// in the meta group) would stall this shard's proposals for an
		// election timeout, every time it is tried.
		return
	}
	var f raft.Future
	if me.GetState() == pb.MemberState_MEMBER_STATE_DRAINING {
		// Leaving: to whichever replica is most caught up, the quickest
		// hand-over; the preferred owner gets it later by its own transfer.
		f = sg.g.raft.LeadershipTransfer()
	} else {
		f = sg.g.raft.LeadershipTransferToServer(raft.ServerID(to.GetId()), raft.ServerAddress(to.GetRaftAddr()))
	}
	c.log.Info("handing shard ownership over", "shard", sg.id, "preferred", to.GetId())
	if err := f.Error(); err != nil {
		c.log.Warn("leadership transfer failed", "shard", sg.id, "err", err)
	}
}

func (c *Cluster) openShard(id uint32) (*shardGroup, error) {
	c.mu.Lock()
	apply := c.apply
	c.mu.Unlock()
	st := shard.New(id, 0)
	fsm := &shardFSM{state: st, apply: apply(st)}
	g, err := openGroup(c.groupConfig("shard-"+strconv.FormatUint(uint64(id), 10)), fsm)
	if err != nil {
		return nil, err
	}
	sg := &shardGroup{id: id, g: g, state: st, done: make(chan struct{})}
	c.mu.Lock()
	c.shards[id] = sg
	c.mu.Unlock()
	c.wg.Add(1)
	go c.watchLeadership(sg)
	return sg, nil
}

func (c *Cluster) closeShard(sg *shardGroup, remove bool) {
	c.mu.Lock()
	delete(c.shards, sg.id)
	c.mu.Unlock()
	close(sg.done)
	sg.mu.Lock()
	sg.closed = true
	sg.mu.Unlock()
	c.release(sg)
	// raft.Shutdown can hang (a known hashicorp/raft pipeline-replication
	// deadlock); the reconciler must not hang with it.
	closed := make(chan error, 1)
	go func() { closed <- sg.g.close(remove) }()
	select {
	case err := <-closed:
		if err != nil {
			c.log.Warn("shard replica closed with an error", "shard", sg.id, "err", err)
		}
		c.log.Info("shard replica dropped", "shard", sg.id, "removed", remove)
	case <-time.After(10 * time.Second):
		c.log.Error("shard replica did not shut down within 10s; left behind", "shard", sg.id)
	}
}

// watchLeadership acquires the shard when this member becomes its leader and
// releases it when it stops being one.
//
// An acquisition that failed (its barrier timed out, or the term moved while
// it waited) is tried again while this member still leads the group: a
// leader that does not own its shard would leave the shard unserved.
func (c *Cluster) watchLeadership(sg *shardGroup) {
	defer c.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	// unowned is the term in which the last tick found this member leading
	// without owning: only a second tick in the same term acts, so a
	// leadership notification on its way is not raced.
	var unowned uint64
	for {
		select {
		case <-sg.done:
			return
		case <-c.stop:
			return
		case leader := <-sg.g.notify:
			if leader {
				c.acquire(sg)
			} else {
				c.release(sg)
			}
			c.poke()
		case <-t.C:
			sg.mu.Lock()
			owned := sg.log != nil
			sg.mu.Unlock()
			term := sg.g.raft.CurrentTerm()
			switch {
			case owned || sg.g.raft.State() != raft.Leader:
				unowned = 0
			case unowned != term:
				unowned = term
			default:
				c.log.Warn("leading a shard without owning it; acquiring it again", "shard", sg.id, "term", term)
				unowned = 0
				c.acquire(sg)
				c.poke()
			}
		}
	}
}

// acquire runs when this member became the shard's leader. The term read
// before and after a barrier is the term it leads in: the barrier commits
// only under its own leadership, so every command of earlier owners is
// applied, and an unchanged term means no one else led in between.
func (c *Cluster) acquire(sg *shardGroup) {
	r := sg.g.raft
	term := r.CurrentTerm()
	c.mu.Lock()
	owner, observe := c.owner, c.observe
	c.mu.Unlock()
	c.release(sg)
	owner.Prepare(sg.id, term)
	if err := r.Barrier(5 * time.Second).Error(); err != nil {
		c.log.Warn("shard barrier failed; not owning it", "shard", sg.id, "err", err)
		owner.Release(sg.id)
		return
	}
	if r.State() != raft.Leader || r.CurrentTerm() != term {
		c.log.Info("shard leadership moved during acquisition; not owning it", "shard", sg.id, "term", term)
		owner.Release(sg.id)
		return
	}
	sg.mu.Lock()
	if sg.closed {
		sg.mu.Unlock()
		return
	}
	sg.log = newRaftLog(r, sg.id)
	sg.term = term
	if observe != nil {
		observe(sg.id, term)
	}
	owner.Acquire(sg.id, term, sg.state, sg.log)
	sg.mu.Unlock()
	c.log.Info("owning shard", "shard", sg.id, "term", term)
	go func() {
		// Members without a replica learn the owner from the meta group.
		o := &pb.ShardOwner{Shard: sg.id, Term: term, Member: c.cfg.Self.GetId()}
		if c.meta.raft.State() == raft.Leader {
			if err := c.RecordOwner(o); err == nil || c.cfg.ReportOwner == nil {
				return
			}
		}
		if c.cfg.ReportOwner != nil {
			c.cfg.ReportOwner(o)
		}
	}()
}

func (c *Cluster) release(sg *shardGroup) {
	c.mu.Lock()
	owner := c.owner
	c.mu.Unlock()
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if sg.log == nil {
		return
	}
	owner.Release(sg.id)
	sg.log.Close()
	sg.log = nil
	c.log.Info("shard released", "shard", sg.id, "term", sg.term)
}

// HandOverShards starts a leadership transfer of every shard this member
// leads, to the most caught-up replica, without waiting. A drain of this
// member calls it as soon as the meta leader has committed the drain: this
// member's own replica of the meta group learns of the commit only with the
// leader's next append (up to twice the commit timeout later), and its
// reconciler would start the transfers only then.
func (c *Cluster) HandOverShards() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sg := range c.shards {
		if sg.g.raft.State() == raft.Leader {
			f := sg.g.raft.LeadershipTransfer()
			go func() {
				if err := f.Error(); err != nil {
					c.log.Info("leadership transfer not done; the reconciler retries", "shard", sg.id, "err", err)
				}
			}()
		}
	}
}

// HandOver transfers the leadership of every shard this member owns to
// another replica and waits (up to ctx) until it owns none: a planned stop.
func (c *Cluster) HandOver(ctx context.Context) error {
	for {
		c.mu.Lock()
		var leading []*shardGroup
		for _, sg := range c.shards {
			if sg.g.raft.State() == raft.Leader {
				leading = append(leading, sg)
			}
		}
		c.mu.Unlock()
		if c.meta.raft.State() == raft.Leader {
			leading = append(leading, &shardGroup{g: c.meta})
		}
		if len(leading) == 0 {
			return nil
		}
		var wg sync.WaitGroup
		for _, sg := range leading {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = sg.g.raft.LeadershipTransfer().Error()
			}()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: still owning shards after the hand-over deadline: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops every group, keeping their files.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
	c.mu.Lock()
	groups := make([]*shardGroup, 0, len(c.shards))
	for _, sg := range c.shards {
		groups = append(groups, sg)
	}
	c.mu.Unlock()
	for _, sg := range groups {
		c.closeShard(sg, false)
	}
	err := c.meta.close(false)
	if merr := c.mux.Close(); err == nil {
		err = merr
	}
	return err
}
