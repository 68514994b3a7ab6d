package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/loadtest/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

func dur(d time.Duration) scenario.Duration { return scenario.Duration(d) }

func TestSamplersHaveTheStatedMean(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, d := range []scenario.Dist{
		{Kind: scenario.DistFixed, Mean: dur(3 * time.Second)},
		{Kind: scenario.DistExponential, Mean: dur(180 * time.Second)},
		{Kind: scenario.DistLognormal, Mean: dur(180 * time.Second), Sigma: 0.5},
		{Kind: scenario.DistLognormal, Mean: dur(10 * time.Second), Sigma: 1.2},
	} {
		s := NewSampler(d)
		const n = 200000
		sum, sumSq := 0.0, 0.0
		for range n {
			v := s.Draw(r).Seconds()
			if v < 0 {
				t.Fatalf("%+v drew %v", d, v)
			}
			sum += v
			sumSq += v * v
		}
		mean := sum / n
		sd := math.Sqrt(sumSq/n - mean*mean)
		want := d.Mean.D().Seconds()
		// Four standard errors; the seed is fixed, so this is deterministic.
		if tol := 4*sd/math.Sqrt(n) + 1e-9; math.Abs(mean-want) > tol {
			t.Errorf("%s: mean %.4g, want %.4g ± %.3g", d.Kind, mean, want, tol)
		}
		switch d.Kind {
		case scenario.DistFixed:
			if sd > 1e-9 {
				t.Errorf("fixed: standard deviation %v", sd)
			}
		case scenario.DistExponential:
			if math.Abs(sd/mean-1) > 0.02 {
				t.Errorf("exponential: coefficient of variation %.3f, want 1", sd/mean)
			}
		case scenario.DistLognormal:
			if cv := math.Sqrt(math.Exp(d.Sigma*d.Sigma) - 1); math.Abs(sd/mean-cv)/cv > 0.1 {
				t.Errorf("lognormal σ=%v: coefficient of variation %.3f, want %.3f", d.Sigma, sd/mean, cv)
			}
		}
	}
	if never := NewSampler(scenario.Dist{Kind: scenario.DistNever}); !never.Never() || never.Draw(r) != math.MaxInt64 {
		t.Error("never should draw for ever")
	}
}

func baseScenario() *scenario.Scenario {
	return &scenario.Scenario{
		Name: "t", Seed: 7, TimeScale: 1, Duration: dur(1000 * time.Second),
		Queues: []scenario.Queue{{Name: "q"}},
		Agents: []scenario.Agents{{Count: 50, IDPrefix: "a", Capacity: map[string]uint32{"voice": 1},
			Handle: scenario.Dist{Kind: scenario.DistExponential, Mean: dur(100 * time.Second)}}},
	}
}

func TestScheduleIsPoisson(t *testing.T) {
	sc := baseScenario()
	sc.Arrivals = []scenario.Arrival{{Queue: "q", Profile: scenario.ProfileSteady, Rate: 2, Duration: sc.Duration,
		Channels: map[string]float64{"voice": 3, "chat": 1}, Patience: scenario.Dist{Kind: scenario.DistNever}}}
	plan := Schedule(sc)
	// 2/s for 1000s: 2000 ± 4·√2000.
	if n := float64(len(plan)); math.Abs(n-2000) > 4*math.Sqrt(2000) {
		t.Fatalf("%v arrivals, want about 2000", n)
	}
	if !slices.IsSortedFunc(plan, func(a, b Planned) int { return int(a.At - b.At) }) {
		t.Fatal("schedule not in time order")
	}
	// Inter-arrival times: exponential, mean 0.5s, coefficient of variation 1.
	var gaps []float64
	for i := 1; i < len(plan); i++ {
		gaps = append(gaps, (plan[i].At - plan[i-1].At).Seconds())
	}
	mean, sd := meanSD(gaps)
	if math.Abs(mean-0.5) > 0.05 || math.Abs(sd/mean-1) > 0.08 {
		t.Errorf("gaps: mean %.3f (want 0.5), cv %.3f (want 1)", mean, sd/mean)
	}
	// Counts per 10s window: Poisson, variance ≈ mean.
	counts := make([]float64, 100)
	voice := 0
	for _, p := range plan {
		counts[int(p.At/(10*time.Second))]++
		if p.Channel == pb.Channel_CHANNEL_VOICE {
			voice++
		}
		if p.Patience != math.MaxInt64 {
			t.Fatal("patience never should draw never")
		}
	}
	m, s := meanSD(counts)
	if ratio := s * s / m; ratio < 0.6 || ratio > 1.5 {
		t.Errorf("index of dispersion %.2f, want about 1", ratio)
	}
	if share := float64(voice) / float64(len(plan)); math.Abs(share-0.75) > 0.04 {
		t.Errorf("voice share %.3f, want 0.75", share)
	}
	// Deterministic.
	if again := Schedule(sc); !slices.Equal(again, plan) {
		t.Error("the same seed gave another schedule")
	}
	sc.Seed++
	if other := Schedule(sc); slices.Equal(other, plan) {
		t.Error("another seed gave the same schedule")
	}
}

