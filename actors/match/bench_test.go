package match

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// The decision-cost benchmarks: what one routing decision costs the queue
// actor with 1k, 100k and 1M contacts waiting and 100k agents known to the
// queue. The index promises a cost that does not grow with the number of
// waiting contacts; compare waiting=1000000 with waiting=1000.
//
// The mix: voice and chat; priorities 0-2 with ageing; four language
// classes; one widening step (sales 2 relaxed to 1 after 30s), so a fifth
// of the agents qualify only from step 1.

const (
	benchAgents = 100_000
	// benchTick is the simulated time between two decisions; contacts in
	// the fixture arrived benchTick apart, so the heads of the lines have
	// waited as long as they would have in a steady state.
	benchTick = 100 * time.Millisecond
)

var (
	benchWaiting   = []int{1_000, 100_000, 1_000_000}
	benchLanguages = []string{"en", "es", "fr", "de"}
	benchChannels  = []pb.Channel{voice, chat}
)

func benchConfig(tb testing.TB) (*routing.Config, *routing.Queue) {
	cfg, err := routing.Compile(&pb.RoutingConfig{Queues: []*pb.QueueConfig{{
		Name:     "bench",
		Skills:   []*pb.SkillRequirement{req("sales", 2)},
		Channels: benchChannels,
		Ageing:   &pb.PriorityAgeing{Every: dur(time.Minute), MaxBoost: 3},
		Widening: []*pb.WideningStep{{After: dur(30 * time.Second), Skills: []*pb.SkillRequirement{req("sales", 1)}}},
	}}})
	if err != nil {
		tb.Fatal(err)
	}
	q, _ := cfg.Queue("bench")
	return cfg, q
}

// benchFixture is one queue's index as the queue actor holds it, and the
// bookkeeping the actor does around it.
type benchFixture struct {
	q        *Queue
	now      int64
	profiles []*pb.AgentProfile
	ids      []string
	versions []uint64
	extras   map[string]routing.Requirements
	seq      uint64 // holds
	contacts uint64
}

// newBenchFixture builds an index with waiting contacts spread over lines
// of the given languages and 100k agents, all busy except the first
// freeAgents, which speak only freeLang and are free on voice and chat.
func newBenchFixture(tb testing.TB, waiting int, langs []string, freeAgents int, freeLang string) *benchFixture {
	cfg, qc := benchConfig(tb)
	r := rand.New(rand.NewPCG(1, 2))
	f := &benchFixture{
		q:        New(cfg, qc),
		now:      t0,
		profiles: make([]*pb.AgentProfile, benchAgents),
		ids:      make([]string, benchAgents),
		versions: make([]uint64, benchAgents),
		extras:   make(map[string]routing.Requirements),
	}
	for _, l := range benchLanguages {
		f.extras[l] = lang(l)
	}
	for i := range benchAgents {
		id := fmt.Sprintf("agent-%06d", i)
		sales := uint32(2 + r.IntN(4))
		if r.IntN(5) == 0 {
			sales = 1 // from the widening step only
		}
		sk := map[string]uint32{"sales": sales}
		if i < freeAgents {
			sk[routing.LanguageSkill(freeLang)] = 1
		} else {
			sk[routing.LanguageSkill("en")] = 1
			sk[routing.LanguageSkill(benchLanguages[1+r.IntN(len(benchLanguages)-1)])] = 1 + uint32(r.IntN(5))
		}
		f.ids[i] = id
		f.profiles[i] = &pb.AgentProfile{Id: id, Skills: sk}
		var fr [shard.NumChannels]uint32
		if i < freeAgents {
			fr = free(voice, 1, chat, 3)
		}
		f.status(i, fr, f.now-int64(r.IntN(600))*int64(time.Second))
	}
	// Contacts arrived benchTick apart up to now, round robin over the
	// lines, so every line holds about the same number.
	start := f.now - int64(waiting)*int64(benchTick)
	n := 0
	for n < waiting {
		for _, ch := range benchChannels {
			for prio := range int32(3) {
				for _, l := range langs {
					if n == waiting {
						break
					}
					f.add(start+int64(n)*int64(benchTick), prio, ch, l)
					n++
				}
			}
		}
	}
	if f.q.Len() != waiting || f.q.Agents() != benchAgents {
		tb.Fatalf("fixture: %d waiting, %d agents", f.q.Len(), f.q.Agents())
	}
	return f
}

func (f *benchFixture) status(i int, fr [shard.NumChannels]uint32, idle int64) {
	f.versions[i]++
	f.q.SetAgent(Status{ID: f.ids[i], Profile: f.profiles[i], Free: fr, IdleSince: idle, Version: f.versions[i], SeenSeq: f.seq}, f.now)
}

func (f *benchFixture) add(arrived int64, prio int32, ch pb.Channel, l string) {
	f.contacts++
	f.q.Add(Waiting{
		ContactID: "contact-" + strconv.FormatUint(f.contacts, 10),
		Seq:       f.contacts,
		ArrivedAt: arrived,
		Priority:  prio,
		Channel:   ch,
	}, f.extras[l], f.now)
}

