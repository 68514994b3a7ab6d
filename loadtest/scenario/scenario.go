// Package scenario reads load-test scenarios: the queues and agents a node
// is configured with, how simulated agents behave, and how simulated
// carriers offer contacts. It also turns a scenario into the node
// configuration that declares those queues and agents.
//
// Every duration in a scenario is in scenario time. A run divides them all
// by the scenario's time scale (and multiplies rates by it), so an hour of
// contact-centre traffic can run in a minute; reports say which clock each
// figure is on.
package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// ErrScenario wraps every problem with a scenario file.
var ErrScenario = errors.New("scenario")

// Scenario is one load test.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Seed makes the arrival schedule and every draw reproducible.
	Seed uint64 `json:"seed"`
	// TimeScale divides every duration (and multiplies every rate): 60 runs
	// an hour of scenario time in a real minute. Default 1.
	TimeScale float64 `json:"time_scale,omitempty"`
	// Duration of the arrival period, scenario time.
	Duration Duration `json:"duration"`
	// Drain is how long, after the last arrival, contacts may still wait
	// and be served before the carriers hang up on whatever is left.
	// Default: 2 minutes of scenario time.
	Drain    Duration  `json:"drain,omitempty"`
	Queues   []Queue   `json:"queues"`
	Agents   []Agents  `json:"agents"`
	Arrivals []Arrival `json:"arrivals"`
	Checks   Checks    `json:"checks"`
	// Erlang, when set, compares the run with queueing theory; see Erlang.
	Erlang *Erlang `json:"erlang,omitempty"`
}

// Queue is a queue the node is configured with.
type Queue struct {
	Name string `json:"name"`
	// Skills the queue requires: skill name to minimum level 1–5.
	Skills map[string]uint32 `json:"skills,omitempty"`
	// Channels the queue accepts (voice, chat, email, sms, callback); empty
	// accepts every channel.
	Channels []string `json:"channels,omitempty"`
	// Strategy: longest_idle (default), most_skilled, round_robin,
	// least_occupied.
	Strategy string `json:"strategy,omitempty"`
	// OfferTimeout: how long an agent has to answer an offer. Default 15s.
	OfferTimeout Duration `json:"offer_timeout,omitempty"`
	// WrapUpLimit is the queue's wrap-up time box. Default: three times the
	// longest mean wrap-up of the agent groups, or none if they have none.
	WrapUpLimit *Duration `json:"wrap_up_limit,omitempty"`
	// Widening steps, in increasing After.
	Widening []Widening `json:"widening,omitempty"`
	// ServiceLevel threshold for the queue's own figures. Default 20s.
	ServiceLevel Duration `json:"service_level,omitempty"`
}

// Widening relaxes a queue's requirements once a contact has waited After.
type Widening struct {
	After Duration `json:"after"`
	// Skills: new minimum levels (0 drops the skill).
	Skills map[string]uint32 `json:"skills,omitempty"`
	// Overflow queues whose agents become eligible.
	Overflow []string `json:"overflow,omitempty"`
}

// Agents is a group of identical simulated agents.
type Agents struct {
	Count int `json:"count"`
	// IDPrefix: agent ids are the prefix and a number, e.g. "a-0001".
	IDPrefix string            `json:"id_prefix"`
	Site     string            `json:"site,omitempty"`
	Skills   map[string]uint32 `json:"skills,omitempty"`
	// Capacity per channel, e.g. {"voice": 1, "chat": 3}. Default voice 1.
	Capacity map[string]uint32 `json:"capacity,omitempty"`
	// Think is the time from an offer to the agent's answer. Default 0.
	Think Dist `json:"think"`
	// Handle is the handling time, from the carrier connecting the contact
	// to its hang-up.
	Handle Dist `json:"handle"`
	// WrapUp is how long the agent spends in wrap-up before saying done.
	// Default 0 (done at once, if the queue has wrap-up at all).
	WrapUp Dist `json:"wrap_up"`
	// PReject and PMiss are the probabilities that the agent rejects an
	// offer, or lets it expire.
	PReject float64 `json:"p_reject,omitempty"`
	PMiss   float64 `json:"p_miss,omitempty"`
}

