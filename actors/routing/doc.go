// Package routing compiles and validates the routing configuration — queues,
// widening steps, agent profiles, tier priorities — into the form the
// matching code uses, and answers who may serve what.
//
// Widening only relaxes: a step may lower or drop skill levels and add
// overflow queues, never raise a level. That makes eligibility monotonic in
// waiting time, which the matching indexes rely on: the oldest contact of a
// group is the easiest to serve, so if an agent cannot serve it, the agent
// cannot serve any younger contact of that group either.
package routing
