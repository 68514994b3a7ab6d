package sim

import (
	"time"

	"github.com/tsunagu/tsunagu/loadtest/check"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Unset marks an instant that never happened.
const Unset time.Duration = -1

// Status is what became of an arrival request.
type Status uint8

// Statuses.
const (
	// NotSent: the run ended before the arrival's turn.
	NotSent Status = iota
	// Queued: answered ARRIVAL_STATUS_QUEUED (accepted).
	Queued
	// Refused: answered ARRIVAL_STATUS_REJECTED by admission.
	Refused
	// Failed: no answer after every attempt, or an error reply.
	Failed
)

// ContactRecord is one planned arrival and everything the carrier and the
// agents saw of it. Instants are real time since the start of the run;
// Unset when they did not happen.
type ContactRecord struct {
	ID       string
	Queue    string
	Channel  pb.Channel
	Priority int32
	// Intended is when the schedule said to send; Sent when the request
	// left; Replied when the arrival reply came (the queued instant).
	Intended, Sent, Replied time.Duration
	Attempts                int
	Status                  Status
	Err                     string
	// Patience drawn for the caller, real time (Unset: never).
	Patience time.Duration
	// Offered is when the accepted offer reached its agent; Connected
	// when the carrier got the routing instruction; Ended when the
	// carrier's hang-up was answered.
	Offered, Connected, Ended time.Duration
	// HangUpSent is when the carrier sent the hang-up (for abandoned
	// contacts, the end of its wait).
	HangUpSent time.Duration
	Outcome    check.Outcome
	// AgentID of the agent that accepted it.
	AgentID    string
	AcceptedBy []string
	Offers     int
}

// Decision is what a simulated agent did with an offer.
type Decision uint8

// Decisions.
const (
	Accept Decision = iota
	Reject
	Miss
)

func (d Decision) String() string {
	switch d {
	case Reject:
		return "reject"
	case Miss:
		return "miss"
	default:
		return "accept"
	}
}

// OfferRecord is one offer as its agent received it (first copy).
type OfferRecord struct {
	OfferID string
	Contact int // index into Result.Contacts
	AgentID string
	Channel pb.Channel
	// Received is when the offer reached the agent's desktop.
	Received time.Duration
	// QueuedAt is when the contact was (last) queued before this offer:
	// the arrival reply for its first offer; for a later one, when the
	// previous offer was seen going back in line (the reject acknowledged,
	// the expiry notice). Filled in after the run, since that instant may
	// come after this offer arrived. Unset if unknown.
	QueuedAt time.Duration
	// Released is when this offer's agent saw it go back in line: the
	// reject acknowledged, or the expiry notice. Unset otherwise.
	Released time.Duration
	// QueuedCommit and FreeCommit are the same two instants as the node
	// committed them, and EligibleCommit when the agent became eligible
	// for the contact (widening, keeping away after a reject or miss); see
	// check.OfferInstants. On the harness's clock; Unset unless the node
	// shares it (Config.SameClock).
	QueuedCommit, FreeCommit, EligibleCommit time.Duration
	// FreeAt is when the agent became free and eligible on the offer's
	// channel, as the agent saw it: its login or ready acknowledged, or the
	// end of the work that last filled the channel. Unset if, as far as
	// the agent knew, it was not free yet (a release still in flight).
	FreeAt   time.Duration
	Decision Decision
}

// Result is what a run recorded.
type Result struct {
	RunID string
	// Start is the wall-clock start of the run; every instant is measured
	// from it.
	Start time.Time
	// ArrivalsEnd, DrainEnd and End mark the phases: arrivals sent, drain
	// over (carriers hang up on what is left), records complete.
	ArrivalsEnd, DrainEnd, End time.Duration
	Contacts                   []ContactRecord
	Offers                     []OfferRecord
	// Trace is what the checks read.
	Trace check.Trace
	// Errors counts failed requests by kind.
	Errors map[string]int
	// LateThreshold: a send later than this past its intended instant is
	// late.
	LateThreshold time.Duration
	// SameClock: routing latency is measured from committed instants
	// (see RoutingLatency).
	SameClock bool
}

// RoutingLatency returns the routing latency of offer o and whether it was
// clamped at zero. It is the offer's arrival at the agent minus the later
// of the contact being queued and the agent being free and eligible.
//
// With the node on the harness's clock (SameClock: the harness started
// it), the instants are the node's commits, read from the event stream,
// and the agent counts as free only once it is also eligible for the
// contact (a widening step reached, a reject's keep-away over):
//
//	latency = Received − max(QueuedCommit, FreeCommit, EligibleCommit)
//
// Otherwise they are what the simulated parties saw: the arrival reply (or
// the previous offer's reject acknowledged or expiry notice), and the
// agent's login, ready or release acknowledged:
//
//	latency = Received − max(QueuedAt, FreeAt)
//
// Those come a little after the commits, and an offer can overtake them;
// then the latency is clamped to 0 and counted as such.
func (r *Result) RoutingLatency(o OfferRecord) (time.Duration, bool) {
	q, f := o.QueuedAt, o.FreeAt
	if r.SameClock && o.QueuedCommit != Unset && o.FreeCommit != Unset {
		q, f = o.QueuedCommit, max(o.FreeCommit, o.EligibleCommit)
	}
	if q == Unset || f == Unset {
		return 0, true
	}
	l := o.Received - max(q, f)
	if l < 0 {
		return 0, true
	}
	return l, false
}

// QueueWait returns contact c's wait in line, real time, and whether it
// has one: answered contacts wait from the arrival reply to the accepted
// offer reaching the agent; abandoned ones to the carrier's hang-up.
func (c *ContactRecord) QueueWait() (time.Duration, bool) {
	if c.Replied == Unset {
		return 0, false
	}
	switch c.Outcome {
	case check.Handled:
		if c.Offered != Unset {
			return max(0, c.Offered-c.Replied), true
		}
	case check.Abandoned:
		if c.HangUpSent != Unset {
			return max(0, c.HangUpSent-c.Replied), true
		}
	}
	return 0, false
}
