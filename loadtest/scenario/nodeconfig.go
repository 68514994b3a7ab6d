package scenario

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Routing is the node's routing configuration for the scenario, with every
// duration already in real time. Ageing and preferred-agent routing stay
// off, so a queue's order is priority then arrival, which the FIFO check
// relies on.
func (s *Scenario) Routing() *pb.RoutingConfig {
	d := func(v time.Duration) *durationpb.Duration { return durationpb.New(s.Real(v)) }
	rc := &pb.RoutingConfig{}
	for _, q := range s.Queues {
		qc := &pb.QueueConfig{
			Name:         q.Name,
			Skills:       requirements(q.Skills),
			Strategy:     strategies[q.Strategy],
			OfferTimeout: d(q.OfferTimeout.D()),
			MissedOffer:  pb.MissedOfferAction_MISSED_OFFER_ACTION_NOT_READY,
			WrapUp:       d(s.WrapUpLimit(q)),
			ServiceLevel: &pb.ServiceLevel{Target: 0.8, Threshold: d(q.ServiceLevel.D())},
		}
		if h := s.meanHandle(q); h > 0 {
			qc.AverageHandleTime = d(h)
		}
		for _, c := range q.Channels {
			qc.Channels = append(qc.Channels, Channels[c])
		}
		for _, w := range q.Widening {
			qc.Widening = append(qc.Widening, &pb.WideningStep{
				After:          d(w.After.D()),
				Skills:         requirements(w.Skills),
				OverflowQueues: w.Overflow,
			})
		}
		rc.Queues = append(rc.Queues, qc)
	}
	for g, a := range s.Agents {
		var capacity []*pb.ChannelCapacity
		for _, c := range sortedKeys(a.Capacity) {
			capacity = append(capacity, &pb.ChannelCapacity{Channel: Channels[c], Slots: a.Capacity[c]})
		}
		for _, id := range s.AgentIDs(g) {
			rc.Agents = append(rc.Agents, &pb.AgentProfile{
				Id:       id,
				Site:     a.Site,
				Skills:   a.Skills,
				Capacity: capacity,
				Endpoint: "sip:" + id + "@loadtest.invalid",
			})
		}
	}
	return rc
}

// Compiled is the node's own reading of Routing, used by the checks to
// decide which agent may serve which contact.
func (s *Scenario) Compiled() (*routing.Config, error) {
	return routing.Compile(s.Routing())
}

// WrapUpLimit is queue q's wrap-up time box, scenario time.
func (s *Scenario) WrapUpLimit(q Queue) time.Duration {
	if q.WrapUpLimit != nil {
		return q.WrapUpLimit.D()
	}
	var longest time.Duration
	for _, a := range s.Agents {
		longest = max(longest, a.WrapUp.Mean.D())
	}
	return 3 * longest
}

// meanHandle is the mean handle time of the groups that meet q's base
// skills, weighted by head count; 0 if none.
func (s *Scenario) meanHandle(q Queue) time.Duration {
	var sum float64
	n := 0
	for _, a := range s.Agents {
		if meets(a.Skills, q.Skills) {
			sum += float64(a.Count) * float64(a.Handle.Mean)
			n += a.Count
		}
	}
	if n == 0 {
		return 0
	}
	return time.Duration(sum / float64(n))
}

func requirements(m map[string]uint32) []*pb.SkillRequirement {
	var out []*pb.SkillRequirement
	for _, k := range sortedKeys(m) {
		out = append(out, &pb.SkillRequirement{Skill: k, MinLevel: m[k]})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// NodeListen holds the addresses of a node the harness starts itself; an
// empty one leaves the field out of the file (the operator passes flags).
type NodeListen struct {
	NodeID     string
	NATSListen string
	HTTPListen string
}

// NodeConfig renders a node configuration file (node/config.go's format)
// declaring the scenario's queues and agents.
func (s *Scenario) NodeConfig(l NodeListen) ([]byte, error) {
	routingJSON, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(s.Routing())
	if err != nil {
		return nil, fmt.Errorf("%w: routing: %w", ErrScenario, err)
	}
	file := map[string]any{
		"log_level": "warn",
		"routing":   json.RawMessage(routingJSON),
	}
	for k, v := range map[string]string{"node_id": l.NodeID, "nats_listen": l.NATSListen, "http_listen": l.HTTPListen} {
		if v != "" {
			file[k] = v
		}
	}
	out, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Priority parses a priority-mix key; Validate has checked it.
func Priority(key string) int32 {
	v, _ := strconv.Atoi(key)
	return int32(v)
}
