package cluster

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strconv"
	"sync"

	"github.com/hashicorp/raft"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
)

// MetaVersion is the MetaCommand schema version this node applies.
const MetaVersion = 1

// metaFSM is the meta group's state machine: members, the routing
// configuration, and the last known owner of every shard.
type metaFSM struct {
	mu      sync.RWMutex
	members map[string]*pb.Member
	routing *pb.RoutingConfig
	owners  map[uint32]*pb.ShardOwner
	// changed is signalled (without blocking) after every applied change.
	changed chan struct{}
}

func newMetaFSM() *metaFSM {
	return &metaFSM{members: make(map[string]*pb.Member), owners: make(map[uint32]*pb.ShardOwner), changed: make(chan struct{}, 1)}
}

func (f *metaFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var cmd pb.MetaCommand
	if err := proto.Unmarshal(l.Data, &cmd); err != nil {
		return fmt.Errorf("cluster: meta entry %d is not a MetaCommand: %w", l.Index, err)
	}
	err := f.apply(&cmd)
	select {
	case f.changed <- struct{}{}:
	default:
	}
	return err
}

func (f *metaFSM) apply(cmd *pb.MetaCommand) error {
	if cmd.GetVersion() != MetaVersion {
		return fmt.Errorf("cluster: meta command version %d; this node applies version %d", cmd.GetVersion(), MetaVersion)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch k := cmd.GetKind().(type) {
	case *pb.MetaCommand_Join:
		m := proto.Clone(k.Join).(*pb.Member)
		if old, ok := f.members[m.GetId()]; ok && old.GetState() == pb.MemberState_MEMBER_STATE_DRAINING {
			// A draining member that restarts keeps draining until told.
			m.State = old.GetState()
		} else {
			m.State = pb.MemberState_MEMBER_STATE_ACTIVE
		}
		f.members[m.GetId()] = m
	case *pb.MetaCommand_Drain:
		m, ok := f.members[k.Drain.GetId()]
		if !ok {
			return fmt.Errorf("cluster: unknown member %q", k.Drain.GetId())
		}
		if m.GetState() == pb.MemberState_MEMBER_STATE_LEFT {
			return fmt.Errorf("cluster: member %q has left", m.GetId())
		}
		m.State = pb.MemberState_MEMBER_STATE_ACTIVE
		if k.Drain.GetDraining() {
			m.State = pb.MemberState_MEMBER_STATE_DRAINING
		}
	case *pb.MetaCommand_Leave:
		m, ok := f.members[k.Leave.GetId()]
		if !ok {
			return fmt.Errorf("cluster: unknown member %q", k.Leave.GetId())
		}
		m.State = pb.MemberState_MEMBER_STATE_LEFT
	case *pb.MetaCommand_Routing:
		f.routing = k.Routing
	case *pb.MetaCommand_Owner:
		if old, ok := f.owners[k.Owner.GetShard()]; !ok || old.GetTerm() <= k.Owner.GetTerm() {
			f.owners[k.Owner.GetShard()] = k.Owner
		}
	default:
		return fmt.Errorf("cluster: meta command of no known kind")
	}
	return nil
}

// view returns copies of the members (by id) and the routing config.
func (f *metaFSM) view() ([]*pb.Member, *pb.RoutingConfig) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*pb.Member, 0, len(f.members))
	for _, m := range f.members {
		out = append(out, proto.Clone(m).(*pb.Member))
	}
	slices.SortFunc(out, func(a, b *pb.Member) int { return cmp.Compare(a.GetId(), b.GetId()) })
	return out, f.routing
}

func (f *metaFSM) member(id string) (*pb.Member, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.members[id]
	if !ok {
		return nil, false
	}
	return proto.Clone(m).(*pb.Member), true
}

func (f *metaFSM) owner(shardID uint32) (*pb.ShardOwner, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	o, ok := f.owners[shardID]
	return o, ok
}