func meanSD(v []float64) (float64, float64) {
	sum, sq := 0.0, 0.0
	for _, x := range v {
		sum += x
		sq += x * x
	}
	m := sum / float64(len(v))
	return m, math.Sqrt(sq/float64(len(v)) - m*m)
}

func TestScheduleProfiles(t *testing.T) {
	count := func(plan []Planned, from, to time.Duration) float64 {
		n := 0
		for _, p := range plan {
			if p.At >= from && p.At < to {
				n++
			}
		}
		return float64(n)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 4*math.Sqrt(want)+1 {
			t.Errorf("%s: %v arrivals, want about %v", name, got, want)
		}
	}
	never := scenario.Dist{Kind: scenario.DistNever}
	voice := map[string]float64{"voice": 1}

	sc := baseScenario()
	sc.Arrivals = []scenario.Arrival{{Queue: "q", Profile: scenario.ProfileRamp, RateFrom: 0, Rate: 4, Duration: sc.Duration, Channels: voice, Patience: never}}
	plan := Schedule(sc)
	near("ramp first half", count(plan, 0, 500*time.Second), 500) // ∫0..500 of 4t/1000
	near("ramp second half", count(plan, 500*time.Second, sc.Duration.D()), 1500)

	sc.Arrivals = []scenario.Arrival{{Queue: "q", Profile: scenario.ProfileBurst, Rate: 1, BurstRate: 10, BurstAt: dur(200 * time.Second), BurstFor: dur(100 * time.Second), Duration: sc.Duration, Channels: voice, Patience: never}}
	plan = Schedule(sc)
	near("burst", count(plan, 200*time.Second, 300*time.Second), 1000)
	near("outside the burst", count(plan, 0, 200*time.Second), 200)

	// 50 agents, 100s handle: capacity 0.5/s; twice that is 1/s.
	sc.Arrivals = []scenario.Arrival{{Queue: "q", Profile: scenario.ProfilePeakOverflow, Factor: 2, Start: dur(100 * time.Second), Duration: dur(500 * time.Second), Channels: voice,
		Patience: scenario.Dist{Kind: scenario.DistExponential, Mean: dur(60 * time.Second)}}}
	plan = Schedule(sc)
	near("peak-overflow", float64(len(plan)), 500)
	if plan[0].At < 100*time.Second || plan[len(plan)-1].At >= 600*time.Second {
		t.Errorf("arrivals outside [start, start+duration): %v .. %v", plan[0].At, plan[len(plan)-1].At)
	}
	var patience []float64
	for _, p := range plan {
		patience = append(patience, p.Patience.Seconds())
	}
	if m, _ := meanSD(patience); math.Abs(m-60) > 4*60/math.Sqrt(float64(len(plan))) {
		t.Errorf("mean patience %.1fs, want 60s", m)
	}
}
