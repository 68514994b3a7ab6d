package shard

import (
	"strconv"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
)

// retentionPurgePerApply bounds the work one arrival spends forgetting old
// ended contacts, so apply cost stays flat.
const retentionPurgePerApply = 8

func (s *State) contactResult(c *Contact, ev *pb.Event) Result {
	r := Result{Contact: *c, HasContact: true}
	if ev != nil {
		r.Events = []*pb.Event{ev}
	}
	return r
}

func (s *State) lookupContact(id string) (*Contact, error) {
	if id == "" {
		return nil, errorf(ErrInvalidCommand, "shard: contact_id is empty")
	}
	c, ok := s.contacts[id]
	if !ok {
		return nil, errorf(ErrUnknownContact, "unknown contact %q", id)
	}
	return c, nil
}

func (s *State) contactArrive(at int64, a *pb.ContactArrive) Result {
	switch {
	case a.GetContactId() == "":
		return Result{Err: errorf(ErrInvalidCommand, "shard: contact_id is empty")}
	case a.GetQueue() == "":
		return Result{Err: errorf(ErrInvalidCommand, "shard: contact %q has no queue", a.GetContactId())}
	case !ValidChannel(a.GetChannel()):
		return Result{Err: errorf(ErrInvalidCommand, "shard: contact %q has channel %v", a.GetContactId(), a.GetChannel())}
	}
	if c, ok := s.contacts[a.GetContactId()]; ok {
		if c.Queue() != a.GetQueue() || c.Arrival.GetChannel() != a.GetChannel() {
			return Result{Err: errorf(ErrConflict, "contact %q already exists in queue %q on %v", c.ID(), c.Queue(), c.Arrival.GetChannel())}
		}
		r := s.contactResult(c, nil)
		r.Duplicate = true
		return r
	}
	s.forgetEnded(at)
	arr := a
	if arr.GetArrivedAt() == 0 || arr.GetArrivedAt() > at || arr.GetHoldFor() != "" {
		// The record keeps the arrival; the hold is the contact's state.
		arr = proto.CloneOf(a)
		arr.HoldFor = ""
		if arr.GetArrivedAt() == 0 || arr.GetArrivedAt() > at {
			arr.ArrivedAt = at
		}
	}
	c := &Contact{
		Arrival:    arr,
		Seq:        s.nextSeq,
		State:      pb.ContactState_CONTACT_STATE_QUEUED,
		StateSince: at,
	}
	s.nextSeq++
	s.contacts[c.ID()] = c
	r := s.contactResult(c, s.contactEvent(at, c, ""))
	if agent := a.GetHoldFor(); agent != "" {
		// Held in the same commit: observers see it queued, then reserved
		// for its first offer, at one instant.
		s.lock(at, c, agent, OfferID(c.ID(), s.shard, c.Seq, 1))
		r.Contact = *c
		r.Events = append(r.Events, s.contactEvent(at, c, ""))
	}
	return r
}

// OfferID names the attempt-th hold of a contact. The shard and the
// contact's shard sequence make it unique for ever, even when a carrier
// reuses a contact id in another queue or after the retention.
func OfferID(contactID string, shard uint32, seq uint64, attempt uint32) string {
	return contactID + "#" + strconv.FormatUint(uint64(shard), 10) + "-" + strconv.FormatUint(seq, 10) + "-" + strconv.FormatUint(uint64(attempt), 10)
}

// forgetEnded drops a few contacts that ended longer than the retention
// ago, oldest first by (end time, seq): an order a restored replica rebuilds
// exactly, so every replica forgets the same contacts.
func (s *State) forgetEnded(at int64) {
	for n := 0; n < retentionPurgePerApply && len(s.ended) > 0; n++ {
		e := s.ended[0]
		if at-s.retention <= e.at {
			return
		}
		popEnded(&s.ended)
		if c, ok := s.contacts[e.id]; ok && c.Terminal() && c.EndedAt == e.at {
			delete(s.contacts, e.id)
		}
	}
}

func (s *State) end(at int64, c *Contact, state pb.ContactState) {
	c.State = state
	c.StateSince = at
	c.EndedAt = at
	c.OnHold = false
	pushEnded(&s.ended, ended{id: c.ID(), at: at, seq: c.Seq})
}

