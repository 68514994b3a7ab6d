package main

// Configuration: where settings come from (defaults < file < environment <
// flags, docs/operations.md) and what is refused. Every refusal must name
// the field, the value and what is allowed (STYLE.md), wrap ErrConfig so
// main exits with status 2, and never print a password.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// envOf is a getenv over a fixed map, so tests never touch the process's
// environment.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func noEnv(string) string { return "" }

func writeConfigFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tsunagu.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantConfigErr checks err wraps ErrConfig and mentions every string.
func wantConfigErr(t *testing.T, err error, mentions ...string) {
	t.Helper()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("error %v; want one wrapping ErrConfig", err)
	}
	for _, s := range mentions {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestConfig_DefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	rc, err := c.Validate()
	if err != nil {
		t.Fatalf("DefaultConfig does not validate: %v", err)
	}
	if got := strings.Join(rc.QueueNames, ","); got != "chat,sales,support" {
		t.Errorf("default queues %s; want the demo's chat,sales,support", got)
	}
	if c.NATSListen != "127.0.0.1:4222" || c.HTTPListen != "127.0.0.1:8080" {
		t.Errorf("defaults listen on %s and %s; want loopback only", c.NATSListen, c.HTTPListen)
	}
}

func TestConfig_DemoRoutingCompiles(t *testing.T) {
	rc, err := routing.Compile(DemoRouting())
	if err != nil {
		t.Fatalf("DemoRouting: %v", err)
	}
	if len(rc.Queues) != 3 || len(rc.Agents) != 4 {
		t.Errorf("demo has %d queues and %d agents; want 3 and 4", len(rc.Queues), len(rc.Agents))
	}
	sales := rc.Queues["sales"]
	if sales == nil || len(sales.Steps) != 2 || strings.Join(sales.Steps[1].Overflow, ",") != "support" {
		t.Errorf("sales should overflow into support after its widening step: %+v", sales)
	}
}

func TestConfig_LoadPrecedence(t *testing.T) {
	path := writeConfigFile(t, `{
		"node_id": "from-file",
		"shards": 32,
		"log_level": "debug",
		"out_encoding": "json",
		"workers": 4,
		"http_listen": "127.0.0.1:9000",
		"shutdown_timeout": "30s"
	}`)
	env := map[string]string{
		"TSUNAGU_CONFIG":       path,
		"TSUNAGU_SHARDS":       "64",
		"TSUNAGU_LOG_LEVEL":    "warn",
		"TSUNAGU_OUT_ENCODING": "protobuf",
	}
	c, err := Load([]string{"-log-level", "error", "-workers", "8"}, envOf(env))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		field, got, want, why string
	}{
		{"node_id", c.NodeID, "from-file", "file over default"},
		{"shards", fmt.Sprint(c.Shards), "64", "env over file"},
		{"log_level", c.LogLevel, "error", "flag over env over file"},
		{"out_encoding", c.OutEncoding, "protobuf", "env over file"},
		{"workers", fmt.Sprint(c.Workers), "8", "flag over file"},
		{"http_listen", c.HTTPListen, "127.0.0.1:9000", "file over default"},
		{"nats_listen", c.NATSListen, "127.0.0.1:4222", "default when nobody sets it"},
		{"shutdown_timeout", time.Duration(c.ShutdownTimeout).String(), "30s", "file over default"},
		{"routing source", c.RoutingSource, "built-in demo", "the file has no routing section"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %q; want %q (%s)", ck.field, ck.got, ck.want, ck.why)
		}
	}
	if _, err := c.Validate(); err != nil {
		t.Errorf("loaded config does not validate: %v", err)
	}
}

