package match

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Site preference: while a contact with a site has waited less than the
// queue's site window, only agents of its site may take it; then any
// eligible agent, the contact keeping its place and its wait credit.

// siteQueue asks for sales 1 and prefers the contact's site for 20s.
func siteQueue() *pb.QueueConfig {
	return &pb.QueueConfig{
		Name:                 "sales",
		Skills:               []*pb.SkillRequirement{req("sales", 1)},
		SitePreferenceWindow: dur(20 * time.Second),
	}
}

// siteAgent reports agent id, a sales agent working at site, free on voice
// since idleSince.
func (h *harness) siteAgent(id, site string, idleSince int64) {
	h.t.Helper()
	if _, ok := h.profiles[id]; !ok {
		h.profiles[id] = &pb.AgentProfile{Id: id, Site: site, Skills: skills("sales", 1)}
	}
	if !h.agent(id, nil, idleSince, free(voice, 1)) {
		h.t.Fatalf("agent %s refused", id)
	}
}

func TestSite_OnlyTheContactsSiteInTheWindow(t *testing.T) {
	h := newHarness(t, siteQueue())
	h.siteAgent("west1", "west", at(-100))
	c := h.addW(Waiting{ContactID: "c", ArrivedAt: at(0), Channel: voice, Site: "east"}, nil, at(0))
	for _, now := range []float64{0, 10, 19.9} {
		if got := h.next(at(now)); got != "" {
			t.Fatalf("at %gs: NextMatch %q; only an east agent may take c in its window", now, got)
		}
		if h.q.CanServe("west1", c, at(now)) {
			t.Errorf("at %gs: CanServe(west1, c) in c's site window", now)
		}
		if got := h.best("west1", at(now)); got != "" {
			t.Errorf("at %gs: BestContact(west1) = %q in c's site window", now, got)
		}
	}
	if wake := h.q.NextWake(at(0)); wake != at(20) {
		t.Errorf("NextWake(0s) = %s; want the site window end 20s", rel(wake))
	}
	if h.q.Len() != 1 || h.q.Position(0) != 1 || h.q.OldestArrival() != at(0) {
		t.Errorf("a contact in its site window is not counted: Len %d Position %d Oldest %s", h.q.Len(), h.q.Position(0), rel(h.q.OldestArrival()))
	}
	// An east agent, idle for less time than west1, may take it.
	h.siteAgent("east1", "east", at(0))
	if !h.q.CanServe("east1", c, at(10)) {
		t.Errorf("CanServe(east1, c) false in c's site window")
	}
	if got := h.best("east1", at(10)); got != "c" {
		t.Errorf("BestContact(east1) = %q; want c", got)
	}
	if got := h.next(at(10)); got != "c>east1" {
		t.Errorf("NextMatch %q; want c>east1 (west1 has waited longer but is of another site)", got)
	}
}

// At the window end the contact widens to any eligible agent and keeps its
// place ahead of a younger contact.
func TestSite_WidensAtTheWindowEndKeepingItsPlace(t *testing.T) {
	h := newHarness(t, siteQueue())
	h.addW(Waiting{ContactID: "c", ArrivedAt: at(0), Channel: voice, Site: "east"}, nil, at(0))
	h.add("later", at(5), 0, voice, nil)
	h.addW(Waiting{ContactID: "c2", ArrivedAt: at(10), Channel: voice, Site: "east"}, nil, at(10))
	checkEntries(t, h.q)
	h.siteAgent("west1", "west", at(-100))
	h.siteAgent("west2", "west", at(-50))
	if got := h.next(at(19.9)); got != "later>west1" {
		t.Errorf("in c's window: %q; want later>west1", got)
	}
	if got := h.best("west2", at(19.9)); got != "later" {
		t.Errorf("BestContact(west2) in c's window = %q; want later", got)
	}
	if got := h.next(at(20)); got != "c>west1" {
		t.Errorf("at the window end: %q; want c>west1 (c arrived first)", got)
	}
	if got := h.best("west2", at(20)); got != "c" {
		t.Errorf("BestContact(west2) after the window = %q; want c", got)
	}
	w, ok := h.q.Waiting("c")
	if !ok || !h.q.CanServe("west2", w, at(20)) {
		t.Fatalf("CanServe(west2, c) false after the window")
	}
	if w.ArrivedAt != at(0) || w.Site != "east" {
		t.Errorf("c after widening: arrived %s site %q; want its arrival 0s and site kept", rel(w.ArrivedAt), w.Site)
	}
	// c left its site line, where c2 still waits, for the line of its base
	// class.
	checkEntries(t, h.q)
	if h.q.Len() != 3 || h.q.Position(0) != 3 || h.q.OldestArrival() != at(0) {
		t.Errorf("after widening: Len %d Position %d Oldest %s; want 3, 3, 0s", h.q.Len(), h.q.Position(0), rel(h.q.OldestArrival()))
	}
	if wake := h.q.NextWake(at(20)); wake != at(30) {
		t.Errorf("NextWake(20s) = %s; want c2's window end 30s", rel(wake))
	}
	if got := h.drain(at(20)); !slices.Equal(got, []string{"c>west1", "later>west2"}) {
		t.Errorf("drain %v; want c>west1 then later>west2", got)
	}
	checkEntries(t, h.q)
	h.siteAgent("west3", "west", at(0))
	if got := h.drain(at(30)); !slices.Equal(got, []string{"c2>west3"}) {
		t.Errorf("drain at 30s %v; want c2>west3", got)
	}
	if len(h.q.lines) != 0 || h.q.Len() != 0 {
		t.Errorf("%d lines, %d waiting after everyone was taken", len(h.q.lines), h.q.Len())
	}
}

