// Package bench is the multi-process benchmark of the relay: it runs the
// simulator (`finesse-relay sim`) and the relay (`finesse-relay serve`) as
// two child processes, drives them from this process (the load generator:
// browser tabs over WebSocket, direct XMPP clients, Finesse REST writes and
// the simulator's control API) and measures the relay process alone: RSS
// and file descriptors from /proc, CPU from /proc/PID/stat, heap,
// goroutines and sessions from its /metrics.
//
// Scenarios (each on a fresh simulator and relay):
//
//   - steady: agents with one tab, state changes as a Poisson process
//     (0.1/s per agent) plus bursts; relay and direct-XMPP latency of the
//     same events; CPU per relayed event and at idle;
//   - tabs: agents with three tabs each (upstream sessions stay one per
//     agent);
//   - scale-websocket, scale-tls: 10,000 sessions with the relay's XMPP
//     over WebSocket and over direct TLS; cost per session, CPU at idle;
//   - signin-storm: every agent signs in at once;
//   - failover: side A goes out of service; browsers drop and resume
//     meanwhile; time until every session is up on side B, events lost;
//   - throughput: open-loop rates until PUT → tab p99 passes 50 ms;
//   - cluster: two active relays on a private redis-server
//     (ACTIVE_INSTANCES=many), agents owned by one with a tab on each;
//     what cross-instance delivery adds, Redis memory per 1,000 agents.
//
// The package is not linked into the relay's serving path: package main
// only dispatches the bench command here.
package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Exit statuses, as package main's.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

// Scenarios in the order they run.
var scenarioNames = []string{"steady", "tabs", "scale-websocket", "scale-tls", "signin-storm", "failover", "throughput", "cluster"}

// Options configure Run.
type Options struct {
	// Exe is the finesse-relay binary the children run ("sim", "serve").
	Exe string
	// RelayExe, when set, runs `serve` instead of Exe: A/B runs of two
	// builds with the same simulator and load generator.
	RelayExe string
	// Env is added to the children's environment.
	Env []string
	// Quick runs every scenario at small sizes (under a minute); targets
	// are then not judged.
	Quick bool
	// Scenarios to run (default: all).
	Scenarios []string
	// Sessions is the scale scenarios' size (default 10,000).
	Sessions int
	// Agents, when set, is every other scenario's size (steady, tabs,
	// signin-storm, failover, throughput, cluster) instead of the issue's.
	Agents int
	// RelaySet are extra --set KEY=VALUE for the relay (A/B runs).
	RelaySet []string
	// ProfileDir (--profile), when set, is where the relay's CPU and heap
	// profiles go; the relay then serves them (PPROF=true on a separate
	// METRICS_LISTEN).
	ProfileDir string
	// Progress receives one line at a time (nil: discarded).
	Progress func(string, ...any)
}

// sizes are one run's scenario sizes.
type sizes struct {
	steadyAgents, steadyDirects int
	steadyRate                  float64
	steadyFor                   time.Duration
	tabsAgents                  int
	scale                       int
	storm                       int
	failover                    int
	tputAgents                  int
	tputRates                   []float64
	tputFor                     time.Duration
	idle                        time.Duration // how long idle CPU is measured
	clusterAgents               int
	clusterRate                 float64
	clusterFor                  time.Duration
	clusterFill                 int // agents whose stream is filled (1,024 messages)
}

func sizesFor(o Options) sizes {
	if o.Quick {
		return sizes{
			steadyAgents: 60, steadyDirects: 10, steadyRate: 60, steadyFor: 3 * time.Second,
			tabsAgents: 20, scale: min(o.Sessions, 150), storm: 60, failover: 40,
			tputAgents: 60, tputRates: []float64{100, 200}, tputFor: 2 * time.Second, idle: time.Second,
			clusterAgents: 50, clusterRate: 25, clusterFor: 3 * time.Second, clusterFill: 0,
		}
	}
	return sizes{
		steadyAgents: 2000, steadyDirects: 100, steadyRate: 200, steadyFor: 30 * time.Second,
		tabsAgents: 1000, scale: o.Sessions, storm: 2000, failover: 2000,
		tputAgents: 1000, tputRates: []float64{500, 1000, 2000, 3000, 4000}, tputFor: 5 * time.Second, idle: 5 * time.Second,
		clusterAgents: 1000, clusterRate: 100, clusterFor: 30 * time.Second, clusterFill: 4,
	}
}

