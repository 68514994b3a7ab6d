package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
)

// Engine is the routing engine as the gateway uses it.
type Engine interface {
	Arrive(req *pb.ContactArrival, reply func(*pb.ArrivalReply))
	Media(carrier, queue string, ev *pb.MediaEvent, reply func(*pb.MediaEventReply))
	AgentCommand(agentID string, cmd *pb.AgentCommand, reply func(*pb.AgentCommandReply))
	QueueStatus(queue string, reply func(*pb.QueueStatusReply))
}

// Config configures a Gateway.
type Config struct {
	// Conn is the NATS connection (required).
	Conn *nats.Conn
	// QueueGroup shares incoming subjects among the nodes of a cluster.
	QueueGroup string
	// MaxPayload is the largest request accepted, in bytes.
	MaxPayload int
	// Workers is how many subscriptions per subject deliver in parallel.
	Workers int
	// InstructionTimeout is how long to wait for a carrier's ack.
	InstructionTimeout time.Duration
	// Encoding of what the node publishes (notices, instructions, events).
	Encoding Encoding
	// EventFlush is the longest an event waits before its batch is sent.
	EventFlush time.Duration
	// EventBatch is the most events in one batch.
	EventBatch int
	Logger     *slog.Logger
	Now        func() time.Time
	// Shards, in a cluster, tells which shards this node owns: requests for
	// others are forwarded to their owner (see Serve). Nil on a single node,
	// which owns every shard.
	Shards Sharder
}

// Sharder maps queues and agents to shards and says which are owned here.
type Sharder interface {
	QueueShard(name string) (uint32, bool)
	AgentShard(id string) (uint32, bool)
	Owns(shard uint32) bool
}

// DefaultConfig returns the defaults; Conn must still be set.
func DefaultConfig() Config {
	return Config{
		QueueGroup:         "tsunagu",
		MaxPayload:         64 << 10,
		Workers:            2,
		InstructionTimeout: time.Second,
		EventFlush:         5 * time.Millisecond,
		EventBatch:         512,
	}
}

// ErrInvalidConfig wraps every configuration problem.
var ErrInvalidConfig = errors.New("gateway: invalid config")

// Validate reports the first bad setting, naming the field, value and what
// is allowed.
func (c Config) Validate() error {
	switch {
	case c.Conn == nil:
		return fmt.Errorf("%w: Conn is nil", ErrInvalidConfig)
	case c.QueueGroup == "" || strings.ContainsAny(c.QueueGroup, " \t.*>"):
		return fmt.Errorf("%w: QueueGroup %q; a non-empty NATS token is needed so nodes share requests instead of each taking every one", ErrInvalidConfig, c.QueueGroup)
	case c.Encoding != Protobuf && c.Encoding != JSON:
		return fmt.Errorf("%w: Encoding %d; allowed Protobuf, JSON", ErrInvalidConfig, c.Encoding)
	case c.MaxPayload < 1024 || c.MaxPayload > 1<<20:
		return fmt.Errorf("%w: MaxPayload %d; allowed 1024..1048576", ErrInvalidConfig, c.MaxPayload)
	case c.Workers < 1 || c.Workers > 64:
		return fmt.Errorf("%w: Workers %d; allowed 1..64", ErrInvalidConfig, c.Workers)
	case c.InstructionTimeout < time.Millisecond:
		return fmt.Errorf("%w: InstructionTimeout %v; allowed 1ms or more", ErrInvalidConfig, c.InstructionTimeout)
	case c.EventFlush < 100*time.Microsecond:
		return fmt.Errorf("%w: EventFlush %v; allowed 100µs or more", ErrInvalidConfig, c.EventFlush)
	case c.EventBatch < 1:
		return fmt.Errorf("%w: EventBatch %d; allowed 1 or more", ErrInvalidConfig, c.EventBatch)
	}
	return nil
}

// Metrics are the gateway's running totals.
type Metrics struct {
	Requests          atomic.Uint64
	Refused           atomic.Uint64
	Notices           atomic.Uint64
	Instructions      atomic.Uint64
	InstructionErrors atomic.Uint64
	EventBatches      atomic.Uint64
	Events            atomic.Uint64
	PublishErrors     atomic.Uint64
	// Forwarded counts requests republished to their shard's owner.
	Forwarded atomic.Uint64
}

