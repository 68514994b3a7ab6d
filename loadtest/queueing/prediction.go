package queueing

import "math"

// Prediction holds the steady-state measures of a queue model. All
// probabilities are over arriving contacts (PASTA: Poisson arrivals see time
// averages), all times are in seconds. Its methods do not modify it, so it
// is safe for concurrent use.
//
// Two waiting times are distinguished because they differ once callers
// abandon:
//   - the wait W, the time a contact actually spends queued, ending with
//     either an answer or an abandonment;
//   - the offered wait V, the time until an agent would have been free for
//     the contact had it never abandoned. W = min(V, patience), and V = W in
//     Erlang C. A run observes V for answered contacts; for abandoned ones
//     only if it records when the contact would have reached the head of
//     the queue with an agent free. Without that, compare measured answers
//     with ServiceLevel and hang-ups with PAbandonWithin instead.
type Prediction struct {
	// Model names the model that produced the prediction, for reports.
	Model string
	// OfferedLoad is A = λ·AHT in Erlangs.
	OfferedLoad float64
	// Occupancy is ρ = A/c, the offered load per agent. In Erlang C it is
	// also the fraction of time agents are busy; with abandonment the busy
	// fraction is MeanBusyAgents/c, which is lower.
	Occupancy float64
	// MeanBusyAgents is the time-average number of agents handling a
	// contact, computed from the stationary distribution.
	MeanBusyAgents float64

	// PWait is the probability that an arriving contact finds every agent
	// busy and has to queue.
	PWait float64
	// PAbandon is the probability that an arriving contact abandons.
	PAbandon float64
	// MeanWait is E[W] over all arriving contacts: zero for those answered
	// at once, the time to answer or to abandonment for the others.
	MeanWait float64
	// MeanWaitServed is E[W | answered], including zero waits ("average
	// speed of answer").
	MeanWaitServed float64
	// MeanWaitAbandoned is E[W | abandoned], the mean time to abandon; zero
	// when nobody abandons.
	MeanWaitAbandoned float64
	// MeanQueueLength is the time-average number of contacts queued.
	MeanQueueLength float64

	// Erlang C: the rate of the exponential conditional wait, (c − A)/AHT.
	decay float64
	// Erlang A, set only when theta > 0; see ErlangA.Predict. Given that a
	// caller waits, m is the number of callers ahead of it.
	theta    float64   // abandonment rate 1/patience
	cmu      float64   // total service rate of c busy agents
	pIdle    float64   // 1 − PWait, computed without cancellation
	ahead    []float64 // ahead[m] = P(m ahead | wait)
	aheadGE  []float64 // aheadGE[m] = P(at least m ahead | wait)
	served   []float64 // served[m] = P(m ahead and then answered | wait)
	servedGE []float64 // servedGE[m] = Σ_{i≥m} served[i]
}

// PWaitExceeds returns P(V > t), the probability that a contact's offered
// wait exceeds t seconds. In Erlang C it is simply the probability of
// waiting longer than t. For t < 0 it is 1. It is a sum of positive terms,
// so it keeps its relative accuracy into the tail, where log-scale plots
// look, down to about 1e-15·PWait, where Erlang A's chain truncation sets
// in.
func (p *Prediction) PWaitExceeds(t float64) float64 {
	switch {
	case math.IsNaN(t):
		return math.NaN()
	case t < 0:
		return 1
	case math.IsInf(t, 1):
		return 0
	case p.theta == 0:
		return p.PWait * math.Exp(-p.decay*t)
	}
	_, above := p.negBinSums(t, 0, p.ahead, p.aheadGE)
	return p.PWait * above
}

// OfferedWaitCDF returns P(V ≤ t), the distribution function of the offered
// wait: the curve to plot against measured waits of answered contacts plus
// would-be answer times of abandoned ones. It has an atom of 1 − PWait at 0.
func (p *Prediction) OfferedWaitCDF(t float64) float64 {
	switch {
	case math.IsNaN(t):
		return math.NaN()
	case t < 0:
		return 0
	case math.IsInf(t, 1):
		return 1
	case p.theta == 0:
		return 1 - p.PWait*math.Exp(-p.decay*t)
	}
	below, _ := p.negBinSums(t, 0, p.ahead, p.aheadGE)
	return min(1, p.pIdle+p.PWait*below)
}

// ServiceLevel returns P(answered and W ≤ t): the fraction of all offered
// contacts answered within t seconds. It tends to 1 − PAbandon as t grows.
//
// Contact centres quote other ratios under the same name; they follow from
// this one and PAbandonWithin:
//
//	answered within t / answered:                   SL(t) / (1 − PAbandon)
//	answered within t / (offered − abandoned by t): SL(t) / (1 − PAbandonWithin(t))
//
// The last is ContactCenters' g₁(s), which ignores callers who hang up
// before the threshold.
func (p *Prediction) ServiceLevel(t float64) float64 {
	switch {
	case math.IsNaN(t):
		return math.NaN()
	case t < 0:
		return 0
	case math.IsInf(t, 1):
		return 1 - p.PAbandon
	case p.theta == 0:
		return 1 - p.PWait*math.Exp(-p.decay*t)
	}
	// P(answered and V ≤ t) = E[e^{−θV}; V ≤ t]. Given m ahead, with
	// U = e^{−θV} ~ Beta(k, m+1) and x = e^{−θt},
	// E[U; U ≥ x] = k/(k+m+1)·(1 − I_x(k+1, m+1)): the same sum with shape k+1
	// and the per-state probability of being answered as weight.
	below, _ := p.negBinSums(t, 1, p.served, p.servedGE)
	return min(1-p.PAbandon, p.pIdle+p.PWait*below)
}

