package actors_test

import (
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/internal/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// A queue with a site window keeps a contact for agents of its own site:
// an east contact waits while a west agent is free and goes to the east
// agent when she becomes free; a second east contact, with the east agent
// busy, goes to the west agent once it has waited the window — the queue
// wakes itself for that, with no message arriving.
func TestSite_ContactWaitsForItsSiteThenWidens(t *testing.T) {
	const window = 2 * time.Second
	rc := &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{{
			Name:                 "support",
			Skills:               []*pb.SkillRequirement{{Skill: "support", MinLevel: 1}},
			Channels:             []pb.Channel{pb.Channel_CHANNEL_VOICE},
			SitePreferenceWindow: durationpb.New(window),
		}},
		Agents: []*pb.AgentProfile{
			{Id: "emi", Site: "east", Skills: map[string]uint32{"support": 1}},
			{Id: "walt", Site: "west", Skills: map[string]uint32{"support": 1}},
		},
	}
	s := &scenario.S{T: t, D: newEngine(t, rc, 4, scenario.Options{})}
	east := func(a *pb.ContactArrival) { a.Site = "east" }

	s.Login("walt")
	s.MustArrive("c1", "support", pb.Channel_CHANNEL_VOICE, east)
	s.NoNotice("walt", pb.NoticeKind_NOTICE_KIND_OFFER, window/4)
	s.Login("emi")
	o := s.Offer("emi")
	if o.GetContactId() != "c1" {
		t.Fatalf("emi was offered %s; want c1", o.GetContactId())
	}
	if o.GetWaited().AsDuration() >= window {
		t.Fatalf("c1 reached emi after %v, not within its %v site window", o.GetWaited().AsDuration(), window)
	}
	s.Accept("emi", o)
	s.WaitContact("c1", pb.ContactState_CONTACT_STATE_CONNECTED)

	// emi is busy: c2 waits out its window, then walt may take it.
	s.MustArrive("c2", "support", pb.Channel_CHANNEL_VOICE, east)
	o = offerWithin(s, "walt", window+scenario.WaitLimit, "c2's site window closes and walt is free")
	if o.GetContactId() != "c2" {
		t.Fatalf("walt was offered %s; want c2", o.GetContactId())
	}
	if w := o.GetWaited().AsDuration(); w < window {
		t.Fatalf("walt was offered c2 after %v, inside its %v site window", w, window)
	}
}
