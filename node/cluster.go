package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/cluster"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
)

// Cluster mode: the node's shards are Raft groups (package cluster), actor
// messages for shards owned elsewhere cross by protoactor remote, requests
// for them are forwarded over NATS by the gateway, and membership changes go
// to the meta group's leader over NATS.

// Internal NATS subjects of the meta group's leader.
const (
	subjectMetaJoin  = "_tsunagu.v1.meta.join"
	subjectMetaDrain = "_tsunagu.v1.meta.drain"
	subjectMetaLeave = "_tsunagu.v1.meta.leave"
	subjectMetaOwner = "_tsunagu.v1.meta.owner"
)

// routerName is the protoactor name of each node's remote entry point.
const routerName = "tsunagu-router"

// startCluster opens the Raft listener and meta group, registers this
// node, and returns the routing configuration the cluster decides with.
func (n *Node) startCluster() (*pb.RoutingConfig, error) {
	host, port, _ := net.SplitHostPort(n.cfg.RemoteListen)
	p, _ := strconv.Atoi(port)
	var err error
	if n.remote, err = startRemote(n.sys, host, p); err != nil {
		return nil, err
	}
	var boot []*pb.Member
	boot, err = parseBootstrap(n.cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	n.cluster, err = cluster.Start(cluster.Config{
		Self: &pb.Member{
			Id:         n.cfg.NodeID,
			Site:       n.cfg.Site,
			RaftAddr:   n.cfg.RaftListen,
			RemoteAddr: n.sys.ProcessRegistry.Address,
			HttpAddr:   n.httpLn.Addr().String(),
		},
		Dir:       n.cfg.DataDir,
		Shards:    n.cfg.Shards,
		Replicas:  n.cfg.Replicas,
		Bootstrap: boot,
		Routing:   n.cfg.Routing,
		Timing:    cluster.DefaultTiming(),
		Logger:    n.log.With("component", "cluster"),
		ReportOwner: func(o *pb.ShardOwner) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := n.metaRequest(ctx, subjectMetaOwner, o, func() error { return n.cluster.RecordOwner(o) }); err != nil {
				n.log.Warn("owner record not written; members without a replica learn the owner from its announcement", "shard", o.GetShard(), "term", o.GetTerm(), "err", err)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if err := n.serveMeta(); err != nil {
		return nil, err
	}
	go n.register()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return n.cluster.WaitRouting(ctx)
}

// startRemote starts protoactor remote, turning its panic on a listen
// failure into an error.
func startRemote(sys *actor.ActorSystem, host string, port int) (r *remote.Remote, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("remote: listen %s: %v", net.JoinHostPort(host, strconv.Itoa(port)), p)
		}
	}()
	r = remote.NewRemote(sys, remote.Configure(host, port))
	r.Start()
	return r, nil
}

func parseBootstrap(list []string) ([]*pb.Member, error) {
	var out []*pb.Member
	for _, s := range list {
		id, addr, ok := strings.Cut(s, "=")
		if !ok || id == "" || addr == "" {
			return nil, bad("bootstrap", strconv.Quote(s), "want id=raft-host:port")
		}
		out = append(out, &pb.Member{Id: id, RaftAddr: addr})
	}
	return out, nil
}

// runCluster starts holding shards once the engine and gateway exist, and
// the router that takes actor messages from other nodes.
func (n *Node) runCluster() error {
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *pb.RemoteEnvelope:
			n.deliver(m)
			for _, more := range m.GetMore() {
				n.deliver(more)
			}
		case *pb.ShardOwner:
			n.noteOwner(m)
			n.engine.ObserveTerm(m.GetShard(), m.GetTerm())
		}
	})
	if _, err := n.sys.Root.SpawnNamed(props, routerName); err != nil {
		return fmt.Errorf("remote: router: %w", err)
	}
	observe := func(s uint32, term uint64) { n.engine.ObserveTerm(s, term) }
	n.cluster.Run(n.engine.Apply, owner{n}, observe)
	return nil
}