func (e ended) before(x ended) bool {
	if e.at != x.at {
		return e.at < x.at
	}
	return e.seq < x.seq
}

func pushEnded(h *[]ended, e ended) {
	s := append(*h, e)
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s[i].before(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
	*h = s
}

func popEnded(h *[]ended) {
	s := *h
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s[r].before(s[l]) {
			m = r
		}
		if !s[m].before(s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
}

func (s *State) contactLock(at int64, l *pb.ContactLock) Result {
	c, err := s.lookupContact(l.GetContactId())
	if err != nil {
		return Result{Err: err}
	}
	if l.GetAgentId() == "" || l.GetOfferId() == "" {
		return Result{Err: errorf(ErrInvalidCommand, "shard: lock of contact %q needs agent_id and offer_id", c.ID())}
	}
	if c.State == pb.ContactState_CONTACT_STATE_RESERVED && c.OfferID == l.GetOfferId() && c.AgentID == l.GetAgentId() {
		r := s.contactResult(c, nil)
		r.Duplicate = true
		return r
	}
	if c.State != pb.ContactState_CONTACT_STATE_QUEUED {
		return Result{Err: errorf(ErrIllegalTransition, "contact %q is %v, not queued", c.ID(), c.State)}
	}
	s.lock(at, c, l.GetAgentId(), l.GetOfferId())
	return s.contactResult(c, s.contactEvent(at, c, ""))
}

// lock holds queued contact c for agent under offerID.
func (s *State) lock(at int64, c *Contact, agent, offerID string) {
	c.State = pb.ContactState_CONTACT_STATE_RESERVED
	c.StateSince = at
	c.Attempts++
	c.AgentID = agent
	c.OfferID = offerID
	c.LockedAt = at
}

func (s *State) heldBy(c *Contact, offerID string, want pb.ContactState) error {
	if offerID == "" {
		return errorf(ErrInvalidCommand, "shard: command for contact %q has no offer_id", c.ID())
	}
	if c.OfferID != offerID {
		return errorf(ErrUnknownOffer, "contact %q is not held under offer %q", c.ID(), offerID)
	}
	if c.State != want {
		return errorf(ErrIllegalTransition, "contact %q is %v, not %v", c.ID(), c.State, want)
	}
	return nil
}

func (s *State) contactUnlock(at int64, u *pb.ContactUnlock) Result {
	c, err := s.lookupContact(u.GetContactId())
	if err != nil {
		return Result{Err: err}
	}
	if err := s.heldBy(c, u.GetOfferId(), pb.ContactState_CONTACT_STATE_RESERVED); err != nil {
		return Result{Err: err}
	}
	// Seq and arrival are untouched: the contact is back at its place.
	c.State = pb.ContactState_CONTACT_STATE_QUEUED
	c.StateSince = at
	c.AgentID, c.OfferID, c.LockedAt = "", "", 0
	return s.contactResult(c, s.contactEvent(at, c, unlockReason(u.GetReason())))
}

func unlockReason(r pb.UnlockReason) string {
	switch r {
	case pb.UnlockReason_UNLOCK_REASON_DECLINED:
		return "declined"
	case pb.UnlockReason_UNLOCK_REASON_REJECTED:
		return "rejected"
	case pb.UnlockReason_UNLOCK_REASON_MISSED:
		return "missed"
	}
	return ""
}

func (s *State) contactConnect(at int64, cc *pb.ContactConnect) Result {
	c, err := s.lookupContact(cc.GetContactId())
	if err != nil {
		return Result{Err: err}
	}
	if c.State == pb.ContactState_CONTACT_STATE_CONNECTED && c.OfferID == cc.GetOfferId() {
		r := s.contactResult(c, nil)
		r.Duplicate = true
		return r
	}
	if err := s.heldBy(c, cc.GetOfferId(), pb.ContactState_CONTACT_STATE_RESERVED); err != nil {
		return Result{Err: err}
	}
	c.State = pb.ContactState_CONTACT_STATE_CONNECTED
	c.StateSince = at
	c.ConnectedAt = at
	c.HandledBy = c.AgentID
	return s.contactResult(c, s.contactEvent(at, c, ""))
}

func (s *State) contactEnd(at int64, e *pb.ContactEnd) Result {
	c, err := s.lookupContact(e.GetContactId())
	if err != nil {
		return Result{Err: err}
	}
	reason := "hangup"
	if e.GetReason() == pb.EndReason_END_REASON_CARRIER {
		reason = "carrier"
	}
	switch c.State {
	case pb.ContactState_CONTACT_STATE_QUEUED, pb.ContactState_CONTACT_STATE_RESERVED:
		// The assignment (if any) is kept so the agent's offer can be
		// withdrawn by whoever reads this record, including a new owner.
		s.end(at, c, pb.ContactState_CONTACT_STATE_ABANDONED)
	case pb.ContactState_CONTACT_STATE_CONNECTED:
		c.State = pb.ContactState_CONTACT_STATE_WRAP_UP
		c.StateSince = at
		c.OnHold = false
	default:
		// Already over: a repeated hang-up changes nothing.
		r := s.contactResult(c, nil)
		r.Duplicate = true
		return r
	}
	return s.contactResult(c, s.contactEvent(at, c, reason))
}

func (s *State) contactDone(at int64, d *pb.ContactDone) Result {
	c, err := s.lookupContact(d.GetContactId())
	if err != nil {
		return Result{Err: err}
	}
	if c.State == pb.ContactState_CONTACT_STATE_DONE && c.OfferID == d.GetOfferId() {
		r := s.contactResult(c, nil)
		r.Duplicate = true
		return r
	}
	if err := s.heldBy(c, d.GetOfferId(), pb.ContactState_CONTACT_STATE_WRAP_UP); err != nil {
		return Result{Err: err}
	}
	s.end(at, c, pb.ContactState_CONTACT_STATE_DONE)
	return s.contactResult(c, s.contactEvent(at, c, ""))
}

func (s *State) contactMedia(at int64, m *pb.ContactMedia) Result {
	c, err := s.lookupContact(m.GetContactId())
	if err != nil {
		return Result{Err: err}
	}
	if c.Terminal() {
		return Result{Err: errorf(ErrIllegalTransition, "contact %q is %v", c.ID(), c.State)}
	}
	reason := ""
	switch m.GetKind() {
	case pb.MediaKind_MEDIA_KIND_ANSWERED:
		if c.Answered {
			r := s.contactResult(c, nil)
			r.Duplicate = true
			return r
		}
		c.Answered = true
		reason = "answered"
	case pb.MediaKind_MEDIA_KIND_HOLD, pb.MediaKind_MEDIA_KIND_RESUME:
		hold := m.GetKind() == pb.MediaKind_MEDIA_KIND_HOLD
		if c.State != pb.ContactState_CONTACT_STATE_CONNECTED {
			return Result{Err: errorf(ErrIllegalTransition, "contact %q is %v; hold and resume need a connected contact", c.ID(), c.State)}
		}
		if c.OnHold == hold {
			return Result{Err: errorf(ErrIllegalTransition, "contact %q is already %s", c.ID(), map[bool]string{true: "on hold", false: "not on hold"}[hold])}
		}
		c.OnHold = hold
		reason = map[bool]string{true: "hold", false: "resume"}[hold]
	default:
		return Result{Err: errorf(ErrInvalidCommand, "shard: media kind %v of contact %q is not replicated", m.GetKind(), c.ID())}
	}
	return s.contactResult(c, s.contactEvent(at, c, reason))
}

func (s *State) contactEvent(at int64, c *Contact, reason string) *pb.Event {
	return &pb.Event{
		At:    at,
		Shard: s.shard,
		Kind: &pb.Event_Contact{Contact: &pb.ContactEvent{
			ContactId: c.ID(),
			Queue:     c.Queue(),
			State:     c.State,
			AgentId:   c.AgentID,
			OfferId:   c.OfferID,
			Priority:  c.Arrival.GetPriority(),
			ArrivedAt: c.Arrival.GetArrivedAt(),
			Seq:       c.Seq,
			Channel:   c.Arrival.GetChannel(),
			Reason:    reason,
		}},
	}
}
