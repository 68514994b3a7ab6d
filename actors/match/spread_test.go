package match

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// sharedQueues returns n queues' indexes, each with one contact waiting
// and the same free agents: agent i idle since start + idle[i], all serving
// every queue ("s" at the level given, skill "s" level 1 required).
func sharedQueues(t testing.TB, n int, strategy pb.Strategy, start int64, idle []time.Duration, levels []int) []*harness {
	t.Helper()
	rc := &pb.RoutingConfig{}
	for i := range n {
		rc.Queues = append(rc.Queues, &pb.QueueConfig{Name: fmt.Sprintf("q%d", i), Skills: []*pb.SkillRequirement{req("s", 1)}, Strategy: strategy})
	}
	for j := range idle {
		rc.Agents = append(rc.Agents, &pb.AgentProfile{Id: fmt.Sprintf("a%02d", j), Skills: skills("s", levels[j])})
	}
	cfg, err := routing.Compile(rc)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	hs := make([]*harness, n)
	for i, qc := range rc.Queues {
		q, _ := cfg.Queue(qc.GetName())
		hs[i] = &harness{t: t, cfg: cfg, q: New(cfg, q), profiles: maps.Clone(cfg.Agents), versions: make(map[string]uint64)}
		for j, d := range idle {
			if !hs[i].agent(fmt.Sprintf("a%02d", j), nil, start+int64(d), free(voice, 1)) {
				t.Fatalf("q%d refused agent a%02d", i, j)
			}
		}
		hs[i].add("c", start+int64(time.Second), 0, voice, nil)
	}
	return hs
}

// picks returns the agent each queue offers its contact to.
func picks(t *testing.T, hs []*harness, now int64) []string {
	t.Helper()
	out := make([]string, len(hs))
	for i, h := range hs {
		_, a, ok := h.q.NextMatch(now)
		if !ok {
			t.Fatalf("q%d found no match", i)
		}
		out[i] = a.ID
	}
	return out
}

func millis(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i) * time.Millisecond
	}
	return out
}

func levels(n, level int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = level
	}
	return out
}

// Queues that share agents idle within the window of one another mostly
// pick different ones, and only among the spreadMax longest idle.
func TestSpread_SharingQueuesMostlyPickApart(t *testing.T) {
	const trials, queues, agents = 300, 4, 16
	same, pairs := 0, 0
	picked := map[string]int{}
	for trial := range trials {
		start := at(float64(trial))
		got := picks(t, sharedQueues(t, queues, pb.Strategy_STRATEGY_LONGEST_IDLE, start, millis(agents), levels(agents, 1)), start+int64(time.Second))
		for i, a := range got {
			picked[a]++
			var n int
			if _, err := fmt.Sscanf(a, "a%02d", &n); err != nil || n >= spreadMax {
				t.Fatalf("trial %d: q%d picked %s; want one of the %d longest idle", trial, i, a, spreadMax)
			}
			for _, b := range got[i+1:] {
				pairs++
				if a == b {
					same++
				}
			}
		}
	}
	// Each queue takes the best agent of its own among the few, so two
	// agree only when one has none there (3 pairs in 1,800 here; by hash
	// alone it would be one in spreadMax, and without spreading, all).
	if share := float64(same) / float64(pairs); share > 0.02 {
		t.Errorf("two queues picked the same agent in %.1f%% of %d pairs; want under 2%%", share*100, pairs)
	}
	if len(picked) != spreadMax {
		t.Errorf("picked %v; want each of the %d longest idle sometimes", picked, spreadMax)
	}
}

// Beyond the grace the strategy decides alone: the agent idle longest by
// more than homeGrace, or the most skilled, is every queue's pick.
func TestSpread_KeepsTheStrategyBeyondTheWindow(t *testing.T) {
	idle := millis(16)
	for i := 1; i < len(idle); i++ {
		idle[i] += time.Duration(homeGrace) + time.Millisecond
	}
	skilled := levels(16, 1)
	skilled[9] = 2
	cases := []struct {
		name     string
		strategy pb.Strategy
		idle     []time.Duration
		levels   []int
		want     string
	}{
		{"longest idle by more than the window", pb.Strategy_STRATEGY_LONGEST_IDLE, idle, levels(16, 1), "a00"},
		{"most skilled, idle for less long", pb.Strategy_STRATEGY_MOST_SKILLED, millis(16), skilled, "a09"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for trial := range 50 {
				start := at(float64(trial))
				for i, a := range picks(t, sharedQueues(t, 4, c.strategy, start, c.idle, c.levels), start+int64(time.Second)) {
					if a != c.want {
						t.Fatalf("trial %d: q%d picked %s; want %s", trial, i, a, c.want)
					}
				}
			}
		})
	}
}

// Queues that share agents take their home agents first, up to homeGrace
// of idle time, so they almost never ask for the same agent: here 64 agents
// went idle 10 ms apart, far more than spreadWindow, and each queue still
// picks an agent of its own, idle within homeGrace of the longest idle.
func TestHome_QueuesTakeTheirOwnAgentsFirst(t *testing.T) {
	const trials, queues, agents = 200, 4, 64
	idle := make([]time.Duration, agents)
	for i := range idle {
		idle[i] = time.Duration(i) * 10 * time.Millisecond
	}
	same, pairs := 0, 0
	for trial := range trials {
		start := at(float64(trial))
		hs := sharedQueues(t, queues, pb.Strategy_STRATEGY_LONGEST_IDLE, start, idle, levels(agents, 1))
		got := picks(t, hs, start+int64(time.Second))
		for i, id := range got {
			a, _ := hs[i].q.Agent(id)
			if a.away {
				t.Errorf("trial %d: q%d picked %s, whose home is another queue", trial, i, id)
			}
			if waited := a.IdleSince - start; waited > homeGrace {
				t.Errorf("trial %d: q%d picked %s, idle %v less than the longest idle; the grace is %v", trial, i, id, time.Duration(waited), time.Duration(homeGrace))
			}
			for _, b := range got[i+1:] {
				pairs++
				if id == b {
					same++
				}
			}
		}
	}
	if same > 0 {
		t.Errorf("two queues picked the same agent in %d of %d pairs; want none", same, pairs)
	}
}

// An agent that serves one queue only cannot be taken by another, so that
// queue keeps the strategy's order exactly, however close the idle times.
func TestSpread_NotForAgentsOfOneQueue(t *testing.T) {
	for trial := range 50 {
		start := at(float64(trial))
		if got := picks(t, sharedQueues(t, 1, pb.Strategy_STRATEGY_LONGEST_IDLE, start, millis(16), levels(16, 1)), start+int64(time.Second)); got[0] != "a00" {
			t.Fatalf("trial %d: picked %s; want a00, the longest idle", trial, got[0])
		}
	}
}

// BenchmarkSpread is NextMatch for queues whose 1,000 free agents serve
// four queues and went idle 1 ms apart: the choice among the spreadMax
// that rank alike, for each of the four in turn.
func BenchmarkSpread(b *testing.B) {
	start := at(0)
	hs := sharedQueues(b, 4, pb.Strategy_STRATEGY_LONGEST_IDLE, start, millis(1000), levels(1000, 1))
	now := start + int64(time.Second)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, ok := hs[i%len(hs)].q.NextMatch(now); !ok {
			b.Fatal("no match")
		}
		i++
	}
}