// Arrival is an open-loop Poisson stream of contacts into one queue.
type Arrival struct {
	Queue string `json:"queue"`
	// Profile: steady, ramp, burst or peak-overflow; see RateAt.
	Profile string `json:"profile"`
	// Rate in contacts per scenario second: steady's rate, ramp's final
	// rate, burst's base rate.
	Rate float64 `json:"rate,omitempty"`
	// RateFrom is ramp's initial rate.
	RateFrom float64 `json:"rate_from,omitempty"`
	// BurstRate, BurstAt and BurstFor shape a burst.
	BurstRate float64  `json:"burst_rate,omitempty"`
	BurstAt   Duration `json:"burst_at,omitempty"`
	BurstFor  Duration `json:"burst_for,omitempty"`
	// Factor is peak-overflow's multiple of the queue's agent capacity
	// (agents' slots on the stream's main channel / mean handle time).
	Factor float64 `json:"factor,omitempty"`
	// Start and Duration bound the stream within the arrival period;
	// Duration defaults to the rest of it.
	Start    Duration `json:"start,omitempty"`
	Duration Duration `json:"duration,omitempty"`
	// Channels is the channel mix: channel to weight. Default voice.
	Channels map[string]float64 `json:"channels,omitempty"`
	// Priorities is the priority mix: priority to weight. Default 0.
	Priorities map[string]float64 `json:"priorities,omitempty"`
	// Patience of callers while queued; {"dist": "never"} waits for ever
	// (until the end of the drain).
	Patience Dist `json:"patience"`
}

// Checks holds the bounds of the end-of-run checks. They are real time:
// they bound the system's reaction, which a time scale does not change.
type Checks struct {
	// IdleBound: an eligible agent may stay free while a contact it could
	// serve waits at most this long. Default 500ms.
	IdleBound Duration `json:"idle_bound,omitempty"`
	// FIFOGrace: a younger contact of the same queue, priority and channel
	// may be reserved before an older waiting one only if the older one
	// leaves the line within this. Default 100ms.
	FIFOGrace Duration `json:"fifo_grace,omitempty"`
}

// Erlang configures queueing-theory mode: one queue, one group of c
// identical agents (voice 1, think 0, no rejects or misses, no wrap-up,
// exponential handling), one steady Poisson stream with exponential
// patience (Erlang A) or none (Erlang C).
type Erlang struct {
	// Warmup (scenario time): contacts arriving earlier are not measured.
	Warmup Duration `json:"warmup,omitempty"`
	// Threshold for the service level, scenario time. Default 20s.
	Threshold Duration `json:"threshold,omitempty"`
	// Confidence of the intervals. Default 0.99.
	Confidence float64 `json:"confidence,omitempty"`
	// Batches for batch means. Default 20.
	Batches int `json:"batches,omitempty"`
	// Rel and Abs are the band's slack for proportions (Abs in probability;
	// defaults 0.05 and 0.02) and Rel plus AbsWait (scenario time; default
	// a fiftieth of the mean handle time plus 20ms real) for mean waits.
	Rel     float64  `json:"rel,omitempty"`
	Abs     float64  `json:"abs,omitempty"`
	AbsWait Duration `json:"abs_wait,omitempty"`
}

// Dist is a distribution of durations: fixed, exponential, lognormal (Mean
// and Sigma, the standard deviation of the underlying normal) or never
// (patience only).
type Dist struct {
	Kind  string   `json:"dist"`
	Mean  Duration `json:"mean,omitempty"`
	Sigma float64  `json:"sigma,omitempty"`
}

// Never reports whether the distribution is "never" (infinite).
func (d Dist) Never() bool { return d.Kind == DistNever }

// Distribution kinds.
const (
	DistFixed       = "fixed"
	DistExponential = "exponential"
	DistLognormal   = "lognormal"
	DistNever       = "never"
)

// Arrival profiles.
const (
	ProfileSteady       = "steady"
	ProfileRamp         = "ramp"
	ProfileBurst        = "burst"
	ProfilePeakOverflow = "peak-overflow"
)

// Duration is a time.Duration that reads "30s" in JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string like \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Load reads, defaults and validates a scenario file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrScenario, err)
	}
	return Parse(data)
}