// Gateway connects the engine to NATS. It is the engine's actors.Bus.
type Gateway struct {
	cfg     Config
	nc      *nats.Conn
	log     *slog.Logger
	engine  Engine
	subs    []*nats.Subscription
	metrics Metrics

	// Routing instructions waiting for their carrier's ack, by reply token.
	instrMu    sync.Mutex
	instr      map[string]*pendingInstr
	instrSeq   atomic.Uint64
	instrInbox string
	replySub   *nats.Subscription

	// Subscriptions to forwarded requests, by owned shard.
	fwdMu   sync.Mutex
	fwdSubs map[uint32]*nats.Subscription

	evMu sync.Mutex
	ev   map[uint32]*eventBuf
	// ready are batches cut when a shard's term changed under them.
	ready   []eventOut
	evKick  chan struct{}
	evStop  chan struct{}
	evDone  chan struct{}
	started atomic.Bool
	drained atomic.Bool
	closed  atomic.Bool
}

type eventBuf struct {
	term   uint64
	seq    uint64
	events []*pb.Event
}

type eventOut struct {
	shard uint32
	batch *pb.EventBatch
}

// New returns a gateway; Start subscribes it.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Gateway{
		cfg:     cfg,
		nc:      cfg.Conn,
		log:     cfg.Logger,
		ev:      make(map[uint32]*eventBuf),
		fwdSubs: make(map[uint32]*nats.Subscription),
		instr:   make(map[string]*pendingInstr),
		evKick:  make(chan struct{}, 1),
		evStop:  make(chan struct{}),
		evDone:  make(chan struct{}),
	}, nil
}

// Metrics returns the gateway's counters.
func (g *Gateway) Metrics() *Metrics { return &g.metrics }

// Start subscribes to the contract's incoming subjects and starts the event
// flusher.
func (g *Gateway) Start(e Engine) error {
	g.engine = e
	handlers := []struct {
		subject string
		h       nats.MsgHandler
	}{
		{SubjectArriveAll, g.onArrive},
		{SubjectMediaAll, g.onMedia},
		{SubjectAgentCommands, g.onAgentCommand},
		{SubjectQueueStatus, g.onQueueStatus},
	}
	for _, h := range handlers {
		for i := 0; i < g.cfg.Workers; i++ {
			sub, err := g.nc.QueueSubscribe(h.subject, g.cfg.QueueGroup, h.h)
			if err != nil {
				g.unsubscribe()
				return fmt.Errorf("gateway: subscribe %s: %w", h.subject, err)
			}
			if err := sub.SetPendingLimits(1<<20, 1<<30); err != nil {
				g.unsubscribe()
				return fmt.Errorf("gateway: pending limits on %s: %w", h.subject, err)
			}
			g.subs = append(g.subs, sub)
		}
	}
	// An inbox of our own: nats.go's request mux owns the prefix of
	// NewRespInbox, and a wildcard over it would take its replies too.
	g.instrInbox = nats.NewInbox()
	sub, err := g.nc.Subscribe(g.instrInbox+".*", g.onInstructionReply)
	if err != nil {
		g.unsubscribe()
		return fmt.Errorf("gateway: subscribe to instruction replies: %w", err)
	}
	if err := sub.SetPendingLimits(1<<20, 1<<30); err != nil {
		g.unsubscribe()
		return fmt.Errorf("gateway: pending limits on instruction replies: %w", err)
	}
	g.replySub = sub
	g.started.Store(true)
	go g.flushEvents()
	return g.nc.Flush()
}

func (g *Gateway) unsubscribe() {
	for _, s := range g.subs {
		_ = s.Unsubscribe()
	}
	g.subs = nil
}

