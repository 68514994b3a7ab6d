package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/tsunagu/tsunagu/actors"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/cluster"
	"github.com/tsunagu/tsunagu/customer"
	"github.com/tsunagu/tsunagu/gateway"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Node is a running tsunagu node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	ns      *server.Server
	nc      *nats.Conn
	store   customer.Store
	sys     *actor.ActorSystem
	engine  *actors.Engine
	gw      *gateway.Gateway
	logs    []*cluster.MemoryLog[*shard.Result]
	httpSrv *http.Server
	httpLn  net.Listener
	ready   atomic.Bool
	started time.Time

	// Cluster mode.
	cluster  *cluster.Cluster
	remote   *remote.Remote
	metaSubs []*nats.Subscription
	stopping chan struct{}
	// owners are the newest shard owner announcements (see ownerOf).
	ownersMu sync.Mutex
	owners   map[uint32]*pb.ShardOwner
}

// Start brings a node up: NATS (embedded unless URLs are given), the
// customer store, the engine owning every shard, the gateway and HTTP.
// On error everything already started is stopped.
func Start(cfg Config, rc *routing.Config, log *slog.Logger) (n *Node, err error) {
	n = &Node{cfg: cfg, log: log, started: time.Now(), stopping: make(chan struct{}), owners: make(map[uint32]*pb.ShardOwner)}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GCPercent)
	}
	defer func() {
		if err != nil {
			_ = n.stop(context.Background())
			n = nil
		}
	}()
	url := ""
	if len(cfg.NATSURLs) == 0 {
		if n.ns, err = embeddedNATS(cfg, log); err != nil {
			return n, err
		}
		url = n.ns.ClientURL()
	} else {
		url = joinURLs(cfg.NATSURLs)
	}
	opts := []nats.Option{
		nats.Name("tsunagu-" + cfg.NodeID),
		// The default two-minute ping hides half-open connections.
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subject := ""
			if s != nil {
				subject = s.Subject
			}
			log.Warn("nats error", "subject", subject, "err", err)
		}),
	}
	if n.ns != nil {
		opts = append(opts, nats.InProcessServer(n.ns))
	}
	if n.nc, err = nats.Connect(url, opts...); err != nil {
		return n, fmt.Errorf("nats: connect %s: %w", redactURL(url), err)
	}

	switch {
	case cfg.Customers != nil:
		n.store = cfg.Customers
	case cfg.RedisURL != "":
		redis.SetLogger(customer.GoRedisLogger{Logger: log.With("component", "redis")})
		rcfg := customer.DefaultRedisConfig()
		rcfg.URL = cfg.RedisURL
		rcfg.Logger = log.With("component", "customer")
		r, rerr := customer.NewRedis(rcfg)
		if rerr != nil {
			return n, rerr
		}
		n.store = r
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if perr := r.Ping(ctx); perr != nil {
			log.Warn("redis not reachable at start; routing without personalisation until it is", "url", redactURL(cfg.RedisURL), "err", perr)
		}
		cancel()
	default:
		n.store = customer.NewMemory(customer.DefaultMemoryConfig())
	}

	actorLog := log.With("component", "protoactor")
	n.sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet(actorLog) }))
	clustered := cfg.RaftListen != ""
	if clustered {
		// Members learn each other's HTTP address, so it listens first;
		// /healthz says 503 until the node routes.
		if err = n.serveHTTP(); err != nil {
			return n, err
		}
		pbrc, cerr := n.startCluster()
		if cerr != nil {
			return n, cerr
		}
		if rc, err = routing.Compile(pbrc); err != nil {
			return n, fmt.Errorf("cluster routing configuration: %w", err)
		}
	}
	enc := gateway.Protobuf
	if cfg.OutEncoding == "json" {
		enc = gateway.JSON
	}
	gcfg := gateway.DefaultConfig()
	gcfg.Conn = n.nc
	gcfg.Workers = cfg.Workers
	gcfg.Encoding = enc
	gcfg.Logger = log.With("component", "gateway")
	if n.gw, err = gateway.New(gcfg); err != nil {
		return n, err
	}
	ecfg := actors.Config{
		Routing:   rc,
		Shards:    cfg.Shards,
		System:    n.sys,
		Bus:       n.gw,
		Events:    n.gw.Events,
		Customers: n.store,
		Logger:    log.With("component", "engine"),
	}
	if clustered {
		ecfg.Remote = n.sendRemote
	}
	if n.engine, err = actors.NewEngine(ecfg); err != nil {
		return n, err
	}
	if clustered {
		n.gw.SetShards(n.engine)
		if err = n.gw.Start(n.engine); err != nil {
			return n, err
		}
		if err = n.runCluster(); err != nil {
			return n, err
		}
		n.ready.Store(true)
		log.Info("node ready (cluster member)", "nats", redactURL(url), "raft", n.cluster.Self().GetRaftAddr(), "remote", n.cluster.Self().GetRemoteAddr(), "http", n.httpLn.Addr().String(), "shards", cfg.Shards, "queues", len(rc.QueueNames), "agents", len(rc.Agents))
		return n, nil
	}
	// A single node's state starts empty at every start, so each start is a
	// new owner term: the start time, which only grows, lets desktops,
	// carriers and observers tell a restart from a replay.
	term := uint64(n.started.UnixMilli())
	for i := uint32(0); i < cfg.Shards; i++ {
		st := shard.New(i, 0)
		st.StartSeqAt(term << 20) // room for a million contacts per millisecond of uptime
		l := cluster.NewMemoryLog(n.engine.Apply(st), actors.FailResult)
		n.logs = append(n.logs, l)
		n.engine.Acquire(i, term, st, l)
	}
	if err = n.gw.Start(n.engine); err != nil {
		return n, err
	}
	if err = n.serveHTTP(); err != nil {
		return n, err
	}
	n.ready.Store(true)
	log.Info("node ready", "nats", redactURL(url), "embedded_nats", n.ns != nil, "http", n.httpLn.Addr().String(), "shards", cfg.Shards, "queues", len(rc.QueueNames), "agents", len(rc.Agents), "routing", cfg.RoutingSource)
	return n, nil
}

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

