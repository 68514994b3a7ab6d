package routing_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	voice    = pb.Channel_CHANNEL_VOICE
	chat     = pb.Channel_CHANNEL_CHAT
	email    = pb.Channel_CHANNEL_EMAIL
	sms      = pb.Channel_CHANNEL_SMS
	callback = pb.Channel_CHANNEL_CALLBACK
)

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func req(skill string, level uint32) *pb.SkillRequirement {
	return &pb.SkillRequirement{Skill: skill, MinLevel: level}
}

func step(after time.Duration, skills []*pb.SkillRequirement, overflow ...string) *pb.WideningStep {
	return &pb.WideningStep{After: dur(after), Skills: skills, OverflowQueues: overflow}
}

// validConfig is a small configuration that compiles: a sales queue that
// widens twice (relaxing sales, then adding the bpo queue), the bpo queue,
// and two agents.
func validConfig() *pb.RoutingConfig {
	return &pb.RoutingConfig{
		Queues: []*pb.QueueConfig{
			{
				Name:     "sales",
				Skills:   []*pb.SkillRequirement{req("sales", 3), req("billing", 2)},
				Channels: []pb.Channel{voice, chat},
				Widening: []*pb.WideningStep{
					step(30*time.Second, []*pb.SkillRequirement{req("sales", 1)}),
					step(90*time.Second, []*pb.SkillRequirement{req("billing", 0)}, "bpo"),
				},
			},
			{Name: "bpo", Skills: []*pb.SkillRequirement{req("bpo", 1)}},
		},
		Agents: []*pb.AgentProfile{
			{Id: "alice", Site: "tokyo", Skills: map[string]uint32{"sales": 5, "billing": 2}},
			{Id: "bob", Site: "osaka", Skills: map[string]uint32{"bpo": 1}},
		},
		TierPriority: map[string]int32{"gold": 5},
	}
}

func compile(t *testing.T, rc *pb.RoutingConfig) *routing.Config {
	t.Helper()
	c, err := routing.Compile(rc)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return c
}

func queue(t *testing.T, c *routing.Config, name string) *routing.Queue {
	t.Helper()
	q, ok := c.Queue(name)
	if !ok {
		t.Fatalf("queue %q not compiled", name)
	}
	return q
}

func TestCompile_ValidConfig(t *testing.T) {
	c := compile(t, validConfig())
	if got, want := strings.Join(c.QueueNames, ","), "bpo,sales"; got != want {
		t.Errorf("QueueNames %q; want %q (sorted)", got, want)
	}
	if len(c.Agents) != 2 || c.Agents["alice"] == nil || c.Agents["bob"] == nil {
		t.Errorf("Agents %v; want alice and bob", c.Agents)
	}
	if c.TierPriority["gold"] != 5 {
		t.Errorf("TierPriority %v; want gold 5", c.TierPriority)
	}
	q := queue(t, c, "sales")
	want := []struct {
		after    time.Duration
		reqs     string
		overflow string
	}{
		{0, "billing>=2,sales>=3", ""},
		{30 * time.Second, "billing>=2,sales>=1", ""},
		{90 * time.Second, "sales>=1", "bpo"},
	}
	if len(q.Steps) != len(want) {
		t.Fatalf("%d steps; want %d", len(q.Steps), len(want))
	}
	for i, w := range want {
		st := q.Steps[i]
		if st.After != w.after || st.Reqs.Key() != w.reqs || strings.Join(st.Overflow, ",") != w.overflow {
			t.Errorf("step %d = {%v %q %v}; want {%v %q %q}", i, st.After, st.Reqs.Key(), st.Overflow, w.after, w.reqs, w.overflow)
		}
	}
}

