package shard_test

import (
	"fmt"
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

func withVersion(c *pb.Command, v uint32) *pb.Command {
	c.Version = v
	return c
}

// agentWith logs in agent a1 with a profile edited by edit, ready.
func agentWith(edit func(*pb.AgentProfile)) *pb.Command {
	p := &pb.AgentProfile{Id: "a1", Site: "osaka"}
	edit(p)
	return cmd(sec(0), loginAs(p, true))
}

// chatBusy is agent a1 (default profile) busy on chat contact c1 with offer o1.
func chatBusy() []*pb.Command {
	return []*pb.Command{
		cmd(sec(0), login("a1", true)),
		cmd(sec(1), reserve("a1", "o1", "c1", chat)),
		cmd(sec(2), accept("a1", "o1")),
	}
}

// TestApply_Refused is every command that the current state does not allow:
// each is refused with a stable code, names what it is about, and changes
// nothing (DESIGN.md "What must always hold" 4; doc.go).
func TestApply_Refused(t *testing.T) {
	var (
		idle        = upTo(beforeArrival)
		queuedC1    = upTo(stepArrive)
		lockedC1    = upTo(stepLock)
		offeredO1   = upTo(stepReserve)
		acceptedO1  = upTo(stepAccept)
		connectedC1 = upTo(stepConnect)
		hungUpC1    = upTo(stepHangUp)
		wrappingO1  = upTo(stepAgentEnded)
		finishedC1  = upTo(stepDone)
		abandonedC1 = then(queuedC1, cmd(sec(30), hangUp("c1")))
		walkedAway  = then(offeredO1, cmd(sec(30), hangUp("c1"))) // abandoned while held for a1
		onLunch     = then(idle, cmd(sec(30), notReady("a1", "lunch")))
		loggedOut   = then(idle, cmd(sec(30), logout("a1")))
		missedO1    = then(offeredO1, cmd(sec(30), miss("a1", "o1", true)))
		threeChats  = then(idle,
			cmd(sec(1), reserve("a1", "o1", "c1", chat)),
			cmd(sec(2), reserve("a1", "o2", "c2", chat)),
			cmd(sec(3), reserve("a1", "o3", "c3", chat)))
		emailBusy = then(idle, cmd(sec(1), reserve("a1", "o1", "c1", email)), cmd(sec(2), accept("a1", "o1")))
		chatOnly  = []*pb.Command{agentWith(func(p *pb.AgentProfile) {
			p.Capacity = []*pb.ChannelCapacity{{Channel: chat, Slots: 2}}
		})}
		chatBlocksEmail = []*pb.Command{
			agentWith(func(p *pb.AgentProfile) {
				p.Blocking = &pb.BlockingRules{Blocks: []*pb.ChannelBlock{{Channel: chat, Blocks: []pb.Channel{email}}}}
			}),
			cmd(sec(1), reserve("a1", "o1", "c1", chat)),
			cmd(sec(2), accept("a1", "o1")),
		}
		fixedWrapUp = then(hungUpC1, cmd(at(stepAgentEnded), contactEnded("a1", "o1", at(stepAgentEnded)+wrapUp, true)))
		onHold      = then(connectedC1, cmd(sec(30), media("c1", pb.MediaKind_MEDIA_KIND_HOLD)))
	)
	const now = 40 // seconds; later than every history above
	noKind := cmd(sec(now), nil)

	tests := []struct {
		name  string
		given []*pb.Command
		cmd   *pb.Command
		want  *shard.Error
		names []string // the message must name these
	}{
		// Malformed commands.
		{"nil command", idle, nil, shard.ErrInvalidCommand, []string{"nil"}},
		{"command without a kind", idle, noKind, shard.ErrInvalidCommand, []string{"kind"}},
		{"command version 0", idle, withVersion(cmd(sec(now), arrive("c9", "sales", voice)), 0), shard.ErrUnsupportedVersion, []string{"version 0"}},
		{"command version from the future", idle, withVersion(cmd(sec(now), arrive("c9", "sales", voice)), 2), shard.ErrUnsupportedVersion, []string{"version 2"}},

		// ContactArrive
		{"arrival without contact id", idle, cmd(sec(now), arrive("", "sales", voice)), shard.ErrInvalidCommand, []string{"contact_id"}},
		{"arrival without queue", idle, cmd(sec(now), arrive("c9", "", voice)), shard.ErrInvalidCommand, []string{`"c9"`}},
		{"arrival without channel", idle, cmd(sec(now), arrive("c9", "sales", pb.Channel_CHANNEL_UNSPECIFIED)), shard.ErrInvalidCommand, []string{`"c9"`}},
		{"arrival on an unknown channel", idle, cmd(sec(now), arrive("c9", "sales", pb.Channel(99))), shard.ErrInvalidCommand, []string{`"c9"`}},
		{"arrival again in another queue", queuedC1, cmd(sec(now), arrive("c1", "support", voice)), shard.ErrConflict, []string{`"c1"`}},
		{"arrival again on another channel", queuedC1, cmd(sec(now), arrive("c1", "sales", chat)), shard.ErrConflict, []string{`"c1"`}},
		{"arrival again in another queue after it ended", finishedC1, cmd(sec(now), arrive("c1", "support", voice)), shard.ErrConflict, []string{`"c1"`}},

		// ContactLock
		{"lock an unknown contact", idle, cmd(sec(now), lock("c9", "a1", "o9")), shard.ErrUnknownContact, []string{`"c9"`}},
		{"lock without contact id", queuedC1, cmd(sec(now), lock("", "a1", "o9")), shard.ErrInvalidCommand, []string{"contact_id"}},
		{"lock without agent id", queuedC1, cmd(sec(now), lock("c1", "", "o9")), shard.ErrInvalidCommand, []string{`"c1"`, "agent_id"}},
		{"lock without offer id", queuedC1, cmd(sec(now), lock("c1", "a1", "")), shard.ErrInvalidCommand, []string{`"c1"`, "offer_id"}},
		{"lock a contact held for another offer", lockedC1, cmd(sec(now), lock("c1", "a2", "o2")), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"lock a connected contact", connectedC1, cmd(sec(now), lock("c1", "a2", "o2")), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"lock a contact in wrap-up", hungUpC1, cmd(sec(now), lock("c1", "a2", "o2")), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"lock an abandoned contact", abandonedC1, cmd(sec(now), lock("c1", "a1", "o2")), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"lock a finished contact", finishedC1, cmd(sec(now), lock("c1", "a1", "o2")), shard.ErrIllegalTransition, []string{`"c1"`}},

		// ContactUnlock
		{"unlock with the wrong offer id", lockedC1, cmd(sec(now), unlock("c1", "o2", 0)), shard.ErrUnknownOffer, []string{`"c1"`, `"o2"`}},
		{"unlock a contact that is not held", queuedC1, cmd(sec(now), unlock("c1", "o1", 0)), shard.ErrUnknownOffer, []string{`"c1"`}},
		{"unlock without offer id", lockedC1, cmd(sec(now), unlock("c1", "", 0)), shard.ErrInvalidCommand, []string{`"c1"`}},
		{"unlock a connected contact", connectedC1, cmd(sec(now), unlock("c1", "o1", 0)), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"unlock a contact abandoned while held", walkedAway, cmd(sec(now), unlock("c1", "o1", 0)), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"unlock an unknown contact", idle, cmd(sec(now), unlock("c9", "o1", 0)), shard.ErrUnknownContact, []string{`"c9"`}},

		// ContactConnect
		{"connect with the wrong offer id", acceptedO1, cmd(sec(now), connect("c1", "o2")), shard.ErrUnknownOffer, []string{`"c1"`, `"o2"`}},
		{"connect a queued contact", queuedC1, cmd(sec(now), connect("c1", "o1")), shard.ErrUnknownOffer, []string{`"c1"`}},
		{"connect without offer id", acceptedO1, cmd(sec(now), connect("c1", "")), shard.ErrInvalidCommand, []string{`"c1"`}},
		{"connect a contact abandoned while held", walkedAway, cmd(sec(now), connect("c1", "o1")), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"connect a contact in wrap-up", hungUpC1, cmd(sec(now), connect("c1", "o1")), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"connect an unknown contact", idle, cmd(sec(now), connect("c9", "o1")), shard.ErrUnknownContact, []string{`"c9"`}},

		// ContactEnd
		{"hang-up of an unknown contact", idle, cmd(sec(now), hangUp("c9")), shard.ErrUnknownContact, []string{`"c9"`}},
		{"hang-up without contact id", queuedC1, cmd(sec(now), hangUp("")), shard.ErrInvalidCommand, []string{"contact_id"}},

		// ContactDone
		{"done with the wrong offer id", hungUpC1, cmd(sec(now), done("c1", "o2")), shard.ErrUnknownOffer, []string{`"c1"`, `"o2"`}},
		{"done while connected", connectedC1, cmd(sec(now), done("c1", "o1")), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"done while held", lockedC1, cmd(sec(now), done("c1", "o1")), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"done after it was abandoned", walkedAway, cmd(sec(now), done("c1", "o1")), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"done without offer id", hungUpC1, cmd(sec(now), done("c1", "")), shard.ErrInvalidCommand, []string{`"c1"`}},
		{"done of an unknown contact", idle, cmd(sec(now), done("c9", "o1")), shard.ErrUnknownContact, []string{`"c9"`}},

		// ContactMedia
		{"hold while queued", queuedC1, cmd(sec(now), media("c1", pb.MediaKind_MEDIA_KIND_HOLD)), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"hold while offered", offeredO1, cmd(sec(now), media("c1", pb.MediaKind_MEDIA_KIND_HOLD)), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"hold in wrap-up", hungUpC1, cmd(sec(now), media("c1", pb.MediaKind_MEDIA_KIND_HOLD)), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"hold while on hold", onHold, cmd(sec(now), media("c1", pb.MediaKind_MEDIA_KIND_HOLD)), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"resume while not on hold", connectedC1, cmd(sec(now), media("c1", pb.MediaKind_MEDIA_KIND_RESUME)), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"answered after the contact ended", abandonedC1, cmd(sec(now), media("c1", pb.MediaKind_MEDIA_KIND_ANSWERED)), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"media kind that is not replicated (DTMF)", connectedC1, cmd(sec(now), media("c1", pb.MediaKind_MEDIA_KIND_DTMF)), shard.ErrInvalidCommand, []string{`"c1"`}},
		{"media of an unknown contact", idle, cmd(sec(now), media("c9", pb.MediaKind_MEDIA_KIND_ANSWERED)), shard.ErrUnknownContact, []string{`"c9"`}},

		// AgentLogin
		{"login without agent id", nil, cmd(sec(now), login("", true)), shard.ErrInvalidCommand, []string{"agent id"}},
		{"login without profile", nil, cmd(sec(now), &pb.AgentLogin{Ready: true}), shard.ErrInvalidCommand, []string{"agent id"}},
		{"login while logged in", idle, cmd(sec(now), login("a1", true)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"login while not ready", onLunch, cmd(sec(now), login("a1", false)), shard.ErrIllegalTransition, []string{`"a1"`}},

		// AgentLogout
		{"logout of an unknown agent", idle, cmd(sec(now), logout("a9")), shard.ErrIllegalTransition, []string{`"a9"`}},
		{"logout of an agent already logged out", loggedOut, cmd(sec(now), logout("a1")), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"logout with an offer out", offeredO1, cmd(sec(now), logout("a1")), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"logout while busy", acceptedO1, cmd(sec(now), logout("a1")), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"logout in wrap-up", wrappingO1, cmd(sec(now), logout("a1")), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"logout without agent id", idle, cmd(sec(now), logout("")), shard.ErrInvalidCommand, []string{"agent_id"}},

		// AgentPresenceChange
		{"ready while available", idle, cmd(sec(now), ready("a1")), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"ready while reserved", offeredO1, cmd(sec(now), ready("a1")), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"ready while busy", acceptedO1, cmd(sec(now), ready("a1")), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"ready in wrap-up", wrappingO1, cmd(sec(now), ready("a1")), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"presence offline set directly", idle, cmd(sec(now), &pb.AgentPresenceChange{AgentId: "a1", Presence: offline}), shard.ErrInvalidCommand, []string{`"a1"`}},
		{"presence of an agent logged out", loggedOut, cmd(sec(now), notReady("a1", "lunch")), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"presence without agent id", idle, cmd(sec(now), notReady("", "lunch")), shard.ErrInvalidCommand, []string{"agent_id"}},

		// AgentReserve
		{"reserve while not ready", onLunch, cmd(sec(now), reserve("a1", "o9", "c9", voice)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve after a missed offer made the agent not ready", missedO1, cmd(sec(now), reserve("a1", "o9", "c9", voice)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve an agent logged out", loggedOut, cmd(sec(now), reserve("a1", "o9", "c9", voice)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve an unknown agent", idle, cmd(sec(now), reserve("a9", "o9", "c9", voice)), shard.ErrIllegalTransition, []string{`"a9"`}},
		{"reserve a second voice while one is offered", offeredO1, cmd(sec(now), reserve("a1", "o2", "c2", voice)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve a second voice while busy", acceptedO1, cmd(sec(now), reserve("a1", "o2", "c2", voice)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve a second voice in voice wrap-up", wrappingO1, cmd(sec(now), reserve("a1", "o2", "c2", voice)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve a fourth chat", threeChats, cmd(sec(now), reserve("a1", "o4", "c4", chat)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve chat while busy on voice (voice blocks chat)", acceptedO1, cmd(sec(now), reserve("a1", "o2", "c2", chat)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve email while voice is offered", offeredO1, cmd(sec(now), reserve("a1", "o2", "c2", email)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve voice while busy on chat (chat blocks voice)", chatBusy(), cmd(sec(now), reserve("a1", "o2", "c2", voice)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve callback while busy on chat", chatBusy(), cmd(sec(now), reserve("a1", "o2", "c2", callback)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve voice while busy on email", emailBusy, cmd(sec(now), reserve("a1", "o2", "c2", voice)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve email when custom rules let chat block email", chatBlocksEmail, cmd(sec(now), reserve("a1", "o2", "c2", email)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve voice for a chat-only agent", chatOnly, cmd(sec(now), reserve("a1", "o2", "c2", voice)), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"reserve without offer id", idle, cmd(sec(now), reserve("a1", "", "c9", voice)), shard.ErrInvalidCommand, []string{`"a1"`}},
		{"reserve without contact id", idle, cmd(sec(now), reserve("a1", "o9", "", voice)), shard.ErrInvalidCommand, []string{`"a1"`}},
		{"reserve without agent id", idle, cmd(sec(now), reserve("", "o9", "c9", voice)), shard.ErrInvalidCommand, []string{"agent_id"}},
		{"reserve without channel", idle, cmd(sec(now), reserve("a1", "o9", "c9", pb.Channel_CHANNEL_UNSPECIFIED)), shard.ErrInvalidCommand, []string{`"o9"`}},
		{"reserve on an unknown channel", idle, cmd(sec(now), reserve("a1", "o9", "c9", pb.Channel(99))), shard.ErrInvalidCommand, []string{`"o9"`}},

		// AgentOfferOutcome
		{"accept without an offer", idle, cmd(sec(now), accept("a1", "o9")), shard.ErrUnknownOffer, []string{`"a1"`, `"o9"`}},
		{"accept an offer already rejected", then(offeredO1, cmd(sec(30), reject("a1", "o1"))), cmd(sec(now), accept("a1", "o1")), shard.ErrUnknownOffer, []string{`"a1"`, `"o1"`}},
		{"accept by an agent logged out", loggedOut, cmd(sec(now), accept("a1", "o1")), shard.ErrIllegalTransition, []string{`"a1"`}},
		{"accept without offer id", offeredO1, cmd(sec(now), accept("a1", "")), shard.ErrInvalidCommand, []string{"offer_id"}},
		{"offer outcome without a kind", offeredO1, cmd(sec(now), outcome("a1", "o1", 0)), shard.ErrInvalidCommand, []string{`"a1"`}},
		{"reject after accepting", acceptedO1, cmd(sec(now), reject("a1", "o1")), shard.ErrIllegalTransition, []string{`"a1"`, `"o1"`}},
		{"miss after accepting", acceptedO1, cmd(sec(now), miss("a1", "o1", true)), shard.ErrIllegalTransition, []string{`"a1"`, `"o1"`}},
		{"withdraw after accepting", acceptedO1, cmd(sec(now), withdraw("a1", "o1")), shard.ErrIllegalTransition, []string{`"a1"`, `"o1"`}},
		{"accept in wrap-up", wrappingO1, cmd(sec(now), accept("a1", "o1")), shard.ErrIllegalTransition, []string{`"a1"`, `"o1"`}},

		// AgentContactEnded
		{"contact ended for an unknown offer", acceptedO1, cmd(sec(now), contactEnded("a1", "o9", 0, false)), shard.ErrUnknownOffer, []string{`"a1"`, `"o9"`}},
		{"contact ended while only offered", offeredO1, cmd(sec(now), contactEnded("a1", "o1", 0, false)), shard.ErrIllegalTransition, []string{`"a1"`, `"o1"`}},
		{"contact ended without offer id", acceptedO1, cmd(sec(now), contactEnded("a1", "", 0, false)), shard.ErrInvalidCommand, []string{"offer_id"}},
		// An agent logged out holds no offer: the contact, in wrap-up, learns
		// it has no agent left.
		{"contact ended for an agent logged out", loggedOut, cmd(sec(now), contactEnded("a1", "o1", 0, false)), shard.ErrUnknownOffer, []string{`"a1"`, `"o1"`, "not logged in"}},

		// AgentWrapUpDone
		{"wrap-up done for an unknown offer", wrappingO1, cmd(sec(now), wrapUpDone("a1", "o9", true)), shard.ErrUnknownOffer, []string{`"a1"`, `"o9"`}},
		{"wrap-up done while busy", acceptedO1, cmd(sec(now), wrapUpDone("a1", "o1", true)), shard.ErrIllegalTransition, []string{`"a1"`, `"c1"`}},
		{"wrap-up done while offered", offeredO1, cmd(sec(now), wrapUpDone("a1", "o1", false)), shard.ErrIllegalTransition, []string{`"a1"`, `"c1"`}},
		{"fixed wrap-up ended early by the agent", fixedWrapUp, cmd(sec(now), wrapUpDone("a1", "o1", true)), shard.ErrIllegalTransition, []string{`"c1"`}},
		{"wrap-up done without offer id", wrappingO1, cmd(sec(now), wrapUpDone("a1", "", true)), shard.ErrInvalidCommand, []string{"offer_id"}},
		{"wrap-up done for an agent logged out", loggedOut, cmd(sec(now), wrapUpDone("a1", "o1", false)), shard.ErrIllegalTransition, []string{`"a1"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := given(t, tc.given...)
			refuse(t, s, tc.cmd, tc.want, tc.names...)
		})
	}
}

// applySafely applies c and turns a panic into a value, so one bad command
// is reported instead of ending the test binary.
func applySafely(s *shard.State, c *pb.Command) (r shard.Result, panicked any) {
	defer func() { panicked = recover() }()
	return s.Apply(c), nil
}

// TestApply_OutOfRangeEnumsAreRefusedNotPanics: protobuf enums are open, so
// a peer (or a corrupt log entry) can carry any int32 in an enum field,
// negative ones included. Bad input must get an error and change nothing; it
// must never crash a node (DESIGN.md "What must always hold" 4).
func TestApply_OutOfRangeEnumsAreRefusedNotPanics(t *testing.T) {
	for _, ch := range []pb.Channel{-1, -2147483648, 6, 99} {
		t.Run(fmt.Sprintf("reserve on channel %d", ch), func(t *testing.T) {
			s := given(t, upTo(beforeArrival)...)
			before := s.Snapshot()
			r, p := applySafely(s, cmd(sec(30), reserve("a1", "o9", "c9", ch)))
			if p != nil {
				t.Fatalf("Apply(AgentReserve{channel: %d}) panicked: %v", ch, p)
			}
			if shard.CodeOf(r.Err) != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
				t.Errorf("Apply(AgentReserve{channel: %d}) = %v, want INVALID_ARGUMENT", ch, r.Err)
			}
			assertUnchanged(t, "refused reservation", before, s.Snapshot())
		})
		t.Run(fmt.Sprintf("arrival on channel %d", ch), func(t *testing.T) {
			s := given(t)
			r, p := applySafely(s, cmd(sec(30), arrive("c9", "sales", ch)))
			if p != nil {
				t.Fatalf("Apply(ContactArrive{channel: %d}) panicked: %v", ch, p)
			}
			if shard.CodeOf(r.Err) != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
				t.Errorf("Apply(ContactArrive{channel: %d}) = %v (contact %+v), want INVALID_ARGUMENT", ch, r.Err, r.Contact)
			}
		})
	}
	// A profile naming a channel outside the enum must either be refused at
	// login or be harmless afterwards: the agent's later reservations are
	// answered, never a panic.
	profiles := map[string]func(*pb.AgentProfile){
		"capacity on channel -1": func(p *pb.AgentProfile) {
			p.Capacity = []*pb.ChannelCapacity{{Channel: -1, Slots: 1}, {Channel: chat, Slots: 2}}
		},
		"blocking rule for channel -1": func(p *pb.AgentProfile) {
			p.Blocking = &pb.BlockingRules{Blocks: []*pb.ChannelBlock{{Channel: -1, Blocks: []pb.Channel{voice}}}}
		},
		"blocking rule blocking channel -1": func(p *pb.AgentProfile) {
			p.Blocking = &pb.BlockingRules{Blocks: []*pb.ChannelBlock{{Channel: chat, Blocks: []pb.Channel{-1}}}}
		},
		"capacity and blocking on channel 42": func(p *pb.AgentProfile) {
			p.Capacity = []*pb.ChannelCapacity{{Channel: 42, Slots: 1}, {Channel: chat, Slots: 2}}
			p.Blocking = &pb.BlockingRules{Blocks: []*pb.ChannelBlock{{Channel: 42, Blocks: []pb.Channel{chat}}, {Channel: chat, Blocks: []pb.Channel{42}}}}
		},
	}
	for name, edit := range profiles {
		t.Run("login with "+name, func(t *testing.T) {
			s := given(t)
			r, p := applySafely(s, agentWith(edit))
			if p != nil {
				t.Fatalf("login panicked: %v", p)
			}
			if r.Err != nil {
				return // refusing the profile is a fine answer
			}
			for i, c := range []*pb.Command{
				cmd(sec(1), reserve("a1", "o1", "c1", chat)),
				cmd(sec(2), accept("a1", "o1")),
				cmd(sec(3), reserve("a1", "o2", "c2", chat)),
			} {
				r, p := applySafely(s, c)
				if p != nil {
					t.Fatalf("command %d (%s) panicked after login with %s: %v", i, describe(c), name, p)
				}
				if r.Err != nil && shard.CodeOf(r.Err) == pb.ErrorCode_ERROR_CODE_INTERNAL {
					t.Errorf("command %d: %v", i, r.Err)
				}
			}
			a := agentOf(t, s, "a1")
			_, _ = a.Free(), a.Occupancy()
		})
	}
}
