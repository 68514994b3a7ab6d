package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/client"
	"github.com/tsunagu/tsunagu/gateway"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// sim plays the carrier and the agents' desktops through the public
// contract, and checks what tsunagu asks of them: no contact connected to
// two agents, no agent handling two calls (voice capacity 1), every
// accepted contact connected and ended.
type sim struct {
	t *testing.T
	c *client.Client

	mu         sync.Mutex
	accepted   map[string]bool
	connected  map[string]string // contact → agent
	ended      map[string]bool
	active     map[string]int    // agent → calls in progress
	onCall     map[string]string // agent → its latest call
	seenInstr  map[string]bool
	violations []string
	// firstConnectAfter records the first connect instruction after a mark
	// (failover timing).
	mark       time.Time
	firstAfter time.Time
	ignore     map[string]bool // agents that let offers time out
	// trace keeps, per agent and contact id, what the sim saw of it
	// (events, notices, instructions), printed with a violation.
	trace map[string][]string
	start time.Time
}

func newSim(t *testing.T, nc *nats.Conn, agents []string) *sim {
	s := &sim{
		t: t, c: client.New(nc, gateway.Protobuf),
		accepted: map[string]bool{}, connected: map[string]string{}, ended: map[string]bool{},
		active: map[string]int{}, onCall: map[string]string{}, seenInstr: map[string]bool{}, ignore: map[string]bool{},
		trace: map[string][]string{}, start: time.Now(),
	}
	if _, err := s.c.Events(s.onEvents); err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.ServeInstructions(s.c.Carrier, s.onInstruction); err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.AllNotices(s.onNotice); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		s.retry(fmt.Sprintf("login %s", a), func(ctx context.Context) error {
			_, err := s.c.Agent(ctx, a, &pb.AgentCommand{SchemaVersion: 1, Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN, Ready: true})
			return err
		})
	}
	return s
}