// Parse reads, defaults and validates a scenario. Unknown fields are
// refused.
func Parse(data []byte) (*Scenario, error) {
	s := &Scenario{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrScenario, err)
	}
	s.setDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// SetDuration changes the arrival period to d (scenario time): arrival
// streams that ran to the end of the old period run to the end of the new
// one, the others keep their times. The result is validated: a stream that
// no longer fits is an error.
func (s *Scenario) SetDuration(d time.Duration) error {
	for i := range s.Arrivals {
		if a := &s.Arrivals[i]; a.Start+a.Duration == s.Duration {
			a.Duration = Duration(d) - a.Start
		}
	}
	s.Duration = Duration(d)
	return s.Validate()
}

func (s *Scenario) setDefaults() {
	if s.TimeScale == 0 {
		s.TimeScale = 1
	}
	if s.Drain == 0 {
		s.Drain = Duration(2 * time.Minute)
	}
	if s.Checks.IdleBound == 0 {
		s.Checks.IdleBound = Duration(500 * time.Millisecond)
	}
	if s.Checks.FIFOGrace == 0 {
		s.Checks.FIFOGrace = Duration(100 * time.Millisecond)
	}
	for i := range s.Queues {
		q := &s.Queues[i]
		if q.OfferTimeout == 0 {
			q.OfferTimeout = Duration(15 * time.Second)
		}
		if q.ServiceLevel == 0 {
			q.ServiceLevel = Duration(20 * time.Second)
		}
	}
	for i := range s.Agents {
		a := &s.Agents[i]
		if len(a.Capacity) == 0 {
			a.Capacity = map[string]uint32{"voice": 1}
		}
		if a.Think.Kind == "" {
			a.Think.Kind = DistFixed
		}
		if a.WrapUp.Kind == "" {
			a.WrapUp.Kind = DistFixed
		}
	}
	for i := range s.Arrivals {
		a := &s.Arrivals[i]
		if len(a.Channels) == 0 {
			a.Channels = map[string]float64{"voice": 1}
		}
		if a.Duration == 0 {
			a.Duration = s.Duration - a.Start
		}
		if a.Patience.Kind == "" {
			a.Patience.Kind = DistNever
		}
	}
	if e := s.Erlang; e != nil {
		if e.Threshold == 0 {
			e.Threshold = Duration(20 * time.Second)
		}
		if e.Confidence == 0 {
			e.Confidence = 0.99
		}
		if e.Batches == 0 {
			e.Batches = 20
		}
		if e.Rel == 0 {
			e.Rel = 0.05
		}
		if e.Abs == 0 {
			e.Abs = 0.02
		}
		if e.AbsWait == 0 && len(s.Agents) > 0 {
			// The harness's own delays (decision, accept, instruction) in
			// scenario time, plus a little of the handle time.
			e.AbsWait = Duration(float64(s.Agents[0].Handle.Mean)/50 + 0.02*float64(time.Second)*s.TimeScale)
		}
	}
}

// Channels maps scenario channel names to the contract's.
var Channels = map[string]pb.Channel{
	"voice":    pb.Channel_CHANNEL_VOICE,
	"chat":     pb.Channel_CHANNEL_CHAT,
	"email":    pb.Channel_CHANNEL_EMAIL,
	"sms":      pb.Channel_CHANNEL_SMS,
	"callback": pb.Channel_CHANNEL_CALLBACK,
}

var strategies = map[string]pb.Strategy{
	"":               pb.Strategy_STRATEGY_LONGEST_IDLE,
	"longest_idle":   pb.Strategy_STRATEGY_LONGEST_IDLE,
	"most_skilled":   pb.Strategy_STRATEGY_MOST_SKILLED,
	"round_robin":    pb.Strategy_STRATEGY_ROUND_ROBIN,
	"least_occupied": pb.Strategy_STRATEGY_LEAST_OCCUPIED,
}

