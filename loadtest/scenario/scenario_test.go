package scenario

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"encoding/json"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestShippedScenariosValidate(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios found: %v", err)
	}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		conf, err := s.NodeConfig(NodeListen{NATSListen: "127.0.0.1:1", HTTPListen: "127.0.0.1:2"})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var file struct {
			Routing json.RawMessage `json:"routing"`
		}
		if err := json.Unmarshal(conf, &file); err != nil {
			t.Fatalf("%s: node config is not JSON: %v", f, err)
		}
		rc := &pb.RoutingConfig{}
		if err := protojson.Unmarshal(file.Routing, rc); err != nil {
			t.Fatalf("%s: routing section does not read back: %v", f, err)
		}
		if len(rc.GetAgents()) != s.TotalAgents() || len(rc.GetQueues()) != len(s.Queues) {
			t.Errorf("%s: %d agents and %d queues in the config, want %d and %d", f, len(rc.GetAgents()), len(rc.GetQueues()), s.TotalAgents(), len(s.Queues))
		}
	}
}

func TestBadScenarioIsRefusedWithEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`{
		"name": "bad", "duration": "60s",
		"queues": [{"name": "q", "channels": ["fax"]}],
		"agents": [{"count": 0, "id_prefix": "a", "handle": {"dist": "gamma", "mean": "1s"}}],
		"arrivals": [{"queue": "nope", "profile": "steady", "rate": -1}]
	}`))
	if !errors.Is(err, ErrScenario) {
		t.Fatalf("got %v, want ErrScenario", err)
	}
	for _, want := range []string{`queues[0].channels[0]: "fax"`, "agents[0].count: 0", `agents[0].handle.dist: "gamma"`, `arrivals[0].queue: "nope"`, "arrivals[0].rate: -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if _, err := Parse([]byte(`{"name": "x", "colour": "red"}`)); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown field: got %v", err)
	}
}

func TestTimeScaleDividesDurations(t *testing.T) {
	s, err := Load("../scenarios/smoke.json")
	if err != nil {
		t.Fatal(err)
	}
	rc := s.Routing()
	if got, want := rc.GetQueues()[0].GetOfferTimeout().AsDuration(), s.Real(s.Queues[0].OfferTimeout.D()); got != want || got != s.Queues[0].OfferTimeout.D()/10 {
		t.Errorf("offer timeout %v in the node config, want %v", got, want)
	}
}

func TestSetDuration(t *testing.T) {
	s, err := Parse([]byte(`{"name": "d", "duration": "60s",
		"queues": [{"name": "q", "skills": {"s": 1}, "channels": ["voice"]}],
		"agents": [{"count": 1, "id_prefix": "a-", "skills": {"s": 1}, "capacity": {"voice": 1},
			"think": {"dist": "fixed", "mean": "0s"}, "handle": {"dist": "fixed", "mean": "1s"}}],
		"arrivals": [
			{"queue": "q", "profile": "steady", "rate": 1},
			{"queue": "q", "profile": "steady", "rate": 1, "start": "10s"},
			{"queue": "q", "profile": "steady", "rate": 1, "start": "5s", "duration": "10s"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDuration(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{30 * time.Second, 20 * time.Second, 10 * time.Second}
	for i, a := range s.Arrivals {
		if a.Duration.D() != want[i] {
			t.Errorf("stream %d runs %v, want %v", i, a.Duration.D(), want[i])
		}
	}
	if s.Duration.D() != 30*time.Second {
		t.Errorf("duration %v, want 30s", s.Duration.D())
	}
	// The third stream ends at 15 s: a shorter period cannot hold it.
	err = s.SetDuration(12 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "arrivals[2]") {
		t.Errorf("12s: got %v, want the third stream refused", err)
	}
	if err := s.SetDuration(-time.Second); err == nil || !strings.Contains(err.Error(), "duration") {
		t.Errorf("negative: got %v, want the duration refused", err)
	}
}
