package match

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// The property tests drive the index with random arrivals, abandons, agent
// statuses, holds and time, and check every answer against a brute-force
// model that looks at every waiting contact and every agent.

type modelContact struct {
	w      Waiting // as given to Add
	extras routing.Requirements
}

type modelHold struct {
	seq uint64
	ch  pb.Channel
	at  int64
}

type modelAgent struct {
	profile     *pb.AgentProfile
	base        [shard.NumChannels]uint32
	holds       []modelHold
	idle        int64
	occ         uint32
	version     uint64
	lastOffered uint64
	soliciting  bool
	minStep     int
	fr          [shard.NumChannels]uint32
}

func (a *modelAgent) free() [shard.NumChannels]uint32 { return a.fr }

// occupancy is the reported occupancy plus the holds in flight, per mille
// of the agent's total capacity.
func (a *modelAgent) occupancy() uint32 {
	var total uint32
	for _, c := range shard.Capacity(a.profile) {
		total += c
	}
	if total == 0 {
		return a.occ
	}
	return min(1000, a.occ+uint32(len(a.holds))*1000/total)
}

// recompute derives fr from the status and the holds in flight, the
// agent's blocking rules applied for each hold.
func (a *modelAgent) recompute() {
	a.fr = a.computeFree()
}

func (a *modelAgent) computeFree() [shard.NumChannels]uint32 {
	f := a.base
	blocks := shard.Blocks(a.profile)
	for _, h := range a.holds {
		if f[h.ch] > 0 {
			f[h.ch]--
		}
		for _, x := range shard.Channels {
			if blocks[h.ch]&(1<<x) != 0 {
				f[x] = 0
			}
		}
	}
	return f
}

type model struct {
	cfg      *routing.Config
	q        *routing.Queue
	contacts map[string]*modelContact
	agents   map[string]*modelAgent
	rr       uint64
}

func (m *model) inWindow(c *modelContact, now int64) bool {
	return c.w.PreferredAgent != "" && now < c.w.PreferredUntil
}

// inSiteWindow: only agents of c's site may serve it at now.
func (m *model) inSiteWindow(c *modelContact, now int64) bool {
	return m.q.SiteWindow > 0 && c.w.Site != "" && now-c.w.ArrivedAt < int64(m.q.SiteWindow)
}

func (m *model) avoids(c *modelContact, agent string, now int64) bool {
	for _, a := range c.w.Avoid {
		if a.Agent == agent && now < a.Until {
			return true
		}
	}
	return false
}

// eligible: agent id may serve c at now, windows aside.
func (m *model) eligible(id string, c *modelContact, now int64) bool {
	a, ok := m.agents[id]
	if !ok {
		return false
	}
	return a.free()[c.w.Channel] > 0 &&
		a.minStep <= m.q.StepAt(time.Duration(now-c.w.ArrivedAt)) &&
		!m.avoids(c, id, now) &&
		c.extras.MetBy(a.profile.GetSkills()) &&
		(!m.inSiteWindow(c, now) || a.profile.GetSite() == c.w.Site)
}

// ahead: c before d at now (priority after ageing, then arrival, then seq).
func (m *model) ahead(c, d *modelContact, now int64) bool {
	if d == nil {
		return true
	}
	pc := m.q.EffectivePriority(c.w.Priority, time.Duration(now-c.w.ArrivedAt))
	pd := m.q.EffectivePriority(d.w.Priority, time.Duration(now-d.w.ArrivedAt))
	if pc != pd {
		return pc > pd
	}
	if c.w.ArrivedAt != d.w.ArrivedAt {
		return c.w.ArrivedAt < d.w.ArrivedAt
	}
	return c.w.Seq < d.w.Seq
}