type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// Validate reports every problem, each naming the field, the value and what
// is allowed. It also compiles the node configuration the scenario implies,
// so a scenario that validates starts a node.
func (s *Scenario) Validate() error {
	var p problems
	if s.Name == "" {
		p.addf("name: empty; give the scenario a name")
	}
	if !(s.TimeScale > 0) || math.IsInf(s.TimeScale, 0) {
		p.addf("time_scale: %v; must be a positive number", s.TimeScale)
	}
	if s.Duration <= 0 {
		p.addf("duration: %v; must be positive", s.Duration.D())
	}
	if s.Drain < 0 {
		p.addf("drain: %v; must not be negative", s.Drain.D())
	}
	if len(s.Queues) == 0 {
		p.addf("queues: none; at least one is needed")
	}
	queues := map[string]*Queue{}
	for i := range s.Queues {
		q := &s.Queues[i]
		if _, dup := queues[q.Name]; dup {
			p.addf("queues[%d].name: %q is used twice", i, q.Name)
		}
		queues[q.Name] = q
		for j, c := range q.Channels {
			if _, ok := Channels[c]; !ok {
				p.addf("queues[%d].channels[%d]: %q; allowed %s", i, j, c, channelNames())
			}
		}
		if _, ok := strategies[q.Strategy]; !ok {
			p.addf("queues[%d].strategy: %q; allowed longest_idle, most_skilled, round_robin, least_occupied", i, q.Strategy)
		}
		if q.OfferTimeout < 0 || (q.WrapUpLimit != nil && *q.WrapUpLimit < 0) {
			p.addf("queues[%d]: offer_timeout and wrap_up_limit must not be negative", i)
		}
	}
	if len(s.Agents) == 0 {
		p.addf("agents: none; at least one group is needed")
	}
	prefixes := map[string]bool{}
	for i, a := range s.Agents {
		if a.Count < 1 || a.Count > 100000 {
			p.addf("agents[%d].count: %d; allowed 1..100000", i, a.Count)
		}
		if a.IDPrefix == "" || prefixes[a.IDPrefix] {
			p.addf("agents[%d].id_prefix: %q; must be set and differ from the other groups'", i, a.IDPrefix)
		}
		prefixes[a.IDPrefix] = true
		for c := range a.Capacity {
			if _, ok := Channels[c]; !ok {
				p.addf("agents[%d].capacity: channel %q; allowed %s", i, c, channelNames())
			}
		}
		checkDist(&p, fmt.Sprintf("agents[%d].think", i), a.Think, true)
		checkDist(&p, fmt.Sprintf("agents[%d].handle", i), a.Handle, false)
		checkDist(&p, fmt.Sprintf("agents[%d].wrap_up", i), a.WrapUp, true)
		if a.PReject < 0 || a.PMiss < 0 || a.PReject+a.PMiss > 1 {
			p.addf("agents[%d]: p_reject %v and p_miss %v must be ≥ 0 and add up to at most 1", i, a.PReject, a.PMiss)
		}
		for _, q := range s.Queues {
			if time.Duration(a.Think.Mean) >= q.OfferTimeout.D() && a.Think.Kind == DistFixed && a.PMiss < 1 {
				p.addf("agents[%d].think: %v is not below queue %q's offer_timeout %v: every offer would be missed", i, a.Think.Mean.D(), q.Name, q.OfferTimeout.D())
			}
		}
	}
	if len(s.Arrivals) == 0 {
		p.addf("arrivals: none; at least one stream is needed")
	}
	for i, a := range s.Arrivals {
		path := fmt.Sprintf("arrivals[%d]", i)
		q, ok := queues[a.Queue]
		if !ok {
			p.addf("%s.queue: %q is not a configured queue", path, a.Queue)
		}
		if a.Start < 0 || a.Duration <= 0 || a.Start+a.Duration > s.Duration {
			p.addf("%s: start %v and duration %v must lie within the scenario's %v", path, a.Start.D(), a.Duration.D(), s.Duration.D())
		}
		switch a.Profile {
		case ProfileSteady:
			positiveRate(&p, path+".rate", a.Rate)
		case ProfileRamp:
			positiveRate(&p, path+".rate", a.Rate)
			if a.RateFrom < 0 {
				p.addf("%s.rate_from: %v; must not be negative", path, a.RateFrom)
			}
		case ProfileBurst:
			positiveRate(&p, path+".rate", a.Rate)
			positiveRate(&p, path+".burst_rate", a.BurstRate)
			if a.BurstAt < 0 || a.BurstFor <= 0 {
				p.addf("%s: burst_at %v must be ≥ 0 and burst_for %v positive", path, a.BurstAt.D(), a.BurstFor.D())
			}
		case ProfilePeakOverflow:
			positiveRate(&p, path+".factor", a.Factor)
		default:
			p.addf("%s.profile: %q; allowed steady, ramp, burst, peak-overflow", path, a.Profile)
		}
		for c, w := range a.Channels {
			if _, known := Channels[c]; !known {
				p.addf("%s.channels: %q; allowed %s", path, c, channelNames())
			} else if ok && len(q.Channels) > 0 && !slices.Contains(q.Channels, c) {
				p.addf("%s.channels: queue %q does not take %s (it takes %s)", path, a.Queue, c, strings.Join(q.Channels, ", "))
			}
			if !(w > 0) {
				p.addf("%s.channels[%q]: weight %v; must be positive", path, c, w)
			}
		}
		for pr, w := range a.Priorities {
			if v, err := strconv.Atoi(pr); err != nil || v < -100 || v > 100 {
				p.addf("%s.priorities: %q; priorities are integers -100..100", path, pr)
			}
			if !(w > 0) {
				p.addf("%s.priorities[%q]: weight %v; must be positive", path, pr, w)
			}
		}
		checkDist(&p, path+".patience", a.Patience, false)
		if a.Profile == ProfilePeakOverflow && ok {
			if capacity := s.Capacity(a); capacity <= 0 {
				p.addf("%s: queue %q has no agent capacity on %s; peak-overflow needs some", path, a.Queue, a.MainChannel())
			}
		}
	}
	if s.Checks.IdleBound <= 0 || s.Checks.FIFOGrace < 0 {
		p.addf("checks: idle_bound %v must be positive and fifo_grace %v not negative", s.Checks.IdleBound.D(), s.Checks.FIFOGrace.D())
	}
	if s.Erlang != nil {
		s.validateErlang(&p)
	}
	if len(p) == 0 {
		if _, err := routing.Compile(s.Routing()); err != nil {
			p.addf("the node configuration it implies is refused: %v", err)
		}
	}
	if len(p) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrScenario, s.Name, strings.Join(p, "; "))
	}
	return nil
}

