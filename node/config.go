package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/customer"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Config is everything a node needs to run.
type Config struct {
	// NodeID names the node in logs.
	NodeID string `json:"node_id"`
	// NATSURLs are external NATS servers; empty embeds one.
	NATSURLs []string `json:"nats_urls"`
	// NATSListen is the embedded server's client address.
	NATSListen string `json:"nats_listen"`
	// HTTPListen serves /healthz and /metrics.
	HTTPListen string `json:"http_listen"`
	// RedisURL selects the Redis customer-context store; empty keeps it in
	// process.
	RedisURL string `json:"redis_url"`
	// Shards is the number of shards.
	Shards uint32 `json:"shards"`
	// LogLevel: debug, info, warn or error.
	LogLevel string `json:"log_level"`
	// OutEncoding of published notices, instructions and events: protobuf
	// or json.
	OutEncoding string `json:"out_encoding"`
	// Workers per NATS subject.
	Workers int `json:"workers"`
	// ShutdownTimeout bounds a graceful stop; 0 means no bound.
	ShutdownTimeout Duration `json:"shutdown_timeout"`
	// GCPercent is the garbage collector's target (GOGC). A routing node's
	// heap is mostly long-lived records, so collecting at 100% growth spends
	// a quarter of the CPU; the default trades memory for it. The GOGC
	// environment variable, when set, wins.
	GCPercent int `json:"gc_percent"`
	// Cluster mode (enabled by RaftListen).
	//
	// Site labels the node (and the replicas it holds) for multi-site
	// placement.
	Site string `json:"site"`
	// RaftListen is where the node's Raft groups listen; set, the node runs
	// as a cluster member.
	RaftListen string `json:"raft_listen"`
	// RemoteListen is where actors of other members reach this one's.
	RemoteListen string `json:"remote_listen"`
	// DataDir holds the Raft logs and snapshots.
	DataDir string `json:"data_dir"`
	// Bootstrap lists the initial members ("id=raft-host:port") when a
	// cluster is created; every initial member gets the same list. Empty:
	// join an existing cluster (or restart from DataDir).
	Bootstrap []string `json:"bootstrap"`
	// Replicas is how many members hold each shard.
	Replicas int `json:"replicas"`
	// NATSClusterListen is the embedded NATS server's route address, and
	// NATSRoutes the other members' (nats-route://host:port), so the
	// members' embedded servers form one NATS cluster.
	NATSClusterListen string   `json:"nats_cluster_listen"`
	NATSRoutes        []string `json:"nats_routes"`
	// Routing holds queues, agents and tier priorities (protojson).
	Routing *pb.RoutingConfig `json:"-"`
	// RoutingSource says where Routing came from, for the start-up banner.
	RoutingSource string `json:"-"`
	// Customers, when set, is used instead of building a store from
	// RedisURL (embedding and tests).
	Customers customer.Store `json:"-"`
}

// Duration is a time.Duration that reads "30s" in JSON.
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string like \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// DefaultConfig is a working single node on loopback with demo queues.
func DefaultConfig() Config {
	return Config{
		NodeID:          "node-1",
		NATSListen:      "127.0.0.1:4222",
		HTTPListen:      "127.0.0.1:8080",
		Shards:          16,
		LogLevel:        "info",
		OutEncoding:     "protobuf",
		Workers:         2,
		ShutdownTimeout: Duration(10 * time.Second),
		GCPercent:       400,
		Site:            "default",
		Replicas:        3,
		Routing:         DemoRouting(),
		RoutingSource:   "built-in demo",
	}
}

// ErrConfig wraps every configuration problem.
var ErrConfig = errors.New("config")

func bad(field string, value any, allowed string) error {
	return fmt.Errorf("%w: %s: %v is not valid; %s", ErrConfig, field, value, allowed)
}