// Each layer on its own wins over the ones below it.
func TestConfig_LoadEachLayer(t *testing.T) {
	path := writeConfigFile(t, `{"shards": 32}`)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want uint32
	}{
		{"default", nil, nil, 16},
		{"file via env", nil, map[string]string{"TSUNAGU_CONFIG": path}, 32},
		{"file via flag", []string{"-config", path}, nil, 32},
		{"env", []string{"-config", path}, map[string]string{"TSUNAGU_SHARDS": "64"}, 64},
		{"flag", []string{"-config", path, "-shards", "128"}, map[string]string{"TSUNAGU_SHARDS": "64"}, 128},
		{"empty env is unset", nil, map[string]string{"TSUNAGU_SHARDS": ""}, 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.args, envOf(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Shards != tc.want {
				t.Errorf("shards %d; want %d", c.Shards, tc.want)
			}
		})
	}
	t.Run("-config flag over TSUNAGU_CONFIG", func(t *testing.T) {
		other := writeConfigFile(t, `{"shards": 48}`)
		c, err := Load([]string{"-config", other}, envOf(map[string]string{"TSUNAGU_CONFIG": path}))
		if err != nil || c.Shards != 48 {
			t.Errorf("shards %d, err %v; want 48 from the -config file", c.Shards, err)
		}
	})
	t.Run("env lists", func(t *testing.T) {
		c, err := Load(nil, envOf(map[string]string{"TSUNAGU_NATS_URL": " nats://a:4222, ,nats://b:4222 "}))
		if err != nil || strings.Join(c.NATSURLs, "|") != "nats://a:4222|nats://b:4222" {
			t.Errorf("nats_urls %q, err %v; want both URLs, trimmed", c.NATSURLs, err)
		}
	})
}

func TestConfig_LoadRefusals(t *testing.T) {
	t.Run("unknown field in the file", func(t *testing.T) {
		path := writeConfigFile(t, `{"node_id": "n", "shardz": 3}`)
		_, err := Load([]string{"-config", path}, noEnv)
		wantConfigErr(t, err, "shardz", path)
	})
	t.Run("unknown field in the routing section", func(t *testing.T) {
		path := writeConfigFile(t, `{"routing": {"queues": [{"name": "q", "bogus_field": 1}]}}`)
		_, err := Load([]string{"-config", path}, noEnv)
		wantConfigErr(t, err, "routing", "bogus_field")
	})
	t.Run("duration as a number", func(t *testing.T) {
		path := writeConfigFile(t, `{"shutdown_timeout": 10}`)
		_, err := Load([]string{"-config", path}, noEnv)
		wantConfigErr(t, err, "duration")
	})
	t.Run("duration not a duration", func(t *testing.T) {
		path := writeConfigFile(t, `{"shutdown_timeout": "soon"}`)
		_, err := Load([]string{"-config", path}, noEnv)
		wantConfigErr(t, err, "soon")
	})
	t.Run("wrong type", func(t *testing.T) {
		path := writeConfigFile(t, `{"shards": "many"}`)
		_, err := Load([]string{"-config", path}, noEnv)
		wantConfigErr(t, err, "shards")
	})
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.json")
		_, err := Load(nil, envOf(map[string]string{"TSUNAGU_CONFIG": path}))
		wantConfigErr(t, err, path)
	})
	t.Run("TSUNAGU_SHARDS not a number", func(t *testing.T) {
		_, err := Load(nil, envOf(map[string]string{"TSUNAGU_SHARDS": "abc"}))
		wantConfigErr(t, err, "TSUNAGU_SHARDS", `"abc"`, "1..4096")
	})
	t.Run("TSUNAGU_SHARDS beyond 32 bits", func(t *testing.T) {
		_, err := Load(nil, envOf(map[string]string{"TSUNAGU_SHARDS": "4294967297"}))
		wantConfigErr(t, err, "TSUNAGU_SHARDS", "4294967297")
	})
	t.Run("bad flag value", func(t *testing.T) {
		_, err := Load([]string{"-workers", "many"}, noEnv)
		wantConfigErr(t, err, "workers")
	})
	t.Run("unknown flag", func(t *testing.T) {
		_, err := Load([]string{"-shard", "3"}, noEnv)
		wantConfigErr(t, err, "shard")
	})
	t.Run("stray argument", func(t *testing.T) {
		_, err := Load([]string{"-shards", "3", "extra"}, noEnv)
		wantConfigErr(t, err, `"extra"`)
	})
	t.Run("help", func(t *testing.T) {
		if _, err := Load([]string{"-h"}, noEnv); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("-h: %v; want flag.ErrHelp", err)
		}
		if u := Usage(); !strings.Contains(u, "-shards") || !strings.Contains(u, "TSUNAGU_SHARDS") {
			t.Errorf("Usage does not describe -shards and its variable:\n%s", u)
		}
	})
}

