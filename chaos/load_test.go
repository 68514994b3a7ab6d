package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/client"
	"github.com/tsunagu/tsunagu/gateway"
	"github.com/tsunagu/tsunagu/loadtest/check"
	"github.com/tsunagu/tsunagu/loadtest/scenario"
	lt "github.com/tsunagu/tsunagu/loadtest/sim"
)

// drillScenario: the load test's cluster figure scaled down: four queues
// sharing 400 agents with one-second calls, 200 arrivals/s for 12 s.
const drillScenario = `{
  "name": "kill9-drill", "seed": 7, "time_scale": 1, "duration": "12s", "drain": "20s",
  "queues": [
    {"name": "q1", "skills": {"s": 1}, "channels": ["voice"], "offer_timeout": "10s"},
    {"name": "q2", "skills": {"s": 1}, "channels": ["voice"], "offer_timeout": "10s"},
    {"name": "q3", "skills": {"s": 1}, "channels": ["voice"], "offer_timeout": "10s"},
    {"name": "q4", "skills": {"s": 1}, "channels": ["voice"], "offer_timeout": "10s"}
  ],
  "agents": [{"count": 400, "id_prefix": "d-", "skills": {"s": 1}, "capacity": {"voice": 1},
    "think": {"dist": "fixed", "mean": "0s"}, "handle": {"dist": "exponential", "mean": "1s"},
    "wrap_up": {"dist": "fixed", "mean": "0s"}}],
  "arrivals": [
    {"queue": "q1", "profile": "steady", "rate": 50, "patience": {"dist": "never"}},
    {"queue": "q2", "profile": "steady", "rate": 50, "patience": {"dist": "never"}},
    {"queue": "q3", "profile": "steady", "rate": 50, "patience": {"dist": "never"}},
    {"queue": "q4", "profile": "steady", "rate": 50, "patience": {"dist": "never"}}
  ],
  "checks": {"idle_bound": "500ms", "fifo_grace": "100ms"}
}`

// The kill -9 drill under load: the owner of a queue's shard is killed
// outright while contacts arrive, are held, offered, connected and ended at
// a steady rate, and started again from its disk. Every arrival is
// accepted (carriers retry what the contract says to retry), every accepted
// contact ends exactly once, none is held for two agents, no agent holds
// more than its capacity, and the event stream shows all of it — the
// events of the killed owner's last commits included. Order and idle
// agents are reported, not asserted: a failover delays whatever its shard
// was doing.
func TestKill9UnderLoadLosesNothing(t *testing.T) {
	sc, err := scenario.Parse([]byte(drillScenario))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := sc.NodeConfig(scenario.NodeListen{})
	if err != nil {
		t.Fatal(err)
	}
	model, err := sc.Compiled()
	if err != nil {
		t.Fatal(err)
	}
	pc := startProcClusterWith(t, 3, conf)
	// The load test talks to another member's NATS server: killing the
	// server its observer hears the stream through would lose batches in
	// flight, which NATS does not redeliver.
	shard := actors.ShardOf("q:q1", shards)
	victim := pc.waitOwned(10 * time.Second)[shard]
	via := pc.procs[0]
	if via == victim {
		via = pc.procs[1]
	}
	url := "nats://" + via.natsAddr
	type outcome struct {
		res *lt.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := lt.Run(context.Background(), lt.Config{Scenario: sc, NATSURL: url, RunID: "drill", SameClock: true})
		done <- outcome{res, err}
	}()

	// Strike once the run is well under way: 400 contacts in q1.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	status := client.New(nc, gateway.Protobuf)
	pc.waitFor("400 arrivals in q1", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := status.QueueStatus(ctx, "q1")
		return err == nil && r.GetArrived() >= 400
	})
	t.Logf("killing %s, owner of q1's shard %d at the start (now %s); the load test is on %s", victim.id, shard, pc.waitOwned(10 * time.Second)[shard].id, via.id)
	pc.kill9(victim)
	pc.waitOwned(30*time.Second, victim)
	pc.start(victim)
	pc.waitHealthy(victim, 60*time.Second)

	out := <-done
	if out.err != nil {
		t.Fatalf("load test run: %v", out.err)
	}
	failed := 0
	for _, c := range out.res.Contacts {
		if c.Status != lt.Queued {
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d arrivals were not accepted (request errors: %v)", failed, len(out.res.Contacts), out.res.Errors)
	}
	for _, r := range check.All(&out.res.Trace, check.Model{Routing: model}, sc.Checks.IdleBound.D(), sc.Checks.FIFOGrace.D()) {
		switch {
		case r.OK():
			t.Logf("%s: %d checked, ok", r.Name, r.Checked)
		case r.Name == "fifo" || r.Name == "no-idle-agent":
			t.Logf("%s: %d of %d around the failover: %v", r.Name, r.Count, r.Checked, head(r.Details, 3))
		default:
			t.Errorf("%s: %d violations of %d: %v", r.Name, r.Count, r.Checked, head(r.Details, 5))
		}
	}
}

func head(s []string, n int) []string { return s[:min(n, len(s))] }