// Validate checks every field and compiles the routing configuration.
func (c *Config) Validate() (*routing.Config, error) {
	if c.NodeID == "" || len(c.NodeID) > 64 || strings.ContainsAny(c.NodeID, " .*>") {
		return nil, bad("node_id", strconv.Quote(c.NodeID), "1-64 characters without spaces, '.', '*' or '>'")
	}
	for i, u := range c.NATSURLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "nats" && p.Scheme != "tls" && p.Scheme != "ws" && p.Scheme != "wss") || p.Host == "" {
			return nil, bad(fmt.Sprintf("nats_urls[%d]", i), redactURL(u), "want nats://host:port (or tls://, ws://, wss://)")
		}
	}
	if len(c.NATSURLs) == 0 {
		if err := checkListen("nats_listen", c.NATSListen); err != nil {
			return nil, err
		}
	}
	if err := checkListen("http_listen", c.HTTPListen); err != nil {
		return nil, err
	}
	if c.RedisURL != "" {
		p, err := url.Parse(c.RedisURL)
		if err != nil || (p.Scheme != "redis" && p.Scheme != "rediss") || p.Host == "" {
			return nil, bad("redis_url", redactURL(c.RedisURL), "want redis://[user:password@]host:port[/db] or rediss://")
		}
	}
	if c.Shards < 1 || c.Shards > 4096 {
		return nil, bad("shards", c.Shards, "allowed 1..4096")
	}
	if _, ok := levels[strings.ToLower(c.LogLevel)]; !ok {
		return nil, bad("log_level", strconv.Quote(c.LogLevel), "allowed debug, info, warn, error")
	}
	if c.OutEncoding != "protobuf" && c.OutEncoding != "json" {
		return nil, bad("out_encoding", strconv.Quote(c.OutEncoding), "allowed protobuf, json")
	}
	if c.Workers < 1 || c.Workers > 64 {
		return nil, bad("workers", c.Workers, "allowed 1..64")
	}
	if d := time.Duration(c.ShutdownTimeout); d < 0 || d > 10*time.Minute {
		return nil, bad("shutdown_timeout", d, "allowed 0..10m")
	}
	if c.GCPercent < 50 || c.GCPercent > 2000 {
		return nil, bad("gc_percent", c.GCPercent, "allowed 50..2000")
	}
	if err := c.validateCluster(); err != nil {
		return nil, err
	}
	if c.Routing == nil {
		return nil, bad("routing", "nothing", "a routing configuration with at least one queue is needed")
	}
	if len(c.Routing.GetQueues()) == 0 {
		return nil, bad("routing.queues", "an empty list", "at least one queue is needed")
	}
	rc, err := routing.Compile(c.Routing)
	if err != nil {
		return nil, fmt.Errorf("%w: routing: %w", ErrConfig, err)
	}
	return rc, nil
}

// validateCluster checks the cluster settings when RaftListen is set.
func (c *Config) validateCluster() error {
	if c.RaftListen == "" {
		return nil
	}
	if err := checkListen("raft_listen", c.RaftListen); err != nil {
		return err
	}
	if err := checkListen("remote_listen", c.RemoteListen); err != nil {
		return err
	}
	if c.DataDir == "" {
		return bad("data_dir", `""`, "a cluster member keeps its Raft log on disk: name a directory")
	}
	if c.Site == "" || len(c.Site) > 64 {
		return bad("site", strconv.Quote(c.Site), "1-64 characters")
	}
	if c.Replicas < 1 || c.Replicas > 7 {
		return bad("replicas", c.Replicas, "allowed 1..7")
	}
	for i, b := range c.Bootstrap {
		id, addr, ok := strings.Cut(b, "=")
		if !ok || id == "" {
			return bad(fmt.Sprintf("bootstrap[%d]", i), strconv.Quote(b), "want id=raft-host:port")
		}
		if err := checkListen(fmt.Sprintf("bootstrap[%d]", i), addr); err != nil {
			return err
		}
	}
	if c.NATSClusterListen != "" {
		if err := checkListen("nats_cluster_listen", c.NATSClusterListen); err != nil {
			return err
		}
	}
	for i, r := range c.NATSRoutes {
		if p, err := url.Parse(r); err != nil || p.Scheme != "nats-route" || p.Host == "" {
			return bad(fmt.Sprintf("nats_routes[%d]", i), redactURL(r), "want nats-route://host:port")
		}
	}
	return nil
}

