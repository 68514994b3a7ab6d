package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/client"
	"github.com/tsunagu/tsunagu/gateway"
	"github.com/tsunagu/tsunagu/loadtest/check"
	"github.com/tsunagu/tsunagu/loadtest/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Carrier is the carrier id the simulated carriers hand contacts over as.
const Carrier = "loadtest"

// Config is one run.
type Config struct {
	Scenario *scenario.Scenario
	// NATSURL of the node or cluster.
	NATSURL string
	// RunID prefixes contact ids, so runs against a long-lived cluster do
	// not collide. Letters, digits and '_'.
	RunID string
	// LateThreshold: sends later than this are counted late. Default 2ms.
	LateThreshold time.Duration
	// RequestTimeout bounds each request attempt. Default 2s.
	RequestTimeout time.Duration
	// Settle bounds the wait, after the drain, for the last hang-ups,
	// wrap-ups and events. Default 15s.
	Settle time.Duration
	// SameClock says the node runs on this host (the harness started it),
	// so its commit times are on the harness's clock; routing latency is
	// then measured from commits (see Result.RoutingLatency).
	SameClock bool
	// Progress, if set, gets a live status line once a second.
	Progress io.Writer
}

// runner is the state of one run. Contacts and agents each have their own
// lock; the runner's own lock guards the shared lists.
type runner struct {
	cfg      Config
	sc       *scenario.Scenario
	rc       *routing.Config
	plan     []Planned
	start    time.Time
	carrier  *client.Client
	desktops *client.Client
	conns    []*nats.Conn

	contacts []*contact
	agents   map[string]*agent
	handle   []Sampler // per agent group
	wrapUp   []Sampler
	think    []Sampler
	ctx      context.Context
	timers   sync.WaitGroup

	mu       sync.Mutex
	offers   []OfferRecord
	offerIdx map[string]int
	errs     map[string]int
	fences   map[uint32]uint64 // highest notice term per shard
	obs      observer
	liveLat  *hdrhistogram.Histogram // routing latency over the last second, for the progress line

	sent, answered, queued, ended, abandoned, late, offered atomic.Int64
}

type contact struct {
	mu        sync.Mutex
	rec       ContactRecord
	offerID   string // of the accepted offer, once the carrier knows it
	rand      *rand.Rand
	hangingUp bool
	// patience and handle are the pending hang-ups (abandon, end of the
	// call); whichever hang-up comes first cancels the other.
	patience, handle *time.Timer
}

func (r *runner) now() time.Duration { return time.Since(r.start) }

func (r *runner) fail(kind string) {
	r.mu.Lock()
	r.errs[kind]++
	r.mu.Unlock()
}

// Run runs the scenario against the node or cluster at cfg.NATSURL and
// returns what it recorded. It returns an error only when the run could not
// be carried out (no connection, agents unable to log in); what went wrong
// during the run is in the result for the checks to judge.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.LateThreshold == 0 {
		cfg.LateThreshold = 2 * time.Millisecond
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 2 * time.Second
	}
	if cfg.Settle == 0 {
		cfg.Settle = 15 * time.Second
	}
	sc := cfg.Scenario
	rc, err := sc.Compiled()
	if err != nil {
		return nil, err
	}
	r := &runner{
		cfg: cfg, sc: sc, rc: rc, plan: Schedule(sc), ctx: ctx,
		agents: map[string]*agent{}, errs: map[string]int{}, fences: map[uint32]uint64{}, offerIdx: map[string]int{},
		liveLat: hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 2),
	}
	for _, g := range sc.Agents {
		r.handle = append(r.handle, NewSampler(g.Handle))
		r.wrapUp = append(r.wrapUp, NewSampler(g.WrapUp))
		r.think = append(r.think, NewSampler(g.Think))
	}
	if err := r.connect(); err != nil {
		return nil, err
	}
	defer func() {
		for _, nc := range r.conns {
			nc.Close()
		}
	}()
	r.contacts = make([]*contact, len(r.plan))
	for i, p := range r.plan {
		patience := Unset
		if p.Patience != math.MaxInt64 {
			patience = sc.Real(p.Patience)
		}
		r.contacts[i] = &contact{
			rec: ContactRecord{
				ID: fmt.Sprintf("%s-%d", cfg.RunID, i), Queue: p.Queue, Channel: p.Channel, Priority: p.Priority,
				Intended: sc.Real(p.At), Sent: Unset, Replied: Unset, Patience: patience,
				Offered: Unset, Connected: Unset, Ended: Unset, HangUpSent: Unset,
			},
			rand: rand.New(rand.NewPCG(sc.Seed, uint64(i)+1<<32)),
		}
	}
	for g := range sc.Agents {
		for k, id := range sc.AgentIDs(g) {
			a := &agent{r: r, id: id, group: g, slots: map[string]*agentSlot{}, rand: rand.New(rand.NewPCG(sc.Seed, uint64(g)<<40|uint64(k)))}
			a.init(rc.Agents[id])
			r.agents[id] = a
		}
	}
	if err := r.subscribe(); err != nil {
		return nil, err
	}
	// Agents log in; then the schedule starts. Instants stay on one clock:
	// agents free since their login are free since before the start.
	r.start = time.Now()
	if err := r.loginAll(); err != nil {
		return nil, err
	}
	loggedIn := r.now()
	r.start = r.start.Add(loggedIn)
	for _, a := range r.agents {
		a.shift(loggedIn)
	}
	stopProgress := r.progress()
	defer stopProgress()

	res := &Result{RunID: cfg.RunID, Start: r.start, LateThreshold: cfg.LateThreshold, SameClock: cfg.SameClock}
	r.sendAll()
	res.ArrivalsEnd = r.now()
	r.drain()
	res.DrainEnd = r.now()
	r.settle()
	r.timers.Wait()
	res.End = r.now()
	stopProgress()
	r.collect(res)
	return res, nil
}

