package routing

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Defaults for queue settings left unset.
const (
	DefaultOfferTimeout      = 15 * time.Second
	DefaultAverageHandleTime = 3 * time.Minute
	// MaxLevel is the highest skill level.
	MaxLevel = 5
	// MaxWideningSteps bounds a queue's widening steps.
	MaxWideningSteps = 16
	// MaxSiteLen bounds an agent's or a contact's site, in bytes.
	MaxSiteLen = 64
)

// ErrInvalidConfig wraps every validation failure.
var ErrInvalidConfig = errors.New("routing: invalid config")

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	agentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	skillRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_:.-]{0,63}$`)
)

// ValidQueueName reports whether name may name a queue (it appears in NATS
// subjects).
func ValidQueueName(name string) bool { return nameRE.MatchString(name) }

// ValidAgentID reports whether id may name an agent (it appears in NATS
// subjects).
func ValidAgentID(id string) bool { return agentRE.MatchString(id) }

// ValidSkill reports whether s may name a skill.
func ValidSkill(s string) bool { return skillRE.MatchString(s) }

// LanguageSkill is the skill that stands for speaking lang.
func LanguageSkill(lang string) string { return "language:" + strings.ToLower(lang) }

// sitePrefix starts the reserved skill names that stand for a site.
const sitePrefix = "site:"

// SiteSkill is the requirement met by agents working at site. It is checked
// against the agent's profile site, never its skills (see MetByProfile).
func SiteSkill(site string) string { return sitePrefix + site }

// Requirement is one skill at a minimum level.
type Requirement struct {
	Skill string
	Level uint32
}

// Requirements is sorted by skill, one entry per skill.
type Requirements []Requirement

// MetBy reports whether skills satisfy every requirement. It knows nothing
// of sites: requirements on an agent use MetByProfile.
func (r Requirements) MetBy(skills map[string]uint32) bool {
	for _, q := range r {
		if skills[q.Skill] < q.Level {
			return false
		}
	}
	return true
}

// MetByProfile reports whether the agent with profile p satisfies every
// requirement: a site requirement (SiteSkill) by working at that site, any
// other by its skills.
func (r Requirements) MetByProfile(p *pb.AgentProfile) bool {
	skills := p.GetSkills()
	for _, q := range r {
		if site, ok := strings.CutPrefix(q.Skill, sitePrefix); ok {
			if p.GetSite() != site {
				return false
			}
			continue
		}
		if skills[q.Skill] < q.Level {
			return false
		}
	}
	return true
}

// With returns r with q added, sorted; if r already names q's skill the
// higher level wins. r itself is not changed.
func (r Requirements) With(q Requirement) Requirements {
	i, found := sort.Find(len(r), func(i int) int { return strings.Compare(q.Skill, r[i].Skill) })
	if found {
		out := slices.Clone(r)
		out[i].Level = max(out[i].Level, q.Level)
		return out
	}
	return slices.Insert(slices.Clip(r), i, q)
}

// Key is a canonical string for r, usable as a map key.
func (r Requirements) Key() string {
	var b strings.Builder
	for i, q := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s>=%d", q.Skill, q.Level)
	}
	return b.String()
}

// NewRequirements builds sorted requirements; for a repeated skill the
// highest level wins; level 0 entries are dropped.
func NewRequirements(in []*pb.SkillRequirement) Requirements {
	m := make(map[string]uint32, len(in))
	for _, s := range in {
		if s.GetMinLevel() > m[s.GetSkill()] {
			m[s.GetSkill()] = s.GetMinLevel()
		}
	}
	return fromMap(m)
}

func fromMap(m map[string]uint32) Requirements {
	r := make(Requirements, 0, len(m))
	for k, v := range m {
		if v > 0 {
			r = append(r, Requirement{Skill: k, Level: v})
		}
	}
	sort.Slice(r, func(i, j int) bool { return r[i].Skill < r[j].Skill })
	return r
}

// Step is a queue's eligibility rule from After onwards. Steps[0] is the
// base rule (After 0). Overflow lists every overflow queue added so far.
type Step struct {
	After    time.Duration
	Reqs     Requirements
	Overflow []string
}

// Queue is a compiled queue configuration.
type Queue struct {
	Name            string
	Proto           *pb.QueueConfig
	Steps           []Step
	Strategy        pb.Strategy
	channels        uint8 // bit per pb.Channel; 0 = any
	OfferTimeout    time.Duration
	MissedNotReady  bool
	WrapUp          time.Duration
	WrapUpFixed     bool
	AgeEvery        time.Duration
	AgeMax          int32
	PreferredWindow time.Duration
	SiteWindow      time.Duration
	AverageHandle   time.Duration
	MaxWaiting      uint32
	MaxWait         time.Duration
	Closed          bool
	SLTarget        float64
	SLThreshold     time.Duration
}

// Accepts reports whether the queue takes contacts on ch.
func (q *Queue) Accepts(ch pb.Channel) bool {
	if _, ok := pb.Channel_name[int32(ch)]; !ok || ch == pb.Channel_CHANNEL_UNSPECIFIED {
		return false
	}
	return q.channels == 0 || q.channels&(1<<ch) != 0
}

// StepAt returns the widening step in force after waiting wait.
func (q *Queue) StepAt(wait time.Duration) int {
	s := 0
	for i := 1; i < len(q.Steps); i++ {
		if wait >= q.Steps[i].After {
			s = i
		}
	}
	return s
}

// NextStepAfter returns when (as a wait) the step after s starts, or -1.
func (q *Queue) NextStepAfter(s int) time.Duration {
	if s+1 < len(q.Steps) {
		return q.Steps[s+1].After
	}
	return -1
}

// EffectivePriority is priority raised by ageing after waiting wait.
func (q *Queue) EffectivePriority(priority int32, wait time.Duration) int32 {
	if q.AgeEvery <= 0 || q.AgeMax <= 0 || wait <= 0 {
		return priority
	}
	boost := int64(wait / q.AgeEvery)
	if boost > int64(q.AgeMax) {
		boost = int64(q.AgeMax)
	}
	return priority + int32(boost)
}

// Score is the agent's sum of levels over the queue's base skills, for the
// most-skilled strategy.
func (q *Queue) Score(p *pb.AgentProfile) int32 {
	var s int32
	for _, r := range q.Steps[0].Reqs {
		s += int32(p.GetSkills()[r.Skill])
	}
	return s
}

// Config is a compiled, validated routing configuration. It is immutable.
type Config struct {
	Proto        *pb.RoutingConfig
	Queues       map[string]*Queue
	QueueNames   []string
	Agents       map[string]*pb.AgentProfile
	TierPriority map[string]int32
	// memberships holds QueuesFor of every configured agent, by id.
	memberships map[string][]Membership
}

// Memberships returns the queues configured agent id may serve, in name
// order: QueuesFor of its profile, worked out once at Compile.
func (c *Config) Memberships(id string) []Membership { return c.memberships[id] }

// Queue returns the named queue.
func (c *Config) Queue(name string) (*Queue, bool) {
	q, ok := c.Queues[name]
	return q, ok
}

// MinStep returns the first widening step of q at which an agent with
// profile p may serve it, or -1 if never. An agent qualifies at step k when
// it meets step k's skills or the base skills of an overflow queue added by
// step k.
func (c *Config) MinStep(q *Queue, p *pb.AgentProfile) int {
	for k, st := range q.Steps {
		if st.Reqs.MetByProfile(p) {
			return k
		}
		for _, o := range st.Overflow {
			if oq, ok := c.Queues[o]; ok && oq.Steps[0].Reqs.MetByProfile(p) {
				return k
			}
		}
	}
	return -1
}

// Membership is a queue an agent may serve and from which step.
type Membership struct {
	Queue   *Queue
	MinStep int
}

// QueuesFor lists the queues an agent with profile p may serve at some
// step, in name order.
func (c *Config) QueuesFor(p *pb.AgentProfile) []Membership {
	var out []Membership
	capacity := p.GetCapacity()
	for _, name := range c.QueueNames {
		q := c.Queues[name]
		if !acceptsAny(q, capacity) {
			continue
		}
		if k := c.MinStep(q, p); k >= 0 {
			out = append(out, Membership{Queue: q, MinStep: k})
		}
	}
	return out
}

func acceptsAny(q *Queue, capacity []*pb.ChannelCapacity) bool {
	if q.channels == 0 || len(capacity) == 0 {
		return true
	}
	for _, c := range capacity {
		if c.GetSlots() > 0 && q.Accepts(c.GetChannel()) {
			return true
		}
	}
	return false
}

// Compile validates rc and compiles it. Every problem is reported, each
// naming the field, the value and what is allowed.
func Compile(rc *pb.RoutingConfig) (*Config, error) {
	v := &validator{}
	c := &Config{
		Proto:        rc,
		Queues:       make(map[string]*Queue, len(rc.GetQueues())),
		Agents:       make(map[string]*pb.AgentProfile, len(rc.GetAgents())),
		TierPriority: rc.GetTierPriority(),
	}
	for i, qc := range rc.GetQueues() {
		path := fmt.Sprintf("queues[%d]", i)
		q := v.queue(path, qc)
		if q == nil {
			continue
		}
		if _, dup := c.Queues[q.Name]; dup {
			v.addf("%s.name: %q is used by another queue; queue names must be unique", path, q.Name)
			continue
		}
		c.Queues[q.Name] = q
		c.QueueNames = append(c.QueueNames, q.Name)
	}
	slices.Sort(c.QueueNames)
	for i, qc := range rc.GetQueues() {
		for j, st := range qc.GetWidening() {
			for k, o := range st.GetOverflowQueues() {
				if _, ok := c.Queues[o]; !ok {
					v.addf("queues[%d].widening[%d].overflow_queues[%d]: %q is not a configured queue", i, j, k, o)
				} else if o == qc.GetName() {
					v.addf("queues[%d].widening[%d].overflow_queues[%d]: %q overflows into itself", i, j, k, o)
				}
			}
		}
	}
	for i, ap := range rc.GetAgents() {
		path := fmt.Sprintf("agents[%d]", i)
		if !v.agent(path, ap) {
			continue
		}
		if _, dup := c.Agents[ap.GetId()]; dup {
			v.addf("%s.id: %q is used by another agent; agent ids must be unique", path, ap.GetId())
			continue
		}
		c.Agents[ap.GetId()] = ap
	}
	for tier, p := range rc.GetTierPriority() {
		if p < -100 || p > 100 {
			v.addf("tier_priority[%q]: %d is out of range; allowed -100..100", tier, p)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	c.memberships = make(map[string][]Membership, len(c.Agents))
	for id, p := range c.Agents {
		c.memberships[id] = c.QueuesFor(p)
	}
	return c, nil
}

type validator struct{ problems []string }

func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(v.problems, "; "))
}

func (v *validator) duration(path string, d interface{ AsDuration() time.Duration }, isNil bool) time.Duration {
	if isNil {
		return 0
	}
	x := d.AsDuration()
	if x < 0 {
		v.addf("%s: %v is negative; allowed 0 or more", path, x)
		return 0
	}
	return x
}

func (v *validator) skills(path string, reqs []*pb.SkillRequirement, allowZero bool) {
	for i, r := range reqs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if !ValidSkill(r.GetSkill()) {
			v.addf("%s.skill: %q is not a skill name; allowed letters, digits, '_', '-', ':', '.' (at most 64)", p, r.GetSkill())
		}
		lo := uint32(1)
		if allowZero {
			lo = 0
		}
		if r.GetMinLevel() < lo || r.GetMinLevel() > MaxLevel {
			v.addf("%s.min_level: %d is out of range; allowed %d..%d", p, r.GetMinLevel(), lo, MaxLevel)
		}
	}
}

func (v *validator) queue(path string, qc *pb.QueueConfig) *Queue {
	before := len(v.problems)
	if !ValidQueueName(qc.GetName()) {
		v.addf("%s.name: %q is not a queue name; allowed lower-case letters, digits, '_' and '-', starting with a letter or digit, at most 64", path, qc.GetName())
	}
	v.skills(path+".skills", qc.GetSkills(), false)
	q := &Queue{
		Name:            qc.GetName(),
		Proto:           qc,
		Strategy:        qc.GetStrategy(),
		OfferTimeout:    v.duration(path+".offer_timeout", qc.GetOfferTimeout(), qc.GetOfferTimeout() == nil),
		MissedNotReady:  qc.GetMissedOffer() != pb.MissedOfferAction_MISSED_OFFER_ACTION_STAY_AVAILABLE,
		WrapUp:          v.duration(path+".wrap_up", qc.GetWrapUp(), qc.GetWrapUp() == nil),
		WrapUpFixed:     qc.GetWrapUpFixed(),
		PreferredWindow: v.duration(path+".preferred_agent_window", qc.GetPreferredAgentWindow(), qc.GetPreferredAgentWindow() == nil),
		SiteWindow:      v.duration(path+".site_preference_window", qc.GetSitePreferenceWindow(), qc.GetSitePreferenceWindow() == nil),
		AverageHandle:   v.duration(path+".average_handle_time", qc.GetAverageHandleTime(), qc.GetAverageHandleTime() == nil),
		MaxWaiting:      qc.GetAdmission().GetMaxWaiting(),
		MaxWait:         v.duration(path+".admission.max_estimated_wait", qc.GetAdmission().GetMaxEstimatedWait(), qc.GetAdmission().GetMaxEstimatedWait() == nil),
		Closed:          qc.GetAdmission().GetClosed(),
		SLTarget:        qc.GetServiceLevel().GetTarget(),
		SLThreshold:     v.duration(path+".service_level.threshold", qc.GetServiceLevel().GetThreshold(), qc.GetServiceLevel().GetThreshold() == nil),
	}
	if _, ok := pb.Strategy_name[int32(q.Strategy)]; !ok {
		v.addf("%s.strategy: %d is not a strategy; allowed LONGEST_IDLE, MOST_SKILLED, ROUND_ROBIN, LEAST_OCCUPIED", path, q.Strategy)
	}
	if q.Strategy == pb.Strategy_STRATEGY_UNSPECIFIED {
		q.Strategy = pb.Strategy_STRATEGY_LONGEST_IDLE
	}
	if q.OfferTimeout == 0 {
		q.OfferTimeout = DefaultOfferTimeout
	}
	if q.AverageHandle == 0 {
		q.AverageHandle = DefaultAverageHandleTime
	}
	if t := q.SLTarget; !(t >= 0 && t <= 1) { // NaN fails both comparisons
		v.addf("%s.service_level.target: %v is out of range; allowed 0..1", path, t)
	}
	if q.SLThreshold == 0 {
		q.SLThreshold = 20 * time.Second
	}
	if q.SLTarget == 0 {
		q.SLTarget = 0.8
	}
	for i, ch := range qc.GetChannels() {
		if ch == pb.Channel_CHANNEL_UNSPECIFIED || int(ch) >= 8 || pb.Channel_name[int32(ch)] == "" {
			v.addf("%s.channels[%d]: %v is not a channel; allowed VOICE, CHAT, EMAIL, SMS, CALLBACK", path, i, ch)
			continue
		}
		q.channels |= 1 << ch
	}
	if ag := qc.GetAgeing(); ag != nil {
		q.AgeEvery = v.duration(path+".ageing.every", ag.GetEvery(), ag.GetEvery() == nil)
		if ag.GetMaxBoost() > 100 {
			v.addf("%s.ageing.max_boost: %d is out of range; allowed 0..100", path, ag.GetMaxBoost())
		}
		q.AgeMax = int32(min(ag.GetMaxBoost(), 100))
	}
	// Steps: base, then each widening step cumulatively.
	levels := make(map[string]uint32)
	for _, r := range NewRequirements(qc.GetSkills()) {
		levels[r.Skill] = r.Level
	}
	q.Steps = []Step{{Reqs: fromMap(levels)}}
	if len(qc.GetWidening()) > MaxWideningSteps {
		v.addf("%s.widening: %d steps; allowed at most %d", path, len(qc.GetWidening()), MaxWideningSteps)
	}
	var last time.Duration
	var overflow []string
	for i, st := range qc.GetWidening() {
		sp := fmt.Sprintf("%s.widening[%d]", path, i)
		after := v.duration(sp+".after", st.GetAfter(), st.GetAfter() == nil)
		if after <= last {
			v.addf("%s.after: %v must be later than the previous step (%v)", sp, after, last)
		}
		last = after
		v.skills(sp+".skills", st.GetSkills(), true)
		for _, r := range st.GetSkills() {
			cur, had := levels[r.GetSkill()]
			if !had && r.GetMinLevel() > 0 {
				v.addf("%s.skills: %q is not required before this step; widening may only relax requirements", sp, r.GetSkill())
				continue
			}
			if r.GetMinLevel() > cur {
				v.addf("%s.skills: %q level %d is above the current %d; widening may only relax requirements", sp, r.GetSkill(), r.GetMinLevel(), cur)
				continue
			}
			if r.GetMinLevel() == 0 {
				delete(levels, r.GetSkill())
			} else {
				levels[r.GetSkill()] = r.GetMinLevel()
			}
		}
		for j, o := range st.GetOverflowQueues() {
			if !ValidQueueName(o) {
				v.addf("%s.overflow_queues[%d]: %q is not a queue name", sp, j, o)
			}
		}
		overflow = append(slices.Clone(overflow), st.GetOverflowQueues()...)
		q.Steps = append(q.Steps, Step{After: after, Reqs: fromMap(levels), Overflow: overflow})
	}
	if len(v.problems) > before {
		return nil
	}
	return q
}

func (v *validator) agent(path string, ap *pb.AgentProfile) bool {
	before := len(v.problems)
	if !ValidAgentID(ap.GetId()) {
		v.addf("%s.id: %q is not an agent id; allowed letters, digits, '_' and '-', at most 64", path, ap.GetId())
	}
	for skill, level := range ap.GetSkills() {
		if !ValidSkill(skill) {
			v.addf("%s.skills: %q is not a skill name; allowed letters, digits, '_', '-', ':', '.' (at most 64)", path, skill)
		}
		if strings.HasPrefix(skill, sitePrefix) {
			v.addf("%s.skills: %q is reserved (skills %q<name> stand for the agent's site); set site instead", path, skill, sitePrefix)
		}
		if level < 1 || level > MaxLevel {
			v.addf("%s.skills[%q]: level %d is out of range; allowed 1..%d", path, skill, level, MaxLevel)
		}
	}
	for i, c := range ap.GetCapacity() {
		if c.GetChannel() == pb.Channel_CHANNEL_UNSPECIFIED || pb.Channel_name[int32(c.GetChannel())] == "" {
			v.addf("%s.capacity[%d].channel: %v is not a channel", path, i, c.GetChannel())
		}
		if c.GetSlots() > 100 {
			v.addf("%s.capacity[%d].slots: %d is out of range; allowed 0..100", path, i, c.GetSlots())
		}
	}
	for i, b := range ap.GetBlocking().GetBlocks() {
		if b.GetChannel() == pb.Channel_CHANNEL_UNSPECIFIED || pb.Channel_name[int32(b.GetChannel())] == "" {
			v.addf("%s.blocking.blocks[%d].channel: %v is not a channel", path, i, b.GetChannel())
		}
		for j, x := range b.GetBlocks() {
			if x == pb.Channel_CHANNEL_UNSPECIFIED || pb.Channel_name[int32(x)] == "" {
				v.addf("%s.blocking.blocks[%d].blocks[%d]: %v is not a channel", path, i, j, x)
			}
		}
	}
	if len(ap.GetSite()) > MaxSiteLen {
		v.addf("%s.site: %d bytes; allowed at most %d", path, len(ap.GetSite()), MaxSiteLen)
	}
	return len(v.problems) == before
}