// BenchmarkMatchDecision: an agent becomes free while contacts wait — the
// overload case, where every other agent is busy. One op is the decision
// as the queue actor takes it: the agent's status (free), BestContact, the
// contact out of line and the hold counted, then the agent's next status
// (busy, hold answered) and a new arrival, so the waiting count stays put.
func BenchmarkMatchDecision(b *testing.B) {
	for _, waiting := range benchWaiting {
		b.Run(fmt.Sprintf("waiting=%d", waiting), func(b *testing.B) {
			f := newBenchFixture(b, waiting, benchLanguages, 0, "")
			langOf := make(map[int]string)
			for c, reqs := range f.q.classes {
				for _, l := range benchLanguages {
					if reqs.Key() == f.extras[l].Key() {
						langOf[c] = l
					}
				}
			}
			runtime.GC()
			b.ReportAllocs()
			i, misses := 0, 0
			for b.Loop() {
				f.now += int64(benchTick)
				a := i % benchAgents
				i++
				f.status(a, free(voice, 1, chat, 3), f.now)
				w, ok := f.q.BestContact(f.ids[a], f.now)
				if ok {
					f.q.Remove(w.ContactID)
					f.seq++
					f.q.Taken(f.ids[a], w.Channel, f.seq, f.now)
					f.add(f.now, w.Priority, w.Channel, langOf[w.class])
				} else {
					misses++
				}
				f.status(a, free(), f.now)
			}
			if f.q.Len() != waiting {
				b.Fatalf("%d waiting after the run; want %d", f.q.Len(), waiting)
			}
			if misses*10 > i {
				b.Fatalf("%d of %d decisions found no contact", misses, i)
			}
		})
	}
}

// BenchmarkNextMatch: a contact arrives while agents are free — 1,000 of
// the 100k agents, who speak English only, while every waiting contact
// asks for another language and so stays waiting. One op: Add, NextMatch,
// the contact out of line and the hold counted, then the agent's next
// status (free again, hold answered).
func BenchmarkNextMatch(b *testing.B) {
	const freeAgents = 1000
	for _, waiting := range benchWaiting {
		b.Run(fmt.Sprintf("waiting=%d", waiting), func(b *testing.B) {
			f := newBenchFixture(b, waiting, benchLanguages[1:], freeAgents, "en")
			if _, _, ok := f.q.NextMatch(f.now); ok {
				b.Fatal("the fixture has a match before any arrival")
			}
			// The English class exists from earlier arrivals: creating a
			// class visits every agent once, which is not a decision.
			f.add(f.now, 0, voice, "en")
			f.q.Remove("contact-" + strconv.FormatUint(f.contacts, 10))
			index := make(map[string]int, freeAgents)
			for i := range freeAgents {
				index[f.ids[i]] = i
			}
			runtime.GC()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				f.now += int64(benchTick)
				f.add(f.now, int32(n%3), benchChannels[n%2], "en")
				n++
				w, a, ok := f.q.NextMatch(f.now)
				if !ok {
					b.Fatal("no match for an English contact with English agents free")
				}
				f.q.Remove(w.ContactID)
				f.seq++
				f.q.Taken(a.ID, w.Channel, f.seq, f.now)
				f.status(index[a.ID], free(voice, 1, chat, 3), f.now)
			}
			if f.q.Len() != waiting {
				b.Fatalf("%d waiting after the run; want %d", f.q.Len(), waiting)
			}
		})
	}
}

// BenchmarkMemory reports the heap the index holds per waiting contact and
// per known agent, with 1M contacts waiting and 100k agents known (busy).
// Contact ids, agent profiles and requirement sets are made before the
// first measurement: the shard's records own them, the index only points
// at them.
func BenchmarkMemory(b *testing.B) {
	const waiting = 1_000_000
	cfg, qc := benchConfig(b)
	profiles := make([]*pb.AgentProfile, benchAgents)
	for i := range profiles {
		profiles[i] = &pb.AgentProfile{Id: fmt.Sprintf("agent-%06d", i), Skills: map[string]uint32{
			"sales": uint32(1 + i%5), routing.LanguageSkill("en"): 1, routing.LanguageSkill(benchLanguages[1+i%3]): 2,
		}}
	}
	ids := make([]string, waiting)
	for i := range ids {
		ids[i] = "contact-" + strconv.Itoa(i)
	}
	extras := make([]routing.Requirements, len(benchLanguages))
	for i, l := range benchLanguages {
		extras[i] = lang(l)
	}

	base := heapInUse()
	q := New(cfg, qc)
	for i, p := range profiles {
		q.SetAgent(Status{ID: p.GetId(), Profile: p, Version: 1, IdleSince: t0 - int64(i)}, t0)
	}
	withAgents := heapInUse()
	for i, id := range ids {
		q.Add(Waiting{
			ContactID: id,
			Seq:       uint64(i + 1),
			ArrivedAt: t0 + int64(i)*int64(time.Millisecond),
			Priority:  int32(i % 3),
			Channel:   benchChannels[i%2],
		}, extras[i%len(extras)], t0)
	}
	withContacts := heapInUse()
	if q.Len() != waiting || q.Agents() != benchAgents {
		b.Fatalf("%d waiting, %d agents", q.Len(), q.Agents())
	}
	runtime.KeepAlive(q)
	runtime.KeepAlive(profiles)
	runtime.KeepAlive(ids)
	// Measured once, whatever -benchtime asks for.
	for b.Loop() {
	}
	b.ReportMetric(float64(withAgents-base)/benchAgents, "B/agent")
	b.ReportMetric(float64(withContacts-withAgents)/waiting, "B/contact")
	b.ReportMetric(0, "ns/op")
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
