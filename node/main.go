// Command node runs a tsunagu node. With no flags it is a working single
// node: an embedded NATS server on 127.0.0.1:4222, HTTP on 127.0.0.1:8080
// and demo queues. See README.md and docs/operations.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	cfg, err := Load(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stderr, "usage: node [flags]\n", Usage())
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tsunagu:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tsunagu:", err)
		if errors.Is(err, ErrConfig) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run validates cfg, starts a node, prints how to use it, and stops it
// gracefully when ctx ends.
func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	rc, err := cfg.Validate()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: levels[strings.ToLower(cfg.LogLevel)]})).With("node", cfg.NodeID)
	n, err := Start(cfg, rc, log)
	if err != nil {
		return err
	}
	if n.ns != nil {
		fmt.Fprint(stdout, banner(n))
	}
	<-ctx.Done()
	log.Info("shutting down")
	// shutdown_timeout 0 means no bound.
	sctx, cancel := context.Background(), context.CancelFunc(func() {})
	if d := time.Duration(cfg.ShutdownTimeout); d > 0 {
		sctx, cancel = context.WithTimeout(sctx, d)
	}
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func banner(n *Node) string {
	url := n.NATSURL()
	return fmt.Sprintf(`tsunagu is routing: NATS %s, health http://%s/healthz (routing: %s)

Try it with the nats CLI (JSON in, JSON out):
  # an agent logs in, ready, and watches for offers
  nats -s %[1]s sub 'tsunagu.v1.agents.agent-1.notices' &
  nats -s %[1]s req tsunagu.v1.agents.agent-1.commands '{"kind":"AGENT_COMMAND_KIND_LOGIN","ready":true}' -H Content-Type:application/json
  # a carrier (here "pbx") hands over a call; its routing instructions come
  # on tsunagu.v1.carriers.pbx.instructions
  nats -s %[1]s req tsunagu.v1.carriers.pbx.arrive '{"contact_id":"call-1","queue":"support","channel":"CHANNEL_VOICE"}' -H Content-Type:application/json
Notices are protobuf unless the node runs with -out-encoding json. docs/nats-contract.md has the whole contract.
`, url, n.HTTPAddr(), n.cfg.RoutingSource)
}