func (r *runner) connect() error {
	for _, name := range []string{"carrier", "desktops", "observer"} {
		nc, err := nats.Connect(r.cfg.NATSURL,
			nats.Name("tsunagu-loadtest-"+name),
			nats.PingInterval(5*time.Second),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250*time.Millisecond),
			nats.ReconnectBufSize(64<<20),
		)
		if err != nil {
			return fmt.Errorf("sim: connect %s: %w", r.cfg.NATSURL, err)
		}
		r.conns = append(r.conns, nc)
	}
	r.carrier = client.New(r.conns[0], gateway.Protobuf)
	r.carrier.Carrier = Carrier
	r.desktops = client.New(r.conns[1], gateway.Protobuf)
	return nil
}

func (r *runner) subscribe() error {
	subs := make([]*nats.Subscription, 0, 3)
	sub, err := r.carrier.ServeInstructions(Carrier, r.onInstruction)
	if err != nil {
		return err
	}
	subs = append(subs, sub)
	if sub, err = r.desktops.AllNotices(r.onNotice); err != nil {
		return err
	}
	subs = append(subs, sub)
	ev := client.New(r.conns[2], gateway.Protobuf)
	if sub, err = ev.Events(r.obs.onBatch(r.cfg.RunID + "-")); err != nil {
		return err
	}
	subs = append(subs, sub)
	for _, s := range subs {
		// The harness must never drop what it is sent: an unbounded
		// pending buffer, and slowness shows as latency.
		if err := s.SetPendingLimits(-1, -1); err != nil {
			return err
		}
	}
	for _, nc := range r.conns {
		if err := nc.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// request runs one request with the run's timeout, retrying up to three
// times what the contract says to retry: timeouts, "no responders" (a node
// starting or failing over) and UNAVAILABLE (the shard is between owners),
// the last after a pause, as it is answered at once.
func (r *runner) request(kind string, do func(ctx context.Context) error) error {
	var err error
	const attempts = 3
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 && unavailable(err) {
			time.Sleep(time.Duration(attempt) * unavailablePause)
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.RequestTimeout)
		err = do(ctx)
		cancel()
		if err == nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) || unavailable(err)) {
			break
		}
		if attempt < attempts-1 {
			r.fail(kind + ": retried after " + shortErr(err))
		}
	}
	if err != nil {
		var ce *client.Error
		if errors.As(err, &ce) {
			r.fail(kind + ": " + strings.ToLower(strings.TrimPrefix(ce.Code.String(), "ERROR_CODE_")))
		} else {
			r.fail(kind + ": " + shortErr(err))
		}
	}
	return err
}

// unavailablePause is the pause before the first retry of an UNAVAILABLE
// answer, doubled before the second: together longer than a failover takes
// (docs/operations.md).
const unavailablePause = 250 * time.Millisecond

// unavailable reports whether err is the contract's UNAVAILABLE.
func unavailable(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Code == pb.ErrorCode_ERROR_CODE_UNAVAILABLE
}