// Drain stops taking requests and waits (up to a few seconds) until the
// requests already delivered have been handed to the engine. Replies and
// notices keep flowing until Close.
func (g *Gateway) Drain() {
	if g.drained.Swap(true) {
		return
	}
	for _, s := range g.subs {
		_ = s.Drain()
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, s := range g.subs {
		for s.IsValid() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Close publishes the events still buffered and stops the flusher. Call it
// after the engine has stopped, so the events of the last commits go out.
func (g *Gateway) Close() {
	if g.closed.Swap(true) {
		return
	}
	if !g.started.Load() {
		return
	}
	close(g.evStop)
	<-g.evDone
	if g.replySub != nil {
		_ = g.replySub.Unsubscribe()
	}
}

// Stop is Drain then Close.
func (g *Gateway) Stop() {
	g.Drain()
	g.Close()
}

// respond publishes a reply in the request's encoding.
func (g *Gateway) respond(m *nats.Msg, enc Encoding, reply proto.Message, e *pb.Error) {
	if m.Reply == "" {
		return
	}
	data, err := encode(reply, enc)
	if err != nil {
		g.log.Error("reply not encodable", "subject", m.Subject, "err", err)
		return
	}
	out := &nats.Msg{Subject: m.Reply, Data: data, Header: header(enc)}
	if e != nil {
		if out.Header == nil {
			out.Header = nats.Header{}
		}
		out.Header.Set(HeaderError, strings.ToLower(strings.TrimPrefix(e.GetCode().String(), "ERROR_CODE_")))
	}
	if err := g.nc.PublishMsg(out); err != nil {
		g.metrics.PublishErrors.Add(1)
	}
}

func (g *Gateway) refused(e *decodeError) *pb.Error {
	g.metrics.Refused.Add(1)
	return e.proto()
}

func (g *Gateway) onArrive(m *nats.Msg) {
	g.metrics.Requests.Add(1)
	enc := encodingOf(m.Header, m.Data)
	t, _ := tokens(m.Subject, 5)
	carrier := t[3]
	req := &pb.ContactArrival{}
	e := decode(m.Data, enc, g.cfg.MaxPayload, "ContactArrival", req)
	if e == nil {
		e = validateArrival(carrier, req, g.cfg.Now())
	}
	if e != nil {
		err := g.refused(e)
		g.respond(m, enc, &pb.ArrivalReply{ContactId: clean(req.GetContactId(), maxEcho), Queue: clean(req.GetQueue(), maxEcho), Error: err}, err)
		return
	}
	req.Carrier = carrier
	if s, ok := g.shardOfQueue(req.GetQueue()); ok && g.forward(m, s) {
		return
	}
	g.engine.Arrive(req, func(r *pb.ArrivalReply) { g.respond(m, enc, r, r.GetError()) })
}

// tokens splits a subject; want is the number of tokens expected (the
// subscriptions guarantee it).
func tokens(subject string, want int) ([]string, bool) {
	t := strings.Split(subject, ".")
	return t, len(t) == want
}

func (g *Gateway) onMedia(m *nats.Msg) {
	g.metrics.Requests.Add(1)
	enc := encodingOf(m.Header, m.Data)
	t, _ := tokens(m.Subject, 7)
	carrier, queue, contactID := t[3], t[5], t[6]
	ev := &pb.MediaEvent{}
	e := decode(m.Data, enc, g.cfg.MaxPayload, "MediaEvent", ev)
	if e == nil {
		e = validateMedia(carrier, queue, contactID, ev)
	}
	if e != nil {
		err := g.refused(e)
		g.respond(m, enc, &pb.MediaEventReply{ContactId: clean(contactID, maxEcho), Error: err}, err)
		return
	}
	ev.ContactId = contactID
	if s, ok := g.shardOfQueue(queue); ok && g.forward(m, s) {
		return
	}
	g.engine.Media(carrier, queue, ev, func(r *pb.MediaEventReply) { g.respond(m, enc, r, r.GetError()) })
}

func (g *Gateway) onAgentCommand(m *nats.Msg) {
	g.metrics.Requests.Add(1)
	enc := encodingOf(m.Header, m.Data)
	t, _ := tokens(m.Subject, 5)
	agentID := t[3]
	cmd := &pb.AgentCommand{}
	e := decode(m.Data, enc, g.cfg.MaxPayload, "AgentCommand", cmd)
	if e == nil {
		e = validateAgentCommand(agentID, cmd)
	}
	if e != nil {
		err := g.refused(e)
		g.respond(m, enc, &pb.AgentCommandReply{Error: err}, err)
		return
	}
	if g.cfg.Shards != nil {
		if s, ok := g.cfg.Shards.AgentShard(agentID); ok && g.forward(m, s) {
			return
		}
	}
	g.engine.AgentCommand(agentID, cmd, func(r *pb.AgentCommandReply) { g.respond(m, enc, r, r.GetError()) })
}

func (g *Gateway) onQueueStatus(m *nats.Msg) {
	g.metrics.Requests.Add(1)
	enc := encodingOf(m.Header, m.Data)
	t, _ := tokens(m.Subject, 5)
	queue := t[3]
	req := &pb.QueueStatusRequest{}
	e := decode(m.Data, enc, g.cfg.MaxPayload, "QueueStatusRequest", req)
	if e == nil {
		e = checkVersion(req.GetSchemaVersion(), "QueueStatusRequest")
	}
	if e == nil && !routing.ValidQueueName(queue) {
		e = invalid("queue %q in the subject is not a queue name", truncate(queue, 80))
	}
	if e != nil {
		err := g.refused(e)
		g.respond(m, enc, &pb.QueueStatusReply{Queue: clean(queue, maxEcho), Error: err}, err)
		return
	}
	if s, ok := g.shardOfQueue(queue); ok && g.forward(m, s) {
		return
	}
	g.engine.QueueStatus(queue, func(r *pb.QueueStatusReply) { g.respond(m, enc, r, r.GetError()) })
}

// publish sends m on subject in the outbound encoding.
func (g *Gateway) publish(subject string, m proto.Message) error {
	data, err := encode(m, g.cfg.Encoding)
	if err != nil {
		g.metrics.PublishErrors.Add(1)
		return err
	}
	out := &nats.Msg{Subject: subject, Data: data, Header: header(g.cfg.Encoding)}
	if err := g.nc.PublishMsg(out); err != nil {
		g.metrics.PublishErrors.Add(1)
		return err
	}
	return nil
}

// Notify publishes a notice to an agent's desktop.
func (g *Gateway) Notify(agentID string, n *pb.AgentNotice) {
	g.metrics.Notices.Add(1)
	if err := g.publish(AgentNoticeSubject(agentID), n); err != nil {
		g.log.Warn("notice not published", "agent_id", agentID, "kind", n.GetKind(), "err", err)
		return
	}
	// Checked first: building the arguments costs allocations on every
	// notice, and debug is off in production.
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("notice published", "agent_id", agentID, "kind", n.GetKind(), "offer_id", n.GetOffer().GetOfferId(), "term", n.GetFence().GetTerm())
	}
}

// ErrAckMismatch: a carrier acknowledged a different instruction.
var ErrAckMismatch = errors.New("gateway: ack names another instruction")

// Instruct sends a routing instruction as a request and reports the
// carrier's ack (or the error) to acked, from another goroutine. Replies
// come to one subscription of the gateway and are matched by token, so an
// instruction costs no goroutine while it waits.
func (g *Gateway) Instruct(carrier string, in *pb.RoutingInstruction, acked func(*pb.InstructionAck, error)) {
	g.metrics.Instructions.Add(1)
	data, err := encode(in, g.cfg.Encoding)
	if err != nil {
		acked(nil, err)
		return
	}
	// The engine resends with a growing interval; each attempt waits for its
	// ack as long, so a slow carrier's ack is not dropped as late.
	timeout := g.cfg.InstructionTimeout
	for i := uint32(1); i < in.GetAttempt() && timeout < 30*time.Second; i++ {
		timeout *= 2
	}
	timeout = min(timeout, 30*time.Second)
	token := strconv.FormatUint(g.instrSeq.Add(1), 36)
	g.instrMu.Lock()
	g.instr[token] = &pendingInstr{in: in, carrier: carrier, acked: acked, deadline: time.Now().Add(timeout)}
	g.instrMu.Unlock()
	msg := &nats.Msg{Subject: InstructionSubject(carrier), Reply: g.instrInbox + "." + token, Data: data, Header: header(g.cfg.Encoding)}
	if err := g.nc.PublishMsg(msg); err != nil {
		g.instrMu.Lock()
		delete(g.instr, token)
		g.instrMu.Unlock()
		g.metrics.InstructionErrors.Add(1)
		acked(nil, err)
	}
}

type pendingInstr struct {
	in       *pb.RoutingInstruction
	carrier  string
	acked    func(*pb.InstructionAck, error)
	deadline time.Time
}

// onInstructionReply matches a carrier's reply to its instruction.
func (g *Gateway) onInstructionReply(m *nats.Msg) {
	token := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	g.instrMu.Lock()
	p, ok := g.instr[token]
	delete(g.instr, token)
	g.instrMu.Unlock()
	if !ok {
		return // answered after its deadline: the instruction was resent
	}
	if m.Header.Get("Status") == "503" {
		g.metrics.InstructionErrors.Add(1)
		p.acked(nil, nats.ErrNoResponders)
		return
	}
	ack := &pb.InstructionAck{}
	e := decode(m.Data, encodingOf(m.Header, m.Data), g.cfg.MaxPayload, "InstructionAck", ack)
	if e == nil {
		e = checkVersion(ack.GetSchemaVersion(), "InstructionAck")
	}
	if e != nil {
		g.metrics.InstructionErrors.Add(1)
		g.log.Warn("carrier answered an instruction with an unreadable ack; it will be resent", "carrier", p.carrier, "instruction_id", p.in.GetInstructionId(), "err", e)
		p.acked(nil, e)
		return
	}
	if id := ack.GetInstructionId(); id != p.in.GetInstructionId() {
		g.metrics.InstructionErrors.Add(1)
		err := fmt.Errorf("%w: got %q, sent %q", ErrAckMismatch, clean(id, maxEcho), p.in.GetInstructionId())
		what := "carrier acknowledged another instruction; it will be resent"
		if id == "" {
			what = "carrier's ack names no instruction_id; it will be resent"
		}
		g.log.Warn(what, "carrier", p.carrier, "err", err)
		p.acked(nil, err)
		return
	}
	p.acked(ack, nil)
}

// expireInstructions reports instructions whose ack did not come in time.
func (g *Gateway) expireInstructions(now time.Time) {
	var late []*pendingInstr
	g.instrMu.Lock()
	for token, p := range g.instr {
		if now.After(p.deadline) {
			late = append(late, p)
			delete(g.instr, token)
		}
	}
	g.instrMu.Unlock()
	for _, p := range late {
		g.metrics.InstructionErrors.Add(1)
		p.acked(nil, nats.ErrTimeout)
	}
}

// Events buffers committed events of a shard for the next batch. It is
// called in commit order per shard and must not block: encoding and
// publishing happen on the flusher. Events keep the term they were
// committed under: a term change cuts the batch.
func (g *Gateway) Events(shard uint32, term uint64, evs []*pb.Event) {
	g.evMu.Lock()
	b, ok := g.ev[shard]
	if !ok {
		b = &eventBuf{term: term}
		g.ev[shard] = b
	}
	if b.term != term {
		g.cut(shard, b)
		b.term, b.seq = term, 0
	}
	b.events = append(b.events, evs...)
	full := len(b.events) >= g.cfg.EventBatch
	g.evMu.Unlock()
	if full {
		select {
		case g.evKick <- struct{}{}:
		default:
		}
	}
}

// cut moves b's events into ready batches; evMu is held.
func (g *Gateway) cut(shard uint32, b *eventBuf) {
	for len(b.events) > 0 {
		n := min(len(b.events), g.cfg.EventBatch)
		b.seq++
		g.ready = append(g.ready, eventOut{shard, &pb.EventBatch{SchemaVersion: 1, Shard: shard, Term: b.term, Seq: b.seq, Events: b.events[:n:n]}})
		b.events = b.events[n:]
	}
	b.events = nil
}

func (g *Gateway) flushEvents() {
	defer close(g.evDone)
	t := time.NewTicker(g.cfg.EventFlush)
	defer t.Stop()
	expire := time.NewTicker(250 * time.Millisecond)
	defer expire.Stop()
	for {
		select {
		case <-t.C:
		case <-g.evKick:
		case now := <-expire.C:
			g.expireInstructions(now)
			continue
		case <-g.evStop:
			g.flushOnce()
			return
		}
		g.flushOnce()
	}
}

func (g *Gateway) flushOnce() {
	g.evMu.Lock()
	for shard, b := range g.ev {
		g.cut(shard, b)
	}
	pending := g.ready
	g.ready = nil
	g.evMu.Unlock()
	for _, p := range pending {
		if err := g.publish(EventSubject(p.shard), p.batch); err != nil {
			g.log.Debug("event batch not published", "shard", p.shard, "err", err)
			continue
		}
		g.metrics.EventBatches.Add(1)
		g.metrics.Events.Add(uint64(len(p.batch.Events)))
	}
}