// A contact that leaves in its site window, or after it widened, leaves
// nothing behind: no line, no wake-up, no count.
func TestSite_RemoveLeavesNothingBehind(t *testing.T) {
	h := newHarness(t, siteQueue())
	h.addW(Waiting{ContactID: "c", ArrivedAt: at(0), Channel: voice, Site: "east"}, nil, at(0))
	if _, ok := h.q.Remove("c"); !ok {
		t.Fatal("Remove(c) in its window failed")
	}
	if _, ok := h.q.Remove("c"); ok {
		t.Error("second Remove(c) succeeded")
	}
	if wake := h.q.NextWake(at(1)); wake != 0 {
		t.Errorf("NextWake %s after the only contact left; want none", rel(wake))
	}
	if len(h.q.siteExpiry) != 0 || len(h.q.lines) != 0 || h.q.Len() != 0 || h.q.OldestArrival() != 0 || h.q.Position(0) != 0 {
		t.Errorf("left behind: %d site windows, %d lines, Len %d, Oldest %s, Position %d",
			len(h.q.siteExpiry), len(h.q.lines), h.q.Len(), rel(h.q.OldestArrival()), h.q.Position(0))
	}
	h.siteAgent("west1", "west", at(-100))
	if got := h.next(at(30)); got != "" {
		t.Errorf("NextMatch %q after c left", got)
	}

	// Widened (NextMatch moves it to its base line), then gone.
	h.q.RemoveAgent("west1")
	h.addW(Waiting{ContactID: "d", ArrivedAt: at(40), Channel: voice, Site: "east"}, nil, at(40))
	if got := h.next(at(60)); got != "" {
		t.Fatalf("NextMatch %q with nobody free", got)
	}
	if len(h.q.siteExpiry) != 0 {
		t.Fatalf("d still in a site window after it closed")
	}
	if _, ok := h.q.Remove("d"); !ok {
		t.Fatal("Remove(d) after its window failed")
	}
	if len(h.q.lines) != 0 || h.q.Len() != 0 || len(h.q.waiting) != 0 {
		t.Errorf("left behind after a widened contact left: %d lines, Len %d", len(h.q.lines), h.q.Len())
	}
}

func TestSite_Unaffected(t *testing.T) {
	// A contact without a site goes to anyone.
	h := newHarness(t, siteQueue())
	h.siteAgent("west1", "west", at(-100))
	h.add("nosite", at(0), 0, voice, nil)
	if got := h.next(at(0)); got != "nosite>west1" {
		t.Errorf("contact without a site: %q; want nosite>west1", got)
	}
	if wake := h.q.NextWake(at(0)); wake != 0 {
		t.Errorf("NextWake %s for a contact without a site; want none", rel(wake))
	}
	// A contact whose window had passed when it was added (wait credit).
	h.q.Remove("nosite")
	h.addW(Waiting{ContactID: "credit", ArrivedAt: at(-30), Channel: voice, Site: "east"}, nil, at(0))
	if got := h.next(at(0)); got != "credit>west1" {
		t.Errorf("contact past its window at Add: %q; want credit>west1", got)
	}

	// A queue without a site window ignores sites.
	qc := siteQueue()
	qc.SitePreferenceWindow = nil
	h = newHarness(t, qc)
	h.siteAgent("west1", "west", at(-100))
	h.addW(Waiting{ContactID: "c", ArrivedAt: at(0), Channel: voice, Site: "east"}, nil, at(0))
	if got := h.next(at(0)); got != "c>west1" {
		t.Errorf("queue without a window: %q; want c>west1", got)
	}
	if wake := h.q.NextWake(at(0)); wake != 0 {
		t.Errorf("NextWake %s in a queue without a window; want none", rel(wake))
	}
	if len(h.q.classes) != 1 {
		t.Errorf("classes %v; a queue without a window makes no site class", h.q.classes)
	}
}

