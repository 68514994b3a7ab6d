package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/cluster"
)

// These tests run real node processes: a three-member cluster on loopback,
// each member with its own embedded NATS server (routed to the others), Raft
// listener, actor listener, HTTP port and data directory. Faults are the
// real thing: kill -9, SIGSTOP (a member that stops answering, as when cut
// off), SIGTERM for a planned stop.

var nodeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tsunagu-chaos")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nodeBin = filepath.Join(dir, "tsunagu-node")
	build := exec.Command("go", "build", "-o", nodeBin, "../node")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the node:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const shards = 8

// routingJSON: one voice queue, six agents; short offer timeout and wrap-up
// so failover tests see every stage of a contact.
const routingJSON = `{"routing": {
  "queues": [{"name": "q", "skills": [{"skill": "s", "minLevel": 1}], "channels": ["CHANNEL_VOICE"],
              "offerTimeout": "2s", "wrapUp": "0.3s"}],
  "agents": [
    {"id": "a1", "skills": {"s": 1}, "endpoint": "sip:a1"},
    {"id": "a2", "skills": {"s": 1}, "endpoint": "sip:a2"},
    {"id": "a3", "skills": {"s": 1}, "endpoint": "sip:a3"},
    {"id": "a4", "skills": {"s": 1}, "endpoint": "sip:a4"},
    {"id": "a5", "skills": {"s": 1}, "endpoint": "sip:a5"},
    {"id": "a6", "skills": {"s": 1}, "endpoint": "sip:a6"}
  ]}}`

type proc struct {
	id                                  string
	natsAddr, routeAddr, httpAddr       string
	raftAddr, remoteAddr, dataDir, logf string
	args                                []string
	cmd                                 *exec.Cmd
	exited                              chan struct{}
}

type procCluster struct {
	t     testing.TB
	mu    sync.Mutex
	procs []*proc
}

// freeAddr returns a free loopback address whose port lies below Linux's
// ephemeral range (32768 and up): a port taken from that range and let go
// can be handed to some outgoing connection before the node binds it.
//
// A port is handed out once per test binary: a member started later would
// otherwise be given a port another member was given and has not bound yet
// (seen: a member's Raft port also given to another's NATS).
func freeAddr(t testing.TB) string {
	t.Helper()
	handedMu.Lock()
	defer handedMu.Unlock()
	for range 1000 {
		port := 10000 + rand.IntN(22000)
		if handed[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			handed[port] = true
			return addr
		}
	}
	t.Fatal("no free port below 32000")
	return ""
}

var (
	handedMu sync.Mutex
	handed   = map[int]bool{}
)

// startProcCluster starts n members that create a cluster together.
func startProcCluster(t testing.TB, n int) *procCluster {
	t.Helper()
	return startProcClusterWith(t, n, []byte(routingJSON))
}

// startProcClusterWith starts n members configured with config (a node
// configuration file's contents).
func startProcClusterWith(t testing.TB, n int, config []byte) *procCluster {
	t.Helper()
	pc := &procCluster{t: t}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "routing.json")
	if err := os.WriteFile(cfg, config, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		pc.procs = append(pc.procs, &proc{
			id: id, natsAddr: freeAddr(t), routeAddr: freeAddr(t), httpAddr: freeAddr(t),
			raftAddr: freeAddr(t), remoteAddr: freeAddr(t),
			dataDir: filepath.Join(dir, id), logf: filepath.Join(dir, id+".log"),
		})
	}
	var boot []string
	for _, p := range pc.procs {
		boot = append(boot, p.id+"="+p.raftAddr)
	}
	for _, p := range pc.procs {
		var routes []string
		for _, o := range pc.procs {
			if o != p {
				routes = append(routes, "nats-route://"+o.routeAddr)
			}
		}
		p.args = []string{"-config", cfg, "-node-id", p.id, "-shards", fmt.Sprint(shards),
			"-nats-listen", p.natsAddr, "-nats-cluster-listen", p.routeAddr, "-nats-routes", strings.Join(routes, ","),
			"-http-listen", p.httpAddr, "-raft-listen", p.raftAddr, "-remote-listen", p.remoteAddr,
			"-data-dir", p.dataDir, "-bootstrap", strings.Join(boot, ","), "-log-level", logLevel()}
		pc.start(p)
	}
	t.Cleanup(func() {
		for _, p := range pc.procs {
			pc.signal(p, syscall.SIGKILL)
		}
		if t.Failed() {
			for _, p := range pc.procs {
				data, _ := os.ReadFile(p.logf)
				if keep := os.Getenv("TSUNAGU_CHAOS_LOGS"); keep != "" {
					_ = os.MkdirAll(keep, 0o750)
					_ = os.WriteFile(filepath.Join(keep, p.id+".log"), data, 0o600)
				}
				lines := strings.Split(string(data), "\n")
				if len(lines) > 60 {
					lines = lines[len(lines)-60:]
				}
				t.Logf("--- last log lines of %s:\n%s", p.id, strings.Join(lines, "\n"))
			}
		}
	})
	for _, p := range pc.procs {
		pc.waitHealthy(p, 60*time.Second)
	}
	pc.waitOwned(60 * time.Second)
	return pc
}