// TestCompile_Refusals: every refusal names the field path and the value,
// so an operator can find the line of the config file at fault.
func TestCompile_Refusals(t *testing.T) {
	long := strings.Repeat("a", 65)
	tests := []struct {
		name   string
		mutate func(rc *pb.RoutingConfig)
		want   []string
	}{
		{"queue name upper case", func(rc *pb.RoutingConfig) { rc.Queues[0].Name = "Sales" },
			[]string{`queues[0].name: "Sales" is not a queue name`}},
		{"queue name with a dot", func(rc *pb.RoutingConfig) { rc.Queues[1].Name = "bpo.partner" },
			[]string{`queues[1].name: "bpo.partner" is not a queue name`}},
		{"queue name empty", func(rc *pb.RoutingConfig) { rc.Queues[1].Name = "" },
			[]string{`queues[1].name: "" is not a queue name`}},
		{"queue name starting with a dash", func(rc *pb.RoutingConfig) { rc.Queues[1].Name = "-bpo" },
			[]string{`queues[1].name: "-bpo" is not a queue name`}},
		{"queue name of 65 characters", func(rc *pb.RoutingConfig) { rc.Queues[1].Name = long },
			[]string{`queues[1].name: "` + long + `" is not a queue name`, "at most 64"}},
		{"duplicate queue name", func(rc *pb.RoutingConfig) {
			rc.Queues = append(rc.Queues, &pb.QueueConfig{Name: "sales"})
		}, []string{`queues[2].name: "sales" is used by another queue`}},
		{"skill level 0", func(rc *pb.RoutingConfig) { rc.Queues[0].Skills[1].MinLevel = 0 },
			[]string{"queues[0].skills[1].min_level: 0 is out of range; allowed 1..5"}},
		{"skill level 6", func(rc *pb.RoutingConfig) { rc.Queues[0].Skills[0].MinLevel = 6 },
			[]string{"queues[0].skills[0].min_level: 6 is out of range; allowed 1..5"}},
		{"skill name with a space", func(rc *pb.RoutingConfig) { rc.Queues[0].Skills[0].Skill = "sales team" },
			[]string{`queues[0].skills[0].skill: "sales team" is not a skill name`}},
		{"negative offer timeout", func(rc *pb.RoutingConfig) { rc.Queues[0].OfferTimeout = dur(-time.Second) },
			[]string{"queues[0].offer_timeout: -1s is negative"}},
		{"negative wrap-up", func(rc *pb.RoutingConfig) { rc.Queues[0].WrapUp = dur(-2 * time.Second) },
			[]string{"queues[0].wrap_up: -2s is negative"}},
		{"negative preferred window", func(rc *pb.RoutingConfig) { rc.Queues[1].PreferredAgentWindow = dur(-time.Minute) },
			[]string{"queues[1].preferred_agent_window: -1m0s is negative"}},
		{"negative site window", func(rc *pb.RoutingConfig) { rc.Queues[0].SitePreferenceWindow = dur(-20 * time.Second) },
			[]string{"queues[0].site_preference_window: -20s is negative; allowed 0 or more"}},
		{"negative handle time", func(rc *pb.RoutingConfig) { rc.Queues[0].AverageHandleTime = dur(-time.Millisecond) },
			[]string{"queues[0].average_handle_time: -1ms is negative"}},
		{"negative max estimated wait", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Admission = &pb.Admission{MaxEstimatedWait: dur(-time.Second)}
		}, []string{"queues[0].admission.max_estimated_wait: -1s is negative"}},
		{"negative SL threshold", func(rc *pb.RoutingConfig) {
			rc.Queues[0].ServiceLevel = &pb.ServiceLevel{Target: 0.9, Threshold: dur(-time.Second)}
		}, []string{"queues[0].service_level.threshold: -1s is negative"}},
		{"negative ageing interval", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Ageing = &pb.PriorityAgeing{Every: dur(-time.Second), MaxBoost: 3}
		}, []string{"queues[0].ageing.every: -1s is negative"}},
		{"negative widening after", func(rc *pb.RoutingConfig) { rc.Queues[0].Widening[0].After = dur(-time.Second) },
			[]string{"queues[0].widening[0].after: -1s is negative"}},
		{"first widening step at 0", func(rc *pb.RoutingConfig) { rc.Queues[0].Widening[0].After = dur(0) },
			[]string{"queues[0].widening[0].after: 0s must be later than the previous step (0s)"}},
		{"widening step at the same time as the previous", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Widening[1].After = dur(30 * time.Second)
		}, []string{"queues[0].widening[1].after: 30s must be later than the previous step (30s)"}},
		{"widening step earlier than the previous", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Widening[1].After = dur(10 * time.Second)
		}, []string{"queues[0].widening[1].after: 10s must be later than the previous step (30s)"}},
		{"widening raises a level", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Widening[0].Skills = []*pb.SkillRequirement{req("sales", 4)}
		}, []string{`queues[0].widening[0].skills: "sales" level 4 is above the current 3`, "may only relax"}},
		{"widening raises a level relaxed earlier", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Widening[1].Skills = []*pb.SkillRequirement{req("sales", 2)}
		}, []string{`queues[0].widening[1].skills: "sales" level 2 is above the current 1`}},
		{"widening adds a skill", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Widening[0].Skills = []*pb.SkillRequirement{req("french", 1)}
		}, []string{`queues[0].widening[0].skills: "french" is not required before this step`}},
		{"widening re-adds a dropped skill", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Widening = append(rc.Queues[0].Widening, step(200*time.Second, []*pb.SkillRequirement{req("billing", 1)}))
		}, []string{`queues[0].widening[2].skills: "billing" is not required before this step`}},
		{"widening level 6", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Widening[0].Skills = []*pb.SkillRequirement{req("sales", 6)}
		}, []string{"queues[0].widening[0].skills[0].min_level: 6 is out of range; allowed 0..5"}},
		{"overflow to an unknown queue", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Widening[1].OverflowQueues = []string{"bpo", "partner"}
		}, []string{`queues[0].widening[1].overflow_queues[1]: "partner" is not a configured queue`}},
		{"overflow to itself", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Widening[1].OverflowQueues = []string{"sales"}
		}, []string{`queues[0].widening[1].overflow_queues[0]: "sales" overflows into itself`}},
		{"overflow to a bad name", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Widening[0].OverflowQueues = []string{"BPO!"}
		}, []string{`queues[0].widening[0].overflow_queues[0]: "BPO!" is not a queue name`}},
		{"too many widening steps", func(rc *pb.RoutingConfig) {
			var steps []*pb.WideningStep
			for i := range routing.MaxWideningSteps + 1 {
				steps = append(steps, step(time.Duration(i+1)*time.Second, nil))
			}
			rc.Queues[1].Widening = steps
		}, []string{"queues[1].widening: 17 steps; allowed at most 16"}},
		{"strategy out of the enum", func(rc *pb.RoutingConfig) { rc.Queues[0].Strategy = pb.Strategy(9) },
			[]string{"queues[0].strategy: 9 is not a strategy"}},
		{"negative strategy", func(rc *pb.RoutingConfig) { rc.Queues[0].Strategy = pb.Strategy(-1) },
			[]string{"queues[0].strategy: -1 is not a strategy"}},
		{"SL target above 1", func(rc *pb.RoutingConfig) { rc.Queues[0].ServiceLevel = &pb.ServiceLevel{Target: 1.5} },
			[]string{"queues[0].service_level.target: 1.5 is out of range; allowed 0..1"}},
		{"SL target below 0", func(rc *pb.RoutingConfig) { rc.Queues[1].ServiceLevel = &pb.ServiceLevel{Target: -0.1} },
			[]string{"queues[1].service_level.target: -0.1 is out of range; allowed 0..1"}},
		{"ageing boost above 100", func(rc *pb.RoutingConfig) {
			rc.Queues[0].Ageing = &pb.PriorityAgeing{Every: dur(time.Minute), MaxBoost: 101}
		}, []string{"queues[0].ageing.max_boost: 101 is out of range; allowed 0..100"}},
		{"queue channel unspecified", func(rc *pb.RoutingConfig) { rc.Queues[0].Channels = []pb.Channel{voice, 0} },
			[]string{"queues[0].channels[1]: CHANNEL_UNSPECIFIED is not a channel"}},
		{"queue channel out of the enum", func(rc *pb.RoutingConfig) { rc.Queues[0].Channels = []pb.Channel{6} },
			[]string{"queues[0].channels[0]: 6 is not a channel"}},
		{"agent id with a space", func(rc *pb.RoutingConfig) { rc.Agents[0].Id = "alice smith" },
			[]string{`agents[0].id: "alice smith" is not an agent id`}},
		{"agent id with @", func(rc *pb.RoutingConfig) { rc.Agents[0].Id = "alice@example.com" },
			[]string{`agents[0].id: "alice@example.com" is not an agent id`}},
		{"agent id empty", func(rc *pb.RoutingConfig) { rc.Agents[1].Id = "" },
			[]string{`agents[1].id: "" is not an agent id`}},
		{"agent id of 65 characters", func(rc *pb.RoutingConfig) { rc.Agents[1].Id = long },
			[]string{`agents[1].id: "` + long + `" is not an agent id`}},
		{"duplicate agent id", func(rc *pb.RoutingConfig) { rc.Agents[1].Id = "alice" },
			[]string{`agents[1].id: "alice" is used by another agent`}},
		{"agent skill name", func(rc *pb.RoutingConfig) { rc.Agents[0].Skills["sales desk"] = 3 },
			[]string{`agents[0].skills: "sales desk" is not a skill name`}},
		{"agent site as a skill", func(rc *pb.RoutingConfig) { rc.Agents[0].Skills["site:east"] = 1 },
			[]string{`agents[0].skills: "site:east" is reserved (skills "site:"<name> stand for the agent's site); set site instead`}},
		{"agent skill level 0", func(rc *pb.RoutingConfig) { rc.Agents[0].Skills["sales"] = 0 },
			[]string{`agents[0].skills["sales"]: level 0 is out of range; allowed 1..5`}},
		{"agent skill level 6", func(rc *pb.RoutingConfig) { rc.Agents[1].Skills["bpo"] = 6 },
			[]string{`agents[1].skills["bpo"]: level 6 is out of range; allowed 1..5`}},
		{"agent capacity channel unspecified", func(rc *pb.RoutingConfig) {
			rc.Agents[0].Capacity = []*pb.ChannelCapacity{{Channel: voice, Slots: 1}, {Channel: 0, Slots: 1}}
		}, []string{"agents[0].capacity[1].channel: CHANNEL_UNSPECIFIED is not a channel"}},
		{"agent capacity channel out of the enum", func(rc *pb.RoutingConfig) {
			rc.Agents[0].Capacity = []*pb.ChannelCapacity{{Channel: 7, Slots: 1}}
		}, []string{"agents[0].capacity[0].channel: 7 is not a channel"}},
		{"agent capacity above 100", func(rc *pb.RoutingConfig) {
			rc.Agents[0].Capacity = []*pb.ChannelCapacity{{Channel: chat, Slots: 101}}
		}, []string{"agents[0].capacity[0].slots: 101 is out of range; allowed 0..100"}},
		{"agent blocking channel", func(rc *pb.RoutingConfig) {
			rc.Agents[0].Blocking = &pb.BlockingRules{Blocks: []*pb.ChannelBlock{{Channel: 9, Blocks: []pb.Channel{chat}}}}
		}, []string{"agents[0].blocking.blocks[0].channel: 9 is not a channel"}},
		{"agent blocked channel", func(rc *pb.RoutingConfig) {
			rc.Agents[0].Blocking = &pb.BlockingRules{Blocks: []*pb.ChannelBlock{{Channel: voice, Blocks: []pb.Channel{chat, 0}}}}
		}, []string{"agents[0].blocking.blocks[0].blocks[1]: CHANNEL_UNSPECIFIED is not a channel"}},
		{"agent site too long", func(rc *pb.RoutingConfig) { rc.Agents[0].Site = long },
			[]string{"agents[0].site: 65 bytes; allowed at most 64"}},
		{"tier priority above 100", func(rc *pb.RoutingConfig) { rc.TierPriority["platinum"] = 101 },
			[]string{`tier_priority["platinum"]: 101 is out of range; allowed -100..100`}},
		{"tier priority below -100", func(rc *pb.RoutingConfig) { rc.TierPriority["bronze"] = -101 },
			[]string{`tier_priority["bronze"]: -101 is out of range; allowed -100..100`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := validConfig()
			tt.mutate(rc)
			c, err := routing.Compile(rc)
			if err == nil {
				t.Fatalf("Compile accepted the config")
			}
			if c != nil {
				t.Errorf("Compile returned a config with its error")
			}
			if !errors.Is(err, routing.ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n\t%v\ndoes not contain\n\t%s", err, w)
				}
			}
		})
	}
}

