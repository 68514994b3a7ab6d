package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds how long a starting redis-server may take to answer;
	// it normally answers within tens of milliseconds.
	readyTimeout = 10 * time.Second
	pollInterval = 10 * time.Millisecond
	stopTimeout  = 10 * time.Second
	// startAttempts covers losing the race for a free port to another process
	// between choosing it and redis-server binding it.
	startAttempts = 5
	logTailBytes  = 4 << 10
)

// Start returns the URL of a Redis for t: $TSUNAGU_REDIS_URL if set (shared,
// never flushed: keep keys apart with KeyPrefix), otherwise that of a fresh
// redis-server stopped when t ends.
func Start(t testing.TB) (url string) {
	t.Helper()
	if u := os.Getenv("TSUNAGU_REDIS_URL"); u != "" {
		return u
	}
	return StartServer(t).URL()
}

// KeyPrefix returns a key prefix unique to this run of t, so tests sharing
// one Redis ($TSUNAGU_REDIS_URL, or one server in several subtests) cannot
// see each other's keys.
func KeyPrefix(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '/':
			return r
		}
		return '_' // braces would make a Redis Cluster hash tag
	}, t.Name())
	return fmt.Sprintf("tsunagu-test:%s:%08x:", name, rand.Uint32())
}

// Server is a redis-server process owned by one test. Its methods must be
// called from the test's goroutine (they may call t.Fatalf).
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	out  *syncBuffer // output of every run, shown when the test fails

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // cmd.Wait's result, set before done is closed
}

// StartServer starts a redis-server on 127.0.0.1 and a free port, without
// persistence (--save "" --appendonly no, in t.TempDir()), waits until it
// answers PING and stops it when t ends. It ignores $TSUNAGU_REDIS_URL: its
// callers need a server they can stop and start.
func StartServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: binary(t), dir: t.TempDir(), out: &syncBuffer{}}
	// Registered after TempDir, so it runs first: the server is gone before
	// its directory is removed.
	t.Cleanup(func() {
		s.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("redistest: redis-server on port %d said:\n%s", s.port, s.out.tail(logTailBytes))
		}
	})
	var err error
	for range startAttempts {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("redistest: finding a free port: %v", err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redistest: starting %s: %v\n%s", s.bin, err, s.out.tail(logTailBytes))
	return nil
}

// URL returns the server's redis:// URL; it stays the same across Stop and Start.
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop shuts the server down (SIGTERM, as an operator or orchestrator
// would) and waits until the process has exited, so the port refuses
// connections when Stop returns. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.t.Helper()
	s.stop(syscall.SIGTERM)
}

// Kill ends the server with SIGKILL, as a crash or OOM kill would, and waits
// until the process has exited.
func (s *Server) Kill() {
	s.t.Helper()
	s.stop(syscall.SIGKILL)
}

// Start starts a stopped server again on the same port, empty (nothing is
// persisted), and waits until it answers PING. Starting a running server
// does nothing.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		return
	}
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restarting redis-server on port %d: %v\n%s", s.port, err, s.out.tail(logTailBytes))
	}
}

func (s *Server) start() error {
	cmd := exec.Command(s.bin,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(s.port),
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "", // standard output, captured in s.out
	)
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	cmd.SysProcAttr = sysProcAttr()
	// The parent-death signal is tied to the thread that forks: keep the fork
	// on a thread Go will not retire while the child lives.
	runtime.LockOSThread()
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	if err := waitReady(s.Addr(), p); err != nil {
		s.stop(syscall.SIGKILL)
		return err
	}
	return nil
}

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig) // fails only if it has exited already
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitReady polls addr until redis-server process p answers PING. Checking
// the process id matters: when another process took the port first, ours
// exits and the other may well answer.
func waitReady(addr string, p *process) error {
	pid := p.cmd.Process.Pid
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("redis-server exited (%v) before answering on %s", p.err, addr)
		default:
		}
		got, err := probe(addr)
		switch {
		case err != nil:
			last = err
		case got != pid:
			return fmt.Errorf("%s is served by process %d, not by our redis-server (%d)", addr, got, pid)
		default:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server did not answer PING on %s within %s: %v", addr, readyTimeout, last)
		}
		select {
		case <-p.done:
		case <-tick.C:
		}
	}
}

// probe sends PING and INFO server and returns the answering process's id.
func probe(addr string) (pid int, err error) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "+PONG\r\n" {
		return 0, fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	line, err = r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
	if !strings.HasPrefix(line, "$") || err != nil || n < 0 {
		return 0, fmt.Errorf("INFO answered %q", strings.TrimSpace(line))
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(r, info); err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(info), "\r\n") {
		if v, ok := strings.CutPrefix(l, "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

func binary(t testing.TB) string {
	t.Helper()
	name := os.Getenv("TSUNAGU_REDIS_SERVER")
	if name == "" {
		name = "redis-server"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("redistest: %v; install Redis (Debian/Ubuntu: apt-get install -y redis-server) "+
			"or set $TSUNAGU_REDIS_SERVER to a redis-server binary, or $TSUNAGU_REDIS_URL to a running Redis", err)
	}
	return path
}

// freePort asks the kernel for an unused port. Another process may take it
// before redis-server binds it; StartServer retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects a child's output, written by exec's copying goroutines
// while the test may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.Bytes()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return string(s)
}
