package queueing

import (
	"fmt"
	"math"
)

const (
	// tailTolerance bounds the stationary mass Erlang A discards beyond its
	// last queue state, relative to the largest queue state's mass (and so
	// relative to P(wait), which is at least that large). At 1e-16 the
	// truncation is below double rounding; the few extra states it costs
	// over a looser 1e-12 are negligible (the tail decays at least
	// geometrically, or like a Gaussian in overload).
	tailTolerance = 1e-16

	// maxQueueStates caps the truncated chain at about a million queue
	// states (six 8 MiB arrays while solving, four kept in the Prediction).
	// That is ample — λ = 1,000/s at twice capacity with 15 minutes' mean
	// patience needs under half of it — and reaching it means patience so
	// long relative to the overload that the queue is effectively unbounded.
	maxQueueStates = 1 << 20
)

// ErlangA is the M/M/c+M queue (Palm's model): Erlang C plus exponentially
// distributed patience. A caller still queued when its patience runs out
// abandons. Times are in seconds.
//
// Abandonment makes the chain stable at any load, so ErlangA is the model
// for overload tests (occupancy ρ ≥ 1).
type ErlangA struct {
	// ArrivalRate is λ, contacts offered per second.
	ArrivalRate float64
	// HandleTime is the mean handle time 1/μ in seconds.
	HandleTime float64
	// Patience is the mean patience 1/θ in seconds: how long a caller is
	// willing to queue, on average, before hanging up.
	Patience float64
	// Agents is c, the number of agents serving the queue.
	Agents int
}

// Validate reports the first parameter outside its domain.
func (q ErlangA) Validate() error {
	if err := positive("ArrivalRate", q.ArrivalRate); err != nil {
		return err
	}
	if err := positive("HandleTime", q.HandleTime); err != nil {
		return err
	}
	if err := positive("Patience", q.Patience); err != nil {
		return err
	}
	return agents("Agents", q.Agents)
}