// Run runs the scenarios and returns the report (also when a scenario
// failed: its Result says so).
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = scenarioNames
	}
	if o.Sessions == 0 {
		o.Sessions = 10000
	}
	sz := sizesFor(o)
	if o.Agents > 0 {
		sz.steadyAgents, sz.tabsAgents, sz.storm, sz.failover, sz.tputAgents = o.Agents, o.Agents, o.Agents, o.Agents, o.Agents
		sz.steadyRate = 0.1 * float64(o.Agents)
		sz.clusterAgents, sz.clusterRate = o.Agents, 0.1*float64(o.Agents)
		sz.steadyDirects = min(sz.steadyDirects, o.Agents)
	}
	rep := &Report{Started: time.Now(), Machine: machine(), Quick: o.Quick}
	defer func() {
		rep.Elapsed = time.Since(rep.Started).Round(time.Second).String()
		rep.LoadAfter = loadavg()
	}()
	var failed []string
	for _, name := range o.Scenarios {
		if ctx.Err() != nil {
			break
		}
		transport, agents, clustered := "websocket", 0, false
		var body func(context.Context, *run) error
		switch name {
		case "steady":
			agents = sz.steadyAgents
			body = func(ctx context.Context, r *run) error {
				return r.steady(ctx, agents, sz.steadyDirects, sz.steadyRate, sz.steadyFor, sz.idle)
			}
		case "tabs":
			agents = sz.tabsAgents
			body = func(ctx context.Context, r *run) error { return r.tabs(ctx, agents, 3) }
		case "scale-websocket", "scale-tls":
			agents = sz.scale
			transport = strings.TrimPrefix(name, "scale-")
			body = func(ctx context.Context, r *run) error { return r.scale(ctx, agents, 64, 2*sz.idle) }
		case "signin-storm":
			agents = sz.storm
			body = func(ctx context.Context, r *run) error { return r.storm(ctx, agents) }
		case "failover":
			agents = sz.failover
			body = func(ctx context.Context, r *run) error { return r.failover(ctx, agents) }
		case "throughput":
			agents = sz.tputAgents
			body = func(ctx context.Context, r *run) error { return r.throughput(ctx, agents, sz.tputRates, sz.tputFor) }
		case "cluster":
			agents, clustered = sz.clusterAgents, true
			body = func(ctx context.Context, r *run) error {
				return r.cluster(ctx, agents, sz.clusterRate, sz.clusterFor, sz.clusterFill)
			}
		default:
			return rep, fmt.Errorf("unknown scenario %q (want %s)", name, strings.Join(scenarioNames, ", "))
		}
		res := &Result{Name: name, Transport: transport, Agents: agents, quick: o.Quick}
		rep.Results = append(rep.Results, res)
		t0 := time.Now()
		var st *stack
		var err error
		if clustered {
			var skip string
			if skip, err = redisServerPresent(); skip != "" {
				res.Skipped = skip
				o.Progress("%s: skipped: %s", name, skip)
				continue
			}
		}
		if err == nil {
			o.Progress("%s: starting the simulator (%d agents) and the relay (XMPP over %s)%s", name, agents, transport,
				map[bool]string{true: ", twice, on a private redis-server", false: ""}[clustered])
			st, err = startStack(ctx, stackOptions{exe: o.Exe, relayExe: o.RelayExe, env: o.Env, agents: agents, transport: transport, relaySet: o.RelaySet, profileDir: o.ProfileDir, cluster: clustered})
		}
		if err == nil {
			r := &run{st: st, tr: newTracker(), progress: o.Progress, res: res}
			err = body(ctx, r)
			if err == nil {
				err = st.relay.exited()
			}
			if err == nil && st.cl != nil {
				err = st.cl.relayB.exited()
			}
			if m := res.missed(); err == nil && len(m) > 0 {
				err = fmt.Errorf("%s", strings.Join(m, "; "))
			}
		}
		if st != nil {
			st.close()
		}
		res.Elapsed = time.Since(t0).Round(100 * time.Millisecond).String()
		if err != nil {
			res.Error = err.Error()
			failed = append(failed, name)
			o.Progress("%s: FAILED: %v", name, err)
		} else {
			o.Progress("%s: done in %s", name, res.Elapsed)
		}
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("scenarios failed: %s", strings.Join(failed, ", "))
	}
	return rep, ctx.Err()
}