var levels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func checkListen(field, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return bad(field, strconv.Quote(addr), "want host:port, e.g. 127.0.0.1:8080")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return bad(field, strconv.Quote(addr), "the port must be 0..65535")
	}
	if host == "" {
		return bad(field, strconv.Quote(addr), "name the interface (e.g. 127.0.0.1); use 0.0.0.0 explicitly to listen on all")
	}
	return nil
}

// redactURL hides a password in a URL for messages and logs.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		if i := strings.LastIndex(u, "@"); i >= 0 {
			return "<redacted>@" + u[i+1:]
		}
		return u
	}
	return p.Redacted()
}

// fileConfig is the config file's shape: node settings plus the routing
// configuration in protojson.
type fileConfig struct {
	Config
	Routing json.RawMessage `json:"routing"`
}

// LoadFile reads a JSON config file over c. Unknown fields are refused.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	fc := fileConfig{Config: *c}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: %s: content after the configuration object at byte %d; a config file holds one JSON object", ErrConfig, path, dec.InputOffset())
	}
	*c = fc.Config
	if len(fc.Routing) > 0 {
		rc := &pb.RoutingConfig{}
		if err := protojson.Unmarshal(fc.Routing, rc); err != nil {
			return fmt.Errorf("%w: %s: routing: %w", ErrConfig, path, err)
		}
		c.Routing = rc
		c.RoutingSource = path
	}
	return nil
}

// env maps environment variables to config fields.
var env = []struct {
	name string
	set  func(c *Config, v string) error
}{
	{"TSUNAGU_NODE_ID", func(c *Config, v string) error { c.NodeID = v; return nil }},
	{"TSUNAGU_NATS_URL", func(c *Config, v string) error { c.NATSURLs = splitList(v); return nil }},
	{"TSUNAGU_NATS_LISTEN", func(c *Config, v string) error { c.NATSListen = v; return nil }},
	{"TSUNAGU_HTTP_LISTEN", func(c *Config, v string) error { c.HTTPListen = v; return nil }},
	{"TSUNAGU_REDIS_URL", func(c *Config, v string) error { c.RedisURL = v; return nil }},
	{"TSUNAGU_SHARDS", func(c *Config, v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("TSUNAGU_SHARDS", strconv.Quote(v), "want a number 1..4096")
		}
		c.Shards = uint32(n)
		return nil
	}},
	{"TSUNAGU_LOG_LEVEL", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"TSUNAGU_OUT_ENCODING", func(c *Config, v string) error { c.OutEncoding = v; return nil }},
	{"TSUNAGU_SITE", func(c *Config, v string) error { c.Site = v; return nil }},
	{"TSUNAGU_RAFT_LISTEN", func(c *Config, v string) error { c.RaftListen = v; return nil }},
	{"TSUNAGU_REMOTE_LISTEN", func(c *Config, v string) error { c.RemoteListen = v; return nil }},
	{"TSUNAGU_DATA_DIR", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"TSUNAGU_BOOTSTRAP", func(c *Config, v string) error { c.Bootstrap = splitList(v); return nil }},
	{"TSUNAGU_NATS_CLUSTER_LISTEN", func(c *Config, v string) error { c.NATSClusterListen = v; return nil }},
	{"TSUNAGU_NATS_ROUTES", func(c *Config, v string) error { c.NATSRoutes = splitList(v); return nil }},
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

type flagValues struct {
	path, nodeID, natsURL, natsListen, httpListen, redisURL, logLevel, outEnc *string
	shards                                                                    *uint
	workers                                                                   *int
	site, raftListen, remoteListen, dataDir, bootstrap, natsCluster, routes   *string
	replicas                                                                  *int
}

