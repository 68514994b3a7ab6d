package queueing

import (
	"errors"
	"math"
	"testing"
)

// bruteErlangA is an independent, deliberately naive evaluation of
// M/M/c+M for small systems: the stationary distribution by plain products
// over a generously truncated chain, and the per-caller measures by
// uniformising the continuous-time chain a tagged caller sees (phase j =
// callers ahead of it, absorbing "answered" and "abandoned") — no Beta or
// negative-binomial identities, no log space.
type bruteErlangA struct {
	pi                []float64 // pi[n], n = 0..c+maxAhead
	c                 int
	lambda, mu, theta float64
}

func newBruteErlangA(q ErlangA, maxAhead int) bruteErlangA {
	b := bruteErlangA{c: q.Agents, lambda: q.ArrivalRate, mu: 1 / q.HandleTime, theta: 1 / q.Patience}
	w := []float64{1}
	for n := 1; n <= b.c+maxAhead; n++ {
		death := float64(min(n, b.c))*b.mu + float64(max(n-b.c, 0))*b.theta
		w = append(w, w[n-1]*b.lambda/death)
	}
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	for n := range w {
		w[n] /= sum
	}
	b.pi = w
	return b
}

func (b bruteErlangA) pWait() float64 {
	s := 0.0
	for _, p := range b.pi[b.c:] {
		s += p
	}
	return s
}

func (b bruteErlangA) meanQueue() float64 {
	s := 0.0
	for m, p := range b.pi[b.c:] {
		s += float64(m) * p
	}
	return s
}

func (b bruteErlangA) meanBusy() float64 {
	s := 0.0
	for n, p := range b.pi {
		s += float64(min(n, b.c)) * p
	}
	return s
}

// tagged returns, at time t after arrival, P(still waiting), P(answered)
// and P(abandoned) for a caller whose own patience is taggedTheta (0 for
// the offered wait V). Callers ahead abandon at rate theta each. Time is
// advanced in slices short enough that the Poisson weights of the
// uniformised chain never underflow.
func (b bruteErlangA) tagged(t, taggedTheta float64) (waiting, answered, abandoned float64) {
	// Callers beyond the point where π is below 1e-20 cannot matter.
	ahead := len(b.pi) - b.c
	for ahead > 1 && b.pi[b.c+ahead-1] < 1e-20 {
		ahead--
	}
	cmu := float64(b.c) * b.mu
	v := make([]float64, ahead+2) // v[j]: waiting with j ahead; then answered, abandoned
	copy(v, b.pi[b.c:b.c+ahead])
	v[ahead] = 1 - b.pWait() // answered at once
	uni := cmu + float64(ahead)*b.theta + taggedTheta
	slices := math.Ceil(uni * t / 20)
	h := t / slices
	for range int(slices) {
		// v ← Σ_k Poisson(k; uni·h)·v·P^k with P = I + Q/uni.
		out := make([]float64, len(v))
		next := make([]float64, len(v))
		weight, acc := math.Exp(-uni*h), 0.0
		for k := 0; acc < 1-1e-16 && k < 10000; k++ {
			acc += weight
			for i, x := range v {
				out[i] += weight * x
			}
			clear(next)
			next[ahead], next[ahead+1] = v[ahead], v[ahead+1]
			for j := 0; j < ahead; j++ {
				move := (cmu + float64(j)*b.theta) / uni
				quit := taggedTheta / uni
				next[j] += v[j] * (1 - move - quit)
				if j == 0 {
					next[ahead] += v[j] * move
				} else {
					next[j-1] += v[j] * move
				}
				next[ahead+1] += v[j] * quit
			}
			v, next = next, v
			weight *= uni * h / float64(k+1)
		}
		v = out
	}
	for _, x := range v[:ahead] {
		waiting += x
	}
	return waiting, v[ahead], v[ahead+1]
}