// TestCompile_ReportsEveryProblem: an operator fixing a config sees every
// mistake at once, not one per attempt.
func TestCompile_ReportsEveryProblem(t *testing.T) {
	rc := validConfig()
	rc.Queues[0].Skills[0].MinLevel = 9
	rc.Queues[0].OfferTimeout = dur(-time.Second)
	rc.Queues[1].Name = "BPO"
	rc.Agents[0].Skills["sales"] = 7
	rc.Agents[1].Id = "bob smith"
	rc.TierPriority["gold"] = 500
	_, err := routing.Compile(rc)
	if err == nil {
		t.Fatal("Compile accepted the config")
	}
	for _, w := range []string{
		"queues[0].skills[0].min_level: 9",
		"queues[0].offer_timeout: -1s",
		`queues[1].name: "BPO"`,
		`agents[0].skills["sales"]: level 7`,
		`agents[1].id: "bob smith"`,
		`tier_priority["gold"]: 500`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not report %q:\n\t%v", w, err)
		}
	}
	if !strings.HasPrefix(err.Error(), "routing: invalid config: ") {
		t.Errorf("error %q does not start with the package prefix", err)
	}
}

func TestCompile_AcceptsTheBoundaries(t *testing.T) {
	rc := validConfig()
	rc.Queues[0].Skills = []*pb.SkillRequirement{req("sales", 5), req("billing", 1)}
	rc.Queues[0].Widening[0].Skills = []*pb.SkillRequirement{req("sales", 5)} // not a raise
	rc.Queues[0].Ageing = &pb.PriorityAgeing{Every: dur(time.Minute), MaxBoost: 100}
	rc.Queues[0].ServiceLevel = &pb.ServiceLevel{Target: 1, Threshold: dur(0)}
	var steps []*pb.WideningStep
	for i := range routing.MaxWideningSteps {
		steps = append(steps, step(time.Duration(i+1)*time.Second, nil))
	}
	rc.Queues[1].Widening = steps
	rc.Queues[1].Name = strings.Repeat("b", 64)
	rc.Queues[0].Widening[1].OverflowQueues = []string{rc.Queues[1].Name}
	rc.Agents[0].Id = strings.Repeat("A", 64)
	rc.Agents[0].Capacity = []*pb.ChannelCapacity{{Channel: chat, Slots: 100}, {Channel: voice, Slots: 0}}
	rc.Agents[1].Skills = map[string]uint32{"bpo": 1, "language:pt-br": 5, "x.y_z": 1}
	rc.TierPriority = map[string]int32{"gold": 100, "bronze": -100}
	c := compile(t, rc)
	if q := queue(t, c, "sales"); q.AgeMax != 100 || q.SLTarget != 1 {
		t.Errorf("AgeMax %d SLTarget %v; want 100 and 1", q.AgeMax, q.SLTarget)
	}
	if n := len(queue(t, c, rc.Queues[1].Name).Steps); n != routing.MaxWideningSteps+1 {
		t.Errorf("%d steps; want %d", n, routing.MaxWideningSteps+1)
	}
}

