package sim

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/client"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

type slotState uint8

const (
	slotOffered slotState = iota
	slotBusy
	slotWrapUp
)

type agentSlot struct {
	offerID  string
	contact  int
	ch       pb.Channel
	state    slotState
	fence    *pb.Fence
	received time.Duration
	decision Decision
	answered bool // the desktop has sent its answer
	wrapping bool // wrap-up timer started
}

// agent is one simulated desktop. It keeps its own view of its slots, the
// same rules as the node (capacity per channel; offered and busy work
// blocks other channels, wrap-up holds its slot and blocks nothing), to
// know since when it has been free on each channel.
type agent struct {
	r     *runner
	id    string
	group int

	mu       sync.Mutex
	rand     *rand.Rand
	ready    bool
	slots    map[string]*agentSlot
	capacity [shard.NumChannels]uint32
	blocks   [shard.NumChannels]uint8
	free     [shard.NumChannels]bool
	since    [shard.NumChannels]time.Duration
}

func (a *agent) init(p *pb.AgentProfile) {
	a.capacity, a.blocks = shard.Capacity(p), shard.Blocks(p)
}

// update recomputes the free channels after a change at now; a channel that
// becomes free is free since now. Call with a.mu held.
func (a *agent) update(now time.Duration) {
	var used [shard.NumChannels]uint32
	var blocked uint8
	for _, s := range a.slots {
		used[s.ch]++
		if s.state != slotWrapUp {
			blocked |= a.blocks[s.ch]
		}
	}
	for ch := 1; ch < shard.NumChannels; ch++ {
		free := a.ready && blocked&(1<<ch) == 0 && used[ch] < a.capacity[ch]
		if free && !a.free[ch] {
			a.since[ch] = now
		}
		a.free[ch] = free
	}
}

// shift moves the agent's instants when the run's clock is reset.
func (a *agent) shift(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.since {
		a.since[ch] -= d
	}
}

func (a *agent) command(kind string, cmd *pb.AgentCommand) (*pb.AgentCommandReply, error) {
	var reply *pb.AgentCommandReply
	err := a.r.request(kind, func(ctx context.Context) error {
		var err error
		reply, err = a.r.desktops.Agent(ctx, a.id, cmd)
		return err
	})
	return reply, err
}

func isCode(err error, code pb.ErrorCode) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Code == code
}