// Main is the bench command: flags, Run, the table on stdout, progress on
// stderr, JSON to --out. It execs exe for the children.
func Main(ctx context.Context, exe string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.BoolVar(&o.Quick, "quick", false, "every scenario at small sizes, under a minute (targets not judged)")
	scen := fs.String("scenarios", strings.Join(scenarioNames, ","), "comma-separated scenarios to run")
	fs.IntVar(&o.Sessions, "sessions", 10000, "sessions of the scale scenarios (at most 10000, the simulator's agents)")
	fs.IntVar(&o.Agents, "agents", 0, "agents of every other scenario (0: 2,000 for steady, storm and failover, 1,000 for tabs, throughput and cluster; --quick: fewer)")
	out := fs.String("out", "", "also write the report as JSON to this file")
	timeout := fs.Duration("timeout", 20*time.Minute, "give up when the whole run takes longer")
	var set multiFlag
	fs.StringVar(&o.RelayExe, "relay-exe", "", "run `serve` from this finesse-relay binary instead (A/B of two builds; same simulator and load)")
	fs.Var(&set, "relay-set", "extra KEY=VALUE for the relay (repeatable), e.g. UPSTREAM_CONNECT_CONCURRENCY=4096")
	fs.StringVar(&o.ProfileDir, "profile", "", "save the relay's CPU profile of each scenario's measured phase (and its heap at the end of scale-*) in this directory as <scenario>-cpu.pb.gz, -heap.pb.gz, and print their top functions (the relay runs with PPROF=true on a separate METRICS_LISTEN; figures then include the profiler's cost)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: finesse-relay bench [flags]\n\nRuns the simulator and the relay as two processes, drives them from this one and\nmeasures the relay process alone. Scenarios: %s.\n\nflags:\n", strings.Join(scenarioNames, ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "finesse-relay: bench: unexpected argument %q\n", fs.Arg(0))
		return exitConfig
	}
	o.Scenarios = strings.Split(*scen, ",")
	for _, s := range o.Scenarios {
		if !slices.Contains(scenarioNames, s) {
			fmt.Fprintf(stderr, "finesse-relay: bench: --scenarios: unknown %q (want %s)\n", s, strings.Join(scenarioNames, ", "))
			return exitConfig
		}
	}
	if o.Agents < 0 || o.Agents > 10000 {
		fmt.Fprintln(stderr, "finesse-relay: bench: --agents: want 0..10000")
		return exitConfig
	}
	if o.Sessions < 1 || o.Sessions > 10000 {
		fmt.Fprintln(stderr, "finesse-relay: bench: --sessions: want 1..10000")
		return exitConfig
	}
	if err := prepareProfileDir(o.ProfileDir); err != nil {
		fmt.Fprintln(stderr, "finesse-relay: bench: --profile:", err)
		return exitConfig
	}
	o.Exe, o.RelaySet = exe, set
	o.Progress = func(format string, a ...any) {
		fmt.Fprintf(stderr, "bench %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := Run(ctx, o)
	if rep != nil {
		rep.Print(stdout)
		if *out != "" {
			if werr := rep.WriteJSON(*out); werr != nil {
				fmt.Fprintln(stderr, "finesse-relay: bench:", werr)
				return exitFail
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "finesse-relay: bench:", err)
		return exitFail
	}
	return exitOK
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*m = append(*m, v)
	return nil
}