func (s *Scenario) validateErlang(p *problems) {
	e := s.Erlang
	if len(s.Queues) != 1 || len(s.Agents) != 1 || len(s.Arrivals) != 1 {
		p.addf("erlang: needs exactly one queue, one agent group and one arrival stream")
		return
	}
	a, ar := s.Agents[0], s.Arrivals[0]
	if a.Handle.Kind != DistExponential {
		p.addf("erlang: agents[0].handle must be exponential, not %q", a.Handle.Kind)
	}
	if a.Think.Mean != 0 || a.WrapUp.Mean != 0 || a.PReject != 0 || a.PMiss != 0 {
		p.addf("erlang: agents[0] must have think 0, wrap_up 0, p_reject 0 and p_miss 0")
	}
	if len(a.Capacity) != 1 || a.Capacity["voice"] != 1 || len(ar.Channels) != 1 || ar.Channels["voice"] == 0 {
		p.addf("erlang: agents must have voice capacity 1 only, and the stream must be all voice")
	}
	if ar.Profile != ProfileSteady && ar.Profile != ProfilePeakOverflow {
		p.addf("erlang: the arrival stream must be steady or peak-overflow (a constant rate), not %q", ar.Profile)
	}
	if ar.Patience.Kind != DistExponential && ar.Patience.Kind != DistNever {
		p.addf("erlang: patience must be exponential (Erlang A) or never (Erlang C), not %q", ar.Patience.Kind)
	}
	if len(ar.Priorities) > 1 {
		p.addf("erlang: one priority only")
	}
	if e.Warmup < 0 || e.Warmup >= s.Duration || e.Threshold <= 0 {
		p.addf("erlang: warmup %v must lie within the duration and threshold %v be positive", e.Warmup.D(), e.Threshold.D())
	}
	if e.Confidence <= 0 || e.Confidence >= 1 || e.Batches < 2 || e.Rel < 0 || e.Abs < 0 || e.AbsWait < 0 {
		p.addf("erlang: confidence must be in (0,1), batches ≥ 2, rel, abs and abs_wait ≥ 0")
	}
}

func positiveRate(p *problems, field string, v float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		p.addf("%s: %v; must be a positive number", field, v)
	}
}

