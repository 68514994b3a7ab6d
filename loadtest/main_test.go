package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsunagu/tsunagu/loadtest/report"
)

// TestSmokeAgainstRealNode builds the node, starts it with the smoke
// scenario's queues and agents on free loopback ports, runs the scenario
// over NATS and requires every check to pass.
func TestSmokeAgainstRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a node")
	}
	dir := t.TempDir()
	out, html := filepath.Join(dir, "result.json"), filepath.Join(dir, "report.html")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-scenario", "scenarios/smoke.json", "-quiet", "-work-dir", dir, "-out", out, "-html", html}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	c := rep.Counts
	switch {
	case !rep.Pass:
		t.Fatalf("run failed:\n%s", stdout.String())
	case c.Sent != c.Planned || c.Queued != c.Sent || c.Failed != 0:
		t.Errorf("planned %d, sent %d, queued %d, failed %d: every arrival should be accepted", c.Planned, c.Sent, c.Queued, c.Failed)
	case c.Handled == 0 || c.Handled+c.Abandoned != c.Queued || c.Unended != 0:
		t.Errorf("handled %d + abandoned %d should be queued %d (unended %d)", c.Handled, c.Abandoned, c.Queued, c.Unended)
	case c.Rejected == 0 || c.Offers <= c.Queued-c.Abandoned:
		t.Errorf("offers %d, rejected %d: rejects should re-offer", c.Offers, c.Rejected)
	case rep.Latency["routing"].Count != int64(c.Offers) || rep.Latency["arrival"].Count != int64(c.Queued):
		t.Errorf("latency counts %+v do not match the counts %+v", rep.Latency, c)
	case len(rep.Checks) != 6:
		t.Errorf("%d checks ran, want 6", len(rep.Checks))
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("<svg")) || !bytes.Contains(page, []byte("PASS")) {
		t.Error("the HTML report has no chart or no verdict")
	}
	if !strings.Contains(stdout.String(), "no-idle-agent") {
		t.Errorf("summary lacks the checks:\n%s", stdout.String())
	}
}

func TestWriteConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.json")
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"-scenario", "scenarios/multichannel.json", "-write-config", path}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if _, ok := file["routing"]; !ok || bytes.Contains(data, []byte("0.0.0.0")) {
		t.Fatalf("config without routing, or listening everywhere:\n%s", data)
	}
	if _, ok := file["nats_listen"]; ok {
		t.Error("a config for operators should leave the listen addresses to them")
	}
	if !strings.Contains(stdout.String(), "80 agents") {
		t.Errorf("stdout: %s", stdout.String())
	}
}

func TestUsage(t *testing.T) {
	if err := run(t.Context(), nil, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("no -scenario should be an error")
	}
}