// Reference values from an independent evaluation in mpmath at 60 digits:
// the birth–death chain by exact products, P(abandon) by Little's law
// θ·E[Q]/λ, and for each number ahead the offered wait as a
// hypoexponential distribution by partial fractions,
// P(V > t) = Σ_i Π_{j≠i} r_j/(r_j − r_i)·e^{−r_i t}, and
// SL(t) = Σ_i Π_{j≠i} r_j/(r_j − r_i)·r_i(1 − e^{−(r_i+θ)t})/(r_i + θ).
// The first set is ContactCenters' MMCAb example in seconds, the second a
// small overloaded system.
func TestErlangA_MatchesPartialFractions(t *testing.T) {
	for _, tc := range []struct {
		q                      ErlangA
		pWait, pAbandon, queue float64
		busy                   float64
		at, tail, serviceLevel []float64
	}{
		{
			q:     ErlangA{ArrivalRate: 0.07, HandleTime: 120, Patience: 60, Agents: 12},
			pWait: 0.12737228180874697, pAbandon: 0.029678905542373396, queue: 0.12465140327796826, busy: 8.1506971934440635,
			at:           []float64{5, 20, 60},
			tail:         []float64{0.10010929444767105, 0.043791791714731817, 0.0026453529405725111},
			serviceLevel: []float64{0.89881544258986686, 0.94526957555899916, 0.96951301405147882},
		},
		{
			q:     ErlangA{ArrivalRate: 4, HandleTime: 1, Patience: 2, Agents: 3},
			pWait: 0.84455632975883999, pAbandon: 0.30679672566503923, queue: 2.4543738053203139, busy: 2.7728130973398431,
			at:           []float64{0.5, 1, 3},
			tail:         []float64{0.61672074149173982, 0.37398173851961326, 0.010436119488324797},
			serviceLevel: []float64{0.35591993237554815, 0.52360603944890989, 0.69128080013929807},
		},
	} {
		p, err := tc.q.Predict()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			name      string
			got, want float64
		}{
			{"PWait", p.PWait, tc.pWait},
			{"PAbandon", p.PAbandon, tc.pAbandon},
			{"MeanQueueLength", p.MeanQueueLength, tc.queue},
			{"MeanBusyAgents", p.MeanBusyAgents, tc.busy},
		} {
			if !relClose(m.got, m.want, 1e-14) {
				t.Errorf("%+v: %s = %.17g, want %.17g", tc.q, m.name, m.got, m.want)
			}
		}
		for i, x := range tc.at {
			if got := p.PWaitExceeds(x); !relClose(got, tc.tail[i], 1e-14) {
				t.Errorf("%+v: PWaitExceeds(%v) = %.17g, want %.17g", tc.q, x, got, tc.tail[i])
			}
			if got := p.ServiceLevel(x); !relClose(got, tc.serviceLevel[i], 1e-14) {
				t.Errorf("%+v: ServiceLevel(%v) = %.17g, want %.17g", tc.q, x, got, tc.serviceLevel[i])
			}
		}
	}
}

// Rounding at scale: the 5,000-agent benchmark centre (λ = 1,000/s, AHT
// 5 s, patience 60 s, A = 5,000 Erlangs, ≈ 2,200 queue states) against the
// same chain evaluated in mpmath at 40 digits — Erlang B by its recursion,
// queue weights by exact products truncated at 1e-40, and I_x(k, m+1) as a
// finite negative-binomial sum. Partial fractions are unusable at this size
// (they cancel catastrophically), so this checks the arithmetic rather than
// the identities, which the small cases above already pin.
func TestErlangA_LargeCentreHighPrecision(t *testing.T) {
	p, err := benchCentre.Predict()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
		rel       float64
	}{
		{"PWait", p.PWait, 0.77683067224418899789, 1e-14},
		{"PAbandon", p.PAbandon, 0.0025276614444335217433, 1e-13},
		{"MeanQueueLength", p.MeanQueueLength, 151.6596866660113046, 1e-13},
		{"PWaitExceeds(0.5)", p.PWaitExceeds(0.5), 0.032316162000768946502, 1e-13},
		{"ServiceLevel(0.5)", p.ServiceLevel(0.5), 0.96547272981035815505, 1e-14},
		{"ServiceLevel(2)", p.ServiceLevel(2), 0.99747233855556612416, 1e-14},
		{"ServiceLevel(10)", p.ServiceLevel(10), 0.99747233855556647826, 1e-14},
	} {
		if !relClose(c.got, c.want, c.rel) {
			t.Errorf("%s = %.17g, want %.17g", c.name, c.got, c.want)
		}
	}
	// P(V > 2 s) = 3.66e-16 lives in queue states whose weight is near the
	// 1e-16 truncation, so only its order of magnitude is kept.
	if got := p.PWaitExceeds(2); !relClose(got, 3.6627799923690166607e-16, 1e-2) {
		t.Errorf("PWaitExceeds(2) = %.17g, want ≈ 3.66e-16", got)
	}
}

