package shard

import (
	"sync"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// CommandVersion is the command schema version this state machine applies.
const CommandVersion = 1

// DefaultRetention is how long ended contacts are remembered, so a carrier
// retrying an arrival after the contact ended is answered, not re-queued.
const DefaultRetention = int64(15 * 60 * 1e9)

// Result is what applying one command produced.
type Result struct {
	// Err is an *Error when the command was refused; nothing changed then.
	Err error
	// Duplicate: the command's effect was already in place (a retry); nothing
	// changed and no events were produced.
	Duplicate bool
	// The record the command was about, after the command, when it has one.
	Contact    Contact
	HasContact bool
	Agent      Agent
	HasAgent   bool
	// Events describe the change for observers.
	Events []*pb.Event
}

type ended struct {
	id  string
	at  int64
	seq uint64
}

// State is one shard's replicated state. It is safe for concurrent use: Apply
// takes the write lock, readers the read lock.
type State struct {
	mu        sync.RWMutex
	shard     uint32
	retention int64
	contacts  map[string]*Contact
	agents    map[string]*Agent
	nextSeq   uint64
	// lastEvent is the position of the last event committed
	// (pb.Event.position).
	lastEvent uint64
	// ended is a min-heap of terminal contacts by (end time, seq), for
	// retention.
	ended []ended
}

// New returns an empty state for shard. retention <= 0 means DefaultRetention.
func New(shard uint32, retention int64) *State {
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &State{
		shard:     shard,
		retention: retention,
		contacts:  make(map[string]*Contact),
		agents:    make(map[string]*Agent),
		nextSeq:   1,
	}
}

// StartSeqAt makes an empty state number its contacts and its events from
// first. A state that is not replicated (a single node's) starts at a value
// that grows with every start, so offer ids, which embed the sequence,
// never repeat, and event positions only grow.
func (s *State) StartSeqAt(first uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.contacts) == 0 && s.nextSeq <= 1 && s.lastEvent == 0 && first > 0 {
		s.nextSeq = first
		s.lastEvent = first - 1
	}
}

// Shard returns the shard number.
func (s *State) Shard() uint32 { return s.shard }

// Contact returns a copy of the contact's record.
func (s *State) Contact(id string) (Contact, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.contacts[id]
	if !ok {
		return Contact{}, false
	}
	return *c, true
}

// Agent returns a copy of the agent's record.
func (s *State) Agent(id string) (Agent, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.agents[id]
	if !ok {
		return Agent{}, false
	}
	return *a, true
}

// Contacts calls fn with a copy of every contact record, in no order, under
// the read lock: fn must not call back into s.
func (s *State) Contacts(fn func(Contact)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.contacts {
		fn(*c)
	}
}

// Agents calls fn with a copy of every agent record, like Contacts.
func (s *State) Agents(fn func(Agent)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, a := range s.agents {
		fn(*a)
	}
}

// Len returns the number of contact and agent records held.
func (s *State) Len() (contacts, agents int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.contacts), len(s.agents)
}

// Apply applies one command and returns what it did. It never panics on
// bad input: malformed or illegal commands return Result.Err and change
// nothing.
func (s *State) Apply(cmd *pb.Command) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.number(s.apply(cmd))
}

// ApplyBatch applies commands in order under one lock acquisition.
func (s *State) ApplyBatch(cmds []*pb.Command, results []Result) []Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cmd := range cmds {
		results = append(results, s.number(s.apply(cmd)))
	}
	return results
}

// number gives r's events their positions.
func (s *State) number(r Result) Result {
	for _, ev := range r.Events {
		s.lastEvent++
		ev.Position = s.lastEvent
	}
	return r
}

func (s *State) apply(cmd *pb.Command) Result {
	if cmd == nil {
		return Result{Err: errorf(ErrInvalidCommand, "shard: nil command")}
	}
	if cmd.GetVersion() != CommandVersion {
		return Result{Err: errorf(ErrUnsupportedVersion, "shard: command version %d not supported (want %d)", cmd.GetVersion(), CommandVersion)}
	}
	at := cmd.GetAt()
	switch k := cmd.GetKind().(type) {
	case *pb.Command_ContactArrive:
		return s.contactArrive(at, k.ContactArrive)
	case *pb.Command_ContactLock:
		return s.contactLock(at, k.ContactLock)
	case *pb.Command_ContactUnlock:
		return s.contactUnlock(at, k.ContactUnlock)
	case *pb.Command_ContactConnect:
		return s.contactConnect(at, k.ContactConnect)
	case *pb.Command_ContactEnd:
		return s.contactEnd(at, k.ContactEnd)
	case *pb.Command_ContactDone:
		return s.contactDone(at, k.ContactDone)
	case *pb.Command_ContactMedia:
		return s.contactMedia(at, k.ContactMedia)
	case *pb.Command_AgentLogin:
		return s.agentLogin(at, k.AgentLogin)
	case *pb.Command_AgentLogout:
		return s.agentLogout(at, k.AgentLogout)
	case *pb.Command_AgentPresence:
		return s.agentPresence(at, k.AgentPresence)
	case *pb.Command_AgentReserve:
		return s.agentReserve(at, k.AgentReserve)
	case *pb.Command_AgentOfferOutcome:
		return s.agentOfferOutcome(at, k.AgentOfferOutcome)
	case *pb.Command_AgentContactEnded:
		return s.agentContactEnded(at, k.AgentContactEnded)
	case *pb.Command_AgentWrapUpDone:
		return s.agentWrapUpDone(at, k.AgentWrapUpDone)
	}
	return Result{Err: errorf(ErrInvalidCommand, "shard: command has no kind")}
}
