// Package queueing owns the queueing-theory predictions that the load-test
// harness compares its measurements against, and the small amount of
// statistics needed to make that comparison honest.
//
// It is pure math on the standard library: no I/O, no clocks, no logging,
// no randomness. Everything here is safe for concurrent use.
//
// # Models
//
//   - [ErlangC]: M/M/c, Poisson arrivals, exponential handle times, c agents,
//     callers never abandon. Only defined below saturation (occupancy < 1);
//     otherwise [ErlangC.Predict] returns [ErrUnstable].
//   - [ErlangA]: M/M/c+M (Palm's model), the same plus exponential patience.
//     Always has a steady state, so it is the model for overload tests.
//   - [ErlangB]: the loss formula, exposed because both models are built on
//     its recursion and it is the θ → ∞ limit of Erlang A.
//
// Both models return a [Prediction]: scalar measures (P(wait), P(abandon),
// mean waits, mean queue length) plus functions of a threshold t
// ([Prediction.ServiceLevel], [Prediction.OfferedWaitCDF], ...).
//
// # Numerical invariants
//
//   - No factorials or powers of the load are ever formed. Erlang B comes
//     from the recursion B(k) = A·B(k−1)/(k + A·B(k−1)), whose terms stay in
//     [0, 1]; Erlang A's queue states are weighted in log space and rescaled
//     by their maximum before exponentiation. Thousands of agents with loads
//     in the thousands of Erlangs are routine (see BenchmarkErlangA).
//   - Erlang A's infinite chain is truncated where the neglected tail,
//     bounded by a geometric series, is below 1e-16 of the largest queue
//     state's weight — so below 1e-16 relative to P(wait), under double
//     rounding and far under the 1e-12 the harness needs. The truncation is
//     capped (see [ErrStateSpace]) rather than allowed to eat memory.
//   - Erlang A's waiting-time distribution is exact, not simulated or
//     uniformised: given m callers ahead, e^{−θV} of the offered wait V is
//     Beta(cμ/θ, m+1) distributed, so P(V > t) is a negative-binomial sum.
//     Scalar measures agree with 40- and 60-digit references to 1e-13
//     relative or better, the distribution functions to 1e-13 relative
//     (for tails down to about 1e-15·P(wait)) and 1e-15 absolute.
//
// The tests check every model against independent evaluations (exact
// rational arithmetic, partial fractions in mpmath, a brute-force
// uniformised chain), against published simulation results
// (ContactCenters' M/M/c examples) and against a contact-by-contact
// simulation, and map each check to its source in a comment.
//
// # Measurements
//
// [Wilson] and [BatchMeans] turn measured proportions and per-contact
// series into confidence [Interval]s, and [Band.Check] decides whether a
// prediction is consistent with such an interval after allowing a stated
// slack for the bias every finite run has (warm-up, end effects).
package queueing
