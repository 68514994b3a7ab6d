package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/tsunagu/tsunagu/loadtest/scenario"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Sampler draws durations from a scenario distribution. It is not safe for
// concurrent use; give each goroutine its own rand.
type Sampler struct {
	kind  string
	mean  float64 // ns
	mu    float64 // lognormal: mean of the underlying normal
	sigma float64
}

// NewSampler returns a sampler of d, in d's clock (scenario time).
func NewSampler(d scenario.Dist) Sampler {
	s := Sampler{kind: d.Kind, mean: float64(d.Mean), sigma: d.Sigma}
	if d.Kind == scenario.DistLognormal {
		// E[X] = exp(μ + σ²/2), so μ = ln(mean) − σ²/2 keeps the stated mean.
		s.mu = math.Log(s.mean) - d.Sigma*d.Sigma/2
	}
	return s
}

// Never reports whether every draw is infinite.
func (s Sampler) Never() bool { return s.kind == scenario.DistNever }

// Draw returns one duration; for "never" it returns math.MaxInt64.
func (s Sampler) Draw(r *rand.Rand) time.Duration {
	switch s.kind {
	case scenario.DistExponential:
		return time.Duration(r.ExpFloat64() * s.mean)
	case scenario.DistLognormal:
		return time.Duration(math.Exp(s.mu + s.sigma*r.NormFloat64()))
	case scenario.DistNever:
		return math.MaxInt64
	default:
		return time.Duration(s.mean)
	}
}

// Planned is one arrival of the schedule. Times are scenario time from the
// start of the run; Patience is scenario time too (math.MaxInt64: never).
type Planned struct {
	At       time.Duration
	Stream   int
	Queue    string
	Channel  pb.Channel
	Priority int32
	Patience time.Duration
}

// Schedule draws the whole open-loop arrival schedule before the run: each
// stream is a Poisson process (non-homogeneous ones by thinning against
// the stream's maximum rate), merged in time order. The same scenario and
// seed give the same schedule.
func Schedule(s *scenario.Scenario) []Planned {
	var all []Planned
	for i, a := range s.Arrivals {
		r := rand.New(rand.NewPCG(s.Seed, uint64(i)+1))
		patience := NewSampler(a.Patience)
		channels := newWeighted(a.Channels)
		priorities := newWeighted(a.Priorities)
		peak := s.MaxRate(a)
		end := a.Start.D() + a.Duration.D()
		for t := a.Start.D(); ; {
			t += time.Duration(r.ExpFloat64() / peak * float64(time.Second))
			if t >= end {
				break
			}
			// Thinning: keep the point with probability rate(t)/peak.
			if r.Float64()*peak >= s.RateAt(a, t) {
				continue
			}
			p := Planned{At: t, Stream: i, Queue: a.Queue, Channel: scenario.Channels[channels.pick(r)], Patience: patience.Draw(r)}
			if len(a.Priorities) > 0 {
				p.Priority = scenario.Priority(priorities.pick(r))
			}
			all = append(all, p)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].At < all[j].At })
	return all
}

// weighted picks keys in proportion to their weights, deterministically for
// a given rand (keys are taken in sorted order).
type weighted struct {
	keys []string
	cum  []float64
}

func newWeighted(m map[string]float64) weighted {
	w := weighted{}
	for k := range m {
		w.keys = append(w.keys, k)
	}
	slices.Sort(w.keys)
	total := 0.0
	for _, k := range w.keys {
		total += m[k]
		w.cum = append(w.cum, total)
	}
	for i := range w.cum {
		w.cum[i] /= total
	}
	return w
}

func (w weighted) pick(r *rand.Rand) string {
	if len(w.keys) == 1 {
		return w.keys[0]
	}
	u := r.Float64()
	i := sort.SearchFloat64s(w.cum, u)
	return w.keys[min(i, len(w.keys)-1)]
}