// The routing section is protojson of RoutingConfig: enum names, durations
// as strings. This is the example of docs/operations.md.
func TestConfig_LoadFileRouting(t *testing.T) {
	path := writeConfigFile(t, `{
  "node_id": "tokyo-1",
  "redis_url": "redis://127.0.0.1:6379/0",
  "routing": {
    "tier_priority": {"gold": 10},
    "queues": [{
      "name": "support",
      "skills": [{"skill": "support", "min_level": 3}],
      "channels": ["CHANNEL_VOICE"],
      "strategy": "STRATEGY_LONGEST_IDLE",
      "service_level": {"target": 0.8, "threshold": "20s"},
      "widening": [
        {"after": "30s", "skills": [{"skill": "support", "min_level": 1}]},
        {"after": "90s", "overflow_queues": ["bpo"]}
      ],
      "admission": {"max_waiting": 500, "max_estimated_wait": "600s"},
      "offer_timeout": "15s",
      "missed_offer": "MISSED_OFFER_ACTION_NOT_READY",
      "wrap_up": "30s",
      "ageing": {"every": "30s", "max_boost": 10},
      "preferred_agent_window": "20s"
    }, {
      "name": "bpo",
      "skills": [{"skill": "partner", "min_level": 1}]
    }],
    "agents": [
      {"id": "a-1001", "site": "tokyo", "skills": {"support": 4, "language:ja": 5},
       "capacity": [{"channel": "CHANNEL_VOICE", "slots": 1}, {"channel": "CHANNEL_CHAT", "slots": 3}],
       "endpoint": "sip:a-1001@pbx.example"}
    ]
  }
}`)
	c, err := Load([]string{"-config", path}, noEnv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.RoutingSource != path {
		t.Errorf("routing source %q; want the file", c.RoutingSource)
	}
	rc, err := c.Validate()
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	q := rc.Queues["support"]
	if q == nil {
		t.Fatalf("queues %v; want support", rc.QueueNames)
	}
	if len(q.Steps) != 3 || q.Steps[1].After != 30*time.Second || q.Steps[2].After != 90*time.Second {
		t.Fatalf("support steps %+v; want base, 30s, 90s", q.Steps)
	}
	if got := q.Steps[1].Reqs; len(got) != 1 || got[0].Level != 1 {
		t.Errorf("after 30s support needs %v; want level 1", got)
	}
	if got := q.Steps[2].Overflow; len(got) != 1 || got[0] != "bpo" {
		t.Errorf("after 90s overflow %v; want bpo", got)
	}
	if q.OfferTimeout != 15*time.Second || q.MaxWait != 10*time.Minute || q.MaxWaiting != 500 || !q.MissedNotReady {
		t.Errorf("support compiled as %+v", q)
	}
	if rc.TierPriority["gold"] != 10 || rc.Agents["a-1001"].GetSkills()["language:ja"] != 5 {
		t.Errorf("tier priorities %v, agents %v", rc.TierPriority, rc.Agents)
	}
}

// queue is a minimal valid queue for routing refusals.
func queue(name string) *pb.QueueConfig {
	return &pb.QueueConfig{Name: name, Skills: []*pb.SkillRequirement{{Skill: "support", MinLevel: 3}}}
}

func TestConfig_ValidateRefusals(t *testing.T) {
	d := durationpb.New
	cases := []struct {
		name     string
		mutate   func(*Config)
		mentions []string
	}{
		{"node_id empty", func(c *Config) { c.NodeID = "" }, []string{"node_id", `""`, "1-64 characters"}},
		{"node_id with '.'", func(c *Config) { c.NodeID = "node.1" }, []string{"node_id", `"node.1"`, "'.'"}},
		{"node_id with a space", func(c *Config) { c.NodeID = "node 1" }, []string{"node_id", `"node 1"`, "spaces"}},
		{"node_id with '>'", func(c *Config) { c.NodeID = "node>" }, []string{"node_id", `"node>"`}},
		{"node_id too long", func(c *Config) { c.NodeID = strings.Repeat("n", 65) }, []string{"node_id", strings.Repeat("n", 65), "1-64"}},
		{"nats_urls http scheme", func(c *Config) { c.NATSURLs = []string{"http://127.0.0.1:4222"} }, []string{"nats_urls[0]", "http://127.0.0.1:4222", "nats://host:port"}},
		{"nats_urls second without host", func(c *Config) { c.NATSURLs = []string{"nats://a:4222", "nats://"} }, []string{"nats_urls[1]", "nats://host:port"}},
		{"nats_urls without scheme", func(c *Config) { c.NATSURLs = []string{"127.0.0.1:4222"} }, []string{"nats_urls[0]", "127.0.0.1:4222", "nats://"}},
		{"nats_listen 0.0.0.0: without port", func(c *Config) { c.NATSListen = "0.0.0.0:" }, []string{"nats_listen", `"0.0.0.0:"`, "0..65535"}},
		{"nats_listen without host", func(c *Config) { c.NATSListen = ":4222" }, []string{"nats_listen", `":4222"`, "name the interface", "0.0.0.0"}},
		{"nats_listen without port", func(c *Config) { c.NATSListen = "127.0.0.1" }, []string{"nats_listen", `"127.0.0.1"`, "host:port"}},
		{"nats_listen port too high", func(c *Config) { c.NATSListen = "127.0.0.1:65536" }, []string{"nats_listen", "65536", "0..65535"}},
		{"nats_listen port negative", func(c *Config) { c.NATSListen = "127.0.0.1:-1" }, []string{"nats_listen", "-1", "0..65535"}},
		{"nats_listen named port", func(c *Config) { c.NATSListen = "127.0.0.1:nats" }, []string{"nats_listen", "127.0.0.1:nats", "0..65535"}},
		{"http_listen without host", func(c *Config) { c.HTTPListen = ":8080" }, []string{"http_listen", `":8080"`, "name the interface"}},
		{"http_listen without port", func(c *Config) { c.HTTPListen = "localhost" }, []string{"http_listen", `"localhost"`, "host:port"}},
		{"http_listen 0.0.0.0:", func(c *Config) { c.HTTPListen = "0.0.0.0:" }, []string{"http_listen", `"0.0.0.0:"`, "0..65535"}},
		{"redis_url http scheme", func(c *Config) { c.RedisURL = "http://127.0.0.1:6379" }, []string{"redis_url", "http://127.0.0.1:6379", "redis://"}},
		{"redis_url without host", func(c *Config) { c.RedisURL = "redis:///0" }, []string{"redis_url", "redis:///0", "redis://"}},
		{"shards 0", func(c *Config) { c.Shards = 0 }, []string{"shards", ": 0 ", "1..4096"}},
		{"shards 5000", func(c *Config) { c.Shards = 5000 }, []string{"shards", "5000", "1..4096"}},
		{"log_level", func(c *Config) { c.LogLevel = "verbose" }, []string{"log_level", `"verbose"`, "debug, info, warn, error"}},
		{"out_encoding", func(c *Config) { c.OutEncoding = "xml" }, []string{"out_encoding", `"xml"`, "protobuf, json"}},
		{"workers 0", func(c *Config) { c.Workers = 0 }, []string{"workers", ": 0 ", "1..64"}},
		{"workers 65", func(c *Config) { c.Workers = 65 }, []string{"workers", "65", "1..64"}},
		{"shutdown_timeout negative", func(c *Config) { c.ShutdownTimeout = Duration(-time.Second) }, []string{"shutdown_timeout", "-1s", "0..10m"}},
		{"shutdown_timeout 11m", func(c *Config) { c.ShutdownTimeout = Duration(11 * time.Minute) }, []string{"shutdown_timeout", "11m0s", "0..10m"}},
		{"routing missing", func(c *Config) { c.Routing = nil }, []string{"routing", "at least one queue"}},
		{"routing without queues", func(c *Config) { c.Routing = &pb.RoutingConfig{} }, []string{"routing.queues", "empty", "at least one queue"}},
		{"routing duplicate queue", func(c *Config) {
			c.Routing = &pb.RoutingConfig{Queues: []*pb.QueueConfig{queue("support"), queue("support")}}
		}, []string{"queues[1].name", `"support"`, "unique"}},
		{"routing widening raises a level", func(c *Config) {
			q := queue("support")
			q.Widening = []*pb.WideningStep{{After: d(30 * time.Second), Skills: []*pb.SkillRequirement{{Skill: "support", MinLevel: 4}}}}
			c.Routing = &pb.RoutingConfig{Queues: []*pb.QueueConfig{q}}
		}, []string{"queues[0].widening[0].skills", "level 4 is above the current 3", "only relax"}},
		{"routing widening steps out of order", func(c *Config) {
			q := queue("support")
			q.Widening = []*pb.WideningStep{{After: d(time.Minute)}, {After: d(30 * time.Second)}}
			c.Routing = &pb.RoutingConfig{Queues: []*pb.QueueConfig{q}}
		}, []string{"queues[0].widening[1].after", "30s", "later than"}},
		{"routing overflow to an unknown queue", func(c *Config) {
			q := queue("support")
			q.Widening = []*pb.WideningStep{{After: d(time.Minute), OverflowQueues: []string{"nowhere"}}}
			c.Routing = &pb.RoutingConfig{Queues: []*pb.QueueConfig{q}}
		}, []string{"queues[0].widening[0].overflow_queues[0]", `"nowhere"`, "not a configured queue"}},
		{"routing bad queue name", func(c *Config) {
			c.Routing = &pb.RoutingConfig{Queues: []*pb.QueueConfig{queue("Support")}}
		}, []string{"queues[0].name", `"Support"`, "lower-case"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			rc, err := c.Validate()
			if rc != nil {
				t.Errorf("Validate returned a compiled config with an error")
			}
			wantConfigErr(t, err, tc.mentions...)
			if strings.HasPrefix(tc.name, "routing ") && tc.name != "routing missing" && tc.name != "routing without queues" {
				if !errors.Is(err, routing.ErrInvalidConfig) {
					t.Errorf("routing error %v does not wrap routing.ErrInvalidConfig", err)
				}
			}
		})
	}
}

// The edges of each range are accepted.
func TestConfig_ValidateAccepts(t *testing.T) {
	cases := map[string]func(*Config){
		"shards 1":                       func(c *Config) { c.Shards = 1 },
		"shards 4096":                    func(c *Config) { c.Shards = 4096 },
		"workers 64":                     func(c *Config) { c.Workers = 64 },
		"shutdown_timeout 10m":           func(c *Config) { c.ShutdownTimeout = Duration(10 * time.Minute) },
		"explicit 0.0.0.0":               func(c *Config) { c.NATSListen = "0.0.0.0:4222"; c.HTTPListen = "0.0.0.0:0" },
		"IPv6 loopback":                  func(c *Config) { c.NATSListen = "[::1]:0" },
		"nats_listen unused with URLs":   func(c *Config) { c.NATSURLs = []string{"nats://n1:4222", "tls://n2:4222"}; c.NATSListen = "" },
		"redis with password and db":     func(c *Config) { c.RedisURL = "rediss://user:pw@redis.example:6380/2" },
		"out_encoding json":              func(c *Config) { c.OutEncoding = "json" },
		"log_level warn":                 func(c *Config) { c.LogLevel = "warn" },
		"node_id with dashes and digits": func(c *Config) { c.NodeID = "tokyo-1_a" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mutate(&c)
			if _, err := c.Validate(); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
}

// A password in a Redis or NATS URL never appears in a message, whatever is
// wrong with the URL.
func TestConfig_PasswordsRedacted(t *testing.T) {
	const secret = "s3cr3t-pw"
	redis := []string{
		"http://user:" + secret + "@127.0.0.1:6379",
		"redis://user:" + secret + "@",
		"redis://user:" + secret + "@127.0.0.1:6379/%zz",
		"redis://user:" + secret + "@127.0.0.1:port",
		"redis://:" + secret + "@bad host:6379",
		"redis://user:" + secret + "@x@127.0.0.1:notaport",
	}
	for _, u := range redis {
		t.Run("redis "+strings.ReplaceAll(u, secret, "…"), func(t *testing.T) {
			c := DefaultConfig()
			c.RedisURL = u
			_, err := c.Validate()
			wantConfigErr(t, err, "redis_url")
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("password in the message: %v", err)
			}
		})
	}
	nats := []string{
		"http://user:" + secret + "@127.0.0.1:4222",
		"nats://user:" + secret + "@",
		"nats://user:" + secret + "@127.0.0.1:port",
	}
	for _, u := range nats {
		t.Run("nats "+strings.ReplaceAll(u, secret, "…"), func(t *testing.T) {
			c, err := Load(nil, envOf(map[string]string{"TSUNAGU_NATS_URL": "nats://ok:4222," + u}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Validate()
			wantConfigErr(t, err, "nats_urls[1]")
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("password in the message: %v", err)
			}
		})
	}
}

// BUG (config.go:256 and config.go:301-302): -shards is parsed as a uint
// and then truncated to uint32, so an out-of-range value wraps around into
// a valid one: -shards 4294967297 runs a node with 1 shard instead of being
// refused (TSUNAGU_SHARDS, parsed with a 32-bit limit, is refused).
func TestConfig_ShardsFlagOutOfRangeRefused(t *testing.T) {
	for _, v := range []string{"4294967297", "4294967312"} {
		t.Run(v, func(t *testing.T) {
			c, err := Load([]string{"-shards", v}, noEnv)
			if err == nil {
				_, err = c.Validate()
			}
			if err == nil {
				t.Fatalf("-shards %s accepted as %d shards", v, c.Shards)
			}
			wantConfigErr(t, err, "shards", v)
		})
	}
}

// BUG (config.go:190-195): LoadFile decodes one JSON value and ignores the
// rest of the file, so a second object (a bad merge, a stray paste) is
// silently dropped instead of refused like an unknown field.
func TestConfig_LoadFileRefusesTrailingContent(t *testing.T) {
	path := writeConfigFile(t, `{"node_id": "tokyo-1"}
{"shards": 0, "redis_url": "redis://10.0.0.5:6379"}`)
	c, err := Load([]string{"-config", path}, noEnv)
	if err == nil {
		t.Fatalf("a file with a second JSON object after the first loaded (node_id %q, shards %d, redis_url %q)", c.NodeID, c.Shards, c.RedisURL)
	}
	wantConfigErr(t, err, path)
}

// --- run --------------------------------------------------------------------

// syncBuffer is a bytes.Buffer safe for the node's goroutines to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runConfig is a node on random loopback ports.
func runConfig() Config {
	c := DefaultConfig()
	c.NATSListen = "127.0.0.1:0"
	c.HTTPListen = "127.0.0.1:0"
	c.Shards = 2
	return c
}

// runCancelled runs a node whose context has already ended: it starts,
// prints its banner and stops.
func runCancelled(t *testing.T, cfg Config) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &out, &errOut) }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of its context ending")
	}
	return out.String(), errOut.String(), err
}