// A contact put back in line (requeue after a rejected offer, rebuild after
// failover) gets only what is left of its window: it counts from arrival.
func TestSite_RequeuedContactKeepsItsWindowEnd(t *testing.T) {
	h := newHarness(t, siteQueue())
	h.siteAgent("west1", "west", at(-100))
	h.addW(Waiting{ContactID: "c", ArrivedAt: at(0), Channel: voice, Site: "east"}, nil, at(15))
	if got := h.next(at(15)); got != "" {
		t.Errorf("requeued at 15s: %q; its window runs to 20s", got)
	}
	if wake := h.q.NextWake(at(15)); wake != at(20) {
		t.Errorf("NextWake(15s) = %s; want 20s", rel(wake))
	}
	if got := h.next(at(20)); got != "c>west1" {
		t.Errorf("at 20s: %q; want c>west1", got)
	}
}

// The site requirement is one of the contact's requirements: its other
// requirements still hold in the window and after it.
func TestSite_WithOtherRequirements(t *testing.T) {
	h := newHarness(t, siteQueue())
	h.profiles["east-en"] = &pb.AgentProfile{Id: "east-en", Site: "east", Skills: skills("sales", 1, "language:en", 1)}
	h.profiles["east-fr"] = &pb.AgentProfile{Id: "east-fr", Site: "east", Skills: skills("sales", 1, "language:fr", 1)}
	h.profiles["west-fr"] = &pb.AgentProfile{Id: "west-fr", Site: "west", Skills: skills("sales", 1, "language:fr", 1)}
	h.agent("west-fr", nil, at(-300), free(voice, 1))
	h.agent("east-en", nil, at(-200), free(voice, 1))
	h.addW(Waiting{ContactID: "c", ArrivedAt: at(0), Channel: voice, Site: "east"}, lang("fr"), at(0))
	if got := h.next(at(0)); got != "" {
		t.Errorf("in the window: %q; only an east French speaker may take c", got)
	}
	h.agent("east-fr", nil, at(-100), free(voice, 1))
	if got := h.next(at(0)); got != "c>east-fr" {
		t.Errorf("in the window: %q; want c>east-fr", got)
	}
	h.q.RemoveAgent("east-fr")
	if got := h.next(at(20)); got != "c>west-fr" {
		t.Errorf("after the window: %q; want c>west-fr (east-en does not speak French)", got)
	}
}

