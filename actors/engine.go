package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Config configures an Engine.
type Config struct {
	// Routing is the compiled routing configuration (required).
	Routing *routing.Config
	// Shards is the fixed number of shards of the cluster (required).
	Shards uint32
	// System is the protoactor system to host actors on (required).
	System *actor.ActorSystem
	// Bus carries notices, instructions and events out (required).
	Bus Bus
	// Events receives committed events of owned shards, in commit order
	// per shard (optional).
	Events func(shard uint32, term uint64, events []*pb.Event)
	// Customers is the customer-context store; nil routes without it.
	Customers Customers
	// LookupTimeout bounds a customer-context read at arrival.
	LookupTimeout time.Duration
	Clock         Clock
	Logger        *slog.Logger
	Timing        Timing
	// Remote delivers messages for shards this node does not own, those
	// for one owner in the order given, and returns how many it could not
	// (no known owner); nil on a single node.
	Remote func(msgs []Outgoing) int
}

// Outgoing is a message for an actor of a shard owned elsewhere.
type Outgoing struct {
	To  Address
	Msg *pb.ShardMessage
}

// Address names an actor anywhere in the cluster.
type Address struct {
	Kind  string // "queue", "agent" or "contact"
	Shard uint32
	ID    string
}

// Errors returned by the Engine's entry points.
var (
	// ErrNotOwner: the shard is not owned by this node.
	ErrNotOwner = errors.New("actors: shard not owned here")
	// ErrInvalidEngineConfig: a required setting is missing.
	ErrInvalidEngineConfig = errors.New("actors: invalid engine config")
)

// Metrics are the engine's running totals.
type Metrics struct {
	Proposals         atomic.Uint64
	CustomerFallbacks atomic.Uint64
	RecordFailures    atomic.Uint64
	Undeliverable     atomic.Uint64
	Spawned           atomic.Uint64
	// Panics counts inputs dropped because a machine panicked: always a bug.
	Panics atomic.Uint64
	// Fenced counts messages refused because their sender was a deposed
	// owner.
	Fenced atomic.Uint64
	// Commit is the time from an actor's proposal to its applied result:
	// in a cluster, the commit by a majority of the shard's replicas.
	Commit Latency
}

// Engine hosts the actors of the shards this node owns.
type Engine struct {
	env           *env
	sys           *actor.ActorSystem
	bus           Bus
	events        func(uint32, uint64, []*pb.Event)
	customers     Customers
	lookupTimeout time.Duration
	clock         Clock
	log           *slog.Logger
	remote        func([]Outgoing) int
	metrics       Metrics
	dispatcher    actor.Dispatcher

	mu    sync.RWMutex
	hosts map[uint32]*host
	// terms is the highest owner term seen per shard: messages fenced with
	// a lower one come from a deposed owner and are refused.
	terms map[uint32]uint64
	// preparing holds the terms of shards being acquired (see Prepare).
	preparing map[uint32]uint64
	// unpublished keeps, per shard, the latest events this replica applied
	// without publishing them (see Prepare).
	unpublished sync.Map // uint32 -> *unpublished
}

