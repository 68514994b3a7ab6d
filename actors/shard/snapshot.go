package shard

import (
	"fmt"
	"slices"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Snapshot captures the whole state. Records are ordered (contacts by seq,
// agents by id) so equal states give equal bytes.
func (s *State) Snapshot() *pb.ShardSnapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &pb.ShardSnapshot{
		Shard:     s.shard,
		NextSeq:   s.nextSeq,
		LastEvent: s.lastEvent,
		Contacts:  make([]*pb.ContactRecord, 0, len(s.contacts)),
		Agents:    make([]*pb.AgentRecord, 0, len(s.agents)),
	}
	for _, c := range s.contacts {
		snap.Contacts = append(snap.Contacts, contactToProto(c))
	}
	slices.SortFunc(snap.Contacts, func(a, b *pb.ContactRecord) int { return cmpU64(a.GetSeq(), b.GetSeq()) })
	for _, a := range s.agents {
		snap.Agents = append(snap.Agents, agentToProto(a))
	}
	slices.SortFunc(snap.Agents, func(a, b *pb.AgentRecord) int {
		if a.GetProfile().GetId() < b.GetProfile().GetId() {
			return -1
		}
		return 1
	})
	return snap
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Restore replaces the state with snap.
func (s *State) Restore(snap *pb.ShardSnapshot) error {
	if snap.GetShard() != s.shard {
		return fmt.Errorf("shard: snapshot is of shard %d, not %d", snap.GetShard(), s.shard)
	}
	contacts := make(map[string]*Contact, len(snap.GetContacts()))
	var endedList []ended
	for _, rec := range snap.GetContacts() {
		c := contactFromProto(rec)
		if c.ID() == "" {
			return fmt.Errorf("shard: snapshot of shard %d holds a contact without id", s.shard)
		}
		contacts[c.ID()] = c
		if c.Terminal() {
			pushEnded(&endedList, ended{id: c.ID(), at: c.EndedAt, seq: c.Seq})
		}
	}
	agents := make(map[string]*Agent, len(snap.GetAgents()))
	for _, rec := range snap.GetAgents() {
		a := agentFromProto(rec)
		if a.ID() == "" {
			return fmt.Errorf("shard: snapshot of shard %d holds an agent without id", s.shard)
		}
		agents[a.ID()] = a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.contacts, s.agents, s.ended = contacts, agents, endedList
	s.nextSeq = max(snap.GetNextSeq(), 1)
	s.lastEvent = snap.GetLastEvent()
	return nil
}

func contactToProto(c *Contact) *pb.ContactRecord {
	rec := &pb.ContactRecord{
		Arrival:    c.Arrival,
		Seq:        c.Seq,
		State:      c.State,
		StateSince: c.StateSince,
		Attempts:   c.Attempts,
		Answered:   c.Answered,
		OnHold:     c.OnHold,
		EndedAt:    c.EndedAt,
		HandledBy:  c.HandledBy,
	}
	if c.OfferID != "" {
		rec.Assignment = &pb.Assignment{AgentId: c.AgentID, OfferId: c.OfferID, LockedAt: c.LockedAt, ConnectedAt: c.ConnectedAt}
	}
	return rec
}

func contactFromProto(rec *pb.ContactRecord) *Contact {
	c := &Contact{
		Arrival:    rec.GetArrival(),
		Seq:        rec.GetSeq(),
		State:      rec.GetState(),
		StateSince: rec.GetStateSince(),
		Attempts:   rec.GetAttempts(),
		Answered:   rec.GetAnswered(),
		OnHold:     rec.GetOnHold(),
		EndedAt:    rec.GetEndedAt(),
		HandledBy:  rec.GetHandledBy(),
	}
	if c.Arrival == nil {
		c.Arrival = &pb.ContactArrive{}
	}
	if as := rec.GetAssignment(); as != nil {
		c.AgentID, c.OfferID, c.LockedAt, c.ConnectedAt = as.GetAgentId(), as.GetOfferId(), as.GetLockedAt(), as.GetConnectedAt()
	}
	return c
}

func agentToProto(a *Agent) *pb.AgentRecord {
	rec := &pb.AgentRecord{
		Profile:       a.Profile,
		Presence:      a.Presence,
		Reason:        a.Reason,
		PresenceSince: a.PresenceSince,
		IdleSince:     a.IdleSince,
		Version:       a.Version,
		Counters: &pb.AgentCounters{
			Offered: a.Counters.Offered, Accepted: a.Counters.Accepted, Rejected: a.Counters.Rejected,
			Missed: a.Counters.Missed, Handled: a.Counters.Handled,
		},
	}
	for _, f := range a.Recent {
		rec.Recent = append(rec.Recent, &pb.FinishedOffer{OfferId: f.OfferID, ContactId: f.ContactID, How: f.How})
	}
	for _, s := range a.Slots {
		rec.Slots = append(rec.Slots, &pb.Slot{
			OfferId: s.OfferID, ContactId: s.ContactID, Queue: s.Queue, Channel: s.Channel,
			ContactShard: s.ContactShard, State: s.State, Since: s.Since, Deadline: s.Deadline,
			WrapUpFixed: s.WrapUpFixed, CustomerKey: s.CustomerKey, Attributes: s.Attributes,
			Priority: s.Priority, ArrivedAt: s.ArrivedAt,
		})
	}
	return rec
}

func agentFromProto(rec *pb.AgentRecord) *Agent {
	a := &Agent{
		Profile:       rec.GetProfile(),
		Presence:      rec.GetPresence(),
		Reason:        rec.GetReason(),
		PresenceSince: rec.GetPresenceSince(),
		IdleSince:     rec.GetIdleSince(),
		Version:       rec.GetVersion(),
	}
	if a.Profile == nil {
		a.Profile = &pb.AgentProfile{}
	}
	if c := rec.GetCounters(); c != nil {
		a.Counters = Counters{Offered: c.GetOffered(), Accepted: c.GetAccepted(), Rejected: c.GetRejected(), Missed: c.GetMissed(), Handled: c.GetHandled()}
	}
	for _, f := range rec.GetRecent() {
		a.Recent = append(a.Recent, Finished{OfferID: f.GetOfferId(), ContactID: f.GetContactId(), How: f.GetHow()})
	}
	for _, s := range rec.GetSlots() {
		a.Slots = append(a.Slots, Slot{
			OfferID: s.GetOfferId(), ContactID: s.GetContactId(), Queue: s.GetQueue(), Channel: s.GetChannel(),
			ContactShard: s.GetContactShard(), State: s.GetState(), Since: s.GetSince(), Deadline: s.GetDeadline(),
			WrapUpFixed: s.GetWrapUpFixed(), CustomerKey: s.GetCustomerKey(), Attributes: s.GetAttributes(),
			Priority: s.GetPriority(), ArrivedAt: s.GetArrivedAt(),
		})
	}
	return a
}