func TestErlangA_MatchesBruteForce(t *testing.T) {
	for _, q := range []ErlangA{
		{ArrivalRate: 4, HandleTime: 1, Patience: 2, Agents: 3},
		{ArrivalRate: 1, HandleTime: 1, Patience: 0.1, Agents: 2},
		{ArrivalRate: 9, HandleTime: 1, Patience: 5, Agents: 10},
		{ArrivalRate: 30, HandleTime: 0.5, Patience: 0.5, Agents: 4}, // ρ = 3.75
		{ArrivalRate: 0.5, HandleTime: 1, Patience: 3, Agents: 1},
	} {
		p, err := q.Predict()
		if err != nil {
			t.Fatal(err)
		}
		b := newBruteErlangA(q, 400)
		theta := 1 / q.Patience
		checks := []struct {
			name      string
			got, want float64
		}{
			{"PWait", p.PWait, b.pWait()},
			{"MeanQueueLength", p.MeanQueueLength, b.meanQueue()},
			{"MeanBusyAgents", p.MeanBusyAgents, b.meanBusy()},
			{"PAbandon (Little)", p.PAbandon, theta * b.meanQueue() / q.ArrivalRate},
		}
		for _, x := range []float64{0.05, 0.3, 1, 4} {
			waiting, _, _ := b.tagged(x, 0)
			_, answered, abandoned := b.tagged(x, theta)
			checks = append(checks,
				struct {
					name      string
					got, want float64
				}{"PWaitExceeds", p.PWaitExceeds(x), waiting},
				struct {
					name      string
					got, want float64
				}{"ServiceLevel", p.ServiceLevel(x), answered},
				struct {
					name      string
					got, want float64
				}{"PAbandonWithin", p.PAbandonWithin(x), abandoned})
		}
		for _, c := range checks {
			if math.Abs(c.got-c.want) > 1e-12 {
				t.Errorf("%+v: %s = %.15g, brute force %.15g", q, c.name, c.got, c.want)
			}
		}
	}
}