func shortErr(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "timeout"
	case errors.Is(err, nats.ErrNoResponders):
		return "no responders"
	case unavailable(err):
		return "unavailable"
	}
	return err.Error()
}

// after runs f after d on its own goroutine, and Run waits for it unless
// it is cancelled.
func (r *runner) after(d time.Duration, f func()) *time.Timer {
	r.timers.Add(1)
	return time.AfterFunc(max(d, 0), func() {
		defer r.timers.Done()
		f()
	})
}

// cancel stops a timer from after, if it has not fired.
func (r *runner) cancel(t *time.Timer) {
	if t != nil && t.Stop() {
		r.timers.Done()
	}
}

func (r *runner) loginAll() error {
	ids := make(chan *agent)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range ids {
				if err := a.login(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for _, a := range r.agents {
		ids <- a
	}
	close(ids)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("sim: %d agents could not log in; first: %v", n, firstErr.Load())
	}
	return nil
}

// sendAll sends the schedule, open loop: each arrival goes at its intended
// instant on its own goroutine, never waiting for earlier ones.
func (r *runner) sendAll() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := range r.plan {
		c := r.contacts[i]
		if d := c.rec.Intended - r.now(); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-r.ctx.Done():
				return
			}
		} else if r.ctx.Err() != nil {
			return
		}
		r.timers.Add(1)
		go func() {
			defer r.timers.Done()
			r.arrive(i)
		}()
	}
}

func (r *runner) arrive(i int) {
	c := r.contacts[i]
	sent := r.now()
	c.mu.Lock()
	c.rec.Sent = sent
	c.mu.Unlock()
	r.sent.Add(1)
	if sent-c.rec.Intended > r.cfg.LateThreshold {
		r.late.Add(1)
	}
	req := &pb.ContactArrival{SchemaVersion: 1, ContactId: c.rec.ID, Queue: c.rec.Queue, Channel: c.rec.Channel, Priority: c.rec.Priority}
	var reply *pb.ArrivalReply
	attempts := 0
	err := r.request("arrive", func(ctx context.Context) error {
		attempts++
		var err error
		reply, err = r.carrier.Arrive(ctx, req)
		return err
	})
	now := r.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	defer r.answered.Add(1)
	c.rec.Attempts = attempts
	switch {
	case err != nil:
		c.rec.Status, c.rec.Err = Failed, err.Error()
		return
	case reply.GetStatus() != pb.ArrivalStatus_ARRIVAL_STATUS_QUEUED:
		c.rec.Status, c.rec.Err = Refused, reply.GetRejectReason()
		return
	}
	c.rec.Status, c.rec.Replied = Queued, now
	r.queued.Add(1)
	if c.rec.Patience != Unset {
		c.patience = r.after(c.rec.Patience, func() { r.patienceOver(i) })
	}
}

// patienceOver hangs up a caller still waiting when its patience runs out.
func (r *runner) patienceOver(i int) {
	c := r.contacts[i]
	c.mu.Lock()
	waiting := c.rec.Connected == Unset && c.rec.Ended == Unset && !c.hangingUp
	c.mu.Unlock()
	if waiting {
		r.hangUp(i)
	}
}

// onInstruction acknowledges a routing instruction at once and, the first
// time, connects the call: answered now, hung up after the agent's handling
// time.
func (r *runner) onInstruction(in *pb.RoutingInstruction) *pb.InstructionAck {
	ack := &pb.InstructionAck{SchemaVersion: 1, InstructionId: in.GetInstructionId()}
	i, ok := r.contactIndex(in.GetContactId())
	if !ok {
		return ack
	}
	now := r.now()
	c := r.contacts[i]
	a := r.agents[in.GetAgentId()]
	c.mu.Lock()
	first := c.rec.Connected == Unset
	answer := first && c.rec.Ended == Unset && !c.hangingUp
	if first {
		c.rec.Connected = now
		c.offerID = strings.TrimSuffix(in.GetInstructionId(), "/connect")
		r.cancel(c.patience)
	}
	if answer && a != nil {
		c.handle = r.after(r.sc.Real(r.handle[a.group].Draw(c.rand)), func() { r.hangUp(i) })
	}
	c.mu.Unlock()
	if answer {
		if err := r.carrier.PublishMedia(in.GetQueue(), in.GetContactId(), &pb.MediaEvent{SchemaVersion: 1, Kind: pb.MediaKind_MEDIA_KIND_ANSWERED}); err != nil {
			r.fail("media answered: " + err.Error())
		}
	}
	return ack
}