func TestRun_RefusesInvalidConfigBeforeStartingAnything(t *testing.T) {
	cases := map[string]func(*Config){
		"shards 0":      func(c *Config) { c.Shards = 0 },
		"log level":     func(c *Config) { c.LogLevel = "loud" },
		"redis scheme":  func(c *Config) { c.RedisURL = "http://127.0.0.1:6379" },
		"empty routing": func(c *Config) { c.Routing = &pb.RoutingConfig{} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := runConfig()
			mutate(&cfg)
			var out, errOut syncBuffer
			done := make(chan error, 1)
			// The context never ends: a run that got as far as starting a
			// node would block here until the timeout below.
			go func() { done <- run(context.Background(), cfg, &out, &errOut) }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrConfig) {
					t.Errorf("run: %v; want an error wrapping ErrConfig (exit status 2)", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("run with an invalid config did not return: it started a node")
			}
			if out.String() != "" || errOut.String() != "" {
				t.Errorf("run wrote before refusing the config:\nstdout: %s\nstderr: %s", out.String(), errOut.String())
			}
		})
	}
}

func TestRun_StartsAndStops(t *testing.T) {
	cfg := runConfig()
	cfg.LogLevel = "info"
	stdout, stderr, err := runCancelled(t, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(stdout, "tsunagu is routing: NATS nats://127.0.0.1:") {
		t.Errorf("banner missing or wrong:\n%s", stdout)
	}
	for _, s := range []string{"node ready", "shutting down", "stopped", "node=node-1"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("log does not say %q:\n%s", s, stderr)
		}
	}
}