func newFlags(getenv func(string) string) (*flag.FlagSet, *flagValues) {
	fs := flag.NewFlagSet("tsunagu", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	return fs, &flagValues{
		path:       fs.String("config", getenv("TSUNAGU_CONFIG"), "JSON config file (env TSUNAGU_CONFIG)"),
		nodeID:     fs.String("node-id", "", "node name (env TSUNAGU_NODE_ID)"),
		natsURL:    fs.String("nats-url", "", "external NATS URLs, comma separated; empty embeds a server (env TSUNAGU_NATS_URL)"),
		natsListen: fs.String("nats-listen", "", "embedded NATS client address, default 127.0.0.1:4222 (env TSUNAGU_NATS_LISTEN)"),
		httpListen: fs.String("http-listen", "", "address for /healthz and /metrics, default 127.0.0.1:8080 (env TSUNAGU_HTTP_LISTEN)"),
		redisURL:   fs.String("redis-url", "", "Redis for customer context; empty keeps it in process (env TSUNAGU_REDIS_URL)"),
		shards:     fs.Uint("shards", 0, "number of shards, default 16 (env TSUNAGU_SHARDS)"),
		logLevel:   fs.String("log-level", "", "debug, info, warn or error (env TSUNAGU_LOG_LEVEL)"),
		outEnc:     fs.String("out-encoding", "", "protobuf (default) or json for published messages (env TSUNAGU_OUT_ENCODING)"),
		workers:    fs.Int("workers", 0, "subscriptions per NATS subject, default 2"),

		site:         fs.String("site", "", "cluster: this node's site label, default \"default\" (env TSUNAGU_SITE)"),
		raftListen:   fs.String("raft-listen", "", "cluster: Raft address; set, the node is a cluster member (env TSUNAGU_RAFT_LISTEN)"),
		remoteListen: fs.String("remote-listen", "", "cluster: address other members' actors reach this node's at (env TSUNAGU_REMOTE_LISTEN)"),
		dataDir:      fs.String("data-dir", "", "cluster: directory of the Raft logs and snapshots (env TSUNAGU_DATA_DIR)"),
		bootstrap:    fs.String("bootstrap", "", "cluster: initial members id=raft-host:port,... when creating a cluster (env TSUNAGU_BOOTSTRAP)"),
		replicas:     fs.Int("replicas", 0, "cluster: members holding each shard, default 3"),
		natsCluster:  fs.String("nats-cluster-listen", "", "cluster: embedded NATS route address (env TSUNAGU_NATS_CLUSTER_LISTEN)"),
		routes:       fs.String("nats-routes", "", "cluster: other members' NATS routes nats-route://host:port,... (env TSUNAGU_NATS_ROUTES)"),
	}
}

// Load builds the configuration: defaults, then the config file (-config
// or TSUNAGU_CONFIG), then environment variables, then flags.
func Load(args []string, getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	fs, f := newFlags(getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q", ErrConfig, fs.Arg(0))
	}
	if *f.shards > math.MaxUint32 {
		return c, bad("-shards", *f.shards, "allowed 1..4096")
	}
	if *f.path != "" {
		if err := c.LoadFile(*f.path); err != nil {
			return c, err
		}
	}
	for _, e := range env {
		if v := getenv(e.name); v != "" {
			if err := e.set(&c, v); err != nil {
				return c, err
			}
		}
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "node-id":
			c.NodeID = *f.nodeID
		case "nats-url":
			c.NATSURLs = splitList(*f.natsURL)
		case "nats-listen":
			c.NATSListen = *f.natsListen
		case "http-listen":
			c.HTTPListen = *f.httpListen
		case "redis-url":
			c.RedisURL = *f.redisURL
		case "shards":
			c.Shards = uint32(*f.shards)
		case "log-level":
			c.LogLevel = *f.logLevel
		case "out-encoding":
			c.OutEncoding = *f.outEnc
		case "workers":
			c.Workers = *f.workers
		case "site":
			c.Site = *f.site
		case "raft-listen":
			c.RaftListen = *f.raftListen
		case "remote-listen":
			c.RemoteListen = *f.remoteListen
		case "data-dir":
			c.DataDir = *f.dataDir
		case "bootstrap":
			c.Bootstrap = splitList(*f.bootstrap)
		case "replicas":
			c.Replicas = *f.replicas
		case "nats-cluster-listen":
			c.NATSClusterListen = *f.natsCluster
		case "nats-routes":
			c.NATSRoutes = splitList(*f.routes)
		}
	})
	return c, nil
}

// Usage describes the flags.
func Usage() string {
	var b bytes.Buffer
	fs, _ := newFlags(func(string) string { return "" })
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}
