package gateway

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// In a cluster every node takes requests on the public subjects (one of the
// queue group gets each), but only a shard's owner can serve it. A node that
// does not own the request's shard republishes it, unchanged and with the
// caller's reply subject, on the shard's internal subject, which only the
// owner subscribes to; the owner answers the caller directly. A forwarded
// request is never forwarded again: if ownership moved meanwhile, the
// engine answers UNAVAILABLE and the caller retries.
//
// When no member owns the shard (an election under way) nobody hears the
// forward and the caller's request times out; carriers and desktops retry,
// and every request of the contract is idempotent.

// ForwardPrefix starts the internal subjects of forwarded requests.
const ForwardPrefix = "_tsunagu.v1.shard."

// HeaderForwarded marks a forwarded request with the forwarding node's
// connection name.
const HeaderForwarded = "Tsunagu-Forwarded"

// SetShards makes the gateway forward requests for shards not owned here;
// call it before Start.
func (g *Gateway) SetShards(s Sharder) { g.cfg.Shards = s }

// ForwardSubject is where requests for shard go, wrapping the original
// subject.
func ForwardSubject(shard uint32, subject string) string {
	return ForwardPrefix + strconv.FormatUint(uint64(shard), 10) + "." + subject
}

func (g *Gateway) shardOfQueue(queue string) (uint32, bool) {
	if g.cfg.Shards == nil {
		return 0, false
	}
	return g.cfg.Shards.QueueShard(queue)
}

// forward republishes m to shard's owner unless this node owns it or m was
// forwarded already. It reports whether m was forwarded.
func (g *Gateway) forward(m *nats.Msg, shard uint32) bool {
	if g.cfg.Shards == nil || g.cfg.Shards.Owns(shard) || m.Header.Get(HeaderForwarded) != "" {
		return false
	}
	h := nats.Header{}
	for k, v := range m.Header {
		h[k] = v
	}
	h.Set(HeaderForwarded, g.nc.Opts.Name)
	out := &nats.Msg{Subject: ForwardSubject(shard, m.Subject), Reply: m.Reply, Header: h, Data: m.Data}
	if err := g.nc.PublishMsg(out); err != nil {
		g.metrics.PublishErrors.Add(1)
		return false
	}
	g.metrics.Forwarded.Add(1)
	return true
}

// Serve subscribes to the requests forwarded for shard: call it once this
// node owns the shard.
func (g *Gateway) Serve(shard uint32) error {
	g.fwdMu.Lock()
	defer g.fwdMu.Unlock()
	if _, ok := g.fwdSubs[shard]; ok {
		return nil
	}
	prefix := ForwardSubject(shard, "")
	sub, err := g.nc.Subscribe(prefix+">", func(m *nats.Msg) {
		inner := *m
		inner.Subject = strings.TrimPrefix(m.Subject, prefix)
		g.dispatch(&inner)
	})
	if err != nil {
		return fmt.Errorf("gateway: subscribe to forwarded requests of shard %d: %w", shard, err)
	}
	if err := sub.SetPendingLimits(1<<20, 1<<30); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("gateway: pending limits on shard %d: %w", shard, err)
	}
	g.fwdSubs[shard] = sub
	// The subscription must reach the server before others forward to it.
	return g.nc.Flush()
}

// Unserve stops taking forwarded requests for shard.
func (g *Gateway) Unserve(shard uint32) {
	g.fwdMu.Lock()
	sub := g.fwdSubs[shard]
	delete(g.fwdSubs, shard)
	g.fwdMu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
}

// dispatch hands a forwarded request to the handler of its original subject.
func (g *Gateway) dispatch(m *nats.Msg) {
	t := strings.Split(m.Subject, ".")
	switch {
	case len(t) == 5 && t[0] == "tsunagu" && t[1] == "v1" && t[2] == "carriers" && t[4] == "arrive":
		g.onArrive(m)
	case len(t) == 7 && t[0] == "tsunagu" && t[1] == "v1" && t[2] == "carriers" && t[4] == "media":
		g.onMedia(m)
	case len(t) == 5 && t[0] == "tsunagu" && t[1] == "v1" && t[2] == "agents" && t[4] == "commands":
		g.onAgentCommand(m)
	case len(t) == 5 && t[0] == "tsunagu" && t[1] == "v1" && t[2] == "queues" && t[4] == "status":
		g.onQueueStatus(m)
	default:
		g.log.Warn("forwarded request on an unknown subject dropped", "subject", truncate(m.Subject, 200))
	}
}