// ContactCenters' M/M/c example with abandonment (umontreal-simul/
// contactcenters, doc/examples/MMCAb.java and MMCAb.res): λ = 4.2/min,
// 1/μ = 2 min, mean patience 1 min, 12 agents, acceptable wait 20 s, 1000
// simulated 8-hour days of 4.2·480 = 2016 expected arrivals. Published, with
// 95% CIs: abandoned/day 58.609 (57.660, 59.558); answered within 20 s/day
// 1906.008 (1903.785, 1908.231); service level among answered 0.975
// (0.974, 0.975); speed of answer 0.024 min (0.023, 0.024); occupancy 0.675
// (0.674, 0.677); service level g₁ = answered within s / (answered +
// abandoned after s) 0.968 (0.968, 0.969).
//
// The model gives 59.83 abandoned/day, 1905.66 within 20 s, 0.9742, 0.02406
// min, 0.6792 and 0.9679. As in the Erlang C example, the simulated
// abandonment and occupancy come out low because every day starts empty: a
// day loses roughly A·AHT = 16.8 agent-minutes of work against 12 × 480,
// 0.003 of occupancy. Those two get a 1% slack; the rest fall inside the
// intervals widened only by half a unit in the last published digit.
func TestErlangA_ContactCentersMMCAb(t *testing.T) {
	p, err := ErlangA{ArrivalRate: 4.2 / 60, HandleTime: 120, Patience: 60, Agents: 12}.Predict()
	if err != nil {
		t.Fatal(err)
	}
	const arrivals = 4.2 * 480
	rounding := Band{Abs: 0.0005}
	warmUp := Band{Rel: 0.01, Abs: 0.0005}
	for _, c := range []struct {
		what      string
		band      Band
		predicted float64
		measured  Interval
	}{
		{"abandoned/day", warmUp, p.PAbandon * arrivals, Interval{58.609, 57.660, 59.558, 0.95}},
		{"answered within 20 s/day", rounding, p.ServiceLevel(20) * arrivals, Interval{1906.008, 1903.785, 1908.231, 0.95}},
		{"service level among answered", rounding, p.ServiceLevel(20) / (1 - p.PAbandon), Interval{0.975, 0.974, 0.975, 0.95}},
		{"speed of answer (min)", rounding, p.MeanWaitServed / 60, Interval{0.024, 0.023, 0.024, 0.95}},
		{"occupancy", warmUp, p.MeanBusyAgents / 12, Interval{0.675, 0.674, 0.677, 0.95}},
		{"g1 service level", rounding, p.ServiceLevel(20) / (1 - p.PAbandonWithin(20)), Interval{0.968, 0.968, 0.969, 0.95}},
	} {
		if err := c.band.Check(c.what, c.predicted, c.measured); err != nil {
			t.Error(err)
		}
	}
}

// Patience far longer than any wait: abandonment vanishes and Erlang A must
// agree with Erlang C (θ → 0), including at 5,000 agents.
func TestErlangA_TendsToErlangC(t *testing.T) {
	for _, c := range []ErlangC{
		{ArrivalRate: 4.2 / 60, HandleTime: 120, Agents: 12},
		{ArrivalRate: 9, HandleTime: 1, Agents: 10},
		{ArrivalRate: 980, HandleTime: 5, Agents: 5000},
	} {
		pc, err := c.Predict()
		if err != nil {
			t.Fatal(err)
		}
		pa, err := ErlangA{ArrivalRate: c.ArrivalRate, HandleTime: c.HandleTime, Patience: 1e10, Agents: c.Agents}.Predict()
		if err != nil {
			t.Fatal(err)
		}
		const rel = 1e-6 // the O(θ) difference at θ = 1e-10/s
		for _, m := range []struct {
			name   string
			a, c   float64
			absTol float64
		}{
			{"PWait", pa.PWait, pc.PWait, 0},
			{"MeanWait", pa.MeanWait, pc.MeanWait, 0},
			{"MeanWaitServed", pa.MeanWaitServed, pc.MeanWaitServed, 0},
			{"MeanQueueLength", pa.MeanQueueLength, pc.MeanQueueLength, 0},
			{"MeanBusyAgents", pa.MeanBusyAgents, pc.MeanBusyAgents, 0},
			{"PAbandon", pa.PAbandon, 0, 1e-6},
			{"ServiceLevel(1)", pa.ServiceLevel(1), pc.ServiceLevel(1), 0},
			{"ServiceLevel(20)", pa.ServiceLevel(20), pc.ServiceLevel(20), 0},
			{"OfferedWaitCDF(5)", pa.OfferedWaitCDF(5), pc.OfferedWaitCDF(5), 0},
			{"PWaitExceeds(30)", pa.PWaitExceeds(30), pc.PWaitExceeds(30), 1e-12},
		} {
			if math.Abs(m.a-m.c) > rel*math.Abs(m.c)+m.absTol {
				t.Errorf("%+v: %s: Erlang A %.12g, Erlang C %.12g", c, m.name, m.a, m.c)
			}
		}
	}
}

