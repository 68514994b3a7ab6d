package report

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tsunagu/tsunagu/loadtest/scenario"
)

// simulate is an M/M/c+M queue, contact by contact, first come first
// served: the samples a perfect router would produce, in arrival order.
// A caller whose patience ran out is discovered when it reaches the head of
// the line, which is when an agent would have taken it.
func simulate(lambda, aht, patience float64, c, n int, seed uint64) []Sample {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]Sample, n)
	arrived := make([]float64, n)
	deadline := make([]float64, n)
	var line []int
	busy, next, now := 0, 0, 0.0
	nextArrival := r.ExpFloat64() / lambda
	for next < n || busy > 0 {
		departure := math.Inf(1)
		if busy > 0 {
			departure = now + r.ExpFloat64()*aht/float64(busy)
		}
		if next < n && nextArrival < departure {
			now = nextArrival
			i := next
			next++
			arrived[i] = now
			deadline[i] = math.Inf(1)
			if patience > 0 {
				deadline[i] = now + r.ExpFloat64()*patience
			}
			if busy < c {
				busy++
			} else {
				line = append(line, i)
			}
			nextArrival = now + r.ExpFloat64()/lambda
			continue
		}
		now = departure
		busy--
		for len(line) > 0 {
			i := line[0]
			line = line[1:]
			if deadline[i] <= now {
				out[i] = Sample{Wait: deadline[i] - arrived[i], Abandoned: true}
				continue
			}
			out[i] = Sample{Wait: now - arrived[i]}
			busy++
			break
		}
	}
	return out
}

func erlangScenario(t *testing.T, patience bool, factor float64) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Load("../scenarios/erlang-a-overload.json")
	if err != nil {
		t.Fatal(err)
	}
	sc.Arrivals[0].Factor = factor
	if !patience {
		sc.Arrivals[0].Patience = scenario.Dist{Kind: scenario.DistNever}
	}
	return sc
}

func TestCompareAcceptsAPerfectRouter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		patience bool
		factor   float64
	}{
		{"erlang A overload", true, 1.2},
		{"erlang A underload", true, 0.9},
		{"erlang C", false, 0.9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := erlangScenario(t, tc.patience, tc.factor)
			_, e, err := Model(sc)
			if err != nil {
				t.Fatal(err)
			}
			samples := simulate(e.ArrivalRate, e.HandleTime, e.Patience, e.Agents, 40000, 3)[2000:]
			got, err := Compare(sc, samples)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range got.Measures {
				if !m.Pass {
					t.Errorf("%s: %s", m.Name, m.Verdict)
				}
			}
			if !got.Pass {
				t.Fatal("a simulated M/M/c(+M) queue failed its own model")
			}
			wantMeasures := 4
			if tc.patience {
				wantMeasures = 5
			}
			if len(got.Measures) != wantMeasures {
				t.Errorf("%d measures, want %d", len(got.Measures), wantMeasures)
			}
			for i := 1; i < len(got.WaitCCDF); i++ {
				if p := got.WaitCCDF[i]; p.Measured > got.WaitCCDF[i-1].Measured || p.Predicted > got.WaitCCDF[i-1].Predicted+1e-12 {
					t.Fatalf("P(W > t) rises at t=%v", p.T)
				}
			}
		})
	}
}

func TestCompareRejectsASlowRouter(t *testing.T) {
	sc := erlangScenario(t, true, 1.2)
	_, e, err := Model(sc)
	if err != nil {
		t.Fatal(err)
	}
	samples := simulate(e.ArrivalRate, e.HandleTime, e.Patience, e.Agents, 40000, 3)[2000:]
	// Every answer comes 20 scenario seconds late: waits grow and the
	// service level collapses.
	for i := range samples {
		if !samples[i].Abandoned {
			samples[i].Wait += 20
		}
	}
	got, err := Compare(sc, samples)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pass {
		t.Fatal("a router 20s slow on every answer passed")
	}
	var failed []string
	for _, m := range got.Measures {
		if !m.Pass {
			failed = append(failed, m.Name)
			if !strings.Contains(m.Verdict, "prediction outside measured band") {
				t.Errorf("%s: verdict %q", m.Name, m.Verdict)
			}
		}
	}
	if !strings.Contains(strings.Join(failed, "|"), "service level") || !strings.Contains(strings.Join(failed, "|"), "mean wait") {
		t.Errorf("service level and mean wait should fail; failed: %v", failed)
	}
}

func TestCompareNeedsEnoughContacts(t *testing.T) {
	sc := erlangScenario(t, true, 1.2)
	if _, err := Compare(sc, make([]Sample, 5)); err == nil {
		t.Fatal("5 contacts for 20 batches should be refused")
	}
}