// Predict computes the steady-state measures of the M/M/c+M queue from its
// exact birth–death chain: state n contacts in the system, birth rate λ,
// death rate min(n, c)·μ + max(n − c, 0)·θ.
//
// States 0..c carry the Erlang B distribution, so their total weight
// relative to state c is 1/B(c, A) and need not be enumerated. Queue states
// c+m are weighted in log space, rescaled by their maximum, and cut off at
// the first m where the death rate exceeds λ and the geometric bound on the
// remaining tail falls below tailTolerance of the largest weight. It
// returns ErrStateSpace if that takes more than maxQueueStates states.
//
// Per-caller measures use the offered wait V of a caller who finds m others
// queued ahead: V is a sum of exponentials with rates cμ + iθ, i = 0..m
// (the queue ahead shrinks by service or abandonment), so with s_l = cμ + lθ
//
//	P(answered | m)   = E[e^{−θV}]   = cμ / s_{m+1}
//	E[W; answered | m] = cμ / s_{m+1} · Σ_{l=1}^{m+1} 1/s_l
//	E[W; abandoned | m] = θ / s_{m+1} · Σ_{l=1}^{m+1} l/s_l
//
// All three are sums of positive terms, so means stay accurate even when
// abandonment is rare.
func (q ErlangA) Predict() (*Prediction, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	lambda := q.ArrivalRate
	mu := 1 / q.HandleTime
	theta := 1 / q.Patience
	c := float64(q.Agents)
	cmu := c * mu
	a := lambda * q.HandleTime
	if math.IsInf(a, 0) || math.IsInf(cmu, 0) || math.IsInf(lambda/theta, 0) {
		return nil, fmt.Errorf("%w: ArrivalRate = %v, HandleTime = %v, Patience = %v; their ratios overflow", ErrInvalidParameter, lambda, q.HandleTime, q.Patience)
	}

	// In overload the weights rise until the death rate cμ + mθ reaches λ;
	// refuse before walking that far.
	if mode := (lambda - cmu) / theta; mode > maxQueueStates {
		return nil, stateSpaceError(q, lambda)
	}

	// logW[m] = log(π_{c+m}/π_c) = Σ_{i=1}^{m} log(λ/(cμ + iθ)).
	logW := []float64{0}
	logMax := 0.0
	logTol := math.Log(tailTolerance)
	for m := 0; ; m++ {
		// Death rates grow with m, so once the ratio r to the next state is
		// below 1 every later ratio is too, and Σ_{j≥1} π_{c+m+j} ≤ π_{c+m}·r/(1−r).
		r := lambda / (cmu + float64(m+1)*theta)
		if r < 1 && logW[m]+math.Log(r/(1-r)) < logMax+logTol {
			break
		}
		if m+1 >= maxQueueStates {
			return nil, stateSpaceError(q, lambda)
		}
		next := logW[m] + math.Log(r)
		logW = append(logW, next)
		logMax = max(logMax, next)
	}

	// Conditional distribution of the number ahead, given that the caller
	// waits, and the conditional means of the per-caller measures.
	n := len(logW)
	qm := make([]float64, n)
	sumW := 0.0
	for m, lw := range logW {
		qm[m] = math.Exp(lw - logMax)
		sumW += qm[m]
	}
	var eAhead, eAbandon, eWait, eWaitServed, eWaitAbandoned float64
	var harm, lharm float64 // Σ_{l≤m+1} 1/s_l and Σ_{l≤m+1} l/s_l
	for m := range qm {
		qm[m] /= sumW
		l := float64(m + 1)
		s := cmu + l*theta
		harm += 1 / s
		lharm += l / s
		eAhead += qm[m] * float64(m)
		eAbandon += qm[m] * l * theta / s
		eWait += qm[m] * l / s
		eWaitServed += qm[m] * cmu / s * harm
		eWaitAbandoned += qm[m] * theta / s * lharm
	}

	// P(wait) = Σ_{n≥c} π_n. States below c weigh (1/B − 1)·π_c in total.
	b := erlangB(a, q.Agents)
	pWait, pIdle := 0.0, 1.0
	// When B underflows (A ≪ c) the queue is unreachable: P(wait) = 0.
	if idle := (1/b - 1) * math.Exp(-logMax); !math.IsInf(idle, 0) {
		pWait = sumW / (sumW + idle)
		pIdle = idle / (sumW + idle)
	}
	// Given n < c the number busy has the Erlang B distribution truncated
	// to n < c, whose mean is A − c·B/(1 − B).
	busy := pIdle*(a-c*b/(1-b)) + pWait*c

	pAbandon := pWait * eAbandon
	pServed := pIdle + pWait*(1-eAbandon)
	waitAbandoned := 0.0
	if eAbandon > 0 {
		waitAbandoned = eWaitAbandoned / eAbandon
	}

	// Per-state weights of the waiting-time distribution and their suffix
	// sums, accumulated from the small tail upwards.
	served := make([]float64, n)
	aheadGE := make([]float64, n)
	servedGE := make([]float64, n)
	var qs, ss float64
	for m := n - 1; m >= 0; m-- {
		served[m] = qm[m] * cmu / (cmu + float64(m+1)*theta)
		qs += qm[m]
		ss += served[m]
		aheadGE[m] = qs
		servedGE[m] = ss
	}

	return &Prediction{
		Model:             "Erlang A",
		OfferedLoad:       a,
		Occupancy:         a / c,
		MeanBusyAgents:    busy,
		PWait:             pWait,
		PAbandon:          pAbandon,
		MeanWait:          pWait * eWait,
		MeanWaitServed:    pWait * eWaitServed / pServed,
		MeanWaitAbandoned: waitAbandoned,
		MeanQueueLength:   pWait * eAhead,
		theta:             theta,
		cmu:               cmu,
		pIdle:             pIdle,
		ahead:             qm,
		aheadGE:           aheadGE,
		served:            served,
		servedGE:          servedGE,
	}, nil
}

func stateSpaceError(q ErlangA, lambda float64) error {
	return fmt.Errorf("%w: λ = %.6g/s against %d agents with %.6g s mean patience needs more than %d queue states for a %g tail",
		ErrStateSpace, lambda, q.Agents, q.Patience, maxQueueStates, tailTolerance)
}