// TestCompile_RefusesNaNServiceLevelTarget: `t < 0 || t > 1` is false for
// NaN (protojson accepts "NaN" for a double); the check must refuse it.
// Fixed in fdee590; kept as a regression test.
func TestCompile_RefusesNaNServiceLevelTarget(t *testing.T) {
	rc := validConfig()
	rc.Queues[0].ServiceLevel = &pb.ServiceLevel{Target: math.NaN()}
	c, err := routing.Compile(rc)
	if err == nil {
		t.Fatalf("Compile accepted service_level.target NaN (compiled SLTarget %v); want a refusal naming queues[0].service_level.target", queue(t, c, "sales").SLTarget)
	}
	if !strings.Contains(err.Error(), "queues[0].service_level.target: NaN is out of range") {
		t.Errorf("error %q does not name the field and value", err)
	}
}

func TestCompile_Defaults(t *testing.T) {
	c := compile(t, validConfig())
	q := queue(t, c, "bpo")
	if q.OfferTimeout != 15*time.Second {
		t.Errorf("OfferTimeout %v; want 15s", q.OfferTimeout)
	}
	if q.AverageHandle != 3*time.Minute {
		t.Errorf("AverageHandle %v; want 3m", q.AverageHandle)
	}
	if q.Strategy != pb.Strategy_STRATEGY_LONGEST_IDLE {
		t.Errorf("Strategy %v; want LONGEST_IDLE", q.Strategy)
	}
	if q.SLTarget != 0.8 || q.SLThreshold != 20*time.Second {
		t.Errorf("service level %v in %v; want 0.8 in 20s", q.SLTarget, q.SLThreshold)
	}
	if !q.MissedNotReady {
		t.Errorf("MissedNotReady false; an unspecified missed-offer action puts the agent not ready")
	}
	if q.WrapUp != 0 || q.PreferredWindow != 0 || q.SiteWindow != 0 || q.AgeEvery != 0 || q.AgeMax != 0 || q.MaxWaiting != 0 || q.MaxWait != 0 || q.Closed {
		t.Errorf("unset settings are not zero: %+v", q)
	}
	for _, ch := range []pb.Channel{voice, chat, email, sms, callback} {
		if !q.Accepts(ch) {
			t.Errorf("a queue without channels does not accept %v", ch)
		}
	}

	// Set values are kept.
	rc := validConfig()
	rc.Queues[1].OfferTimeout = dur(7 * time.Second)
	rc.Queues[1].AverageHandleTime = dur(45 * time.Second)
	rc.Queues[1].Strategy = pb.Strategy_STRATEGY_ROUND_ROBIN
	rc.Queues[1].ServiceLevel = &pb.ServiceLevel{Target: 0.95, Threshold: dur(10 * time.Second)}
	rc.Queues[1].MissedOffer = pb.MissedOfferAction_MISSED_OFFER_ACTION_STAY_AVAILABLE
	rc.Queues[1].SitePreferenceWindow = dur(20 * time.Second)
	q = queue(t, compile(t, rc), "bpo")
	if q.OfferTimeout != 7*time.Second || q.AverageHandle != 45*time.Second || q.Strategy != pb.Strategy_STRATEGY_ROUND_ROBIN ||
		q.SLTarget != 0.95 || q.SLThreshold != 10*time.Second || q.MissedNotReady || q.SiteWindow != 20*time.Second {
		t.Errorf("set values not kept: %+v", q)
	}
}

