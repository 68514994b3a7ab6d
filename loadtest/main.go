// Command loadtest runs a load-test scenario against tsunagu: simulated
// carriers and agents over the public NATS contract, open-loop Poisson
// arrivals, honest latency in HdrHistogram, invariant checks over the
// recorded history, and, in Erlang mode, a comparison with queueing
// theory. It starts a node of its own unless given -nats. See
// docs/loadtest.md.
//
//	go run ./loadtest -scenario loadtest/scenarios/smoke.json -out result.json -html report.html
//
// Exit status: 0 when every check (and every Erlang measure) passed, 1 when
// one failed, 2 when the run could not be carried out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/tsunagu/tsunagu/loadtest/check"
	"github.com/tsunagu/tsunagu/loadtest/report"
	"github.com/tsunagu/tsunagu/loadtest/scenario"
	"github.com/tsunagu/tsunagu/loadtest/sim"
)

// errFailed reports a run that completed but failed a check or a band.
var errFailed = errors.New("loadtest: run failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errFailed):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

type options struct {
	scenario, natsURL, nodeBin, writeConfig, out, html, workDir string
	timeScale                                                   float64
	duration                                                    time.Duration
	quiet                                                       bool
	cpuProfile                                                  string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.scenario, "scenario", "", "scenario file (JSON), e.g. loadtest/scenarios/smoke.json")
	fs.StringVar(&o.natsURL, "nats", "", "NATS URL of a running node or cluster configured with -write-config's file; empty starts a node")
	fs.StringVar(&o.nodeBin, "node-bin", "", "node binary to start; empty builds ./node")
	fs.StringVar(&o.writeConfig, "write-config", "", "write the node configuration for the scenario to this file and exit")
	fs.StringVar(&o.out, "out", "", "write the result as JSON to this file")
	fs.StringVar(&o.html, "html", "", "write an HTML report to this file")
	fs.StringVar(&o.workDir, "work-dir", "", "where a started node keeps its binary, config and log; empty: a temporary directory, removed after a passing run")
	fs.Float64Var(&o.timeScale, "time-scale", 0, "override the scenario's time scale")
	fs.DurationVar(&o.duration, "duration", 0, "override the scenario's arrival period (scenario time); streams that ran to its end run to the new end")
	fs.BoolVar(&o.quiet, "quiet", false, "no live progress line")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator over the run (go tool pprof) to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.scenario == "" || fs.NArg() > 0 {
		fs.Usage()
		return o, errors.New("loadtest: -scenario is required, and nothing else is")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	sc, err := scenario.Load(o.scenario)
	if err != nil {
		return err
	}
	if o.timeScale != 0 {
		sc.TimeScale = o.timeScale
		if err := sc.Validate(); err != nil {
			return err
		}
	}
	if o.duration != 0 {
		if err := sc.SetDuration(o.duration); err != nil {
			return err
		}
	}
	if o.writeConfig != "" {
		conf, err := sc.NodeConfig(scenario.NodeListen{})
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.writeConfig, conf, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote the node configuration for %s (%d queues, %d agents) to %s; start each node with -config %[4]s\n",
			sc.Name, len(sc.Queues), sc.TotalAgents(), o.writeConfig)
		return nil
	}
	model, err := sc.Compiled()
	if err != nil {
		return err
	}

	url := o.natsURL
	if url == "" {
		dir := o.workDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "tsunagu-loadtest-"); err != nil {
				return err
			}
			defer func() {
				if err == nil {
					os.RemoveAll(dir)
				}
			}()
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		bin := o.nodeBin
		if bin == "" {
			fmt.Fprintln(stderr, "building ./node …")
			if bin, err = buildNode(ctx, dir); err != nil {
				return err
			}
		}
		node, err := startNode(ctx, sc, bin, dir)
		if err != nil {
			return err
		}
		defer node.stop()
		defer func() {
			if !node.alive() {
				err = errors.Join(err, fmt.Errorf("loadtest: the node exited during the run (%v); log %s:\n%s", node.err, node.logPath, node.logTail()))
			} else if err != nil {
				fmt.Fprintf(stderr, "node log kept in %s\n", node.logPath)
			}
		}()
		url = node.natsURL
		fmt.Fprintf(stderr, "node up at %s (config and log in %s)\n", url, dir)
	}

	fmt.Fprintf(stderr, "running %s: %d agents, %v of arrivals at time scale %g (%v real)\n",
		sc.Name, sc.TotalAgents(), sc.Duration.D(), sc.TimeScale, sc.Real(sc.Duration.D()))
	cfg := sim.Config{
		Scenario: sc,
		NATSURL:  url,
		RunID:    "lt" + strconv.FormatInt(time.Now().UnixMilli(), 36),
		// A node this harness started shares its clock.
		SameClock: o.natsURL == "",
	}
	if !o.quiet {
		cfg.Progress = stderr
	}
	if o.cpuProfile != "" {
		stop, err := profileCPU(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	res, err := sim.Run(ctx, cfg)
	if err != nil {
		return err
	}
	checks := check.All(&res.Trace, check.Model{Routing: model}, sc.Checks.IdleBound.D(), sc.Checks.FIFOGrace.D())
	var erl *report.Erlang
	if sc.Erlang != nil {
		if erl, err = report.Compare(sc, report.Samples(sc, res)); err != nil {
			return err
		}
	}
	rep := report.Build(sc, res, checks, erl)
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if o.out != "" {
		if err := rep.WriteJSON(o.out); err != nil {
			return err
		}
	}
	if o.html != "" {
		if err := rep.WriteHTML(o.html); err != nil {
			return err
		}
	}
	if !rep.Pass {
		return fmt.Errorf("%w: %v", errFailed, rep.Failures())
	}
	return nil
}

// profileCPU starts a CPU profile written to path; stop ends it. The
// generator shares the machine with the node it drives, so what it costs
// is part of every figure it reports.
func profileCPU(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("loadtest: cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