// NewEngine returns an engine owning no shard yet.
func NewEngine(cfg Config) (*Engine, error) {
	switch {
	case cfg.Routing == nil:
		return nil, fmt.Errorf("%w: Routing is nil", ErrInvalidEngineConfig)
	case cfg.Shards == 0:
		return nil, fmt.Errorf("%w: Shards is 0; allowed 1 or more", ErrInvalidEngineConfig)
	case cfg.System == nil:
		return nil, fmt.Errorf("%w: System is nil", ErrInvalidEngineConfig)
	case cfg.Bus == nil:
		return nil, fmt.Errorf("%w: Bus is nil", ErrInvalidEngineConfig)
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timing == (Timing{}) {
		cfg.Timing = DefaultTiming()
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = 50 * time.Millisecond
	}
	return &Engine{
		env:           &env{cfg: cfg.Routing, timing: cfg.Timing, shards: cfg.Shards},
		sys:           cfg.System,
		bus:           cfg.Bus,
		events:        cfg.Events,
		customers:     cfg.Customers,
		lookupTimeout: cfg.LookupTimeout,
		clock:         cfg.Clock,
		log:           cfg.Logger,
		remote:        cfg.Remote,
		hosts:         make(map[uint32]*host),
		terms:         make(map[uint32]uint64),
		preparing:     make(map[uint32]uint64),
		dispatcher:    newWorkerDispatcher(max(4, 2*runtime.GOMAXPROCS(0)), 300),
	}, nil
}

// Metrics returns the engine's counters.
func (e *Engine) Metrics() *Metrics { return &e.metrics }

// Shards returns the number of shards.
func (e *Engine) Shards() uint32 { return e.env.shards }

// Routing returns the routing configuration.
func (e *Engine) Routing() *routing.Config { return e.env.cfg }

// Apply returns the function a shard's log applies committed commands with:
// it applies them to state and, when this node owns the shard, publishes
// their events. The in-memory log and the Raft FSM both call it.
func (e *Engine) Apply(state *shard.State) func(cmds []*pb.Command) []*shard.Result {
	id := state.Shard()
	u := e.unpublishedOf(id)
	return func(cmds []*pb.Command) []*shard.Result {
		values := state.ApplyBatch(cmds, make([]shard.Result, 0, len(cmds)))
		results := make([]*shard.Result, len(values))
		n := 0
		for i := range values {
			results[i] = &values[i]
			n += len(values[i].Events)
		}
		if e.events == nil || n == 0 {
			return results
		}
		evs := make([]*pb.Event, 0, n)
		for i := range values {
			evs = append(evs, values[i].Events...)
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		if term, ok := e.publishing(id); ok {
			e.events(id, term, evs)
		} else {
			u.keep(evs)
		}
		return results
	}
}

// unpublished holds the latest events a replica applied while it did not
// publish its shard's events, for as long as a previous owner may have
// died without publishing them: unpublishedFor, at most maxUnpublished.
type unpublished struct {
	mu sync.Mutex
	// evs[start:] are kept; the dropped prefix is reclaimed once it is
	// the larger part.
	evs   []*pb.Event
	start int
}

const (
	// unpublishedFor covers an owner's last unflushed events, the commits
	// its followers applied after it died, and an election.
	unpublishedFor = int64(2 * time.Second)
	maxUnpublished = 16384
)

func (e *Engine) unpublishedOf(id uint32) *unpublished {
	if u, ok := e.unpublished.Load(id); ok {
		return u.(*unpublished)
	}
	u, _ := e.unpublished.LoadOrStore(id, &unpublished{})
	return u.(*unpublished)
}

// keep adds evs, dropping events older than unpublishedFor before the
// newest and the oldest beyond maxUnpublished; mu is held.
func (u *unpublished) keep(evs []*pb.Event) {
	u.evs = append(u.evs, evs...)
	newest := u.evs[len(u.evs)-1].GetAt()
	u.start = max(u.start, len(u.evs)-maxUnpublished)
	for u.start < len(u.evs) && newest-u.evs[u.start].GetAt() > unpublishedFor {
		u.start++
	}
	if u.start > len(u.evs)/2 {
		n := copy(u.evs, u.evs[u.start:])
		clear(u.evs[n:])
		u.evs, u.start = u.evs[:n], 0
	}
}

// take returns the events kept and forgets them.
func (u *unpublished) take() []*pb.Event {
	evs := u.evs[u.start:]
	u.evs, u.start = nil, 0
	return evs
}

// publishing reports whether the events of shard id are published here, and
// under which term: the shard is owned here, or being acquired.
func (e *Engine) publishing(id uint32) (uint64, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if h := e.hosts[id]; h != nil {
		return h.fence.GetTerm(), true
	}
	term, ok := e.preparing[id]
	return term, ok
}

// Prepare tells the engine this node is about to own shard id under term.
// The previous owner may not have lived to publish the events of its last
// commits, so the new owner publishes them under its term: those this
// replica applied in the last unpublishedFor before Prepare (kept while it
// did not publish), then those of commands applied while it catches up
// (before Acquire). Observers may so see an event twice across an
// ownership change, the copies with the same commit time and contents, but
// miss none.
func (e *Engine) Prepare(id uint32, term uint64) {
	u := e.unpublishedOf(id)
	u.mu.Lock()
	defer u.mu.Unlock()
	e.mu.Lock()
	e.preparing[id] = term
	e.mu.Unlock()
	if evs := u.take(); len(evs) > 0 && e.events != nil {
		e.events(id, term, evs)
	}
}

// FailResult is the result handed to proposals a log cannot take.
func FailResult(err error) *shard.Result { return &shard.Result{Err: err} }

// host is one owned shard: its state, its log and its actors.
type host struct {
	e     *Engine
	id    uint32
	fence *pb.Fence
	state *shard.State
	log   Log

	mu     sync.RWMutex
	actors map[target]*actor.PID
	gone   bool
	// released is set (under live) when the node stops owning the shard.
	// Actors carry out effects under live's read lock and drop them once
	// released: a deposed owner's actors may still be finishing an input,
	// and what they would send (under a term that may equal the next
	// owner's, when this node leads again) must not reach anyone; the next
	// owner re-drives from the committed state.
	live     sync.RWMutex
	released bool
	// props is shared by every actor of the host: its producer hands out
	// pending, which spawnLocked sets under mu (protoactor calls the
	// producer inside Spawn). One Props per actor cost 230 bytes each.
	props   *actor.Props
	pending *shell
}

func (e *Engine) host(id uint32) *host {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.hosts[id]
}

// Acquire makes this node the owner of shard id under term: it rebuilds the
// shard's actors from state — queues lined up, agents' offers and timers
// re-armed, contacts' in-flight conversations re-driven.
func (e *Engine) Acquire(id uint32, term uint64, state *shard.State, log Log) {
	h := &host{e: e, id: id, fence: &pb.Fence{Shard: id, Term: term}, state: state, log: log, actors: make(map[target]*actor.PID)}
	h.props = actor.PropsFromProducer(func() actor.Actor { return h.pending },
		actor.WithDispatcher(e.dispatcher),
		// A linked list: no ring buffer allocated up front per actor.
		actor.WithMailbox(actor.UnboundedLockfree()),
		// Machines recover their own panics; anything else resumes the same
		// actor, so the producer is never called again for it.
		actor.WithGuardian(actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.ResumeDirective })))
	e.mu.Lock()
	e.hosts[id] = h
	e.terms[id] = max(e.terms[id], term)
	delete(e.preparing, id)
	e.mu.Unlock()

	queued := make(map[string][]shard.Contact)
	var inFlight []string
	state.Contacts(func(c shard.Contact) {
		switch {
		case c.State == pb.ContactState_CONTACT_STATE_QUEUED:
			queued[c.Queue()] = append(queued[c.Queue()], c)
		case !c.Terminal() || (c.State == pb.ContactState_CONTACT_STATE_ABANDONED && c.OfferID != "" && c.ConnectedAt == 0):
			inFlight = append(inFlight, c.ID())
		}
	})
	now := e.clock.Now().UnixNano()
	for _, name := range e.env.cfg.QueueNames {
		if e.env.queueShard(name) != id {
			continue
		}
		q := e.env.cfg.Queues[name]
		m := newQueueMachine(q, id, h.fence, e.env, state.Contact)
		for _, c := range queued[name] {
			m.line(now, &c, extrasOf(&c))
		}
		h.spawn(target{kind: queueKind, shard: id, id: name}, m, nil)
	}
	var agents []string
	state.Agents(func(a shard.Agent) {
		if a.LoggedIn() {
			agents = append(agents, a.ID())
		}
	})
	for _, a := range agents {
		h.deliver(target{kind: agentKind, shard: id, id: a}, rebuild{})
	}
	for _, c := range inFlight {
		h.deliver(target{kind: contactKind, shard: id, id: c}, rebuild{})
	}
	// The new queues know no agent yet: agents of the other shards owned
	// here tell them their status (those elsewhere do when they hear of the
	// new owner, see ObserveTerm).
	e.reannounce(id)
}

