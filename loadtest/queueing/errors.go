package queueing

import (
	"errors"
	"fmt"
	"math"
)

var (
	// ErrInvalidParameter reports an input outside a function's domain. The
	// wrapping error names the parameter, its value and what is allowed.
	ErrInvalidParameter = errors.New("queueing: invalid parameter")

	// ErrUnstable reports an Erlang C model at or above saturation
	// (occupancy ρ = A/c ≥ 1): the queue grows without bound, so there is no
	// steady state to predict. Use ErlangA, whose abandonment keeps it stable.
	ErrUnstable = errors.New("queueing: no steady state")

	// ErrStateSpace reports an Erlang A model whose stationary distribution
	// needs more queue states than maxQueueStates before its tail becomes
	// negligible: an overloaded queue with patience so long that it is, for
	// practical purposes, Erlang C above saturation.
	ErrStateSpace = errors.New("queueing: state space too large")

	// ErrOutsideBand reports a prediction that a measured interval, widened
	// by the band's slack, does not contain. The wrapping error says by how
	// much and on which side.
	ErrOutsideBand = errors.New("queueing: prediction outside measured band")
)

// positive rejects anything that is not a positive finite number. Every
// rate and mean time in this package must pass it: zero, negative, NaN and
// infinite values make the chains meaningless rather than degenerate.
func positive(name string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return fmt.Errorf("%w: %s = %v; must be a positive finite number", ErrInvalidParameter, name, v)
	}
	return nil
}

// agents bounds the number of servers: at least one, and few enough that
// the O(c) Erlang B recursion stays a fraction of a second.
func agents(name string, c int) error {
	if c < 1 || c > maxAgents {
		return fmt.Errorf("%w: %s = %d; must be between 1 and %d", ErrInvalidParameter, name, c, maxAgents)
	}
	return nil
}

// probability rejects anything outside the open interval (0, 1), which is
// what confidence levels and quantile arguments need.
func probability(name string, p float64) error {
	if math.IsNaN(p) || p <= 0 || p >= 1 {
		return fmt.Errorf("%w: %s = %v; must be strictly between 0 and 1", ErrInvalidParameter, name, p)
	}
	return nil
}