func TestQueue_StepAt(t *testing.T) {
	q := queue(t, compile(t, validConfig()), "sales") // steps at 0, 30s, 90s
	tests := []struct {
		wait time.Duration
		step int
		next time.Duration
	}{
		{-time.Second, 0, 30 * time.Second},
		{0, 0, 30 * time.Second},
		{29*time.Second + 999*time.Millisecond, 0, 30 * time.Second},
		{30 * time.Second, 1, 90 * time.Second},
		{89 * time.Second, 1, 90 * time.Second},
		{90 * time.Second, 2, -1},
		{time.Hour, 2, -1},
	}
	for _, tt := range tests {
		s := q.StepAt(tt.wait)
		if s != tt.step {
			t.Errorf("StepAt(%v) = %d; want %d", tt.wait, s, tt.step)
		}
		if n := q.NextStepAfter(s); n != tt.next {
			t.Errorf("NextStepAfter(%d) = %v; want %v", s, n, tt.next)
		}
	}
	if n := q.NextStepAfter(-1); n != 0 {
		t.Errorf("NextStepAfter(-1) = %v; want 0 (step 0 starts at once)", n)
	}
	flat := queue(t, compile(t, validConfig()), "bpo")
	if s, n := flat.StepAt(time.Hour), flat.NextStepAfter(0); s != 0 || n != -1 {
		t.Errorf("queue without widening: StepAt %d NextStepAfter %v; want 0 and -1", s, n)
	}
}