func (f *metaFSM) snapshotState() *pb.MetaState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := &pb.MetaState{Routing: f.routing}
	for _, m := range f.members {
		st.Members = append(st.Members, proto.Clone(m).(*pb.Member))
	}
	slices.SortFunc(st.Members, func(a, b *pb.Member) int { return cmp.Compare(a.GetId(), b.GetId()) })
	for _, o := range f.owners {
		st.Owners = append(st.Owners, o)
	}
	slices.SortFunc(st.Owners, func(a, b *pb.ShardOwner) int { return cmp.Compare(a.GetShard(), b.GetShard()) })
	return st
}

func (f *metaFSM) Snapshot() (raft.FSMSnapshot, error) {
	return protoSnapshot{f.snapshotState()}, nil
}

func (f *metaFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	var st pb.MetaState
	if err := proto.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("cluster: meta snapshot: %w", err)
	}
	f.mu.Lock()
	clear(f.members)
	for _, m := range st.GetMembers() {
		f.members[m.GetId()] = m
	}
	clear(f.owners)
	for _, o := range st.GetOwners() {
		f.owners[o.GetShard()] = o
	}
	f.routing = st.GetRouting()
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
	return nil
}

// Placement decides which members hold each shard's replicas: the first of
// each list is the preferred owner. It is a pure function of the member
// list, so every member computes the same answer.
//
// Replicas are chosen by rendezvous hashing (a member joining or leaving
// moves only the replicas it gains or loses), spread over as many sites as
// there are before a site gets a second replica. Preferred owners are then
// balanced: each shard's goes to the least-loaded active replica, so no
// member owns everything. Members that left hold nothing; draining members
// keep their replicas but are preferred owners only if no replica is active.
func Placement(members []*pb.Member, shards uint32, replicas int) [][]string {
	type cand struct {
		m     *pb.Member
		score uint64
	}
	var live []*pb.Member
	for _, m := range members {
		if m.GetState() != pb.MemberState_MEMBER_STATE_LEFT {
			live = append(live, m)
		}
	}
	out := make([][]string, shards)
	owned := make(map[string]int, len(live))
	for s := range shards {
		cands := make([]cand, len(live))
		for i, m := range live {
			cands[i] = cand{m, rendezvous(m.GetId(), s)}
		}
		slices.SortFunc(cands, func(a, b cand) int {
			if c := cmp.Compare(b.score, a.score); c != 0 {
				return c
			}
			return cmp.Compare(a.m.GetId(), b.m.GetId())
		})
		chosen := make([]*pb.Member, 0, replicas)
		taken := make(map[string]bool)
		sites := make(map[string]bool)
		// First one per site, then the rest by score.
		for _, c := range cands {
			if len(chosen) < replicas && !sites[c.m.GetSite()] {
				sites[c.m.GetSite()] = true
				taken[c.m.GetId()] = true
				chosen = append(chosen, c.m)
			}
		}
		for _, c := range cands {
			if len(chosen) < replicas && !taken[c.m.GetId()] {
				taken[c.m.GetId()] = true
				chosen = append(chosen, c.m)
			}
		}
		lead := -1
		for i, m := range chosen {
			if m.GetState() != pb.MemberState_MEMBER_STATE_ACTIVE {
				continue
			}
			if lead < 0 || owned[m.GetId()] < owned[chosen[lead].GetId()] {
				lead = i
			}
		}
		if lead > 0 {
			chosen[0], chosen[lead] = chosen[lead], chosen[0]
		}
		if len(chosen) > 0 {
			owned[chosen[0].GetId()]++
		}
		ids := make([]string, len(chosen))
		for i, m := range chosen {
			ids[i] = m.GetId()
		}
		out[s] = ids
	}
	return out
}

func rendezvous(member string, shardID uint32) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(strconv.FormatUint(uint64(shardID), 10)))
	// fnv's low bits mix poorly for short inputs: finish with a mixer.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
