// Package sim drives a tsunagu node or cluster over its NATS contract with
// simulated carriers and agents, and records what happened.
//
// The load is open loop: the whole arrival schedule is drawn before the
// run ([Schedule]), each arrival is sent at its intended instant whatever
// the node is doing, a send that leaves late is counted as late, and
// arrival latency is measured from the intended instant — so a stalled
// node shows up as latency instead of silently slowing the load
// (no coordinated omission).
//
// Carriers hand contacts over (request/reply, idempotent contact ids,
// retried on timeout), acknowledge routing instructions, answer, hang up
// when the handling time is over, and abandon when a caller's patience
// runs out while queued. Agents log in ready, answer offers after their
// think time (accept, or sometimes reject or let them expire), and finish
// wrap-up. Each keeps its own record; the observer keeps every committed
// event. [Run] returns those records; the check and report packages judge
// and summarise them.
//
// Instants are real time since the start of the run, on the harness's
// monotonic clock.
package sim