// quiet keeps protoactor's info chatter out unless debugging.
func quiet(l *slog.Logger) *slog.Logger {
	return slog.New(levelFloor{l.Handler(), slog.LevelWarn})
}

type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func embeddedNATS(cfg Config, log *slog.Logger) (*server.Server, error) {
	host, portStr, _ := net.SplitHostPort(cfg.NATSListen)
	port, _ := strconv.Atoi(portStr)
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: cfg.NodeID,
		Host:       host,
		Port:       port,
		NoSigs:     true,
		MaxPayload: 1 << 20,
	}
	if cfg.NATSClusterListen != "" {
		// The members' embedded servers form one NATS cluster, so carriers
		// and desktops may connect to any of them.
		chost, cport, _ := net.SplitHostPort(cfg.NATSClusterListen)
		opts.Cluster.Name = "tsunagu"
		// A member that stops answering (paused, cut off) must drop out of
		// the NATS cluster within seconds, not the default minutes: until it
		// does, requests for the queue group may go to it and be lost.
		opts.PingInterval = time.Second
		opts.MaxPingsOut = 3
		opts.Cluster.Host = chost
		opts.Cluster.Port, _ = strconv.Atoi(cport)
		for _, r := range cfg.NATSRoutes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("nats: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: embedded server: %w", err)
	}
	ns.SetLoggerV2(natsLog{log.With("component", "nats-server")}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats: embedded server did not start on %s (address in use?)", cfg.NATSListen)
	}
	return ns, nil
}

// natsLog adapts the embedded server's logger to slog.
type natsLog struct{ l *slog.Logger }

func (n natsLog) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLog) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n natsLog) Fatalf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLog) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLog) Debugf(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLog) Tracef(format string, v ...any)  {}

func (n *Node) serveHTTP() error {
	ln, err := net.Listen("tcp", n.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("http: listen %s: %w", n.cfg.HTTPListen, err)
	}
	n.httpLn = ln
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !n.ready.Load() || n.nc.Status() != nats.CONNECTED {
			http.Error(w, "not ready\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /metrics", n.metrics)
	n.clusterHTTP(mux)
	// Profiles, for operators (the HTTP listener is loopback unless
	// configured otherwise).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	n.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// NATSURL is where clients reach this node's NATS.
func (n *Node) NATSURL() string {
	if n.ns != nil {
		return n.ns.ClientURL()
	}
	return joinURLs(n.cfg.NATSURLs)
}

// HTTPAddr is the HTTP listener's address.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// Shutdown stops taking work, lets what was delivered finish, then stops
// everything. Contacts still waiting are in memory on a single node and end
// with it; the cluster keeps them (see docs/operations.md).
func (n *Node) Shutdown(ctx context.Context) error {
	n.ready.Store(false)
	return n.stop(ctx)
}

// stop stops everything; ctx bounds waiting for HTTP requests in progress,
// the only step that waits on clients.
func (n *Node) stop(ctx context.Context) error {
	var err error
	select {
	case <-n.stopping:
	default:
		close(n.stopping)
	}
	if n.cluster != nil && n.engine != nil {
		n.stopCluster(ctx)
	}
	if n.httpSrv != nil {
		if herr := n.httpSrv.Shutdown(ctx); herr != nil {
			err = fmt.Errorf("http: %w", herr)
			_ = n.httpSrv.Close()
		}
	}
	// Stop taking requests, let the engine finish what was delivered and
	// the logs apply what was proposed, then send the last events.
	if n.gw != nil {
		n.gw.Drain()
	}
	if n.engine != nil {
		n.engine.Stop()
	}
	for _, l := range n.logs {
		l.Close()
	}
	for _, s := range n.metaSubs {
		_ = s.Unsubscribe()
	}
	if n.cluster != nil {
		if cerr := n.cluster.Close(); cerr != nil {
			n.log.Warn("cluster closed with an error", "err", cerr)
		}
	}
	if n.remote != nil {
		n.remote.Shutdown(true)
	}
	if n.sys != nil {
		n.sys.Shutdown()
	}
	if n.gw != nil {
		n.gw.Close()
	}
	if n.nc != nil {
		_ = n.nc.Drain()
		deadline := time.Now().Add(2 * time.Second)
		for !n.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		n.nc.Close()
	}
	if n.store != nil {
		_ = n.store.Close()
	}
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
	}
	return err
}