func (pc *procCluster) start(p *proc) {
	pc.t.Helper()
	logf, err := os.OpenFile(p.logf, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		pc.t.Fatal(err)
	}
	cmd := exec.Command(nodeBin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	pc.mu.Lock()
	p.cmd, p.exited = cmd, exited
	pc.mu.Unlock()
}

func (pc *procCluster) signal(p *proc, sig syscall.Signal) {
	pc.mu.Lock()
	cmd := p.cmd
	pc.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// kill9 kills p at once and waits until it is gone.
func (pc *procCluster) kill9(p *proc) {
	pc.signal(p, syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM (a planned stop: the member hands its shards over) and
// waits for the process to exit.
func (pc *procCluster) stop(p *proc) {
	pc.t.Helper()
	pc.signal(p, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		pc.t.Fatalf("%s did not stop within 30s of SIGTERM", p.id)
	}
}

func (pc *procCluster) waitHealthy(p *proc, d time.Duration) {
	pc.t.Helper()
	pc.waitFor(p.id+" healthy", d, func() bool {
		resp, err := http.Get("http://" + p.httpAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (pc *procCluster) waitFor(what string, d time.Duration, cond func() bool) {
	pc.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			pc.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type statusDoc struct {
	cluster.Status
	Owned []uint32 `json:"owned_here"`
}

func (pc *procCluster) status(p *proc) (statusDoc, error) {
	var st statusDoc
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.httpAddr + "/cluster/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// owners asks the live members what they own; ok when every shard has
// exactly one owner among them.
func (pc *procCluster) owners(live []*proc) (map[uint32]*proc, bool) {
	out := make(map[uint32]*proc)
	for _, p := range live {
		st, err := pc.status(p)
		if err != nil {
			return nil, false
		}
		for _, s := range st.Owned {
			if _, dup := out[s]; dup {
				return nil, false
			}
			out[s] = p
		}
	}
	return out, len(out) == shards
}

func (pc *procCluster) waitOwned(d time.Duration, except ...*proc) map[uint32]*proc {
	pc.t.Helper()
	var live []*proc
	for _, p := range pc.procs {
		skip := false
		for _, e := range except {
			skip = skip || e == p
		}
		if !skip {
			live = append(live, p)
		}
	}
	var got map[uint32]*proc
	pc.waitFor("every shard owned once", d, func() bool {
		var ok bool
		got, ok = pc.owners(live)
		return ok
	})
	return got
}

// waitSettled waits until every shard is owned by its preferred member (the
// first of its placement): no hand-over is left to happen.
func (pc *procCluster) waitSettled(d time.Duration) {
	pc.t.Helper()
	pc.waitFor("ownership settled on preferred members", d, func() bool {
		owners, ok := pc.owners(pc.procs)
		if !ok {
			return false
		}
		st, err := pc.status(pc.procs[0])
		if err != nil {
			return false
		}
		for _, si := range st.Shards {
			if len(si.Placement) == 0 || owners[si.Shard].id != si.Placement[0] {
				return false
			}
		}
		return true
	})
}

// natsURL lists every member's NATS, so clients reconnect to a survivor.
func (pc *procCluster) natsURL() string {
	var urls []string
	for _, p := range pc.procs {
		urls = append(urls, "nats://"+p.natsAddr)
	}
	return strings.Join(urls, ",")
}

func (pc *procCluster) connect() *nats.Conn {
	pc.t.Helper()
	nc, err := nats.Connect(pc.natsURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		// A carrier notices a server that stopped answering and moves on.
		nats.PingInterval(500*time.Millisecond), nats.MaxPingsOutstanding(2),
		// What is published to a client while it reconnects is lost: say so,
		// so a lost notice can be told from one never sent.
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			fmt.Fprintf(os.Stderr, "%s test client: nats disconnected: %v\n", time.Now().Format(time.StampMicro), err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			fmt.Fprintf(os.Stderr, "%s test client: nats reconnected to %s\n", time.Now().Format(time.StampMicro), c.ConnectedUrlRedacted())
		}))
	if err != nil {
		pc.t.Fatal(err)
	}
	pc.t.Cleanup(nc.Close)
	return nc
}

// logLevel is the members' log level: debug when a benchmark traces, so a
// slow sample can be followed through the members' logs.
func logLevel() string {
	if os.Getenv("TSUNAGU_BENCH_TRACE") != "" {
		return "debug"
	}
	return "info"
}

// logSize is how far p's log has been written.
func (pc *procCluster) logSize(p *proc) int64 {
	fi, err := os.Stat(p.logf)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns up to max lines p logged after offset.
func (pc *procCluster) logSince(p *proc, offset int64, max int) string {
	data, err := os.ReadFile(p.logf)
	if err != nil || offset > int64(len(data)) {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data[offset:])), "\n")
	if len(lines) > max {
		lines = append(lines[:max], fmt.Sprintf("(%d more lines)", len(lines)-max))
	}
	return strings.Join(lines, "\n")
}

// queueShard is the shard of queue "q".
func queueShard() uint32 { return actors.ShardOf("q:q", shards) }

// metrics returns the lines of p's /metrics that start with one of names.
func (pc *procCluster) metrics(p *proc, names ...string) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		for _, n := range names {
			if strings.HasPrefix(line, n) {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "; ")
}
