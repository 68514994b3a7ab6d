package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tsunagu/tsunagu/loadtest/scenario"
)

// nodeProc is a node the harness started: its own binary, a generated
// config file, free loopback ports.
type nodeProc struct {
	cmd     *exec.Cmd
	natsURL string
	logPath string
	exited  chan struct{}
	err     error // set before exited closes
}

// moduleRoot finds the repository root from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/tsunagu/tsunagu\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("loadtest: not inside the tsunagu module; run from the repository or pass -node-bin")
		}
		dir = parent
	}
}

// buildNode builds ./node into dir and returns the binary's path.
func buildNode(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tsunagu-node")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./node")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("loadtest: go build ./node: %w\n%s", err, out)
	}
	return bin, nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startNode starts bin with the scenario's configuration on free loopback
// ports, logging to a file in dir, and waits until /healthz says ok.
func startNode(ctx context.Context, sc *scenario.Scenario, bin, dir string) (*nodeProc, error) {
	natsAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf, err := sc.NodeConfig(scenario.NodeListen{NodeID: "loadtest-1", NATSListen: natsAddr, HTTPListen: httpAddr})
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "node.json")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return nil, err
	}
	n := &nodeProc{natsURL: "nats://" + natsAddr, logPath: filepath.Join(dir, "node.log"), exited: make(chan struct{})}
	logFile, err := os.Create(n.logPath)
	if err != nil {
		return nil, err
	}
	n.cmd = exec.Command(bin, "-config", confPath)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	if err := n.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("loadtest: start node: %w", err)
	}
	go func() {
		n.err = n.cmd.Wait()
		logFile.Close()
		close(n.exited)
	}()
	if err := n.waitHealthy(ctx, "http://"+httpAddr+"/healthz", time.Minute); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

func (n *nodeProc) waitHealthy(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-n.exited:
			return fmt.Errorf("loadtest: node exited before it was healthy (%v); log %s:\n%s", n.err, n.logPath, n.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadtest: node not healthy at %s after %v; log %s:\n%s", url, limit, n.logPath, n.logTail())
		}
	}
}

func (n *nodeProc) logTail() string {
	data, _ := os.ReadFile(n.logPath)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// alive reports whether the node is still running.
func (n *nodeProc) alive() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// stop asks the node to shut down gracefully, then kills it after 15s.
func (n *nodeProc) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}