// Callers who hang up the instant they would queue are blocked calls:
// as θ → ∞, P(abandon) and P(wait) tend to Erlang B, with relative error of
// order λ/θ (here 1e-12 s patience, so at most 5e-9).
func TestErlangA_TendsToErlangB(t *testing.T) {
	for _, tc := range []struct {
		load   float64
		agents int
	}{{10, 10}, {8.4, 12}, {30, 20}, {4500, 5000}} {
		b, err := ErlangB(tc.load, tc.agents)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ErlangA{ArrivalRate: tc.load, HandleTime: 1, Patience: 1e-12, Agents: tc.agents}.Predict()
		if err != nil {
			t.Fatal(err)
		}
		if !relClose(p.PAbandon, b, 1e-6) || !relClose(p.PWait, b, 1e-6) {
			t.Errorf("A=%v c=%d: PAbandon = %.12g, PWait = %.12g, Erlang B %.12g", tc.load, tc.agents, p.PAbandon, p.PWait, b)
		}
		if p.MeanWaitAbandoned > 2e-12 {
			t.Errorf("A=%v c=%d: MeanWaitAbandoned = %v with 1 ns patience", tc.load, tc.agents, p.MeanWaitAbandoned)
		}
	}
}

// Conservation laws every Erlang A solution must satisfy, checked from
// light load to heavy overload:
//   - Little's law on the queue: λ·P(abandon) = θ·E[Q] (abandonment flow) and
//     E[W] = E[Q]/λ;
//   - flow through the agents: λ·(1 − P(abandon)) = μ·E[busy agents];
//   - the mean wait splits into its answered and abandoned parts.
//
// In the ρ = 2 case (λ = 1,000/s, c = 100, AHT = 0.2 s) agents are almost
// always all busy, so the flow law alone predicts P(abandon) ≈ 1 − cμ/λ = 1/2.
func TestErlangA_ConservationLaws(t *testing.T) {
	for _, q := range []ErlangA{
		{ArrivalRate: 1, HandleTime: 1, Patience: 30, Agents: 5},
		{ArrivalRate: 4.2 / 60, HandleTime: 120, Patience: 60, Agents: 12},
		{ArrivalRate: 50, HandleTime: 2, Patience: 20, Agents: 100},
		{ArrivalRate: 1000, HandleTime: 0.2, Patience: 10, Agents: 100},
		{ArrivalRate: 1000, HandleTime: 6, Patience: 45, Agents: 5000},
		{ArrivalRate: 1000, HandleTime: 5, Patience: 60, Agents: 4000}, // ρ = 1.25
	} {
		p, err := q.Predict()
		if err != nil {
			t.Fatal(err)
		}
		theta, mu := 1/q.Patience, 1/q.HandleTime
		pServed := 1 - p.PAbandon
		for _, c := range []struct {
			name        string
			left, right float64
		}{
			{"λ·P(abandon) = θ·E[Q]", q.ArrivalRate * p.PAbandon, theta * p.MeanQueueLength},
			{"E[W] = E[Q]/λ", p.MeanWait, p.MeanQueueLength / q.ArrivalRate},
			{"λ·P(answered) = μ·E[busy]", q.ArrivalRate * pServed, mu * p.MeanBusyAgents},
			{"E[W] = P(ans)·E[W|ans] + P(ab)·E[W|ab]", p.MeanWait, pServed*p.MeanWaitServed + p.PAbandon*p.MeanWaitAbandoned},
			{"SL(∞) = 1 − P(abandon)", p.ServiceLevel(math.Inf(1)), pServed},
			{"SL(1e6 s) = 1 − P(abandon)", p.ServiceLevel(1e6), pServed},
			{"PAbandonWithin(1e6 s) = P(abandon)", p.PAbandonWithin(1e6), p.PAbandon},
			{"SL(0) = 1 − P(wait)", p.ServiceLevel(0), 1 - p.PWait},
			{"CDF(0) = 1 − P(wait)", p.OfferedWaitCDF(0), 1 - p.PWait},
		} {
			if math.Abs(c.left-c.right) > 1e-9*math.Max(math.Abs(c.left), math.Abs(c.right))+1e-13 {
				t.Errorf("%+v: %s: %.15g vs %.15g", q, c.name, c.left, c.right)
			}
		}
		if p.MeanBusyAgents > float64(q.Agents) || p.PWait > 1 || p.PAbandon > p.PWait {
			t.Errorf("%+v: impossible prediction %+v", q, p)
		}
	}

	p, err := ErlangA{ArrivalRate: 1000, HandleTime: 0.2, Patience: 10, Agents: 100}.Predict()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(p.PAbandon-0.5) > 1e-6 || p.PWait < 1-1e-9 {
		t.Errorf("ρ = 2: PAbandon = %.9g, PWait = %.12g; want ≈ 1/2 and ≈ 1", p.PAbandon, p.PWait)
	}
	// Which puts λ·P(abandon)/θ = 1000 × 1/2 × 10 = 5,000 callers in queue.
	if math.Abs(p.MeanQueueLength-5000) > 5 {
		t.Errorf("ρ = 2: MeanQueueLength = %v, want ≈ 5000", p.MeanQueueLength)
	}
}