// Release stops the actors of shard id: this node no longer owns it.
func (e *Engine) Release(id uint32) {
	e.mu.Lock()
	h := e.hosts[id]
	delete(e.hosts, id)
	delete(e.preparing, id)
	e.mu.Unlock()
	if h == nil {
		return
	}
	h.live.Lock()
	h.released = true
	h.live.Unlock()
	h.mu.Lock()
	h.gone = true
	pids := make([]*actor.PID, 0, len(h.actors))
	for _, pid := range h.actors {
		pids = append(pids, pid)
	}
	clear(h.actors)
	h.mu.Unlock()
	for _, pid := range pids {
		e.sys.Root.Stop(pid)
	}
}

// Stop releases every shard.
func (e *Engine) Stop() {
	e.mu.RLock()
	ids := make([]uint32, 0, len(e.hosts))
	for id := range e.hosts {
		ids = append(ids, id)
	}
	e.mu.RUnlock()
	for _, id := range ids {
		e.Release(id)
	}
}

// route delivers msg to the actor named by to, wherever it lives.
func (e *Engine) route(to target, msg any) {
	var one [1]Outgoing
	if o, ok := e.deliverHere(to, msg); ok {
		one[0] = o
		e.sendRemote(one[:])
	}
}

// routeAll delivers msgs, each to the actor it names: those of shards
// owned here at once, the others to their owners, all those for one owner
// together. buf is reused for the latter and returned for the next call.
func (e *Engine) routeAll(msgs []outbound, buf []Outgoing) []Outgoing {
	out := buf[:0]
	for _, m := range msgs {
		if o, ok := e.deliverHere(m.to, m.msg); ok {
			out = append(out, o)
		}
	}
	e.sendRemote(out)
	clear(out)
	return out[:0]
}