func TestQueue_EffectivePriority(t *testing.T) {
	rc := validConfig()
	rc.Queues[0].Ageing = &pb.PriorityAgeing{Every: dur(time.Minute), MaxBoost: 3}
	c := compile(t, rc)
	aged := queue(t, c, "sales")
	plain := queue(t, c, "bpo")
	tests := []struct {
		prio int32
		wait time.Duration
		want int32
	}{
		{0, -time.Minute, 0},
		{0, 0, 0},
		{0, 59 * time.Second, 0},
		{0, time.Minute, 1},
		{2, 150 * time.Second, 4},
		{2, 3 * time.Minute, 5},
		{2, time.Hour, 5}, // capped at max_boost
		{-5, time.Hour, -2},
	}
	for _, tt := range tests {
		if got := aged.EffectivePriority(tt.prio, tt.wait); got != tt.want {
			t.Errorf("ageing 1/min max 3: EffectivePriority(%d, %v) = %d; want %d", tt.prio, tt.wait, got, tt.want)
		}
		if got := plain.EffectivePriority(tt.prio, tt.wait); got != tt.prio {
			t.Errorf("no ageing: EffectivePriority(%d, %v) = %d; want %d", tt.prio, tt.wait, got, tt.prio)
		}
	}
	// An ageing block with no interval or no boost ages nothing.
	rc = validConfig()
	rc.Queues[0].Ageing = &pb.PriorityAgeing{MaxBoost: 10}
	rc.Queues[1].Ageing = &pb.PriorityAgeing{Every: dur(time.Second)}
	c = compile(t, rc)
	for _, name := range []string{"sales", "bpo"} {
		if got := queue(t, c, name).EffectivePriority(1, time.Hour); got != 1 {
			t.Errorf("%s: EffectivePriority(1, 1h) = %d; want 1", name, got)
		}
	}
}

func TestConfig_MinStep(t *testing.T) {
	c := compile(t, validConfig())
	sales := queue(t, c, "sales")
	tests := []struct {
		name   string
		skills map[string]uint32
		want   int
	}{
		{"meets the base skills", map[string]uint32{"sales": 3, "billing": 2}, 0},
		{"above the base skills", map[string]uint32{"sales": 5, "billing": 5, "french": 1}, 0},
		{"sales level relaxed at step 1", map[string]uint32{"sales": 1, "billing": 2}, 1},
		{"billing dropped at step 2", map[string]uint32{"sales": 1}, 2},
		{"billing too low until it is dropped", map[string]uint32{"sales": 4, "billing": 1}, 2},
		{"bpo queue member via overflow at step 2", map[string]uint32{"bpo": 1}, 2},
		{"never", map[string]uint32{"billing": 5}, -1},
		{"no skills", nil, -1},
	}
	for _, tt := range tests {
		p := &pb.AgentProfile{Id: "x", Skills: tt.skills}
		if got := c.MinStep(sales, p); got != tt.want {
			t.Errorf("%s: MinStep = %d; want %d", tt.name, got, tt.want)
		}
	}
	// Overflow membership counts from the step that adds the queue, even
	// when a later step adds another.
	rc := validConfig()
	rc.Queues = append(rc.Queues, &pb.QueueConfig{Name: "night", Skills: []*pb.SkillRequirement{req("night", 2)}})
	rc.Queues[0].Widening[0].OverflowQueues = []string{"night"}
	c = compile(t, rc)
	sales = queue(t, c, "sales")
	if got := c.MinStep(sales, &pb.AgentProfile{Skills: map[string]uint32{"night": 2}}); got != 1 {
		t.Errorf("night member: MinStep = %d; want 1", got)
	}
	if got := c.MinStep(sales, &pb.AgentProfile{Skills: map[string]uint32{"night": 1}}); got != -1 {
		t.Errorf("night member below the night queue's base level: MinStep = %d; want -1", got)
	}
	if got := c.MinStep(sales, &pb.AgentProfile{Skills: map[string]uint32{"bpo": 3, "night": 2}}); got != 1 {
		t.Errorf("member of both overflow queues: MinStep = %d; want 1", got)
	}
	if ov := sales.Steps[2].Overflow; strings.Join(ov, ",") != "night,bpo" {
		t.Errorf("step 2 overflow %v; want night,bpo (cumulative)", ov)
	}
	if ov := sales.Steps[1].Overflow; strings.Join(ov, ",") != "night" {
		t.Errorf("step 1 overflow %v; want night (later steps do not alias it)", ov)
	}
}

