package shard_test

import (
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// c1Event is contact c1's event as the standard path (upTo) makes it.
func c1Event(st pb.ContactState, agent, offer, reason string) *pb.ContactEvent {
	return &pb.ContactEvent{
		ContactId: "c1", Queue: "sales", State: st, AgentId: agent, OfferId: offer,
		ArrivedAt: at(stepArrive), Seq: 1, Channel: voice, Reason: reason,
	}
}

// c1At is contact c1's record after the standard path's step.
func c1At(step int) shard.Contact {
	c := shard.Contact{Seq: 1, State: queued, StateSince: at(stepArrive)}
	if step >= stepLock {
		c.State, c.StateSince = reserved, at(stepLock)
		c.Attempts, c.AgentID, c.OfferID, c.LockedAt = 1, "a1", "o1", at(stepLock)
	}
	if step >= stepConnect {
		c.State, c.StateSince, c.ConnectedAt, c.HandledBy = connected, at(stepConnect), at(stepConnect), "a1"
	}
	if step >= stepHangUp {
		c.State, c.StateSince = inWrapUp, at(stepHangUp)
	}
	if step >= stepDone {
		c.State, c.StateSince, c.EndedAt = finished, at(stepDone), at(stepDone)
	}
	return c
}

// change edits a copy of a record.
func change(c shard.Contact, edit func(*shard.Contact)) shard.Contact {
	edit(&c)
	return c
}

// TestContactCommands covers every legal transition of a contact: the record
// it leaves and the one event it emits.
func TestContactCommands(t *testing.T) {
	const (
		declined = pb.UnlockReason_UNLOCK_REASON_DECLINED
		rejected = pb.UnlockReason_UNLOCK_REASON_REJECTED
		missed   = pb.UnlockReason_UNLOCK_REASON_MISSED
	)
	queuedAgainAt := func(when int64) shard.Contact {
		return change(c1At(stepArrive), func(c *shard.Contact) { c.StateSince, c.Attempts = when, 1 })
	}
	withCredit := arrive("c1", "sales", voice)
	withCredit.ArrivedAt = sec(2)
	fromTheFuture := arrive("c1", "sales", voice)
	fromTheFuture.ArrivedAt = sec(99)
	second := arrive("c2", "support", chat)
	second.Priority = 5
	carrierEnd := &pb.ContactEnd{ContactId: "c1", Reason: pb.EndReason_END_REASON_CARRIER}
	noReasonEnd := &pb.ContactEnd{ContactId: "c1"}

	tests := []struct {
		name  string
		given []*pb.Command
		cmd   *pb.Command
		want  shard.Contact // Arrival is not compared
		event *pb.ContactEvent
	}{
		// ContactArrive
		{
			name:  "arrival is queued with the first seq, waiting since now",
			given: upTo(beforeArrival),
			cmd:   cmd(at(stepArrive), arrive("c1", "sales", voice)),
			want:  c1At(stepArrive),
			event: c1Event(queued, "", "", ""),
		},
		{
			name:  "arrival keeps the carrier's wait credit",
			given: upTo(beforeArrival),
			cmd:   cmd(at(stepArrive), withCredit),
			want:  c1At(stepArrive),
			event: func() *pb.ContactEvent { e := c1Event(queued, "", "", ""); e.ArrivedAt = sec(2); return e }(),
		},
		{
			name:  "arrival stamped in the future waits since now",
			given: upTo(beforeArrival),
			cmd:   cmd(at(stepArrive), fromTheFuture),
			want:  c1At(stepArrive),
			event: c1Event(queued, "", "", ""),
		},
		{
			name:  "next arrival takes the next seq",
			given: upTo(stepArrive),
			cmd:   cmd(sec(30), second),
			want:  shard.Contact{Seq: 2, State: queued, StateSince: sec(30)},
			event: &pb.ContactEvent{ContactId: "c2", Queue: "support", State: queued, Priority: 5, ArrivedAt: sec(30), Seq: 2, Channel: chat},
		},
		// ContactLock
		{
			name:  "lock holds a queued contact for one agent",
			given: upTo(stepArrive),
			cmd:   upTo(stepLock)[1+stepLock],
			want:  c1At(stepLock),
			event: c1Event(reserved, "a1", "o1", ""),
		},
		{
			name:  "lock after an unlock counts a second attempt",
			given: then(upTo(stepLock), cmd(sec(30), unlock("c1", "o1", declined))),
			cmd:   cmd(sec(31), lock("c1", "a2", "o2")),
			want: change(c1At(stepLock), func(c *shard.Contact) {
				c.StateSince, c.Attempts, c.AgentID, c.OfferID, c.LockedAt = sec(31), 2, "a2", "o2", sec(31)
			}),
			event: c1Event(reserved, "a2", "o2", ""),
		},
		// ContactUnlock: back to its original place (seq, arrival), reason carried.
		{
			name:  "unlock after a declined reservation",
			given: upTo(stepLock),
			cmd:   cmd(sec(30), unlock("c1", "o1", declined)),
			want:  queuedAgainAt(sec(30)),
			event: c1Event(queued, "", "", "declined"),
		},
		{
			name:  "unlock after a rejected offer",
			given: upTo(stepLock),
			cmd:   cmd(sec(30), unlock("c1", "o1", rejected)),
			want:  queuedAgainAt(sec(30)),
			event: c1Event(queued, "", "", "rejected"),
		},
		{
			name:  "unlock after a missed offer",
			given: upTo(stepLock),
			cmd:   cmd(sec(30), unlock("c1", "o1", missed)),
			want:  queuedAgainAt(sec(30)),
			event: c1Event(queued, "", "", "missed"),
		},
		{
			name:  "unlock without a reason",
			given: upTo(stepLock),
			cmd:   cmd(sec(30), unlock("c1", "o1", pb.UnlockReason_UNLOCK_REASON_UNSPECIFIED)),
			want:  queuedAgainAt(sec(30)),
			event: c1Event(queued, "", "", ""),
		},
		// ContactConnect
		{
			name:  "connect after the agent accepted",
			given: upTo(stepAccept),
			cmd:   upTo(stepConnect)[1+stepConnect],
			want:  c1At(stepConnect),
			event: c1Event(connected, "a1", "o1", ""),
		},
		// ContactEnd
		{
			name:  "hang-up while queued abandons",
			given: upTo(stepArrive),
			cmd:   cmd(sec(30), hangUp("c1")),
			want:  change(c1At(stepArrive), func(c *shard.Contact) { c.State, c.StateSince, c.EndedAt = abandoned, sec(30), sec(30) }),
			event: c1Event(abandoned, "", "", "hangup"),
		},
		{
			name:  "carrier end while queued abandons with reason carrier",
			given: upTo(stepArrive),
			cmd:   cmd(sec(30), carrierEnd),
			want:  change(c1At(stepArrive), func(c *shard.Contact) { c.State, c.StateSince, c.EndedAt = abandoned, sec(30), sec(30) }),
			event: c1Event(abandoned, "", "", "carrier"),
		},
		{
			name:  "end without a reason counts as hang-up",
			given: upTo(stepArrive),
			cmd:   cmd(sec(30), noReasonEnd),
			want:  change(c1At(stepArrive), func(c *shard.Contact) { c.State, c.StateSince, c.EndedAt = abandoned, sec(30), sec(30) }),
			event: c1Event(abandoned, "", "", "hangup"),
		},
		{
			name:  "hang-up while held for an agent abandons and keeps the assignment for the withdrawal",
			given: upTo(stepReserve),
			cmd:   cmd(sec(30), hangUp("c1")),
			want:  change(c1At(stepLock), func(c *shard.Contact) { c.State, c.StateSince, c.EndedAt = abandoned, sec(30), sec(30) }),
			event: c1Event(abandoned, "a1", "o1", "hangup"),
		},
		{
			name:  "hang-up while connected starts wrap-up",
			given: upTo(stepConnect),
			cmd:   upTo(stepHangUp)[1+stepHangUp],
			want:  c1At(stepHangUp),
			event: c1Event(inWrapUp, "a1", "o1", "hangup"),
		},
		{
			name:  "hang-up while on hold starts wrap-up off hold",
			given: then(upTo(stepConnect), cmd(sec(14)+1, media("c1", pb.MediaKind_MEDIA_KIND_HOLD))),
			cmd:   upTo(stepHangUp)[1+stepHangUp],
			want:  c1At(stepHangUp),
			event: c1Event(inWrapUp, "a1", "o1", "hangup"),
		},
		// ContactDone
		{
			name:  "done after wrap-up ends the contact",
			given: upTo(stepWrapUpDone),
			cmd:   upTo(stepDone)[1+stepDone],
			want:  c1At(stepDone),
			event: c1Event(finished, "a1", "o1", ""),
		},
		// ContactMedia
		{
			name:  "answered while queued (an IVR answered)",
			given: upTo(stepArrive),
			cmd:   cmd(sec(30), media("c1", pb.MediaKind_MEDIA_KIND_ANSWERED)),
			want:  change(c1At(stepArrive), func(c *shard.Contact) { c.Answered = true }),
			event: c1Event(queued, "", "", "answered"),
		},
		{
			name:  "hold while connected",
			given: upTo(stepConnect),
			cmd:   cmd(sec(30), media("c1", pb.MediaKind_MEDIA_KIND_HOLD)),
			want:  change(c1At(stepConnect), func(c *shard.Contact) { c.OnHold = true }),
			event: c1Event(connected, "a1", "o1", "hold"),
		},
		{
			name:  "resume after hold",
			given: then(upTo(stepConnect), cmd(sec(30), media("c1", pb.MediaKind_MEDIA_KIND_HOLD))),
			cmd:   cmd(sec(31), media("c1", pb.MediaKind_MEDIA_KIND_RESUME)),
			want:  c1At(stepConnect),
			event: c1Event(connected, "a1", "o1", "resume"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := given(t, tc.given...)
			r := applyNew(t, s, tc.cmd)
			if !r.HasContact || r.HasAgent {
				t.Errorf("result HasContact=%v HasAgent=%v, want a contact result", r.HasContact, r.HasAgent)
			}
			assertContact(t, r.Contact, tc.want)
			assertContact(t, contactOf(t, s, tc.event.GetContactId()), tc.want)
			assertEvents(t, r.Events, contactEvent(tc.cmd.GetAt(), tc.event))
		})
	}
}

// TestContactArrive_RecordsTheArrivalAsSent: the record keeps the whole
// arrival (skills, attributes, customer) so a new owner needs nothing else.
func TestContactArrive_RecordsTheArrivalAsSent(t *testing.T) {
	a := &pb.ContactArrive{
		ContactId: "c1", Queue: "sales", Channel: voice, Direction: pb.Direction_DIRECTION_INBOUND,
		CustomerKey: "+81-6-0000-0000", Attributes: map[string]string{"reason": "billing"},
		Skills:   []*pb.SkillRequirement{{Skill: "billing", MinLevel: 2}},
		Priority: 3, ArrivedAt: sec(1), Carrier: "kddi", Tier: "gold", Language: "ja",
		PreferredAgent: "a1", PreferredUntil: sec(60),
	}
	s := given(t, cmd(sec(5), a))
	c := contactOf(t, s, "c1")
	if c.ID() != "c1" || c.Queue() != "sales" || c.Terminal() {
		t.Errorf("ID=%q Queue=%q Terminal=%v", c.ID(), c.Queue(), c.Terminal())
	}
	if got := describe(c.Arrival); got != describe(a) {
		t.Errorf("arrival record:\n got %s\nwant %s", got, describe(a))
	}
}

// TestTerminal lists the states a contact never leaves.
func TestTerminal(t *testing.T) {
	for st := range pb.ContactState_name {
		s := pb.ContactState(st)
		want := s == finished || s == abandoned || s == pb.ContactState_CONTACT_STATE_REJECTED
		if got := shard.Terminal(s); got != want {
			t.Errorf("Terminal(%v) = %v, want %v", s, got, want)
		}
	}
}
