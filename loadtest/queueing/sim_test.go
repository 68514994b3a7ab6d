package queueing

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// simContact is what the simulation records about one contact.
type simContact struct {
	queued    bool    // found every agent busy
	abandoned bool    // hung up before an agent took it
	wait      float64 // W: time queued, to answer or abandonment
	offered   float64 // V: time until an agent would have taken it
}

// simulateErlangA runs a contact-by-contact discrete-event simulation of
// the M/M/c+M queue, deterministic for a given seed, and returns the
// contacts in arrival order. It shares no code with the formulas: FIFO
// queue of contacts with individual patience deadlines, agents counted,
// exponential clocks drawn from math/rand/v2.
//
// Because service and arrival clocks are memoryless, the next service
// completion is redrawn at every event from the current number of busy
// agents. Abandonment is resolved lazily: a contact whose deadline has
// passed is discarded when it reaches the head of the queue at a service
// completion — which is also the moment an agent would have taken it, so
// its offered wait is observed exactly. After the last arrival the system
// drains; under FIFO no contact is affected by later arrivals, so every
// contact's record is the steady-state one apart from the warm-up.
func simulateErlangA(q ErlangA, arrivals int, seed uint64) []simContact {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	lambda, mu, theta := q.ArrivalRate, 1/q.HandleTime, 1/q.Patience
	contacts := make([]simContact, arrivals)
	arrivedAt := make([]float64, arrivals)
	deadline := make([]float64, arrivals)
	queue := make([]int, 0, 1024)
	head := 0
	busy, arrived := 0, 0
	now := 0.0
	nextArrival := r.ExpFloat64() / lambda
	for arrived < arrivals || busy > 0 {
		nextDeparture := math.Inf(1)
		if busy > 0 {
			nextDeparture = now + r.ExpFloat64()/(float64(busy)*mu)
		}
		if arrived < arrivals && nextArrival < nextDeparture {
			now = nextArrival
			i := arrived
			arrived++
			arrivedAt[i] = now
			if busy < q.Agents {
				busy++
			} else {
				contacts[i].queued = true
				deadline[i] = now + r.ExpFloat64()/theta
				queue = append(queue, i)
			}
			nextArrival = now + r.ExpFloat64()/lambda
			continue
		}
		now = nextDeparture
		busy--
		for head < len(queue) {
			i := queue[head]
			head++
			contacts[i].offered = now - arrivedAt[i]
			if deadline[i] <= now {
				contacts[i].abandoned = true
				contacts[i].wait = deadline[i] - arrivedAt[i]
				continue
			}
			contacts[i].wait = contacts[i].offered
			busy++
			break
		}
		if head > 4096 && head*2 > len(queue) {
			queue = append(queue[:0], queue[head:]...)
			head = 0
		}
	}
	return contacts
}

// TestErlangA_Simulation checks the formulas against the simulation for a
// critically loaded and an overloaded queue: P(wait), P(abandon), the three
// mean waits and, at three thresholds, the service level, the abandonment
// within the threshold and the offered-wait CDF. Each must fall in its
// 99.9% batch-means interval (20 batches, first 5% of contacts discarded as
// warm-up) widened by 1% + 0.001 for the start-up bias that remains. With
// 250,000 contacts the intervals are a few percent wide.
func TestErlangA_Simulation(t *testing.T) {
	const (
		arrivals = 250_000
		batches  = 20
		level    = 0.999
	)
	band := Band{Rel: 0.01, Abs: 0.001}
	for _, tc := range []struct {
		name string
		q    ErlangA
		seed uint64
	}{
		{"critical ρ=1", ErlangA{ArrivalRate: 5, HandleTime: 1, Patience: 2, Agents: 5}, 1},
		{"overload ρ=1.5", ErlangA{ArrivalRate: 30, HandleTime: 1, Patience: 1, Agents: 20}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.q.Predict()
			if err != nil {
				t.Fatal(err)
			}
			contacts := simulateErlangA(tc.q, arrivals, tc.seed)[arrivals/20:]
			series := func(f func(simContact) float64) []float64 {
				out := make([]float64, 0, len(contacts))
				for _, c := range contacts {
					out = append(out, f(c))
				}
				return out
			}
			indicator := func(b bool) float64 {
				if b {
					return 1
				}
				return 0
			}
			type measure struct {
				name      string
				predicted float64
				values    []float64
			}
			measures := []measure{
				{"P(wait)", p.PWait, series(func(c simContact) float64 { return indicator(c.queued) })},
				{"P(abandon)", p.PAbandon, series(func(c simContact) float64 { return indicator(c.abandoned) })},
				{"mean wait", p.MeanWait, series(func(c simContact) float64 { return c.wait })},
			}
			var servedWaits, abandonedWaits []float64
			for _, c := range contacts {
				if c.abandoned {
					abandonedWaits = append(abandonedWaits, c.wait)
				} else {
					servedWaits = append(servedWaits, c.wait)
				}
			}
			measures = append(measures,
				measure{"mean wait answered", p.MeanWaitServed, servedWaits},
				measure{"mean wait abandoned", p.MeanWaitAbandoned, abandonedWaits})
			for _, x := range []float64{0.1, 0.5, 2} {
				measures = append(measures,
					measure{fmt.Sprintf("SL(%v s)", x), p.ServiceLevel(x),
						series(func(c simContact) float64 { return indicator(!c.abandoned && c.wait <= x) })},
					measure{fmt.Sprintf("P(abandon within %v s)", x), p.PAbandonWithin(x),
						series(func(c simContact) float64 { return indicator(c.abandoned && c.wait <= x) })},
					measure{fmt.Sprintf("offered-wait CDF(%v s)", x), p.OfferedWaitCDF(x),
						series(func(c simContact) float64 { return indicator(c.offered <= x) })})
			}
			for _, m := range measures {
				iv, err := BatchMeans(m.values, batches, level)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%-28s predicted %.5f measured %v", m.name, m.predicted, iv)
				if err := band.Check(m.name, m.predicted, iv); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