// PAbandonWithin returns P(abandoned and W ≤ t): the fraction of all offered
// contacts that hung up within t seconds of queueing. It tends to PAbandon as
// t grows and is 0 in Erlang C.
func (p *Prediction) PAbandonWithin(t float64) float64 {
	switch {
	case math.IsNaN(t):
		return math.NaN()
	case t <= 0 || p.theta == 0:
		return 0
	case math.IsInf(t, 1):
		return p.PAbandon
	}
	// Abandoned by t: either V ≤ t and patience ran out first, or V > t and
	// patience ran out by t.
	v := max(0, p.OfferedWaitCDF(t)-p.ServiceLevel(t)) - math.Expm1(-p.theta*t)*p.PWaitExceeds(t)
	return min(v, p.PAbandon)
}

// negBinSums evaluates P(V ≤ t | wait) and P(V > t | wait), or their
// answered-only counterparts, for the exact offered-wait distribution.
//
// Given m callers ahead, U = e^{−θV} is Beta(k, m+1) with k = cμ/θ: V is the
// time for m+1 events of a pure death process with rates cμ + iθ, which is
// the (m+1)-th order statistic of a "population" of k + m exponential(θ)
// lives. So P(V > t | m) = I_x(k, m+1) with x = e^{−θt}, and the incomplete
// beta is the distribution function of a negative binomial NB(shape k,
// success x) at m. Summing over m and swapping the sums,
//
//	above = Σ_m point[m]·I_x(shape, m+1)       = Σ_j NB(j)·Σ_{m≥j} point[m]
//	below = Σ_m point[m]·(1 − I_x(shape, m+1)) = Σ_j NB(j)·Σ_{m<j} point[m]
//
// with shape = k + extra (extra = 1 for the answered-only form).
//
// The pmf is built by its ratio recursion in log space, with compensated
// accumulation, so shapes from 1e-9 (impatient callers) to 1e12 (patience
// far beyond the handle time) neither overflow nor underflow. What rounding
// remains is nearly a common factor (1+ε) on all terms, ε growing like
// j·1e-16; when the loop has seen the whole pmf it divides it out by the
// pmf's computed total, so both sums are positive and relatively accurate
// to about 1e-13. If the pmf's mass lies beyond reach (t so long that the
// answer is "everyone has been reached"), below falls back to
// total − above, accurate to about 1e-15 absolute.
func (p *Prediction) negBinSums(t, extra float64, point, pointGE []float64) (below, above float64) {
	n := len(point)
	total := pointGE[0]
	if t == 0 {
		return 0, total // x = 1: NB is all at j = 0
	}
	shape := p.cmu/p.theta + extra
	logX := -p.theta * t
	log1mx := math.Log(-math.Expm1(logX)) // log(1 − x)
	// log x^shape = −cμt + extra·log x, formed so that θ cancels exactly.
	logTerm, comp := -p.cmu*t, extra*logX
	var mass, head float64
	peaked, covered := false, false
	for j := 0; ; j++ {
		if j > 0 {
			step := math.Log((shape+float64(j)-1)/float64(j)) + log1mx
			peaked = peaked || step < 0
			logTerm, comp = twoSum(logTerm, comp, step)
			if j <= n {
				head += point[j-1]
			}
		}
		term := 0.0
		if lt := logTerm + comp; lt > -745 {
			term = math.Exp(lt)
		}
		mass += term
		below += term * head
		if j < n {
			above += term * pointGE[j]
		}
		if peaked {
			// Past the mode the ratio of successive terms never exceeds the
			// next one (shape ≥ 1) or 1 − x (shape < 1): a geometric bound
			// on everything not yet summed.
			r := -math.Expm1(logX)
			if shape >= 1 {
				r = (shape + float64(j)) / float64(j+1) * r
			}
			if rest := term * r / (1 - r); r < 1 && rest <= 1e-17*mass {
				covered = math.Abs(mass-1) < 1e-6
				break
			}
		}
		// Still rising after the last queue state: most of the mass lies
		// beyond it, where below gains nothing that total − above misses.
		// The cap stops pmfs that decay too slowly to finish (shape < 1 with
		// x ≈ 0); their mass is far out too.
		if (j >= n-1 && !peaked) || j >= 2*n+64 {
			break
		}
	}
	if covered {
		return below / mass, above / mass
	}
	return max(0, total-above), above
}

// twoSum adds x to the compensated sum (s, c) (Neumaier's variant of Kahan
// summation), so that the running log of the pmf does not drift by an ulp of
// its largest magnitude per step.
func twoSum(s, c, x float64) (float64, float64) {
	t := s + x
	if math.Abs(s) >= math.Abs(x) {
		c += (s - t) + x
	} else {
		c += (x - t) + s
	}
	return t, c
}