// deliver hands one envelope's message to its actor here.
func (n *Node) deliver(m *pb.RemoteEnvelope) {
	if err := n.engine.Deliver(actors.Address{Kind: m.GetKind(), Shard: m.GetShard(), ID: m.GetId()}, m.GetMsg()); err != nil {
		n.log.Debug("remote message refused", "shard", m.GetShard(), "to", m.GetId(), "err", err)
	}
}

// noteOwner keeps the newest owner announcement per shard.
func (n *Node) noteOwner(o *pb.ShardOwner) {
	n.ownersMu.Lock()
	defer n.ownersMu.Unlock()
	if old, ok := n.owners[o.GetShard()]; !ok || old.GetTerm() < o.GetTerm() {
		n.owners[o.GetShard()] = o
	}
}

// ownerOf returns the member owning a shard: the newest of what its owner
// announced and what this member's replica (or the meta group) says. A
// replica's view of its leader can lag — still naming a dead leader — and a
// message sent there is lost.
func (n *Node) ownerOf(shardID uint32) (string, bool) {
	id, term, ok := n.cluster.Owner(shardID)
	n.ownersMu.Lock()
	a, announced := n.owners[shardID]
	n.ownersMu.Unlock()
	if announced && (!ok || a.GetTerm() >= term) {
		return a.GetMember(), true
	}
	return id, ok
}

// sendRemote delivers messages to actors of shards owned elsewhere: one
// envelope per owner, carrying those for it in order. It returns how many
// had no owner to go to.
func (n *Node) sendRemote(msgs []actors.Outgoing) int {
	type batch struct {
		addr string
		env  *pb.RemoteEnvelope
	}
	var buf [4]batch
	batches, lost := buf[:0], 0
	for _, m := range msgs {
		addr, err := n.remoteAddr(m.To.Shard)
		if err != nil {
			lost++
			continue
		}
		env := &pb.RemoteEnvelope{Kind: m.To.Kind, Shard: m.To.Shard, Id: m.To.ID, Msg: m.Msg}
		i := 0
		for i < len(batches) && batches[i].addr != addr {
			i++
		}
		if i == len(batches) {
			batches = append(batches, batch{addr: addr, env: env})
			continue
		}
		batches[i].env.More = append(batches[i].env.More, env)
	}
	for _, b := range batches {
		n.sys.Root.Send(actor.NewPID(b.addr, routerName), b.env)
	}
	return lost
}

// remoteAddr is the protoactor address of the owner of a shard owned
// elsewhere.
func (n *Node) remoteAddr(shardID uint32) (string, error) {
	id, ok := n.ownerOf(shardID)
	if !ok {
		return "", fmt.Errorf("no known owner of shard %d", shardID)
	}
	m, ok := n.cluster.Member(id)
	if !ok || m.GetRemoteAddr() == "" {
		return "", fmt.Errorf("owner %q of shard %d has no remote address", id, shardID)
	}
	if id == n.cfg.NodeID {
		// Owned here by the log but not yet by the engine (acquiring).
		return "", fmt.Errorf("%w: shard %d", actors.ErrNotOwner, shardID)
	}
	return m.GetRemoteAddr(), nil
}

// owner is the cluster's view of the node: the engine hosts a shard, and
// the gateway takes its forwarded requests.
type owner struct{ n *Node }

func (o owner) Prepare(id uint32, term uint64) { o.n.engine.Prepare(id, term) }

func (o owner) Acquire(id uint32, term uint64, st *shard.State, l *cluster.RaftLog) {
	o.n.engine.Acquire(id, term, st, l)
	o.n.noteOwner(&pb.ShardOwner{Shard: id, Term: term, Member: o.n.cfg.NodeID})
	if err := o.n.gw.Serve(id); err != nil {
		o.n.log.Error("cannot take forwarded requests", "shard", id, "err", err)
	}
	// Tell every member, so their agents announce themselves to this
	// node's new queues, and their engines refuse the old owner's term.
	ann := &pb.ShardOwner{Shard: id, Term: term, Member: o.n.cfg.NodeID}
	for _, m := range o.n.cluster.Members() {
		if m.GetId() != o.n.cfg.NodeID && m.GetRemoteAddr() != "" && m.GetState() != pb.MemberState_MEMBER_STATE_LEFT {
			o.n.sys.Root.Send(actor.NewPID(m.GetRemoteAddr(), routerName), ann)
		}
	}
}

