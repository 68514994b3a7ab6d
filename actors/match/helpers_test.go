package match

import (
	"fmt"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	voice    = pb.Channel_CHANNEL_VOICE
	chat     = pb.Channel_CHANNEL_CHAT
	email    = pb.Channel_CHANNEL_EMAIL
	callback = pb.Channel_CHANNEL_CALLBACK
)

// t0 is an arbitrary start of a working day; at(n) is n seconds later.
var t0 = time.Date(2026, time.November, 2, 9, 0, 0, 0, time.UTC).UnixNano()

func at(n float64) int64 { return t0 + int64(n*float64(time.Second)) }

// rel shows a time as seconds after t0 ("0" for no time).
func rel(ns int64) string {
	if ns == 0 {
		return "0 (none)"
	}
	return fmt.Sprintf("%gs", float64(ns-t0)/1e9)
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func req(skill string, level uint32) *pb.SkillRequirement {
	return &pb.SkillRequirement{Skill: skill, MinLevel: level}
}

// lang is the extra requirement of a contact asking for language l.
func lang(l string) routing.Requirements {
	return routing.Requirements{{Skill: routing.LanguageSkill(l), Level: 1}}
}

// skills builds an agent's skill map from name, level pairs.
func skills(kv ...any) map[string]uint32 {
	m := make(map[string]uint32)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = uint32(kv[i+1].(int))
	}
	return m
}

// free builds per-channel free slots from channel, count pairs.
func free(kv ...any) [shard.NumChannels]uint32 {
	var f [shard.NumChannels]uint32
	for i := 0; i < len(kv); i += 2 {
		f[kv[i].(pb.Channel)] = uint32(kv[i+1].(int))
	}
	return f
}

// harness is one queue's index with the configuration it was built from,
// and the bookkeeping a queue actor would do around it (status versions,
// hold sequence numbers).
type harness struct {
	t        testing.TB
	cfg      *routing.Config
	q        *Queue
	profiles map[string]*pb.AgentProfile
	versions map[string]uint64
	seq      uint64
	contacts uint64
}

// newHarness compiles the queues (the first is the one under test) and
// returns an empty index for it.
func newHarness(t testing.TB, qcs ...*pb.QueueConfig) *harness {
	t.Helper()
	cfg, err := routing.Compile(&pb.RoutingConfig{Queues: qcs})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	q, _ := cfg.Queue(qcs[0].GetName())
	return &harness{
		t:        t,
		cfg:      cfg,
		q:        New(cfg, q),
		profiles: make(map[string]*pb.AgentProfile),
		versions: make(map[string]uint64),
	}
}

// agent reports agent id free as given, with skills fixed at its first
// report (later reports keep the same profile pointer, as the engine does).
func (h *harness) agent(id string, sk map[string]uint32, idleSince int64, f [shard.NumChannels]uint32) bool {
	h.t.Helper()
	p, ok := h.profiles[id]
	if !ok {
		p = &pb.AgentProfile{Id: id, Skills: sk}
		h.profiles[id] = p
	}
	return h.status(Status{ID: id, Profile: p, Free: f, IdleSince: idleSince}, t0)
}

// status applies st with the next version of its agent and every hold
// answered unless st says otherwise.
func (h *harness) status(st Status, now int64) bool {
	h.versions[st.ID]++
	if st.Version == 0 {
		st.Version = h.versions[st.ID]
	}
	if st.SeenSeq == 0 {
		st.SeenSeq = h.seq
	}
	if st.Profile == nil {
		st.Profile = h.profiles[st.ID]
	}
	return h.q.SetAgent(st, now)
}

// add puts contact id in line: arrived at arr with priority prio on ch.
func (h *harness) add(id string, arr int64, prio int32, ch pb.Channel, extras routing.Requirements) *Waiting {
	return h.addW(Waiting{ContactID: id, ArrivedAt: arr, Priority: prio, Channel: ch}, extras, arr)
}

func (h *harness) addW(w Waiting, extras routing.Requirements, now int64) *Waiting {
	h.t.Helper()
	h.contacts++
	if w.Seq == 0 {
		w.Seq = h.contacts
	}
	got := h.q.Add(w, extras, now)
	if got == nil {
		h.t.Fatalf("Add(%s) refused", w.ContactID)
	}
	return got
}

// take does what the queue actor does with a match: out of line, and a
// hold counted against the agent. It returns the hold's sequence number.
func (h *harness) take(w *Waiting, agent string, now int64) uint64 {
	h.t.Helper()
	if _, ok := h.q.Remove(w.ContactID); !ok {
		h.t.Fatalf("Remove(%s): not waiting", w.ContactID)
	}
	h.seq++
	h.q.Taken(agent, w.Channel, h.seq, now)
	return h.seq
}

// next returns NextMatch at now as "contact>agent", or "" for none.
func (h *harness) next(now int64) string {
	w, a, ok := h.q.NextMatch(now)
	if !ok {
		if w != nil || a != nil {
			h.t.Errorf("NextMatch reported no match but returned %v, %v", w, a)
		}
		return ""
	}
	return w.ContactID + ">" + a.ID
}

// drain matches until nothing more can be matched at now, taking each
// match, and lists them in order.
func (h *harness) drain(now int64) []string {
	var out []string
	for {
		w, a, ok := h.q.NextMatch(now)
		if !ok {
			return out
		}
		out = append(out, w.ContactID+">"+a.ID)
		h.take(w, a.ID, now)
		if len(out) > 10000 {
			h.t.Fatalf("drain does not end")
		}
	}
}

// best returns BestContact for agent at now, or "".
func (h *harness) best(agent string, now int64) string {
	w, ok := h.q.BestContact(agent, now)
	if !ok {
		return ""
	}
	return w.ContactID
}

// checkEntries checks that every waiting contact of q has exactly one live
// entry — in the line it names, or in its preferred agent's list — and that
// nothing else is live.
func checkEntries(t testing.TB, q *Queue) {
	t.Helper()
	seen := make(map[string]int)
	for _, l := range q.lines {
		l.each(func(w *Waiting) bool {
			seen[w.ContactID]++
			if cur := q.waiting[w.ContactID]; cur != w || w.where != l {
				t.Errorf("live entry of %s in line %v is not its current entry", w.ContactID, l.key)
			}
			return true
		})
	}
	for agent, list := range q.pref {
		for _, w := range list {
			seen[w.ContactID]++
			if q.waiting[w.ContactID] != w || w.where != nil {
				t.Errorf("entry of %s in %s's preferred list is not its current entry", w.ContactID, agent)
			}
		}
	}
	for id := range q.waiting {
		if seen[id] != 1 {
			t.Errorf("contact %s has %d live entries; want 1", id, seen[id])
		}
	}
	if len(seen) != len(q.waiting) {
		t.Errorf("%d contacts have live entries; %d are waiting", len(seen), len(q.waiting))
	}
}

// salesQueue is a queue that asks for sales 3 and relaxes it to 1 after
// 30 seconds.
func salesQueue(strategy pb.Strategy) *pb.QueueConfig {
	return &pb.QueueConfig{
		Name:     "sales",
		Skills:   []*pb.SkillRequirement{req("sales", 3)},
		Strategy: strategy,
		Widening: []*pb.WideningStep{{After: dur(30 * time.Second), Skills: []*pb.SkillRequirement{req("sales", 1)}}},
	}
}
