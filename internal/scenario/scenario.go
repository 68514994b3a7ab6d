// Package scenario holds routing scenarios written against the contract
// only — replies, agent notices, routing instructions and the event stream —
// so the same scenarios run against the engine directly (actors tests) and
// against a node over a real NATS server (node tests).
package scenario

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/customer"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// WaitLimit bounds every wait for a reply, notice or state.
const WaitLimit = 10 * time.Second

// Driver is one way of reaching a routing engine. Every call returns the
// reply (errors inside it); a transport failure fails the test.
type Driver interface {
	Arrive(t testing.TB, a *pb.ContactArrival) *pb.ArrivalReply
	Agent(t testing.TB, agentID string, c *pb.AgentCommand) *pb.AgentCommandReply
	Media(t testing.TB, queue string, ev *pb.MediaEvent) *pb.MediaEventReply
	QueueStatus(t testing.TB, queue string) *pb.QueueStatusReply
	// Notices delivers every notice for agentID, in order.
	Notices(agentID string) <-chan *pb.AgentNotice
	// Instructions delivers every routing instruction (already acked).
	Instructions() <-chan *pb.RoutingInstruction
	// Events is fed every committed event.
	Events() *Tracker
}

// Options vary what a Factory builds.
type Options struct {
	// Customers is the customer-context store the engine reads; nil means
	// none.
	Customers customer.Store
}

// Factory builds a fresh engine (or node) with routing configuration rc.
type Factory func(t *testing.T, rc *pb.RoutingConfig, opts Options) Driver

// Tracker keeps every contact and agent event seen.
type Tracker struct {
	mu       sync.Mutex
	contacts map[string][]*pb.ContactEvent
	agents   map[string][]*pb.AgentEvent
	queues   map[string][]*pb.QueueEvent
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{contacts: make(map[string][]*pb.ContactEvent), agents: make(map[string][]*pb.AgentEvent), queues: make(map[string][]*pb.QueueEvent)}
}

// Add records events (in commit order per shard).
func (tr *Tracker) Add(evs []*pb.Event) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, e := range evs {
		if c := e.GetContact(); c != nil {
			tr.contacts[c.GetContactId()] = append(tr.contacts[c.GetContactId()], c)
		}
		if a := e.GetAgent(); a != nil {
			tr.agents[a.GetAgentId()] = append(tr.agents[a.GetAgentId()], a)
		}
		if q := e.GetQueue(); q != nil {
			tr.queues[q.GetQueue()] = append(tr.queues[q.GetQueue()], q)
		}
	}
}

// Contact returns the contact's events so far.
func (tr *Tracker) Contact(id string) []*pb.ContactEvent {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]*pb.ContactEvent(nil), tr.contacts[id]...)
}

// Queue returns the queue's events so far.
func (tr *Tracker) Queue(name string) []*pb.QueueEvent {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]*pb.QueueEvent(nil), tr.queues[name]...)
}

// Agent returns the agent's events so far.
func (tr *Tracker) Agent(id string) []*pb.AgentEvent {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]*pb.AgentEvent(nil), tr.agents[id]...)
}

// S is one scenario run: a driver and the test.
type S struct {
	*testing.T
	D Driver
}

// Scenario is a named scenario.
type Scenario struct {
	Name string
	Run  func(t *testing.T, f Factory)
}

// RunAll runs every scenario against f.
func RunAll(t *testing.T, f Factory) {
	for _, s := range All {
		t.Run(s.Name, func(t *testing.T) { s.Run(t, f) })
	}
}

// New builds a scenario run.
func New(t *testing.T, f Factory, rc *pb.RoutingConfig, opts Options) *S {
	return &S{T: t, D: f(t, rc, opts)}
}

// Cmd sends a desktop command and returns the reply.
func (s *S) Cmd(agent string, kind pb.AgentCommandKind, offer string, mods ...func(*pb.AgentCommand)) *pb.AgentCommandReply {
	s.Helper()
	c := &pb.AgentCommand{Kind: kind, OfferId: offer}
	for _, m := range mods {
		m(c)
	}
	return s.D.Agent(s, agent, c)
}

// MustCmd is Cmd that fails the test on an error reply.
func (s *S) MustCmd(agent string, kind pb.AgentCommandKind, offer string, mods ...func(*pb.AgentCommand)) *pb.AgentCommandReply {
	s.Helper()
	r := s.Cmd(agent, kind, offer, mods...)
	if r.GetError() != nil {
		s.Fatalf("agent %s %v %s: %v", agent, kind, offer, r.GetError())
	}
	return r
}

// Login logs agents in, ready.
func (s *S) Login(ids ...string) {
	s.Helper()
	for _, id := range ids {
		s.MustCmd(id, pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN, "", func(c *pb.AgentCommand) { c.Ready = true })
	}
}