func TestConfig_QueuesFor(t *testing.T) {
	rc := validConfig()
	rc.Queues = append(rc.Queues,
		&pb.QueueConfig{Name: "email-only", Channels: []pb.Channel{email}},
		&pb.QueueConfig{Name: "anything"},
	)
	c := compile(t, rc)
	names := func(ms []routing.Membership) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Queue.Name+":"+string(rune('0'+m.MinStep)))
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		name string
		p    *pb.AgentProfile
		want string
	}{
		{"default capacity serves every channel",
			&pb.AgentProfile{Skills: map[string]uint32{"sales": 3, "billing": 2}},
			"anything:0,email-only:0,sales:0"},
		{"voice only: not the email queue",
			&pb.AgentProfile{Skills: map[string]uint32{"sales": 1}, Capacity: []*pb.ChannelCapacity{{Channel: voice, Slots: 1}}},
			"anything:0,sales:2"},
		{"email only: not the voice and chat queue",
			&pb.AgentProfile{Skills: map[string]uint32{"sales": 5, "billing": 5}, Capacity: []*pb.ChannelCapacity{{Channel: email, Slots: 5}}},
			"anything:0,email-only:0"},
		{"a listed channel with no slots does not count",
			&pb.AgentProfile{Skills: map[string]uint32{"sales": 5, "billing": 5}, Capacity: []*pb.ChannelCapacity{{Channel: email, Slots: 0}, {Channel: chat, Slots: 2}}},
			"anything:0,sales:0"},
		{"overflow member",
			&pb.AgentProfile{Skills: map[string]uint32{"bpo": 1}},
			"anything:0,bpo:0,email-only:0,sales:2"},
	}
	for _, tt := range tests {
		if got := names(c.QueuesFor(tt.p)); got != tt.want {
			t.Errorf("%s: QueuesFor = %s; want %s", tt.name, got, tt.want)
		}
	}
}

func TestQueue_Accepts(t *testing.T) {
	c := compile(t, validConfig())
	sales := queue(t, c, "sales") // voice and chat
	for ch, want := range map[pb.Channel]bool{voice: true, chat: true, email: false, sms: false, callback: false} {
		if got := sales.Accepts(ch); got != want {
			t.Errorf("voice+chat queue: Accepts(%v) = %v; want %v", ch, got, want)
		}
	}
	for _, ch := range []pb.Channel{0, -1, 6, 7, 8, 64, math.MaxInt32, math.MinInt32} {
		if sales.Accepts(ch) {
			t.Errorf("voice+chat queue accepts channel %d", ch)
		}
	}
}

// TestQueue_AcceptsNoUnknownChannelOnAnyChannelQueue: a queue that lists no
// channels ("any") still refuses channels that do not exist. Accepts once
// bounded the channel by 8, so such a queue took channels 6 and 7, which
// the queue actor would commit and match.Queue.Add would then silently
// leave out of line. Fixed in fdee590; kept as a regression test.
func TestQueue_AcceptsNoUnknownChannelOnAnyChannelQueue(t *testing.T) {
	bpo := queue(t, compile(t, validConfig()), "bpo") // no channels listed
	for _, ch := range []pb.Channel{0, -1, 6, 7, 8, math.MaxInt32} {
		if bpo.Accepts(ch) {
			t.Errorf("any-channel queue: Accepts(%d) = true; want false for a channel that does not exist", ch)
		}
	}
}

func TestLanguageSkill(t *testing.T) {
	for in, want := range map[string]string{"en": "language:en", "JA": "language:ja", "pt-BR": "language:pt-br", "": "language:"} {
		if got := routing.LanguageSkill(in); got != want {
			t.Errorf("LanguageSkill(%q) = %q; want %q", in, got, want)
		}
	}
	if !routing.ValidSkill(routing.LanguageSkill("zh-Hant")) {
		t.Errorf("LanguageSkill(zh-Hant) is not a valid skill name")
	}
}