func checkDist(p *problems, field string, d Dist, zeroOK bool) {
	switch d.Kind {
	case DistFixed, DistExponential, DistLognormal:
		if d.Mean < 0 || (!zeroOK && d.Mean == 0) || (d.Kind != DistFixed && d.Mean == 0) {
			p.addf("%s.mean: %v; must be positive", field, d.Mean.D())
		}
		if d.Kind == DistLognormal && !(d.Sigma > 0) {
			p.addf("%s.sigma: %v; lognormal needs a positive sigma", field, d.Sigma)
		}
	case DistNever:
		if !strings.HasSuffix(field, "patience") {
			p.addf("%s.dist: never is only for patience", field)
		}
	default:
		p.addf("%s.dist: %q; allowed fixed, exponential, lognormal (and never for patience)", field, d.Kind)
	}
}

func channelNames() string {
	names := make([]string, 0, len(Channels))
	for n := range Channels {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// MainChannel is the channel with the largest weight in the stream's mix
// (ties: by name).
func (a Arrival) MainChannel() string {
	best, bw := "", 0.0
	for c, w := range a.Channels {
		if w > bw || (w == bw && c < best) {
			best, bw = c, w
		}
	}
	return best
}

// Capacity is the stream's queue's agent capacity in contacts per scenario
// second: over the agent groups that meet the queue's base skills, count ×
// slots on the stream's main channel / mean handle time.
func (s *Scenario) Capacity(a Arrival) float64 {
	var q *Queue
	for i := range s.Queues {
		if s.Queues[i].Name == a.Queue {
			q = &s.Queues[i]
		}
	}
	if q == nil {
		return 0
	}
	ch := a.MainChannel()
	total := 0.0
	for _, g := range s.Agents {
		if !meets(g.Skills, q.Skills) || g.Handle.Mean <= 0 {
			continue
		}
		total += float64(g.Count) * float64(g.Capacity[ch]) / g.Handle.Mean.D().Seconds()
	}
	return total
}

func meets(have, need map[string]uint32) bool {
	for s, l := range need {
		if have[s] < l {
			return false
		}
	}
	return true
}

// RateAt is the stream's arrival rate, contacts per scenario second, t
// scenario time after the run's start:
//
//	steady:        Rate
//	ramp:          RateFrom → Rate linearly over the stream's duration
//	burst:         Rate, and BurstRate from BurstAt for BurstFor
//	peak-overflow: Factor × Capacity
//
// and 0 outside [Start, Start+Duration).
func (s *Scenario) RateAt(a Arrival, t time.Duration) float64 {
	if t < a.Start.D() || t >= a.Start.D()+a.Duration.D() {
		return 0
	}
	switch a.Profile {
	case ProfileRamp:
		f := float64(t-a.Start.D()) / float64(a.Duration.D())
		return a.RateFrom + (a.Rate-a.RateFrom)*f
	case ProfileBurst:
		if at := a.Start.D() + a.BurstAt.D(); t >= at && t < at+a.BurstFor.D() {
			return a.BurstRate
		}
		return a.Rate
	case ProfilePeakOverflow:
		return a.Factor * s.Capacity(a)
	default:
		return a.Rate
	}
}

// MaxRate bounds RateAt over the stream, for thinning.
func (s *Scenario) MaxRate(a Arrival) float64 {
	switch a.Profile {
	case ProfileRamp:
		return max(a.Rate, a.RateFrom)
	case ProfileBurst:
		return max(a.Rate, a.BurstRate)
	case ProfilePeakOverflow:
		return a.Factor * s.Capacity(a)
	default:
		return a.Rate
	}
}

// Real converts a scenario duration to real time.
func (s *Scenario) Real(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.TimeScale)
}

// AgentIDs lists the ids of group g's agents.
func (s *Scenario) AgentIDs(g int) []string {
	a := s.Agents[g]
	width := len(strconv.Itoa(a.Count))
	ids := make([]string, a.Count)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%0*d", a.IDPrefix, width, i+1)
	}
	return ids
}

// TotalAgents counts every agent of every group.
func (s *Scenario) TotalAgents() int {
	n := 0
	for _, a := range s.Agents {
		n += a.Count
	}
	return n
}