// hangUp ends the call: abandoned if still waiting, handled if connected.
func (r *runner) hangUp(i int) {
	c := r.contacts[i]
	c.mu.Lock()
	if c.hangingUp || c.rec.Ended != Unset {
		c.mu.Unlock()
		return
	}
	c.hangingUp = true
	c.rec.HangUpSent = r.now()
	r.cancel(c.patience)
	r.cancel(c.handle)
	queue, id := c.rec.Queue, c.rec.ID
	c.mu.Unlock()
	var reply *pb.MediaEventReply
	err := r.request("hang-up", func(ctx context.Context) error {
		var err error
		reply, err = r.carrier.Media(ctx, queue, id, &pb.MediaEvent{SchemaVersion: 1, Kind: pb.MediaKind_MEDIA_KIND_HUNG_UP})
		return err
	})
	now := r.now()
	c.mu.Lock()
	if err != nil {
		c.hangingUp = false
		c.mu.Unlock()
		return
	}
	c.rec.Ended = now
	abandoned := reply.GetState() == pb.ContactState_CONTACT_STATE_ABANDONED
	if abandoned {
		c.rec.Outcome = check.Abandoned
	} else {
		c.rec.Outcome = check.Handled
	}
	agentID, offerID := c.rec.AgentID, c.offerID
	c.mu.Unlock()
	r.ended.Add(1)
	if abandoned {
		r.abandoned.Add(1)
		return
	}
	if a := r.agents[agentID]; a != nil && offerID != "" {
		a.contactEnded(offerID, now)
	}
}

func (r *runner) contactIndex(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, r.cfg.RunID+"-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= len(r.contacts) {
		return 0, false
	}
	return i, true
}

// onNotice dispatches an agent's notice, dropping any from a deposed
// owner (a lower term than already seen for the shard).
func (r *runner) onNotice(agentID string, n *pb.AgentNotice) {
	a := r.agents[agentID]
	if a == nil {
		return
	}
	now := r.now()
	if f := n.GetFence(); f != nil {
		r.mu.Lock()
		stale := f.GetTerm() < r.fences[f.GetShard()]
		if !stale {
			r.fences[f.GetShard()] = f.GetTerm()
		}
		r.mu.Unlock()
		if stale {
			return
		}
	}
	switch n.GetKind() {
	case pb.NoticeKind_NOTICE_KIND_OFFER:
		a.onOffer(n.GetOffer(), now)
	case pb.NoticeKind_NOTICE_KIND_OFFER_WITHDRAWN:
		a.release(n.GetOffer().GetOfferId(), now)
	case pb.NoticeKind_NOTICE_KIND_OFFER_EXPIRED:
		a.onExpired(n.GetOffer().GetOfferId(), n.GetAgent(), now)
	case pb.NoticeKind_NOTICE_KIND_STATE:
		a.onState(n.GetAgent(), now)
	}
}

// drain waits, after the last arrival, for every accepted contact to end,
// at most the scenario's drain time; then the carriers hang up on the rest.
func (r *runner) drain() {
	deadline := time.Now().Add(r.sc.Real(r.sc.Drain.D()))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for r.open() > 0 && time.Now().Before(deadline) && r.ctx.Err() == nil {
		<-tick.C
	}
	for i, c := range r.contacts {
		c.mu.Lock()
		open := c.rec.Status == Queued && c.rec.Ended == Unset
		c.mu.Unlock()
		if open {
			r.timers.Add(1)
			go func() {
				defer r.timers.Done()
				r.hangUp(i)
			}()
		}
	}
}

// open counts arrivals in flight plus contacts accepted and not yet ended.
func (r *runner) open() int64 {
	return r.sent.Load() - r.answered.Load() + r.queued.Load() - r.ended.Load()
}

// settle waits for the last hang-ups, wrap-ups and terminal events, at most
// cfg.Settle.
func (r *runner) settle() {
	deadline := time.Now().Add(r.cfg.Settle)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if r.open() == 0 && r.agentsIdle() && r.obs.terminals.Load() >= r.queued.Load() {
			break
		}
		<-tick.C
	}
	for _, nc := range r.conns {
		_ = nc.Flush()
	}
}

func (r *runner) agentsIdle() bool {
	for _, a := range r.agents {
		a.mu.Lock()
		n := len(a.slots)
		a.mu.Unlock()
		if n > 0 {
			return false
		}
	}
	return true
}