func TestRequirements(t *testing.T) {
	r := routing.NewRequirements([]*pb.SkillRequirement{req("sales", 2), req("billing", 1), req("sales", 4), req("sales", 3), req("gone", 0)})
	if got, want := r.Key(), "billing>=1,sales>=4"; got != want {
		t.Errorf("Key %q; want %q (sorted, highest level per skill, level 0 dropped)", got, want)
	}
	if k := routing.NewRequirements(nil).Key(); k != "" {
		t.Errorf("empty Key %q", k)
	}
	tests := []struct {
		skills map[string]uint32
		want   bool
	}{
		{map[string]uint32{"sales": 4, "billing": 1}, true},
		{map[string]uint32{"sales": 5, "billing": 5, "x": 1}, true},
		{map[string]uint32{"sales": 3, "billing": 1}, false},
		{map[string]uint32{"sales": 4}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := r.MetBy(tt.skills); got != tt.want {
			t.Errorf("MetBy(%v) = %v; want %v", tt.skills, got, tt.want)
		}
	}
	if !routing.NewRequirements(nil).MetBy(nil) {
		t.Errorf("no requirements are not met by no skills")
	}
}

// A requirement on "site:<name>" is met by the agent's site, never by a
// skill of that name; other requirements are met by skills as before.
func TestRequirements_MetByProfile(t *testing.T) {
	r := routing.NewRequirements([]*pb.SkillRequirement{req("sales", 2), req(routing.SiteSkill("east"), 1)})
	tests := []struct {
		name string
		p    *pb.AgentProfile
		want bool
	}{
		{"site and skills", &pb.AgentProfile{Site: "east", Skills: map[string]uint32{"sales": 2}}, true},
		{"other site", &pb.AgentProfile{Site: "west", Skills: map[string]uint32{"sales": 5}}, false},
		{"no site", &pb.AgentProfile{Skills: map[string]uint32{"sales": 5}}, false},
		{"a skill named like the site is not the site", &pb.AgentProfile{Site: "west", Skills: map[string]uint32{"sales": 5, "site:east": 5}}, false},
		{"site but skill too low", &pb.AgentProfile{Site: "east", Skills: map[string]uint32{"sales": 1}}, false},
		{"nil profile", nil, false},
	}
	for _, tt := range tests {
		if got := r.MetByProfile(tt.p); got != tt.want {
			t.Errorf("%s: MetByProfile = %v; want %v", tt.name, got, tt.want)
		}
	}
	if !routing.NewRequirements([]*pb.SkillRequirement{req("sales", 2)}).MetByProfile(&pb.AgentProfile{Skills: map[string]uint32{"sales": 2}}) {
		t.Errorf("requirements without a site are not met by the skills that meet them")
	}
}

func TestRequirements_With(t *testing.T) {
	r := routing.NewRequirements([]*pb.SkillRequirement{req("sales", 2), req("billing", 1)})
	before := r.Key()
	tests := []struct {
		add  routing.Requirement
		want string
	}{
		{routing.Requirement{Skill: "site:east", Level: 1}, "billing>=1,sales>=2,site:east>=1"},
		{routing.Requirement{Skill: "a", Level: 1}, "a>=1,billing>=1,sales>=2"},
		{routing.Requirement{Skill: "c", Level: 4}, "billing>=1,c>=4,sales>=2"},
		{routing.Requirement{Skill: "sales", Level: 4}, "billing>=1,sales>=4"},
		{routing.Requirement{Skill: "sales", Level: 1}, "billing>=1,sales>=2"},
	}
	for _, tt := range tests {
		if got := r.With(tt.add).Key(); got != tt.want {
			t.Errorf("With(%v) = %q; want %q", tt.add, got, tt.want)
		}
		if r.Key() != before {
			t.Fatalf("With(%v) changed its receiver to %q", tt.add, r.Key())
		}
	}
	if got := routing.Requirements(nil).With(routing.Requirement{Skill: "x", Level: 1}).Key(); got != "x>=1" {
		t.Errorf("nil.With(x) = %q", got)
	}
}

// A queue may pin a site in its own skills: MinStep uses the agent's site
// for it, as the match index does for contacts.
func TestConfig_MinStepSiteRequirement(t *testing.T) {
	rc := validConfig()
	rc.Queues[1].Skills = append(rc.Queues[1].Skills, req(routing.SiteSkill("osaka"), 1))
	c := compile(t, rc)
	bpo := queue(t, c, "bpo")
	if got := c.MinStep(bpo, &pb.AgentProfile{Site: "osaka", Skills: map[string]uint32{"bpo": 1}}); got != 0 {
		t.Errorf("osaka bpo agent: MinStep = %d; want 0", got)
	}
	if got := c.MinStep(bpo, &pb.AgentProfile{Site: "tokyo", Skills: map[string]uint32{"bpo": 1, "site:osaka": 1}}); got != -1 {
		t.Errorf("tokyo bpo agent with a skill named site:osaka: MinStep = %d; want -1", got)
	}
}

func TestQueue_Score(t *testing.T) {
	sales := queue(t, compile(t, validConfig()), "sales")
	p := &pb.AgentProfile{Skills: map[string]uint32{"sales": 4, "billing": 3, "french": 5}}
	if got := sales.Score(p); got != 7 {
		t.Errorf("Score = %d; want 7 (sales 4 + billing 3; other skills do not count)", got)
	}
}

func TestValidNames(t *testing.T) {
	for name, want := range map[string]bool{"sales": true, "sales-eu_2": true, "0": true, "Sales": false, "_x": false, "a b": false, "a.b": false, "": false} {
		if got := routing.ValidQueueName(name); got != want {
			t.Errorf("ValidQueueName(%q) = %v; want %v", name, got, want)
		}
	}
	for id, want := range map[string]bool{"Alice-01_x": true, "a": true, "a@b": false, "-a": false, "a.b": false, "": false} {
		if got := routing.ValidAgentID(id); got != want {
			t.Errorf("ValidAgentID(%q) = %v; want %v", id, got, want)
		}
	}
	for s, want := range map[string]bool{"language:en": true, "x.y_z-1": true, ":x": false, "a b": false, "": false} {
		if got := routing.ValidSkill(s); got != want {
			t.Errorf("ValidSkill(%q) = %v; want %v", s, got, want)
		}
	}
}