func (o owner) Release(id uint32) {
	o.n.gw.Unserve(id)
	o.n.engine.Release(id)
}

// register asks the meta leader to admit this node (or update its
// addresses) until the meta group knows it as it is.
func (n *Node) register() {
	defer n.undrain()
	for n.cluster.NeedsJoin() {
		if n.cluster.IsMetaLeader() {
			_ = n.cluster.Join(n.cluster.Self())
		} else if data, err := proto.Marshal(n.cluster.Self()); err == nil {
			_, _ = n.nc.Request(subjectMetaJoin, data, time.Second)
		}
		select {
		case <-n.stopping:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// undrain makes a node that starts again active: a drain ends with the
// stop it prepared.
func (n *Node) undrain() {
	m, ok := n.cluster.Member(n.cfg.NodeID)
	if !ok || m.GetState() != pb.MemberState_MEMBER_STATE_DRAINING {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		select {
		case <-n.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	if _, err := n.Drain(ctx, n.cfg.NodeID, false); err != nil {
		n.log.Warn("could not end this node's drain", "err", err)
	}
}

// metaReply is the answer on the internal meta subjects.
type metaReply struct {
	Error string `json:"error,omitempty"`
}

// serveMeta answers membership requests when this node leads the meta
// group; the other nodes stay silent, so the leader's is the one reply.
func (n *Node) serveMeta() error {
	handle := func(apply func(data []byte) error) nats.MsgHandler {
		return func(m *nats.Msg) {
			if !n.cluster.IsMetaLeader() {
				return
			}
			r := metaReply{}
			if err := apply(m.Data); err != nil {
				r.Error = err.Error()
			}
			out, _ := json.Marshal(r)
			_ = m.Respond(out)
		}
	}
	subs := []struct {
		subject string
		h       nats.MsgHandler
	}{
		{subjectMetaJoin, handle(func(data []byte) error {
			var m pb.Member
			if err := proto.Unmarshal(data, &m); err != nil {
				return fmt.Errorf("join: not a Member: %w", err)
			}
			return n.cluster.Join(&m)
		})},
		{subjectMetaDrain, handle(func(data []byte) error {
			var d pb.MemberDrain
			if err := proto.Unmarshal(data, &d); err != nil {
				return fmt.Errorf("drain: not a MemberDrain: %w", err)
			}
			return n.cluster.Drain(d.GetId(), d.GetDraining())
		})},
		{subjectMetaOwner, handle(func(data []byte) error {
			var o pb.ShardOwner
			if err := proto.Unmarshal(data, &o); err != nil {
				return fmt.Errorf("owner: not a ShardOwner: %w", err)
			}
			return n.cluster.RecordOwner(&o)
		})},
		{subjectMetaLeave, handle(func(data []byte) error {
			var l pb.MemberLeave
			if err := proto.Unmarshal(data, &l); err != nil {
				return fmt.Errorf("leave: not a MemberLeave: %w", err)
			}
			return n.cluster.Leave(l.GetId())
		})},
	}
	for _, s := range subs {
		sub, err := n.nc.Subscribe(s.subject, s.h)
		if err != nil {
			return fmt.Errorf("nats: subscribe %s: %w", s.subject, err)
		}
		n.metaSubs = append(n.metaSubs, sub)
	}
	return nil
}

// metaRequest sends a membership change to the meta leader (this node, or
// another over NATS), retrying while a leader is elected.
func (n *Node) metaRequest(ctx context.Context, subject string, msg proto.Message, local func() error) error {
	data, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	for {
		if n.cluster.IsMetaLeader() {
			if err := local(); !errors.Is(err, cluster.ErrNotLeader) {
				return err
			}
		} else if reply, err := n.nc.Request(subject, data, 500*time.Millisecond); err == nil {
			var r metaReply
			if err := json.Unmarshal(reply.Data, &r); err != nil {
				return fmt.Errorf("meta leader's reply: %w", err)
			}
			if r.Error != "" {
				return errors.New(r.Error)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no meta leader answered: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Drain marks member id draining (or active again with draining false).
// When id is this node it also waits until it owns no shard, and reports
// how long the hand-over took.
func (n *Node) Drain(ctx context.Context, id string, draining bool) (time.Duration, error) {
	start := time.Now()
	err := n.metaRequest(ctx, subjectMetaDrain, &pb.MemberDrain{Id: id, Draining: draining}, func() error { return n.cluster.Drain(id, draining) })
	if err != nil || id != n.cfg.NodeID || !draining {
		return time.Since(start), err
	}
	n.cluster.HandOverShards()
	for len(n.cluster.Owned()) > 0 {
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("still owning shards %v: %w", n.cluster.Owned(), ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

// clusterHTTP adds the cluster's admin endpoints.
func (n *Node) clusterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("GET /cluster/status", func(w http.ResponseWriter, _ *http.Request) {
		if n.cluster == nil {
			http.Error(w, "not a cluster member\n", http.StatusNotFound)
			return
		}
		st := n.cluster.Status()
		type member struct {
			ID     string `json:"id"`
			Site   string `json:"site"`
			State  string `json:"state"`
			Raft   string `json:"raft_addr"`
			Remote string `json:"remote_addr"`
			HTTP   string `json:"http_addr"`
		}
		out := struct {
			cluster.Status
			Members []member `json:"members"`
			Owned   []uint32 `json:"owned_here"`
		}{Status: st, Owned: append([]uint32{}, n.cluster.Owned()...)}
		for _, m := range st.Members {
			out.Members = append(out.Members, member{m.GetId(), m.GetSite(), m.GetState().String(), m.GetRaftAddr(), m.GetRemoteAddr(), m.GetHttpAddr()})
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	})
	change := func(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, id string) (string, error)) {
		if n.cluster == nil {
			http.Error(w, "not a cluster member\n", http.StatusNotFound)
			return
		}
		id := r.URL.Query().Get("id")
		if id == "" {
			id = n.cfg.NodeID
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		msg, err := do(ctx, id)
		if err != nil {
			http.Error(w, err.Error()+"\n", http.StatusConflict)
			return
		}
		_, _ = fmt.Fprintln(w, msg)
	}
	mux.HandleFunc("POST /cluster/drain", func(w http.ResponseWriter, r *http.Request) {
		change(w, r, func(ctx context.Context, id string) (string, error) {
			undo := r.URL.Query().Get("undo") != ""
			took, err := n.Drain(ctx, id, !undo)
			if undo {
				return fmt.Sprintf("%s active again", id), err
			}
			return fmt.Sprintf("%s draining; handed over in %v", id, took.Round(time.Microsecond)), err
		})
	})
	mux.HandleFunc("POST /cluster/leave", func(w http.ResponseWriter, r *http.Request) {
		change(w, r, func(ctx context.Context, id string) (string, error) {
			err := n.metaRequest(ctx, subjectMetaLeave, &pb.MemberLeave{Id: id}, func() error { return n.cluster.Leave(id) })
			return fmt.Sprintf("%s left; its replicas move to other members", id), err
		})
	})
}

// stopCluster hands the shards this node owns to other replicas before it
// stops, so no caller waits out an election.
func (n *Node) stopCluster(ctx context.Context) {
	if n.cluster == nil {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if took, err := n.Drain(hctx, n.cfg.NodeID, true); err != nil {
		n.log.Warn("hand-over before stopping incomplete", "err", err)
	} else {
		n.log.Info("shards handed over", "took", took)
	}
	if err := n.cluster.HandOver(hctx); err != nil {
		n.log.Warn("meta hand-over incomplete", "err", err)
	}
}
