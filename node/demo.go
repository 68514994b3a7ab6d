package main

import (
	"time"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DemoRouting is the configuration a node starts with when given none: a
// support line that widens to general agents, a sales line that overflows
// into support, and a chat queue.
func DemoRouting() *pb.RoutingConfig {
	d := durationpb.New
	return &pb.RoutingConfig{
		TierPriority: map[string]int32{"gold": 10, "silver": 5},
		Queues: []*pb.QueueConfig{
			{
				Name:                 "support",
				Skills:               []*pb.SkillRequirement{{Skill: "support", MinLevel: 3}},
				Channels:             []pb.Channel{pb.Channel_CHANNEL_VOICE, pb.Channel_CHANNEL_CALLBACK},
				ServiceLevel:         &pb.ServiceLevel{Target: 0.8, Threshold: d(20 * time.Second)},
				Widening:             []*pb.WideningStep{{After: d(30 * time.Second), Skills: []*pb.SkillRequirement{{Skill: "support", MinLevel: 1}}}},
				OfferTimeout:         d(15 * time.Second),
				WrapUp:               d(30 * time.Second),
				Ageing:               &pb.PriorityAgeing{Every: d(30 * time.Second), MaxBoost: 10},
				PreferredAgentWindow: d(20 * time.Second),
			},
			{
				Name:         "sales",
				Skills:       []*pb.SkillRequirement{{Skill: "sales", MinLevel: 1}},
				Channels:     []pb.Channel{pb.Channel_CHANNEL_VOICE},
				Widening:     []*pb.WideningStep{{After: d(60 * time.Second), OverflowQueues: []string{"support"}}},
				OfferTimeout: d(15 * time.Second),
				WrapUp:       d(15 * time.Second),
			},
			{
				Name:         "chat",
				Skills:       []*pb.SkillRequirement{{Skill: "chat", MinLevel: 1}},
				Channels:     []pb.Channel{pb.Channel_CHANNEL_CHAT, pb.Channel_CHANNEL_SMS, pb.Channel_CHANNEL_EMAIL},
				Strategy:     pb.Strategy_STRATEGY_LEAST_OCCUPIED,
				OfferTimeout: d(30 * time.Second),
			},
		},
		Agents: []*pb.AgentProfile{
			{Id: "agent-1", Site: "tokyo", Skills: map[string]uint32{"support": 4, "sales": 2, "language:en": 5, "language:ja": 5}, Endpoint: "sip:agent-1@pbx.example"},
			{Id: "agent-2", Site: "tokyo", Skills: map[string]uint32{"support": 2, "chat": 3, "language:en": 4}, Endpoint: "sip:agent-2@pbx.example"},
			{Id: "agent-3", Site: "osaka", Skills: map[string]uint32{"sales": 4, "chat": 2, "language:ja": 5}, Endpoint: "sip:agent-3@pbx.example"},
			{Id: "agent-4", Site: "osaka", Skills: map[string]uint32{"support": 5, "chat": 5, "language:en": 3, "language:fr": 4}, Endpoint: "sip:agent-4@pbx.example"},
		},
	}
}