// login logs the agent in, ready. An agent already logged in (a cluster
// left running by an earlier run) is made ready instead.
func (a *agent) login() error {
	reply, err := a.r.desktops.Agent(context.Background(), a.id, &pb.AgentCommand{SchemaVersion: 1, Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_LOGIN, Ready: true})
	if isCode(err, pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION) {
		if reply.GetAgent().GetPresence() != pb.AgentPresence_AGENT_PRESENCE_AVAILABLE {
			_, err = a.r.desktops.Agent(context.Background(), a.id, &pb.AgentCommand{SchemaVersion: 1, Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_READY})
		} else {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	now := a.r.now()
	a.mu.Lock()
	a.ready = true
	a.update(now)
	a.mu.Unlock()
	return nil
}

// onOffer records the offer and answers it after the think time: accept,
// or reject or ignore (miss) with the group's probabilities. A copy of an
// offer already held (resent by a new owner) is answered again with its new
// fence.
func (a *agent) onOffer(o *pb.Offer, now time.Duration) {
	i, ok := a.r.contactIndex(o.GetContactId())
	if !ok {
		return
	}
	g := a.r.sc.Agents[a.group]
	a.mu.Lock()
	if s, held := a.slots[o.GetOfferId()]; held {
		s.fence = o.GetFence()
		resend := s.answered && s.state == slotOffered
		a.mu.Unlock()
		if resend {
			a.answer(o.GetOfferId())
		}
		return
	}
	rec := OfferRecord{OfferID: o.GetOfferId(), Contact: i, AgentID: a.id, Channel: o.GetChannel(), Received: now, QueuedAt: Unset, FreeAt: Unset, Released: Unset}
	if ch := o.GetChannel(); ch > 0 && int(ch) < shard.NumChannels && a.free[ch] {
		rec.FreeAt = a.since[ch]
	}
	switch u := a.rand.Float64(); {
	case u < g.PReject:
		rec.Decision = Reject
	case u < g.PReject+g.PMiss:
		rec.Decision = Miss
	}
	think := a.r.sc.Real(a.r.think[a.group].Draw(a.rand))
	a.slots[o.GetOfferId()] = &agentSlot{offerID: o.GetOfferId(), contact: i, ch: o.GetChannel(), fence: o.GetFence(), received: now, decision: rec.Decision}
	a.update(now)
	a.mu.Unlock()

	c := a.r.contacts[i]
	c.mu.Lock()
	first, replied := c.rec.Offers == 0, c.rec.Replied
	c.rec.Offers++
	c.mu.Unlock()
	a.r.recordOffer(rec, first, replied)
	if rec.Decision == Miss {
		return // the offer expires; OFFER_EXPIRED frees the slot
	}
	a.r.after(think, func() { a.answer(o.GetOfferId()) })
}

// answer sends the slot's decision (accept or reject), echoing its fence.
func (a *agent) answer(offerID string) {
	a.mu.Lock()
	s, ok := a.slots[offerID]
	if !ok || s.state != slotOffered {
		a.mu.Unlock()
		return
	}
	s.answered = true
	cmd := &pb.AgentCommand{SchemaVersion: 1, OfferId: offerID, Fence: s.fence, Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT}
	kind := "accept"
	if s.decision == Reject {
		cmd.Kind, kind = pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT, "reject"
	}
	contactIdx, received := s.contact, s.received
	a.mu.Unlock()

	_, err := a.command(kind, cmd)
	now := a.r.now()
	switch {
	case isCode(err, pb.ErrorCode_ERROR_CODE_STALE_TERM):
		return // a new owner resends the offer; answer that
	case isCode(err, pb.ErrorCode_ERROR_CODE_UNKNOWN_OFFER), err != nil && s.decision == Reject:
		a.release(offerID, now)
		return
	case err != nil:
		return // the offer expires or is withdrawn; a notice frees the slot
	}
	if s.decision == Reject {
		a.r.offerReleased(offerID, now)
		a.release(offerID, now)
		return
	}
	c := a.r.contacts[contactIdx]
	a.mu.Lock()
	if s, ok := a.slots[offerID]; ok && s.state == slotOffered {
		s.state = slotBusy
		a.update(now)
	}
	a.mu.Unlock()
	c.mu.Lock()
	if !slices.Contains(c.rec.AcceptedBy, a.id) {
		c.rec.AcceptedBy = append(c.rec.AcceptedBy, a.id)
	}
	c.rec.AgentID = a.id
	c.rec.Offered = received
	c.mu.Unlock()
}

// release frees a slot: rejected, withdrawn, expired or done.
func (a *agent) release(offerID string, now time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.slots[offerID]; !ok {
		return
	}
	delete(a.slots, offerID)
	a.update(now)
}

// onExpired frees the slot of a missed offer; the contact is back in line
// and the agent, made not ready by the queue, goes ready again at once.
func (a *agent) onExpired(offerID string, view *pb.AgentView, now time.Duration) {
	a.r.offerReleased(offerID, now)
	if view.GetPresence() == pb.AgentPresence_AGENT_PRESENCE_AVAILABLE {
		a.release(offerID, now)
		return
	}
	a.mu.Lock()
	delete(a.slots, offerID)
	a.ready = false
	a.update(now)
	a.mu.Unlock()
	a.r.timers.Add(1)
	go func() {
		defer a.r.timers.Done()
		_, err := a.command("ready", &pb.AgentCommand{SchemaVersion: 1, Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_READY})
		if err != nil && !isCode(err, pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION) {
			return
		}
		a.mu.Lock()
		a.ready = true
		a.update(a.r.now())
		a.mu.Unlock()
	}()
}

// contactEnded starts wrap-up for a contact the carrier hung up (or frees
// the slot at once if the queue has no wrap-up).
func (a *agent) contactEnded(offerID string, now time.Duration) {
	a.mu.Lock()
	s, ok := a.slots[offerID]
	if !ok || s.wrapping {
		a.mu.Unlock()
		return
	}
	queue := a.r.contacts[s.contact].rec.Queue
	q, _ := a.r.rc.Queue(queue)
	if q == nil || q.WrapUp <= 0 {
		a.mu.Unlock()
		a.release(offerID, now)
		return
	}
	s.state, s.wrapping = slotWrapUp, true
	a.update(now)
	wrap := a.r.sc.Real(a.r.wrapUp[a.group].Draw(a.rand))
	a.mu.Unlock()
	a.r.after(wrap, func() {
		if _, err := a.command("wrap-up done", &pb.AgentCommand{SchemaVersion: 1, Kind: pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE, OfferId: offerID}); err == nil {
			a.release(offerID, a.r.now())
		}
	})
}

// onState reconciles the agent's own view with a STATE notice: busy work
// the node put in wrap-up (the customer hung up) starts the agent's
// wrap-up; busy or wrap-up work the node no longer lists is over (the
// wrap-up time box ran out, or a queue without wrap-up ended it). Offered
// slots are left to the offer notices and command replies.
func (a *agent) onState(view *pb.AgentView, now time.Duration) {
	listed := map[string]pb.SlotState{}
	for _, s := range view.GetSlots() {
		listed[s.GetOfferId()] = s.GetState()
	}
	a.mu.Lock()
	var ended, gone []string
	for id, s := range a.slots {
		if s.state == slotOffered {
			continue
		}
		st, ok := listed[id]
		switch {
		case !ok:
			gone = append(gone, id)
		case st == pb.SlotState_SLOT_STATE_WRAP_UP && !s.wrapping:
			ended = append(ended, id)
		}
	}
	a.mu.Unlock()
	for _, id := range gone {
		a.release(id, now)
	}
	for _, id := range ended {
		a.contactEnded(id, now)
	}
}