// BUG (main.go:47): Validate accepts log_level in any case (config.go:124
// lower-cases it) but run looks the level up as written, so "ERROR" or
// "Warn" silently log at INFO (the map's zero value) — the operator asked
// for errors only and gets every info line.
func TestRun_LogLevelAnyCase(t *testing.T) {
	for _, level := range []string{"error", "ERROR", "Warn"} {
		t.Run(level, func(t *testing.T) {
			cfg := runConfig()
			cfg.LogLevel = level
			_, stderr, err := runCancelled(t, cfg)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if strings.Contains(stderr, "level=INFO") {
				t.Errorf("log_level %q, yet INFO lines were logged:\n%s", level, stderr)
			}
		})
	}
}

// BUG (main.go:57-61 with node.go:251-255): shutdown_timeout 0 is accepted
// ("allowed 0..10m", config.go:133) but a zero timeout gives Shutdown a
// context that has already expired, and Shutdown returns ctx.Err() even
// though everything stopped — so every clean stop with shutdown_timeout 0
// ends in "shutdown: context deadline exceeded" and exit status 1.
func TestRun_ZeroShutdownTimeoutStopsCleanly(t *testing.T) {
	cfg := runConfig()
	cfg.LogLevel = "error"
	cfg.ShutdownTimeout = 0
	if _, _, err := runCancelled(t, cfg); err != nil {
		t.Errorf("run with shutdown_timeout 0 (allowed by Validate): %v", err)
	}
}