// collect copies every record into res.
func (r *runner) collect(res *Result) {
	res.Contacts = make([]ContactRecord, len(r.contacts))
	for i, c := range r.contacts {
		c.mu.Lock()
		res.Contacts[i] = c.rec
		c.mu.Unlock()
		rec := &res.Contacts[i]
		if rec.Sent == Unset {
			continue
		}
		res.Trace.Contacts = append(res.Trace.Contacts, check.Contact{
			ID: rec.ID, Queue: rec.Queue, Channel: rec.Channel, Priority: rec.Priority,
			Accepted: rec.Status == Queued, Outcome: rec.Outcome, AcceptedBy: rec.AcceptedBy,
		})
	}
	r.mu.Lock()
	res.Offers = r.offers
	res.Errors = r.errs
	r.mu.Unlock()
	queuedInstants(res)
	for _, o := range res.Offers {
		res.Trace.Offers = append(res.Trace.Offers, check.Offer{OfferID: o.OfferID, ContactID: res.Contacts[o.Contact].ID, AgentID: o.AgentID})
	}
	res.Trace.Events, res.Trace.Gaps = r.obs.take()
	if res.SameClock {
		// Commit times are wall clock; the run's instants are monotonic
		// from r.start, whose wall reading is the origin.
		origin := r.start.UnixNano()
		at := func(ns int64) time.Duration {
			if ns == 0 {
				return Unset
			}
			return time.Duration(ns - origin)
		}
		inst := check.OfferInstants(&res.Trace, check.Model{Routing: r.rc})
		for i := range res.Offers {
			o := &res.Offers[i]
			o.QueuedCommit, o.FreeCommit, o.EligibleCommit = Unset, Unset, Unset
			if in, ok := inst[o.OfferID]; ok {
				o.QueuedCommit, o.FreeCommit, o.EligibleCommit = at(in.Queued), at(in.Free), at(in.Eligible)
			}
		}
	}
}

// queuedInstants fills in each offer's queued instant: the arrival reply
// for a contact's first offer, the previous offer's release for the next.
func queuedInstants(res *Result) {
	byContact := map[int][]int{}
	for i, o := range res.Offers {
		byContact[o.Contact] = append(byContact[o.Contact], i)
	}
	for c, idx := range byContact {
		sort.Slice(idx, func(a, b int) bool { return res.Offers[idx[a]].Received < res.Offers[idx[b]].Received })
		q := res.Contacts[c].Replied
		for _, i := range idx {
			res.Offers[i].QueuedAt = q
			q = res.Offers[i].Released
		}
	}
}

// recordOffer keeps an offer's record; replied is the contact's arrival
// reply instant, for the live latency of first offers.
func (r *runner) recordOffer(o OfferRecord, first bool, replied time.Duration) {
	r.offered.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offerIdx[o.OfferID] = len(r.offers)
	r.offers = append(r.offers, o)
	if first && replied != Unset && o.FreeAt != Unset {
		if l := o.Received - max(replied, o.FreeAt); l >= 0 {
			_ = r.liveLat.RecordValue(max(1, int64(l/time.Microsecond)))
		}
	}
}

// offerReleased notes when an offer's agent saw it go back in line.
func (r *runner) offerReleased(offerID string, now time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.offerIdx[offerID]; ok && r.offers[i].Released == Unset {
		r.offers[i].Released = now
	}
}

// progress prints a status line on cfg.Progress once a second until the
// returned function is called.
func (r *runner) progress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastSent, lastOffered int64
		for {
			select {
			case <-done:
				fmt.Fprintln(r.cfg.Progress)
				return
			case <-tick.C:
			}
			now := r.now()
			sent, offered := r.sent.Load(), r.offered.Load()
			r.mu.Lock()
			p50, p99 := r.liveLat.ValueAtQuantile(50), r.liveLat.ValueAtQuantile(99)
			r.liveLat.Reset()
			r.mu.Unlock()
			fmt.Fprintf(r.cfg.Progress, "\r%6.0fs real (%s scenario)  sent %5d/s  late %d  offers %5d/s  routing p50 %s p99 %s  queued %d ended %d abandoned %d   ",
				now.Seconds(), time.Duration(float64(now)*r.sc.TimeScale).Truncate(time.Second), sent-lastSent, r.late.Load(), offered-lastOffered,
				time.Duration(p50)*time.Microsecond, time.Duration(p99)*time.Microsecond, r.queued.Load(), r.ended.Load(), r.abandoned.Load())
			lastSent, lastOffered = sent, offered
		}
	}()
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}
