package queueing

import "testing"

// A large contact centre at critical load: 5,000 agents, 1,000 contacts/s,
// 5 s handle time (A = 5,000 Erlangs), one minute of mean patience.
var benchCentre = ErlangA{ArrivalRate: 1000, HandleTime: 5, Patience: 60, Agents: 5000}

func BenchmarkErlangA(b *testing.B) {
	for b.Loop() {
		if _, err := benchCentre.Predict(); err != nil {
			b.Fatal(err)
		}
	}
}

// 25% overload: the queue settles near 12,000 callers, so the chain is long.
func BenchmarkErlangA_Overload(b *testing.B) {
	q := ErlangA{ArrivalRate: 1000, HandleTime: 5, Patience: 60, Agents: 4000}
	for b.Loop() {
		if _, err := q.Predict(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkErlangC(b *testing.B) {
	q := ErlangC{ArrivalRate: 1960, HandleTime: 5, Agents: 10000}
	for b.Loop() {
		if _, err := q.Predict(); err != nil {
			b.Fatal(err)
		}
	}
}

// One point of a theory-vs-measurement plot.
func BenchmarkErlangA_OfferedWaitCDF(b *testing.B) {
	p, err := benchCentre.Predict()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		p.OfferedWaitCDF(0.5)
	}
}

func BenchmarkErlangA_ServiceLevel_Overload(b *testing.B) {
	p, err := ErlangA{ArrivalRate: 1000, HandleTime: 5, Patience: 60, Agents: 4000}.Predict()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		p.ServiceLevel(20)
	}
}