// deliverHere delivers msg if its actor's shard is owned here; otherwise
// it returns it for its owner (ok), or drops it when it cannot go there.
func (e *Engine) deliverHere(to target, msg any) (o Outgoing, ok bool) {
	if h := e.host(to.shard); h != nil {
		h.deliver(to, msg)
		return o, false
	}
	sm, isShardMsg := msg.(*pb.ShardMessage)
	if !isShardMsg || e.remote == nil {
		e.metrics.Undeliverable.Add(1)
		e.log.Warn("message for a shard not owned here dropped", "shard", to.shard, "to", to.id, "type", fmt.Sprintf("%T", msg))
		return o, false
	}
	return Outgoing{To: Address{Kind: to.kind.String(), Shard: to.shard, ID: to.id}, Msg: sm}, true
}

func (e *Engine) sendRemote(msgs []Outgoing) {
	if len(msgs) == 0 {
		return
	}
	if n := e.remote(msgs); n > 0 {
		e.metrics.Undeliverable.Add(uint64(n))
	}
}

// ErrStaleTerm: a message carries the term of a deposed owner.
var ErrStaleTerm = errors.New("actors: message from a deposed shard owner")

// Deliver hands a message that arrived from another node to a local actor.
// A message fenced with a term lower than the highest seen for its sender's
// shard comes from a deposed owner and is refused.
func (e *Engine) Deliver(to Address, msg *pb.ShardMessage) error {
	k, ok := kindOf(to.Kind)
	if !ok {
		return fmt.Errorf("actors: unknown actor kind %q", to.Kind)
	}
	f := msg.GetFence()
	if f == nil {
		return fmt.Errorf("actors: message to %s %q carries no fence", to.Kind, to.ID)
	}
	if known := e.ObserveTerm(f.GetShard(), f.GetTerm()); f.GetTerm() < known {
		e.metrics.Fenced.Add(1)
		return fmt.Errorf("%w: shard %d term %d; term %d is current", ErrStaleTerm, f.GetShard(), f.GetTerm(), known)
	}
	h := e.host(to.Shard)
	if h == nil {
		return fmt.Errorf("%w: shard %d", ErrNotOwner, to.Shard)
	}
	h.deliver(target{kind: k, shard: to.Shard, id: to.ID}, msg)
	return nil
}

// ObserveTerm records that shard id has an owner in term and returns the
// highest term known for it. When another node took the shard over, the
// agents owned here tell its queues their status again: the new owner's
// queues start knowing no agent.
func (e *Engine) ObserveTerm(id uint32, term uint64) uint64 {
	e.mu.RLock()
	known := e.terms[id]
	e.mu.RUnlock()
	if term <= known {
		return known
	}
	e.mu.Lock()
	known = e.terms[id]
	if term > known {
		e.terms[id] = term
	}
	_, local := e.hosts[id]
	e.mu.Unlock()
	if term > known && !local {
		e.reannounce(id)
	}
	return max(term, known)
}