// State returns an agent's state.
func (s *S) State(agent string) pb.AgentState {
	s.Helper()
	return s.MustCmd(agent, pb.AgentCommandKind_AGENT_COMMAND_KIND_STATUS, "").GetAgent().GetState()
}

// Arrive sends an arrival and returns the reply.
func (s *S) Arrive(id, queue string, ch pb.Channel, mods ...func(*pb.ContactArrival)) *pb.ArrivalReply {
	s.Helper()
	a := &pb.ContactArrival{ContactId: id, Queue: queue, Channel: ch}
	for _, m := range mods {
		m(a)
	}
	return s.D.Arrive(s, a)
}

// MustArrive is Arrive that fails unless the contact is queued.
func (s *S) MustArrive(id, queue string, ch pb.Channel, mods ...func(*pb.ContactArrival)) *pb.ArrivalReply {
	s.Helper()
	r := s.Arrive(id, queue, ch, mods...)
	if r.GetError() != nil || r.GetStatus() != pb.ArrivalStatus_ARRIVAL_STATUS_QUEUED {
		s.Fatalf("arrival %s: status %v error %v", id, r.GetStatus(), r.GetError())
	}
	return r
}

// Media sends a media event.
func (s *S) Media(queue, id string, k pb.MediaKind) *pb.MediaEventReply {
	s.Helper()
	return s.D.Media(s, queue, &pb.MediaEvent{ContactId: id, Kind: k})
}

// Notice waits for the agent's next notice of kind k, skipping others.
func (s *S) Notice(agent string, k pb.NoticeKind) *pb.AgentNotice {
	s.Helper()
	deadline := time.After(WaitLimit)
	for {
		select {
		case n := <-s.D.Notices(agent):
			if n.GetKind() == k {
				return n
			}
		case <-deadline:
			s.Fatalf("agent %s got no %v notice within %v", agent, k, WaitLimit)
			return nil
		}
	}
}

// Offer waits for the agent's next offer.
func (s *S) Offer(agent string) *pb.Offer {
	s.Helper()
	return s.Notice(agent, pb.NoticeKind_NOTICE_KIND_OFFER).GetOffer()
}

// NoNotice asserts the agent gets no notice of kind k within d.
func (s *S) NoNotice(agent string, k pb.NoticeKind, d time.Duration) {
	s.Helper()
	deadline := time.After(d)
	for {
		select {
		case n := <-s.D.Notices(agent):
			if n.GetKind() == k {
				s.Fatalf("agent %s got an unexpected %v notice: %v", agent, k, n)
			}
		case <-deadline:
			return
		}
	}
}

// Instruction waits for the next routing instruction.
func (s *S) Instruction() *pb.RoutingInstruction {
	s.Helper()
	select {
	case in := <-s.D.Instructions():
		return in
	case <-time.After(WaitLimit):
		s.Fatalf("no routing instruction within %v", WaitLimit)
	}
	return nil
}

// Accept accepts an offer, echoing its fence.
func (s *S) Accept(agent string, o *pb.Offer) {
	s.Helper()
	s.MustCmd(agent, pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, o.GetOfferId(), func(c *pb.AgentCommand) { c.Fence = o.GetFence() })
}

// WaitFor polls cond until it holds or WaitLimit passes.
func (s *S) WaitFor(what string, cond func() bool) {
	s.Helper()
	WaitFor(s, what, cond)
}

// WaitFor polls cond until it holds or WaitLimit passes.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Last returns the contact's latest event, or nil.
func (s *S) Last(id string) *pb.ContactEvent {
	evs := s.D.Events().Contact(id)
	if len(evs) == 0 {
		return nil
	}
	return evs[len(evs)-1]
}

// WaitContact waits until the contact's latest event says state.
func (s *S) WaitContact(id string, state pb.ContactState) *pb.ContactEvent {
	s.Helper()
	var last *pb.ContactEvent
	s.WaitFor(fmt.Sprintf("contact %s to be %v", id, state), func() bool {
		last = s.Last(id)
		return last != nil && last.GetState() == state
	})
	return last
}

// WaitAgent waits until the agent's state is st.
func (s *S) WaitAgent(agent string, st pb.AgentState) {
	s.Helper()
	s.WaitFor(fmt.Sprintf("agent %s to be %v", agent, st), func() bool { return s.State(agent) == st })
}

// Finish hangs a connected contact up and ends the agent's wrap-up.
func (s *S) Finish(queue, agent string, o *pb.Offer) {
	s.Helper()
	s.Media(queue, o.GetContactId(), pb.MediaKind_MEDIA_KIND_HUNG_UP)
	s.WaitContact(o.GetContactId(), pb.ContactState_CONTACT_STATE_WRAP_UP)
	s.WaitAgent(agent, pb.AgentState_AGENT_STATE_WRAP_UP)
	s.MustCmd(agent, pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, o.GetOfferId())
	s.WaitContact(o.GetContactId(), pb.ContactState_CONTACT_STATE_DONE)
}