// retry calls fn until it succeeds or fails with something other than
// "unavailable" or a timeout (what a carrier retries), for up to 30s.
func (s *sim) retry(what string, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := fn(ctx)
		cancel()
		var ce *client.Error
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ce) && ce.Code != pb.ErrorCode_ERROR_CODE_UNAVAILABLE:
			return err
		case time.Now().After(deadline):
			s.violate("%s: still failing after 30s: %v", what, err)
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *sim) violate(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

func (s *sim) arrive(id string) {
	err := s.retry("arrive "+id, func(ctx context.Context) error {
		_, err := s.c.Arrive(ctx, &pb.ContactArrival{SchemaVersion: 1, ContactId: id, Queue: "q", Channel: pb.Channel_CHANNEL_VOICE})
		return err
	})
	if err == nil {
		s.mu.Lock()
		s.accepted[id] = true
		s.mu.Unlock()
	}
}

// note adds a line to the traces of ids; s.mu is held.
func (s *sim) note(line string, ids ...string) {
	line = fmt.Sprintf("%8.3fs %s", time.Since(s.start).Seconds(), line)
	for _, id := range ids {
		if id != "" {
			s.trace[id] = append(s.trace[id], line)
		}
	}
}

func (s *sim) onEvents(b *pb.EventBatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range b.GetEvents() {
		switch {
		case ev.GetContact() != nil:
			c := ev.GetContact()
			s.note(fmt.Sprintf("event shard %d term %d: contact %s %v agent %s offer %s %s", b.GetShard(), b.GetTerm(), c.GetContactId(), c.GetState(), c.GetAgentId(), c.GetOfferId(), c.GetReason()), c.GetContactId(), c.GetAgentId())
		case ev.GetAgent() != nil:
			a := ev.GetAgent()
			s.note(fmt.Sprintf("event shard %d term %d: agent %s %v %v slot %s/%s %v", b.GetShard(), b.GetTerm(), a.GetAgentId(), a.GetState(), a.GetPresence(), a.GetOfferId(), a.GetContactId(), a.GetSlotState()), a.GetAgentId(), a.GetContactId())
		}
	}
}

// traceOf returns the trace of ids, one per line; s.mu is held.
func (s *sim) traceOf(ids ...string) string {
	var b []byte
	for _, id := range ids {
		b = fmt.Appendf(b, "--- %s\n", id)
		for _, l := range s.trace[id] {
			b = fmt.Appendf(b, "%s\n", l)
		}
	}
	return string(b)
}

func (s *sim) onNotice(agent string, n *pb.AgentNotice) {
	s.mu.Lock()
	s.note(fmt.Sprintf("notice %v to %s: offer %s/%s fence %v", n.GetKind(), agent, n.GetOffer().GetOfferId(), n.GetOffer().GetContactId(), n.GetFence()), agent, n.GetOffer().GetContactId())
	s.mu.Unlock()
	if n.GetKind() != pb.NoticeKind_NOTICE_KIND_OFFER {
		return
	}
	s.mu.Lock()
	ignore := s.ignore[agent]
	s.mu.Unlock()
	if ignore {
		return
	}
	offer := n.GetOffer()
	go func() {
		err := s.retry("accept "+offer.GetOfferId(), func(ctx context.Context) error {
			_, err := s.c.Agent(ctx, agent, &pb.AgentCommand{SchemaVersion: 1, Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, OfferId: offer.GetOfferId(), Fence: n.GetFence()})
			return err
		})
		// An offer withdrawn or expired meanwhile is refused: that is the
		// protocol working, not a fault.
		_ = err
	}()
}

func (s *sim) onInstruction(in *pb.RoutingInstruction) *pb.InstructionAck {
	ack := &pb.InstructionAck{SchemaVersion: 1, InstructionId: in.GetInstructionId()}
	if in.GetKind() != pb.InstructionKind_INSTRUCTION_KIND_CONNECT {
		return ack
	}
	contact, agent := in.GetContactId(), in.GetAgentId()
	s.mu.Lock()
	s.note(fmt.Sprintf("instruction %s attempt %d fence %v", in.GetInstructionId(), in.GetAttempt(), in.GetFence()), contact, agent)
	if s.seenInstr[in.GetInstructionId()] {
		s.mu.Unlock()
		return ack // a resend: acknowledged again, carried out once
	}
	s.seenInstr[in.GetInstructionId()] = true
	if !s.mark.IsZero() && s.firstAfter.IsZero() {
		s.firstAfter = time.Now()
	}
	if prev, ok := s.connected[contact]; ok {
		if prev != agent {
			s.violations = append(s.violations, fmt.Sprintf("contact %s connected to %s and then to %s", contact, prev, agent))
		}
		s.mu.Unlock()
		return ack
	}
	s.connected[contact] = agent
	s.active[agent]++
	if s.active[agent] > 1 {
		s.violations = append(s.violations, fmt.Sprintf("agent %s given a second call (%s, instruction %s, fence %v) while on %s\n%s",
			agent, contact, in.GetInstructionId(), in.GetFence(), s.onCall[agent], s.traceOf(agent, contact, s.onCall[agent])))
	}
	s.onCall[agent] = contact
	s.mu.Unlock()
	go s.handle(contact, agent)
	return ack
}

// handle answers the call, talks briefly and hangs up.
func (s *sim) handle(contact, agent string) {
	media := func(kind pb.MediaKind) error {
		return s.retry(fmt.Sprintf("media %v %s", kind, contact), func(ctx context.Context) error {
			_, err := s.c.Media(ctx, "q", contact, &pb.MediaEvent{SchemaVersion: 1, ContactId: contact, Kind: kind})
			return err
		})
	}
	if err := media(pb.MediaKind_MEDIA_KIND_ANSWERED); err != nil {
		s.violate("answer %s: %v", contact, err)
	}
	time.Sleep(100 * time.Millisecond)
	// The agent is free once the hang-up is committed: count it down first
	// so the next offer is not mistaken for a second call.
	s.mu.Lock()
	s.active[agent]--
	s.note("hanging up "+contact, contact, agent)
	s.mu.Unlock()
	if err := media(pb.MediaKind_MEDIA_KIND_HUNG_UP); err != nil {
		s.violate("hang up %s: %v", contact, err)
		return
	}
	s.mu.Lock()
	s.ended[contact] = true
	s.note("hung up "+contact, contact, agent)
	s.mu.Unlock()
}

// waitAllEnded waits until every accepted contact was connected and ended.
func (s *sim) waitAllEnded(d time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s.mu.Lock()
		var open []string
		for id := range s.accepted {
			if !s.ended[id] {
				open = append(open, id)
			}
		}
		s.mu.Unlock()
		if len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d accepted contacts never ended, e.g. %v", len(open), open[:min(5, len(open))])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *sim) check() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.violations {
		s.t.Error(v)
	}
}

func (s *sim) counts() (accepted, connected, ended int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accepted), len(s.connected), len(s.ended)
}

func (s *sim) setMark() {
	s.mu.Lock()
	s.mark, s.firstAfter = time.Now(), time.Time{}
	s.mu.Unlock()
}

func (s *sim) sinceMark() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstAfter.IsZero() {
		return 0, false
	}
	return s.firstAfter.Sub(s.mark), true
}