// reannounce has every logged-in agent of the shards owned here, but shard
// except, send its status to its queues again.
func (e *Engine) reannounce(except uint32) {
	e.mu.RLock()
	hosts := make([]*host, 0, len(e.hosts))
	for id, h := range e.hosts {
		if id != except {
			hosts = append(hosts, h)
		}
	}
	e.mu.RUnlock()
	for _, h := range hosts {
		var agents []string
		h.state.Agents(func(a shard.Agent) {
			if a.LoggedIn() {
				agents = append(agents, a.ID())
			}
		})
		for _, a := range agents {
			h.deliver(target{kind: agentKind, shard: h.id, id: a}, announce{})
		}
	}
}

// Owns reports whether this node owns shard id.
func (e *Engine) Owns(id uint32) bool { return e.host(id) != nil }

// QueueShard returns the shard of a configured queue.
func (e *Engine) QueueShard(name string) (uint32, bool) {
	q, ok := e.env.cfg.Queue(name)
	if !ok {
		return 0, false
	}
	return e.env.queueShard(q.Name), true
}

// AgentShard returns the shard of a configured agent.
func (e *Engine) AgentShard(id string) (uint32, bool) {
	if _, ok := e.env.cfg.Agents[id]; !ok {
		return 0, false
	}
	return e.env.agentShard(id), true
}

func (k kind) String() string {
	switch k {
	case queueKind:
		return "queue"
	case agentKind:
		return "agent"
	case contactKind:
		return "contact"
	}
	return "unknown"
}

func kindOf(s string) (kind, bool) {
	switch s {
	case "queue":
		return queueKind, true
	case "agent":
		return agentKind, true
	case "contact":
		return contactKind, true
	}
	return 0, false
}

// deliver sends msg to the actor, activating it from the shard state when
// it is not running. The send happens under the directory lock, so an
// actor that removes itself never misses a message routed to it before.
func (h *host) deliver(to target, msg any) {
	h.mu.RLock()
	if pid, ok := h.actors[to]; ok {
		h.e.sys.Root.Send(pid, msg)
		h.mu.RUnlock()
		return
	}
	gone := h.gone
	h.mu.RUnlock()
	if gone {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if pid, ok := h.actors[to]; ok {
		h.e.sys.Root.Send(pid, msg)
		return
	}
	if h.gone {
		return
	}
	pid := h.activate(to)
	if pid == nil {
		h.e.metrics.Undeliverable.Add(1)
		return
	}
	h.e.sys.Root.Send(pid, msg)
}

// activate spawns the actor for to from the shard state; h.mu is held.
func (h *host) activate(to target) *actor.PID {
	e := h.e
	switch to.kind {
	case agentKind:
		m := newAgentMachine(to.id, h.id, h.fence, e.env)
		if rec, ok := h.state.Agent(to.id); ok {
			m.rec, m.hasRec = rec, true
		}
		return h.spawnLocked(to, m, nil)
	case contactKind:
		m := &contactMachine{id: to.id, shard: h.id, fence: h.fence, cfg: e.env.cfg, timing: e.env.timing}
		if rec, ok := h.state.Contact(to.id); ok {
			m.rec, m.hasRec = rec, true
			m.queue = e.env.cfg.Queues[rec.Queue()]
			if rec.AgentID != "" {
				m.agentShard = e.env.agentShard(rec.AgentID)
			}
		}
		idle := func() bool { return !m.hasRec && m.req == nil }
		return h.spawnLocked(to, m, idle)
	}
	return nil
}

func (h *host) spawn(to target, m machine, idle func() bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.spawnLocked(to, m, idle)
}

func (h *host) spawnLocked(to target, m machine, idle func() bool) *actor.PID {
	h.pending = &shell{e: h.e, h: h, key: to, m: m, idle: idle}
	pid := h.e.sys.Root.Spawn(h.props)
	h.pending = nil
	h.actors[to] = pid
	h.e.metrics.Spawned.Add(1)
	return pid
}

// remove drops an actor from the directory if pid is still the one there.
func (h *host) remove(to target, pid *actor.PID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.actors[to]; ok && cur.Equal(pid) {
		delete(h.actors, to)
		return true
	}
	return false
}

func (e *Engine) record(r interaction) {
	if e.customers == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*e.lookupTimeout)
		defer cancel()
		if err := e.customers.Record(ctx, r.key, r.in); err != nil {
			e.metrics.RecordFailures.Add(1)
			e.log.Warn("customer interaction not recorded", "contact_id", r.in.ContactID, "err", err)
		}
	}()
}