// In the slow class (past 63 requirement sets) the site requirement is
// checked agent by agent, with the same answers, whether the contact's
// requirements without the site have a class of their own or not.
func TestSite_SlowClass(t *testing.T) {
	h := newHarness(t, siteQueue())
	h.add("early-fr", at(-1000), 0, email, lang("fr")) // French has a class
	for i := range slowClass - 2 {
		h.add(fmt.Sprint("filler", i), at(-1000), 0, email, routing.Requirements{{Skill: fmt.Sprint("rare-", i), Level: 1}})
	}
	for id, p := range map[string]*pb.AgentProfile{
		"east-en": {Site: "east", Skills: skills("sales", 1, "language:en", 1)},
		"west-fr": {Site: "west", Skills: skills("sales", 1, "language:fr", 1)},
		"east-fr": {Site: "east", Skills: skills("sales", 1, "language:fr", 1)},
	} {
		p.Id = id
		h.profiles[id] = p
	}
	h.agent("east-en", nil, at(-300), free(voice, 1))
	h.agent("west-fr", nil, at(-200), free(voice, 1))
	c := h.addW(Waiting{ContactID: "c", ArrivedAt: at(0), Channel: voice, Site: "east"}, lang("fr"), at(0))
	if c.class != slowClass || c.baseClass == slowClass {
		t.Fatalf("c in class %d, %d without its site; want the slow class, and a class of its own without the site", c.class, c.baseClass)
	}
	if got := h.next(at(10)); got != "" {
		t.Errorf("in the window: %q; only an east French speaker may take c", got)
	}
	for _, a := range []string{"east-en", "west-fr"} {
		if h.q.CanServe(a, c, at(10)) || h.best(a, at(10)) != "" {
			t.Errorf("%s may serve c in its window", a)
		}
	}
	h.agent("east-fr", nil, at(-100), free(voice, 1))
	if got := h.best("east-fr", at(10)); got != "c" {
		t.Errorf("BestContact(east-fr) = %q; want c", got)
	}
	if got := h.next(at(10)); got != "c>east-fr" {
		t.Errorf("in the window: %q; want c>east-fr", got)
	}
	h.q.RemoveAgent("east-fr")
	if got := h.next(at(20)); got != "c>west-fr" {
		t.Errorf("after the window: %q; want c>west-fr (east-en does not speak French)", got)
	}

	// Slow without its site as well.
	h = newHarness(t, siteQueue())
	for i := range slowClass - 1 {
		h.add(fmt.Sprint("filler", i), at(-1000), 0, email, routing.Requirements{{Skill: fmt.Sprint("rare-", i), Level: 1}})
	}
	for id, p := range map[string]*pb.AgentProfile{
		"east-en": {Site: "east", Skills: skills("sales", 1, "language:en", 1)},
		"west-de": {Site: "west", Skills: skills("sales", 1, "language:de", 1)},
		"east-de": {Site: "east", Skills: skills("sales", 1, "language:de", 1)},
	} {
		p.Id = id
		h.profiles[id] = p
	}
	h.agent("east-en", nil, at(-300), free(voice, 1))
	h.agent("west-de", nil, at(-200), free(voice, 1))
	d := h.addW(Waiting{ContactID: "d", ArrivedAt: at(0), Channel: voice, Site: "east"}, lang("de"), at(0))
	if d.class != slowClass || d.baseClass != slowClass {
		t.Fatalf("d in class %d, %d without its site; want the slow class for both", d.class, d.baseClass)
	}
	if got := h.next(at(10)); got != "" {
		t.Errorf("in the window: %q; only an east German speaker may take d", got)
	}
	h.agent("east-de", nil, at(-100), free(voice, 1))
	if got := h.next(at(10)); got != "d>east-de" {
		t.Errorf("in the window: %q; want d>east-de", got)
	}
	h.q.RemoveAgent("east-de")
	if got := h.next(at(20)); got != "d>west-de" {
		t.Errorf("after the window: %q; want d>west-de (east-en does not speak German)", got)
	}
}

// A contact in its preferred-agent window as well: the preferred agent
// must be of its site until the site window closes; either window may
// close first.
func TestSite_PreferredAgentWindowToo(t *testing.T) {
	// The site window closes first: the preferred west agent may take it
	// from then, and nobody else until the preferred window closes.
	h := newHarness(t, siteQueue())
	h.siteAgent("last", "west", at(-100))
	h.siteAgent("east1", "east", at(-200))
	c := h.addW(Waiting{ContactID: "c", ArrivedAt: at(0), Channel: voice, Site: "east", PreferredAgent: "last", PreferredUntil: at(30)}, nil, at(0))
	if got := h.next(at(10)); got != "" {
		t.Errorf("in both windows: %q; the preferred agent is of another site, anyone else is not preferred", got)
	}
	if h.q.CanServe("last", c, at(10)) || h.q.CanServe("east1", c, at(10)) {
		t.Errorf("CanServe in both windows")
	}
	if got := h.next(at(20)); got != "c>last" {
		t.Errorf("site window closed: %q; want c>last", got)
	}
	checkEntries(t, h.q)

	// The preferred window closes first: the contact goes to a line of its
	// site, and widens at the site window end.
	h = newHarness(t, siteQueue())
	h.siteAgent("west1", "west", at(-100))
	h.addW(Waiting{ContactID: "c", ArrivedAt: at(0), Channel: voice, Site: "east", PreferredAgent: "last", PreferredUntil: at(10)}, nil, at(0))
	if got := h.next(at(15)); got != "" {
		t.Errorf("preferred window closed, site window open: %q", got)
	}
	if wake := h.q.NextWake(at(15)); wake != at(20) {
		t.Errorf("NextWake(15s) = %s; want the site window end 20s", rel(wake))
	}
	if got := h.next(at(20)); got != "c>west1" {
		t.Errorf("both windows closed: %q; want c>west1", got)
	}
	checkEntries(t, h.q)
	h.q.Remove("c")
	if len(h.q.lines) != 0 || h.q.Len() != 0 || len(h.q.pref) != 0 {
		t.Errorf("left behind: %d lines, Len %d, pref %v", len(h.q.lines), h.q.Len(), h.q.pref)
	}
}
