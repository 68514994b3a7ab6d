package queueing

import (
	"fmt"
	"math"
)

// maxAgents caps the number of agents accepted by every model. The Erlang B
// recursion is O(c); at this size it takes tens of milliseconds, and no
// single queue in a load test comes near it.
const maxAgents = 1 << 24

// ErlangB returns the Erlang B (Erlang loss) blocking probability for an
// offered load of load Erlangs on servers servers: the probability that an
// arrival finds all servers busy when blocked arrivals are lost.
//
// load must be finite and non-negative and servers between 0 and 2^24; zero
// servers block everything. The recursion B(k) = A·B(k−1)/(k + A·B(k−1))
// keeps every intermediate in [0, 1], so it neither overflows nor loses
// precision for large c; for A ≪ c the result underflows gracefully to 0.
func ErlangB(load float64, servers int) (float64, error) {
	if math.IsNaN(load) || math.IsInf(load, 0) || load < 0 {
		return 0, fmt.Errorf("%w: load = %v; must be a finite number ≥ 0", ErrInvalidParameter, load)
	}
	if servers < 0 || servers > maxAgents {
		return 0, fmt.Errorf("%w: servers = %d; must be between 0 and %d", ErrInvalidParameter, servers, maxAgents)
	}
	return erlangB(load, servers), nil
}

// erlangB is ErlangB without validation.
func erlangB(a float64, c int) float64 {
	b := 1.0
	for k := 1; k <= c; k++ {
		ab := a * b
		b = ab / (float64(k) + ab)
	}
	return b
}

// ErlangC is the M/M/c queue: Poisson arrivals, exponentially distributed
// handle times, Agents identical agents, first-come first-served, and no
// caller ever abandons. Times are in seconds.
type ErlangC struct {
	// ArrivalRate is λ, contacts offered per second.
	ArrivalRate float64
	// HandleTime is the mean handle time 1/μ in seconds.
	HandleTime float64
	// Agents is c, the number of agents serving the queue.
	Agents int
}

// Validate reports the first parameter outside its domain. It does not
// check stability; Predict does, because the load is a combination of
// fields rather than a field.
func (q ErlangC) Validate() error {
	if err := positive("ArrivalRate", q.ArrivalRate); err != nil {
		return err
	}
	if err := positive("HandleTime", q.HandleTime); err != nil {
		return err
	}
	return agents("Agents", q.Agents)
}

// Predict computes the steady-state measures of the M/M/c queue. It returns
// ErrUnstable when the offered load A = λ·AHT is not below c.
//
// P(wait) is the Erlang C formula, obtained from Erlang B as
// C = c·B/(c − A(1 − B)) so that it inherits B's stability. The waiting time
// of a caller who has to wait is exponential with rate (c − A)/AHT, which
// gives every other measure in closed form.
func (q ErlangC) Predict() (*Prediction, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	a := q.ArrivalRate * q.HandleTime
	c := float64(q.Agents)
	if !(a < c) {
		return nil, fmt.Errorf("%w: offered load %.6g Erlangs on %d agents is occupancy %.4g; Erlang C needs occupancy < 1 (ErlangA models overload)",
			ErrUnstable, a, q.Agents, a/c)
	}
	b := erlangB(a, q.Agents)
	pw := c * b / (c - a*(1-b))
	meanWait := pw * q.HandleTime / (c - a)
	return &Prediction{
		Model:             "Erlang C",
		OfferedLoad:       a,
		Occupancy:         a / c,
		MeanBusyAgents:    a,
		PWait:             pw,
		PAbandon:          0,
		MeanWait:          meanWait,
		MeanWaitServed:    meanWait,
		MeanWaitAbandoned: 0,
		MeanQueueLength:   pw * a / (c - a),
		decay:             (c - a) / q.HandleTime,
	}, nil
}