// agentAhead: agent a before b by the queue's strategy.
func (m *model) agentAhead(a, b string) bool {
	x, y := m.agents[a], m.agents[b]
	switch m.q.Strategy {
	case pb.Strategy_STRATEGY_MOST_SKILLED:
		if sx, sy := m.q.Score(x.profile), m.q.Score(y.profile); sx != sy {
			return sx > sy
		}
	case pb.Strategy_STRATEGY_ROUND_ROBIN:
		if x.lastOffered != y.lastOffered {
			return x.lastOffered < y.lastOffered
		}
	case pb.Strategy_STRATEGY_LEAST_OCCUPIED:
		// Holds the queue sent that the agent has not answered count as
		// occupied: otherwise one pass could give one agent everything.
		if ox, oy := x.occupancy(), y.occupancy(); ox != oy {
			return ox < oy
		}
	}
	if x.idle != y.idle {
		return x.idle < y.idle
	}
	return a < b
}

// offerable lists, sorted, the agents NextMatch may use: known, not
// soliciting, with a slot free somewhere.
func (m *model) offerable() []string {
	ids := make([]string, 0, len(m.agents))
	for id, a := range m.agents {
		if !a.soliciting && a.free() != [shard.NumChannels]uint32{} {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// bestAgent is the best agent of ids (offerable) that may serve c at now.
func (m *model) bestAgent(ids []string, c *modelContact, now int64) string {
	best := ""
	for _, id := range ids {
		if !m.eligible(id, c, now) {
			continue
		}
		if m.inWindow(c, now) && c.w.PreferredAgent != id {
			continue
		}
		if best == "" || m.agentAhead(id, best) {
			best = id
		}
	}
	return best
}

// nextMatch returns the contacts NextMatch may pick at now: every preferred
// contact its free agent can serve (NextMatch promises only "preferred
// first"), or else the single best contact some free agent can serve.
func (m *model) nextMatch(now int64) (pref map[string]string, best *modelContact, agent string) {
	pref = make(map[string]string)
	for id, c := range m.contacts {
		if !m.inWindow(c, now) {
			continue
		}
		a, ok := m.agents[c.w.PreferredAgent]
		if ok && !a.soliciting && m.eligible(c.w.PreferredAgent, c, now) {
			pref[id] = c.w.PreferredAgent
		}
	}
	if len(pref) > 0 {
		return pref, nil, ""
	}
	ids := m.offerable()
	for _, c := range m.contacts {
		if m.inWindow(c, now) || !m.ahead(c, best, now) {
			continue
		}
		if a := m.bestAgent(ids, c, now); a != "" {
			best, agent = c, a
		}
	}
	return nil, best, agent
}

// bestContact is BestContact's answer for agent id at now.
func (m *model) bestContact(id string, now int64) *modelContact {
	if _, ok := m.agents[id]; !ok {
		return nil
	}
	var best *modelContact
	for _, c := range m.contacts {
		if m.inWindow(c, now) && c.w.PreferredAgent == id && m.eligible(id, c, now) && m.ahead(c, best, now) {
			best = c
		}
	}
	if best != nil {
		return best
	}
	for _, c := range m.contacts {
		if !m.inWindow(c, now) && m.eligible(id, c, now) && m.ahead(c, best, now) {
			best = c
		}
	}
	return best
}

func (m *model) canServe(id string, c *modelContact, now int64) bool {
	if m.inWindow(c, now) && c.w.PreferredAgent != id {
		return false
	}
	return m.eligible(id, c, now)
}

func (m *model) available() int {
	n := 0
	for _, a := range m.agents {
		f := a.free()
		if a.soliciting {
			continue
		}
		for _, ch := range shard.Channels {
			if f[ch] > 0 && m.q.Accepts(ch) {
				n++
				break
			}
		}
	}
	return n
}

// propertyConfig is a queue asking for sales 3, relaxing to 2 after 20s, to
// 1 after 60s, adding the bpo queue's agents after 90s; taking voice, chat
// and email; ageing one step every 15s up to 3; keeping contacts to their
// site for 25s.
func propertyConfig(t testing.TB, strategy pb.Strategy) (*routing.Config, *routing.Queue) {
	rc := &pb.RoutingConfig{Queues: []*pb.QueueConfig{
		{
			Name:                 "main",
			Skills:               []*pb.SkillRequirement{req("sales", 3)},
			Channels:             []pb.Channel{voice, chat, email},
			Strategy:             strategy,
			Ageing:               &pb.PriorityAgeing{Every: dur(15 * time.Second), MaxBoost: 3},
			SitePreferenceWindow: dur(25 * time.Second),
			Widening: []*pb.WideningStep{
				{After: dur(20 * time.Second), Skills: []*pb.SkillRequirement{req("sales", 2)}},
				{After: dur(60 * time.Second), Skills: []*pb.SkillRequirement{req("sales", 1)}},
				{After: dur(90 * time.Second), OverflowQueues: []string{"bpo"}},
			},
		},
		{Name: "bpo", Skills: []*pb.SkillRequirement{req("bpo", 1)}},
	}}
	cfg, err := routing.Compile(rc)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := cfg.Queue("main")
	return cfg, q
}

// sites agents and contacts come from; "" is no site.
var sites = []string{"east", "west", ""}

type propertyRun struct {
	t        *testing.T
	r        *rand.Rand
	m        *model
	q        *Queue
	now      int64
	seq      uint64
	contacts int
	agentIDs []string
	profiles map[string]*pb.AgentProfile
	manySets bool // requirement sets beyond the 63 classes
	checked  struct{ matches, prefMatches, siteMatches, slow, bests, maxWaiting int }
}

func (p *propertyRun) randomExtras() routing.Requirements {
	r := p.r
	var reqs []*pb.SkillRequirement
	if p.manySets {
		for range r.IntN(3) {
			reqs = append(reqs, req(fmt.Sprintf("product-%02d", r.IntN(40)), uint32(1+r.IntN(3))))
		}
	} else {
		switch r.IntN(4) {
		case 1:
			reqs = append(reqs, req(routing.LanguageSkill("en"), 1))
		case 2:
			reqs = append(reqs, req(routing.LanguageSkill("fr"), 1))
		case 3:
			reqs = append(reqs, req(routing.LanguageSkill("ja"), 1), req("vip", 2))
		}
	}
	return routing.NewRequirements(reqs)
}

func (p *propertyRun) randomProfile(id string) *pb.AgentProfile {
	r := p.r
	sk := map[string]uint32{}
	switch x := r.IntN(10); {
	case x < 7:
		sk["sales"] = uint32(1 + r.IntN(5))
	case x < 9:
		sk["bpo"] = 1
	}
	if p.manySets {
		for range r.IntN(12) {
			sk[fmt.Sprintf("product-%02d", r.IntN(40))] = uint32(1 + r.IntN(5))
		}
	} else {
		for _, l := range []string{"en", "fr", "ja"} {
			if r.IntN(2) == 0 {
				sk[routing.LanguageSkill(l)] = 1
			}
		}
		if r.IntN(3) == 0 {
			sk["vip"] = uint32(1 + r.IntN(5))
		}
	}
	prof := &pb.AgentProfile{Id: id, Site: sites[r.IntN(len(sites))], Skills: sk}
	if r.IntN(4) == 0 {
		prof.Capacity = []*pb.ChannelCapacity{{Channel: chat, Slots: 2}, {Channel: email, Slots: 3}}
		prof.Blocking = &pb.BlockingRules{}
	}
	return prof
}

func (p *propertyRun) addContact() {
	r := p.r
	p.contacts++
	p.seq++
	w := Waiting{
		ContactID: fmt.Sprint("c", p.contacts),
		Seq:       uint64(p.contacts),
		ArrivedAt: p.now,
		Priority:  int32(r.IntN(3)),
		Channel:   []pb.Channel{voice, chat, email}[r.IntN(3)],
	}
	if r.IntN(4) == 0 {
		w.ArrivedAt -= int64(r.IntN(120)) * int64(time.Second) // wait credit, returned contacts
	}
	if r.IntN(8) == 0 {
		w.Avoid = []Avoid{{Agent: p.agentIDs[r.IntN(len(p.agentIDs))], Until: p.now + int64(r.IntN(60))*int64(time.Second)}}
	}
	if r.IntN(8) == 0 {
		w.PreferredAgent = p.agentIDs[r.IntN(len(p.agentIDs))]
		w.PreferredUntil = p.now + int64(r.IntN(40))*int64(time.Second)
		if len(w.Avoid) > 0 && r.IntN(2) == 0 {
			w.Avoid[0].Agent = w.PreferredAgent // it rejected its own contact
		}
	}
	if r.IntN(2) == 0 {
		w.Site = sites[r.IntN(len(sites))]
	}
	extras := p.randomExtras()
	got := p.q.Add(w, extras, p.now)
	if got == nil {
		p.t.Fatalf("Add(%s) refused", w.ContactID)
	}
	c := &modelContact{w: w, extras: extras}
	c.w.Avoid = slices.Clone(w.Avoid)
	p.m.contacts[w.ContactID] = c
	if got.class == slowClass {
		p.checked.slow++
	}
}

func (p *propertyRun) status() {
	r := p.r
	id := p.agentIDs[r.IntN(len(p.agentIDs))]
	a, known := p.m.agents[id]
	var prof *pb.AgentProfile
	var version uint64 = 1
	if known {
		prof = a.profile
		version = a.version + 1
		if r.IntN(20) == 0 {
			// A status older than the last one applied is dropped.
			if a.version > 0 && p.q.SetAgent(Status{ID: id, Profile: prof, Version: a.version - 1}, p.now) {
				p.t.Fatalf("SetAgent applied version %d after %d", a.version-1, a.version)
			}
			return
		}
		if r.IntN(10) == 0 {
			version = a.version // same version: applied
		}
	} else {
		prof = p.profiles[id]
	}
	st := Status{
		ID:         id,
		Profile:    prof,
		IdleSince:  p.now - int64(r.IntN(300))*int64(time.Second),
		Occupancy:  uint32(r.IntN(4) * 250),
		Version:    version,
		Soliciting: r.IntN(10) == 0,
	}
	if r.IntN(3) > 0 {
		st.SeenSeq = p.seq
	} else if p.seq > 0 {
		st.SeenSeq = r.Uint64N(p.seq)
	}
	for _, ch := range shard.Channels {
		if r.IntN(3) > 0 {
			st.Free[ch] = uint32(r.IntN(3))
		}
	}
	ok := p.q.SetAgent(st, p.now)
	canServe := p.m.cfg.MinStep(p.m.q, prof) >= 0
	if ok != canServe {
		p.t.Fatalf("SetAgent(%s) = %v; the agent can serve: %v", id, ok, canServe)
	}
	if !ok {
		delete(p.m.agents, id)
		return
	}
	if !known {
		a = &modelAgent{profile: prof, minStep: p.m.cfg.MinStep(p.m.q, prof)}
		p.m.agents[id] = a
	}
	a.base = st.Free
	a.holds = slices.DeleteFunc(a.holds, func(h modelHold) bool {
		return h.seq <= st.SeenSeq || p.now-h.at >= inflightTTL
	})
	a.idle, a.occ, a.version, a.soliciting = st.IdleSince, st.Occupancy, st.Version, st.Soliciting
	a.recompute()
}

func (p *propertyRun) match() bool {
	t := p.t
	w, a, ok := p.q.NextMatch(p.now)
	pref, best, bestAgent := p.m.nextMatch(p.now)
	switch {
	case len(pref) > 0:
		if !ok || pref[w.ContactID] != a.ID {
			t.Fatalf("at %s: NextMatch %v>%v; want one of the preferred matches %v", rel(p.now), w, a, pref)
		}
		p.checked.prefMatches++
	case best == nil:
		if ok {
			c := p.m.contacts[w.ContactID]
			t.Fatalf("at %s: NextMatch %s>%s; the model finds no match (eligible: %v)", rel(p.now), w.ContactID, a.ID, c != nil && p.m.eligible(a.ID, c, p.now))
		}
		return false
	default:
		if !ok {
			t.Fatalf("at %s: NextMatch found nothing; want %s>%s", rel(p.now), best.w.ContactID, bestAgent)
		}
		if w.ContactID != best.w.ContactID || a.ID != bestAgent {
			t.Fatalf("at %s: NextMatch %s>%s; want %s>%s", rel(p.now), w.ContactID, a.ID, best.w.ContactID, bestAgent)
		}
		p.checked.matches++
		if p.m.inSiteWindow(best, p.now) {
			p.checked.siteMatches++
		}
	}
	// Take it, as the queue actor does.
	p.q.Remove(w.ContactID)
	delete(p.m.contacts, w.ContactID)
	p.seq++
	p.q.Taken(a.ID, w.Channel, p.seq, p.now)
	ma := p.m.agents[a.ID]
	p.m.rr++
	ma.lastOffered = p.m.rr
	ma.holds = append(ma.holds, modelHold{seq: p.seq, ch: w.Channel, at: p.now})
	ma.recompute()
	return true
}

func (p *propertyRun) checkAgent(id string) {
	t := p.t
	want := p.m.bestContact(id, p.now)
	got, ok := p.q.BestContact(id, p.now)
	switch {
	case want == nil && ok:
		t.Fatalf("at %s: BestContact(%s) = %s; the model finds none", rel(p.now), id, got.ContactID)
	case want != nil && (!ok || got.ContactID != want.w.ContactID):
		t.Fatalf("at %s: BestContact(%s) = %v; want %s", rel(p.now), id, got, want.w.ContactID)
	}
	p.checked.bests++
	if ma, known := p.m.agents[id]; known {
		a, _ := p.q.Agent(id)
		if a == nil || a.Free != ma.free() {
			t.Fatalf("agent %s Free %v; model %v", id, a.Free, ma.free())
		}
	} else if _, ok := p.q.Agent(id); ok {
		t.Fatalf("agent %s known to the index, not to the model", id)
	}
	// CanServe for a few contacts (after BestContact moved expired
	// preferred contacts into lines).
	n := 0
	for cid, c := range p.m.contacts {
		if n++; n > 5 {
			break
		}
		w, _ := p.q.Waiting(cid)
		if got, want := p.q.CanServe(id, w, p.now), p.m.canServe(id, c, p.now); got != want {
			t.Fatalf("at %s: CanServe(%s, %s) = %v; model %v", rel(p.now), id, cid, got, want)
		}
	}
}

func (p *propertyRun) step(op int) {
	r := p.r
	switch x := r.IntN(100); {
	case x < 10:
		p.now += int64(r.IntN(10_000)) * int64(time.Millisecond)
	case x < 40:
		p.addContact()
	case x < 45 && len(p.m.contacts) > 0:
		ids := make([]string, 0, len(p.m.contacts))
		for id := range p.m.contacts {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		id := ids[r.IntN(len(ids))]
		if _, ok := p.q.Remove(id); !ok {
			p.t.Fatalf("Remove(%s) failed", id)
		}
		delete(p.m.contacts, id)
	case x < 70:
		p.status()
	case x < 72:
		id := p.agentIDs[r.IntN(len(p.agentIDs))]
		p.q.RemoveAgent(id)
		delete(p.m.agents, id)
	case x < 74:
		id := p.agentIDs[r.IntN(len(p.agentIDs))]
		p.q.StopSoliciting(id)
		if a, ok := p.m.agents[id]; ok {
			a.soliciting = false
		}
	case x < 76:
		// A hold that never reached its agent.
		id := p.agentIDs[r.IntN(len(p.agentIDs))]
		if a, ok := p.m.agents[id]; ok && len(a.holds) > 0 {
			i := r.IntN(len(a.holds))
			p.q.Untake(id, a.holds[i].seq)
			a.holds = slices.Delete(a.holds, i, i+1)
			a.recompute()
		}
	case x < 85:
		p.checkAgent(p.agentIDs[r.IntN(len(p.agentIDs))])
	default:
		for p.match() {
		}
	}
	p.checked.maxWaiting = max(p.checked.maxWaiting, len(p.m.contacts))
	if op%4 == 0 { // a stray entry outlives the step that made it
		checkEntries(p.t, p.q)
		if p.t.Failed() {
			p.t.FailNow()
		}
	}
	if p.q.Len() != len(p.m.contacts) {
		p.t.Fatalf("op %d: Len %d; model %d", op, p.q.Len(), len(p.m.contacts))
	}
	if got, want := p.q.AvailableAgents(), p.m.available(); got != want {
		p.t.Fatalf("op %d: AvailableAgents %d; model %d", op, got, want)
	}
	if got, want := p.q.Agents(), len(p.m.agents); got != want {
		p.t.Fatalf("op %d: Agents %d; model %d", op, got, want)
	}
}

func (p *propertyRun) init(nAgents int) {
	p.profiles = make(map[string]*pb.AgentProfile)
	for i := range nAgents {
		id := fmt.Sprintf("a%02d", i)
		p.agentIDs = append(p.agentIDs, id)
		p.profiles[id] = p.randomProfile(id)
	}
}

// TestNextMatch_MatchesBruteForce: for every strategy, with few or many
// requirement sets, every NextMatch picks the best contact some eligible
// free agent can serve and the best such agent by the strategy; every
// BestContact and CanServe agrees with a scan of everything.
func TestNextMatch_MatchesBruteForce(t *testing.T) {
	strategies := []pb.Strategy{
		pb.Strategy_STRATEGY_LONGEST_IDLE,
		pb.Strategy_STRATEGY_MOST_SKILLED,
		pb.Strategy_STRATEGY_ROUND_ROBIN,
		pb.Strategy_STRATEGY_LEAST_OCCUPIED,
	}
	for _, strategy := range strategies {
		for _, many := range []bool{false, true} {
			seeds := uint64(3)
			if testing.Short() {
				seeds = 1
			}
			for seed := range seeds {
				t.Run(fmt.Sprintf("%v/many=%v/seed=%d", strategy, many, seed), func(t *testing.T) {
					cfg, qc := propertyConfig(t, strategy)
					p := &propertyRun{
						t:        t,
						r:        rand.New(rand.NewPCG(seed, uint64(strategy))),
						m:        &model{cfg: cfg, q: qc, contacts: map[string]*modelContact{}, agents: map[string]*modelAgent{}},
						q:        New(cfg, qc),
						now:      t0,
						manySets: many,
					}
					p.init(30)
					for op := range 3000 {
						p.step(op)
					}
					if p.checked.matches < 100 || p.checked.bests < 100 || p.checked.siteMatches == 0 {
						t.Errorf("checked only %d matches (%d in a site window) and %d BestContacts", p.checked.matches, p.checked.siteMatches, p.checked.bests)
					}
					if many && p.checked.slow == 0 {
						t.Errorf("no contact reached the slow class")
					}
					t.Logf("checked %d matches (%d in a site window), %d preferred, %d BestContacts; %d slow-class arrivals; at most %d waiting", p.checked.matches, p.checked.siteMatches, p.checked.prefMatches, p.checked.bests, p.checked.slow, p.checked.maxWaiting)
				})
			}
		}
	}
}