// The distribution functions must be distribution functions: monotone, in
// [0, 1], with the right limits, at the scale of a large contact centre.
func TestErlangA_DistributionShape(t *testing.T) {
	for _, q := range []ErlangA{
		{ArrivalRate: 1000, HandleTime: 5, Patience: 60, Agents: 5000},
		{ArrivalRate: 1000, HandleTime: 5, Patience: 120, Agents: 4200},
		{ArrivalRate: 3, HandleTime: 1, Patience: 0.01, Agents: 2},
	} {
		p, err := q.Predict()
		if err != nil {
			t.Fatal(err)
		}
		prevCDF, prevSL, prevAb := -1.0, -1.0, -1.0
		for x := 0.0; x <= 600; x = 1.1*x + 0.05 {
			cdf, sl, ab := p.OfferedWaitCDF(x), p.ServiceLevel(x), p.PAbandonWithin(x)
			for _, v := range []float64{cdf, sl, ab} {
				if math.IsNaN(v) || v < 0 || v > 1 {
					t.Fatalf("%+v at %v s: CDF %v, SL %v, abandon %v", q, x, cdf, sl, ab)
				}
			}
			if cdf < prevCDF-1e-12 || sl < prevSL-1e-12 || ab < prevAb-1e-12 {
				t.Fatalf("%+v at %v s: not monotone: CDF %v→%v, SL %v→%v, abandon %v→%v", q, x, prevCDF, cdf, prevSL, sl, prevAb, ab)
			}
			// Answered within x implies an offered wait of at most x.
			if sl > cdf+1e-12 {
				t.Fatalf("%+v at %v s: SL %v exceeds offered-wait CDF %v", q, x, sl, cdf)
			}
			prevCDF, prevSL, prevAb = cdf, sl, ab
		}
		if p.OfferedWaitCDF(-1) != 0 || p.ServiceLevel(-1) != 0 || p.OfferedWaitCDF(math.Inf(1)) != 1 {
			t.Errorf("%+v: wrong limits", q)
		}
		if !math.IsNaN(p.OfferedWaitCDF(math.NaN())) {
			t.Errorf("%+v: CDF(NaN) is not NaN", q)
		}
	}
}

func TestErlangA_StateSpaceLimit(t *testing.T) {
	// Twice the capacity and a patience of four months: the queue would
	// settle near 10 million callers.
	_, err := ErlangA{ArrivalRate: 2, HandleTime: 1, Patience: 1e7, Agents: 1}.Predict()
	if !errors.Is(err, ErrStateSpace) {
		t.Errorf("err = %v, want ErrStateSpace", err)
	}
}
