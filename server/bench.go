package main

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"finesse-relay/server/sim"
	"finesse-relay/xmpp"
	"finesse-relay/xmpp/finesse"
)

// The bench command starts the simulator and the relay in this process, on
// loopback, and measures three things against a baseline taken in the same
// run:
//
//   - latency: one agent state change at a time (REST PUT on the simulator
//     with the agent's own credentials); the same event is timed at a
//     direct xmpp.Client signed in as the agent (resource "bench-direct")
//     and at a WebSocket tab of the relay (gorilla client, JSON decoded);
//   - fan-out: a fixed number of state changes in flight, each done when
//     its event reached the direct client and K tabs of the agent: events
//     per second, against the same drive on another agent watched by a
//     direct client only;
//   - sessions: N agents signed in concurrently through the relay's HTTP
//     API, one tab each; time to sign in, heap and goroutines per session.
//
// Every name in this file that runs on the client side starts with
// "bench": the heap attribution below relies on it.

// Bench defaults: a default run takes about 30 s on two cores.
const (
	benchDefaultAgents   = 200
	benchDefaultEvents   = 1000
	benchDefaultTabs     = 10
	benchDefaultDuration = 5 * time.Second
	benchDefaultInFlight = 64
	benchDefaultParallel = 32
	benchDefaultTimeout  = 3 * time.Minute

	benchPassword   = "demo" // the simulator's password for every user
	benchResource   = "bench-direct"
	benchWait       = 10 * time.Second // one event, one sign-in, one tab: longest wait
	benchHeapRate   = 4096             // runtime.MemProfileRate during the sessions phase
	benchLatencyID  = 0                // index of the latency agent (1001)
	benchFanOutID   = 1                // index of the fan-out agent (1002)
	benchBaselineID = 2                // index of the fan-out baseline agent (1003)
	benchFirstID    = 3                // first agent of the sessions phase
)

// benchOptions are the bench command's knobs.
type benchOptions struct {
	Agents    int           // sessions phase: agents signed in concurrently
	Events    int           // latency phase: state changes, one at a time
	Tabs      int           // fan-out phase: tabs of one agent
	Duration  time.Duration // fan-out phase: how long to drive events
	InFlight  int           // fan-out phase: state changes in flight
	Parallel  int           // sessions phase: sign-ins in flight
	Transport string        // XMPP transport of the relay and of the direct client
	Timeout   time.Duration // bound for the whole run
	HeapTop   int           // sessions phase: allocation sites to list
}

// cmdBench runs the benchmark harness and prints its table.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o benchOptions
	fs.IntVar(&o.Agents, "agents", benchDefaultAgents, "sessions phase: agents signed in concurrently, one tab each")
	fs.IntVar(&o.Events, "events", benchDefaultEvents, "latency phase: state changes timed one at a time")
	fs.IntVar(&o.Tabs, "tabs", benchDefaultTabs, "fan-out phase: WebSocket tabs of one agent")
	fs.DurationVar(&o.Duration, "duration", benchDefaultDuration, "fan-out phase: how long to drive state changes")
	fs.IntVar(&o.InFlight, "in-flight", benchDefaultInFlight, "fan-out phase: state changes in flight (each waits for every tab)")
	fs.IntVar(&o.Parallel, "parallel", benchDefaultParallel, "sessions phase: sign-ins in flight")
	fs.StringVar(&o.Transport, "transport", "websocket", "XMPP transport of the relay and the direct client: websocket, tls, tcp or bosh")
	fs.DurationVar(&o.Timeout, "timeout", benchDefaultTimeout, "give up when the whole run takes longer")
	fs.IntVar(&o.HeapTop, "heap-top", 0, "sessions phase: also list the N allocation sites that cost most heap per session")
	logLevel := fs.String("log-level", "warn", "log level of the relay and the simulator (to stderr)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: finesse-relay bench [flags]\n\nStarts the simulator and the relay on loopback in this process and measures\nrelay latency against a direct XMPP client, tab fan-out and sessions per instance.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "finesse-relay: bench: unexpected argument %q\n", fs.Arg(0))
		return exitConfig
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(stderr, "finesse-relay: bench:", err)
		return exitConfig
	}
	log, err := newLogger(*logLevel, "console", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "finesse-relay: bench: --log-level:", err)
		return exitConfig
	}
	defer func() { _ = log.Sync() }()

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	var rep *benchReport
	pprof.Do(ctx, pprof.Labels(benchLabel, benchPartBench), func(ctx context.Context) {
		rep, err = runBench(ctx, o, log, progress)
	})
	if rep != nil {
		rep.print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "finesse-relay: bench:", err)
		return exitFail
	}
	return exitOK
}

func (o *benchOptions) validate() error {
	switch {
	case o.Agents < 1 || o.Agents > sim.MaxAgents-2:
		return fmt.Errorf("--agents %d: want 1..%d", o.Agents, sim.MaxAgents-2)
	case o.Events < 1 || o.Events > 1_000_000:
		return fmt.Errorf("--events %d: want 1..1000000", o.Events)
	case o.Tabs < 1 || o.Tabs > 1000:
		return fmt.Errorf("--tabs %d: want 1..1000", o.Tabs)
	case o.Duration < 100*time.Millisecond || o.Duration > time.Hour:
		return fmt.Errorf("--duration %v: want 100ms..1h", o.Duration)
	case o.InFlight < 1 || o.InFlight > 128:
		// Above 128 the simulator's and the relay's 256-message queues
		// could overflow by design, which is not what this measures.
		return fmt.Errorf("--in-flight %d: want 1..128", o.InFlight)
	case o.Parallel < 1 || o.Parallel > 1000:
		return fmt.Errorf("--parallel %d: want 1..1000", o.Parallel)
	case o.HeapTop < 0 || o.HeapTop > 1000:
		return fmt.Errorf("--heap-top %d: want 0..1000", o.HeapTop)
	case o.Timeout <= 0:
		return fmt.Errorf("--timeout %v: want a positive duration", o.Timeout)
	}
	if _, ok := transports[o.Transport]; !ok || o.Transport == "auto" {
		return fmt.Errorf("--transport %q: want websocket, tls, tcp or bosh", o.Transport)
	}
	return nil
}

// --- the report ----------------------------------------------------------

// benchReport is everything one run measured.
type benchReport struct {
	opts     benchOptions
	env      string
	latency  *benchLatency
	fanOut   *benchFanOut
	sessions *benchSessions
}

// benchLatency is the latency phase's result.
type benchLatency struct {
	agent   string
	warmup  int
	direct  []time.Duration // PUT → direct xmpp.Client
	relay   []time.Duration // PUT → relay tab, JSON decoded
	hop     []time.Duration // relay − direct, per event
	elapsed time.Duration
}

// benchFanOut is the fan-out phase's result.
type benchFanOut struct {
	agent      string
	tabs       int
	inFlight   int
	events     int           // events that reached the direct client and every tab
	elapsed    time.Duration // first PUT → last event complete
	rate       float64       // events/s complete
	lag        []time.Duration
	frameBytes int64 // average event frame size seen by the tabs
	closedTabs int
	incomplete int
	cpu        map[string]time.Duration // CPU time of the measured run by part
	cpuErr     error                    // why cpu is missing

	baseline *benchFanOut // the same drive, another agent, direct client only
}

// benchSessions is the sessions phase's result.
type benchSessions struct {
	agents, parallel int
	elapsed          time.Duration
	perAgent         []time.Duration
	heap             int64            // HeapAlloc delta, whole process
	stacks           int64            // StackInuse delta, whole process
	heapBy           map[string]int64 // sampled heap profile delta by part
	goroutines       int              // goroutine delta, whole process
	goroutinesBy     map[string]int   // goroutine delta by pprof label
	sites            []benchSite      // biggest heap deltas by allocation site
}

// benchSite is the heap an allocation site added (whole phase).
type benchSite struct {
	site  string
	bytes int64
}

func (r *benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nfinesse-relay bench: simulator + relay in one process, loopback, XMPP transport %s\n", r.opts.Transport)
	fmt.Fprintf(w, "%s\n", r.env)
	fmt.Fprintf(w, "flags: --agents %d --events %d --tabs %d --duration %v --in-flight %d --parallel %d\n",
		r.opts.Agents, r.opts.Events, r.opts.Tabs, r.opts.Duration, r.opts.InFlight, r.opts.Parallel)
	if l := r.latency; l != nil {
		fmt.Fprintf(w, "\nLatency: %d state changes of agent %s, one at a time, after %d warm-up (%v)\n", len(l.direct), l.agent, l.warmup, l.elapsed.Round(time.Millisecond))
		fmt.Fprintln(w, "  from a REST PUT on the simulator (agent's own credentials) to the same event at each client")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  path\tp50\tp95\tp99\tmax\t")
		row := func(name string, d []time.Duration) {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t\n", name, benchFmt(pct(d, 50)), benchFmt(pct(d, 95)), benchFmt(pct(d, 99)), benchFmt(pct(d, 100)))
		}
		row("direct: xmpp.Client OnUpdate", l.direct)
		row("relay: WebSocket tab, JSON decoded", l.relay)
		fmt.Fprintf(tw, "  ratio relay/direct\t%.2f\t%.2f\t%.2f\t\t\n", ratio(pct(l.relay, 50), pct(l.direct, 50)),
			ratio(pct(l.relay, 95), pct(l.direct, 95)), ratio(pct(l.relay, 99), pct(l.direct, 99)))
		row("relay hop: tab − direct, same event", l.hop)
		_ = tw.Flush()
		fmt.Fprintln(w, "  both paths include the REST round trip and the simulator's 10 ms CTI delay between the 202 and the event;")
		fmt.Fprintln(w, "  the relay hop is what the relay adds (XMPP in, JSON out, WebSocket, client decode)")
	}
	if f := r.fanOut; f != nil {
		fmt.Fprintf(w, "\nFan-out: %d state changes in flight for %v; a change is done when the direct client and every tab have its event\n", f.inFlight, r.opts.Duration)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if b := f.baseline; b != nil {
			fmt.Fprintf(tw, "  baseline: agent %s, direct client only\t%.0f events/s\t(%d events in %v)\t\n", b.agent, b.rate, b.events, b.elapsed.Round(time.Millisecond))
		}
		fmt.Fprintf(tw, "  relay: agent %s, direct client + %d tabs\t%.0f events/s\t(%d events in %v; %.0f tab messages/s)\t\n", f.agent, f.tabs, f.rate, f.events, f.elapsed.Round(time.Millisecond), f.rate*float64(f.tabs))
		if b := f.baseline; b != nil && b.rate > 0 {
			fmt.Fprintf(tw, "  ratio relay/baseline\t%.2f\t\n", f.rate/b.rate)
		}
		fmt.Fprintf(tw, "  fan-out lag: last tab − direct, same event\tp50 %s\t(p99 %s, max %s)\t\n", benchFmt(pct(f.lag, 50)), benchFmt(pct(f.lag, 99)), benchFmt(pct(f.lag, 100)))
		fmt.Fprintf(tw, "  incomplete events, tabs closed by the relay\t%d, %d\t\n", f.incomplete, f.closedTabs)
		_ = tw.Flush()
		f.printCPU(w)
		if f.frameBytes > 0 {
			fmt.Fprintf(w, "  an event frame is %d bytes; a full resume ring (RESUME_RING_SIZE 1024) holds about %s per agent\n", f.frameBytes, benchBytes(1024*f.frameBytes))
		}
	}
	if s := r.sessions; s != nil {
		n := int64(len(s.perAgent))
		fmt.Fprintf(w, "\nSessions: %d agents signed in concurrently (%d in flight): POST /api/v1/sessions, WebSocket, welcome, status up\n", s.agents, s.parallel)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		rate := float64(n) / math.Max(s.elapsed.Seconds(), 1e-9)
		fmt.Fprintf(tw, "  time to sign in %d agents\t%v\t(%.0f agents/s)\t\n", n, s.elapsed.Round(time.Millisecond), rate)
		fmt.Fprintf(tw, "  one sign-in\tp50 %s\tp99 %s\tmax %s\t\n", benchFmt(pct(s.perAgent, 50)), benchFmt(pct(s.perAgent, 99)), benchFmt(pct(s.perAgent, 100)))
		if n > 0 {
			fmt.Fprintf(tw, "  heap per session (whole process)\t%s\t(runtime HeapAlloc delta after GC / %d)\t\n", benchBytes(s.heap/n), n)
			fmt.Fprintf(tw, "    of which relay\t%s\t\n", benchBytes(s.heapBy[benchPartRelay]/n))
			fmt.Fprintf(tw, "    of which simulator\t%s\t\n", benchBytes(s.heapBy[benchPartSim]/n))
			fmt.Fprintf(tw, "    of which bench tab client\t%s\t\n", benchBytes(s.heapBy[benchPartBench]/n))
			fmt.Fprintf(tw, "    unattributed\t%s\t(net/http and runtime buffers of either side)\t\n", benchBytes(s.heapBy[benchPartOther]/n))
			fmt.Fprintf(tw, "  goroutine stacks per session\t%s\t(StackInuse delta / %d, whole process)\t\n", benchBytes(s.stacks/n), n)
			fmt.Fprintf(tw, "  goroutines per session (whole process)\t%.1f\t\n", float64(s.goroutines)/float64(n))
			for _, part := range []string{benchPartRelay, benchPartSim, benchPartBench, benchPartOther} {
				fmt.Fprintf(tw, "    of which %s\t%.1f\t\n", part, float64(s.goroutinesBy[part])/float64(n))
			}
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "  parts: heap from a heap profile sampled every %d bytes, attributed by stack; goroutines by pprof label\n", benchHeapRate)
		if len(s.sites) > 0 && n > 0 {
			fmt.Fprintf(w, "  heap per session by allocation site (top %d):\n", len(s.sites))
			for _, site := range s.sites {
				fmt.Fprintf(w, "  %10s  %s\n", benchBytes(site.bytes/n), site.site)
			}
		}
	}
	fmt.Fprintln(w)
}

// printCPU prints the CPU time per event of each part, for the baseline
// and the relay run.
func (f *benchFanOut) printCPU(w io.Writer) {
	if f.cpu == nil {
		fmt.Fprintf(w, "  CPU per event: not measured (%v)\n", f.cpuErr)
		return
	}
	fmt.Fprintln(w, "  CPU per event, from a CPU profile by goroutine label (the bench's clients share the machine):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  run\trelay\tsimulator\tbench clients\truntime, GC\ttotal\tCPU used (1 core = 100%)\t")
	row := func(name string, r *benchFanOut) {
		if r == nil || r.cpu == nil || r.events == 0 {
			return
		}
		per := func(d time.Duration) string { return benchFmt(d / time.Duration(r.events)) }
		var total time.Duration
		for _, d := range r.cpu {
			total += d
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%.0f%%\t\n", name, per(r.cpu[benchPartRelay]), per(r.cpu[benchPartSim]),
			per(r.cpu[benchPartBench]), per(r.cpu[benchPartOther]), per(total), 100*total.Seconds()/math.Max(r.elapsed.Seconds(), 1e-9))
	}
	row("baseline", f.baseline)
	row(fmt.Sprintf("relay, %d tabs", f.tabs), f)
	_ = tw.Flush()
	if n := f.cpu[benchPartRelay]; n > 0 && f.events > 0 && f.tabs > 0 {
		fmt.Fprintf(w, "  the relay spent %s per event and %s per tab message\n",
			benchFmt(n/time.Duration(f.events)), benchFmt(n/time.Duration(f.events*f.tabs)))
	}
}

// benchEnv describes the machine and its load.
func benchEnv() string {
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	return fmt.Sprintf("%s %s/%s, %d CPUs, GOMAXPROCS %d, load average at start %s",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), load)
}

// pct is the p-th percentile (nearest rank) of d; d need not be sorted.
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func benchFmt(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + benchFmt(-d)
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func benchBytes(n int64) string {
	switch {
	case n < 0:
		return "-" + benchBytes(-n)
	case n < 10<<10:
		return fmt.Sprintf("%d B", n)
	case n < 10<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// --- the run -------------------------------------------------------------

// runBench starts the stack and runs the three phases. It returns what was
// measured so far together with the first error.
func runBench(ctx context.Context, o benchOptions, log *zap.Logger, progress func(string, ...any)) (rep *benchReport, err error) {
	rep = &benchReport{opts: o, env: benchEnv()}
	progress("starting the simulator (%d agents) and the relay", o.Agents+benchFirstID)
	st, err := startBenchStack(ctx, o.Agents+benchFirstID, o.Transport, log)
	if err != nil {
		return rep, err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("stopping: %w", cerr)
		}
	}()
	ids := st.agentIDs(o.Agents + benchFirstID)

	// The rigs stay open until the end: their agents' relay sessions would
	// otherwise end (SESSION_GRACE) during the sessions phase and skew its
	// heap figures.
	progress("latency: %d state changes of agent %s, one at a time", o.Events, ids[benchLatencyID])
	lr, err := st.newRig(ctx, ids[benchLatencyID], 1)
	if err != nil {
		return rep, fmt.Errorf("latency phase: %w", err)
	}
	defer lr.Close()
	if rep.latency, err = lr.runLatency(ctx, st, o.Events); err != nil {
		return rep, fmt.Errorf("latency phase: %w", err)
	}
	progress("fan-out baseline: agent %s, direct client only, %v", ids[benchBaselineID], o.Duration)
	br, err := st.newRig(ctx, ids[benchBaselineID], 0)
	if err != nil {
		return rep, fmt.Errorf("fan-out baseline: %w", err)
	}
	defer br.Close()
	base, err := br.runFanOut(ctx, st, o.InFlight, 0, o.Duration)
	if err != nil {
		return rep, fmt.Errorf("fan-out baseline: %w", err)
	}
	progress("fan-out: agent %s, %d tabs, %v", ids[benchFanOutID], o.Tabs, o.Duration)
	fr, err := st.newRig(ctx, ids[benchFanOutID], o.Tabs)
	if err != nil {
		return rep, fmt.Errorf("fan-out phase: %w", err)
	}
	defer fr.Close()
	rep.fanOut, err = fr.runFanOut(ctx, st, o.InFlight, 0, o.Duration)
	if rep.fanOut != nil {
		rep.fanOut.baseline = base
	}
	if err != nil {
		return rep, fmt.Errorf("fan-out phase: %w", err)
	}
	progress("sessions: %d agents, %d sign-ins in flight", o.Agents, o.Parallel)
	ses, err := st.runSessions(ctx, ids[benchFirstID:], o.Parallel, o.HeapTop)
	rep.sessions = ses
	if err != nil {
		return rep, fmt.Errorf("sessions phase: %w", err)
	}
	progress("done; stopping")
	return rep, nil
}

// --- the stack -----------------------------------------------------------

// pprof labels that tell the parts' goroutines apart.
const (
	benchLabel     = "finesse-relay-part"
	benchPartRelay = "relay"
	benchPartSim   = "simulator"
	benchPartBench = "bench"
	benchPartOther = "other"
)

// benchStack is the simulator and the relay, both running on loopback in
// this process, plus the clients the bench needs to talk to them.
type benchStack struct {
	base      string // the relay, http://127.0.0.1:port
	ep        sim.Endpoints
	transport string
	relayHTTP *http.Client // plain HTTP to the relay
	simHTTP   *http.Client // HTTPS to the simulator's REST API
	tlsConfig *tls.Config  // trusts the simulator's CA

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	closed bool
}

// startBenchStack starts a simulator with agents agents (robots and call
// generator off, fast timings) and a relay wired to it as the demo does,
// with transport as the XMPP transport, and waits until the relay is
// ready. Close stops both.
func startBenchStack(ctx context.Context, agents int, transport string, log *zap.Logger) (*benchStack, error) {
	if log == nil {
		log = zap.NewNop()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	base := "http://127.0.0.1:" + port
	secret := randomToken()
	s, err := sim.New(sim.Config{
		Agents: agents, Seed: 1, Fast: true, CallInterval: -1,
		ClientID: demoClientID, ClientSecret: secret, RedirectURIs: []string{base + "/idscallback"},
		Logger: log.Named("sim"),
	})
	if err != nil {
		ln.Close() // #nosec G104 -- releasing a listener on the error path of the bench
		return nil, fmt.Errorf("simulator: %w", err)
	}
	abandon := func() {
		ln.Close() // #nosec G104 -- releasing a listener on the error path of the bench
		done, cancel := context.WithCancel(context.Background())
		cancel()
		_ = s.Run(done) // closes the listeners New bound
	}
	cfg, err := demoConfig(s, secret, base, "127.0.0.1", port, "")
	if err != nil {
		abandon()
		return nil, err
	}
	ep := s.Endpoints()
	for i := range cfg.Sides {
		sd := &cfg.Sides[i]
		sd.XMPPTransport = transport
		switch transport {
		case "tcp":
			sd.XMPPPort = ep.Sides[i].XMPPPort
		case "tls":
			sd.XMPPPort = ep.Sides[i].XMPPTLSPort
		default:
			sd.XMPPPort = ep.Sides[i].HTTPSPort
		}
	}
	cfg.Listener = ln
	app, err := NewApp(cfg, log.Named("relay"))
	if err != nil {
		abandon()
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ep.CACertPEM)
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	st := &benchStack{
		base: base, ep: ep, transport: transport, tlsConfig: tc,
		relayHTTP: &http.Client{Timeout: benchWait, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}},
		simHTTP:   &http.Client{Timeout: benchWait, Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 1024}},
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	st.cancel = cancel
	st.goPart(runCtx, benchPartSim, s.Run)
	st.goPart(runCtx, benchPartRelay, app.Run)
	if err := st.waitReady(ctx); err != nil {
		st.Close() // #nosec G104 -- stopping the bench's stack on an error path; the error being returned matters more
		return nil, err
	}
	return st, nil
}

// goPart runs fn in a goroutine labelled part; Close waits for it.
func (st *benchStack) goPart(ctx context.Context, part string, fn func(context.Context) error) {
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		pprof.Do(ctx, pprof.Labels(benchLabel, part), func(ctx context.Context) {
			if err := fn(ctx); err != nil {
				st.mu.Lock()
				st.errs = append(st.errs, fmt.Errorf("%s: %w", part, err))
				st.mu.Unlock()
			}
		})
	}()
}

// waitReady polls /readyz; the relay's Manager starts right after it.
func (st *benchStack) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(benchWait)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.base+"/readyz", nil)
		rsp, err := st.relayHTTP.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, rsp.Body)
			rsp.Body.Close() // #nosec G104 -- closing a drained response body
			if rsp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz: %s", rsp.Status)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the relay did not become ready: %w", errors.Join(err, ctx.Err()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close stops the relay and the simulator and waits for them. It returns
// what they reported while running.
func (st *benchStack) Close() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	st.mu.Unlock()
	st.cancel()
	st.wg.Wait()
	st.relayHTTP.CloseIdleConnections()
	st.simHTTP.CloseIdleConnections()
	st.mu.Lock()
	defer st.mu.Unlock()
	return errors.Join(st.errs...)
}

// agentIDs are the simulator's first n agents (1001 upward, without the
// supervisor 2001), as the simulator numbers them.
func (st *benchStack) agentIDs(n int) []string {
	ids := make([]string, 0, n)
	for id := sim.FirstAgentID; len(ids) < n; id++ {
		if s := strconv.Itoa(id); s != sim.SupervisorID {
			ids = append(ids, s)
		}
	}
	return ids
}

// setState asks Finesse (side A of the simulator) to change the agent's
// state with the agent's own Basic credentials and returns the requestId
// of the 202.
func (st *benchStack) setState(ctx context.Context, agent, body string) (string, error) {
	u := st.ep.Sides[0]
	url := "https://" + net.JoinHostPort(u.Host, strconv.Itoa(u.HTTPSPort)) + finesse.APIPrefix + "User/" + agent
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(agent, benchPassword)
	req.Header.Set("Content-Type", "application/xml")
	rsp, err := st.simHTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(rsp.Body, 4<<10))
	if rsp.StatusCode != http.StatusAccepted || rsp.Header.Get("requestId") == "" {
		return "", fmt.Errorf("PUT User/%s: %d %s", agent, rsp.StatusCode, bytes.TrimSpace(b))
	}
	return rsp.Header.Get("requestId"), nil
}

func benchStateBody(i int) string {
	if i%2 == 0 {
		return "<User><state>READY</state></User>"
	}
	return "<User><state>NOT_READY</state></User>"
}

func benchLoginBody(agent string) string {
	return "<User><state>LOGIN</state><extension>5" + agent + "</extension></User>"
}

// --- the direct client ---------------------------------------------------

// benchDirect is an xmpp.Client signed in as an agent on side A with its
// own resource, next to the relay's session of the same agent.
type benchDirect struct {
	c    *xmpp.Client
	done chan struct{}
}

func (st *benchStack) dialDirect(ctx context.Context, agent string, onUpdate func(finesse.Update)) (*benchDirect, error) {
	side := st.ep.Sides[0]
	var addr string
	switch st.transport {
	case "tcp":
		addr = net.JoinHostPort(side.Host, strconv.Itoa(side.XMPPPort))
	case "tls":
		addr = net.JoinHostPort(side.Host, strconv.Itoa(side.XMPPTLSPort))
	case "bosh":
		addr = side.BOSHURL
	default:
		addr = side.WebSocketURL
	}
	tc := st.tlsConfig.Clone()
	tc.ServerName = side.Host
	c, err := xmpp.Dial(ctx, xmpp.Config{
		Transport: transports[st.transport], Address: addr,
		Domain: side.XMPPDomain, PubSubDomain: side.PubSubDomain, TLSConfig: tc,
		Username: agent, Password: benchPassword, Resource: benchResource,
		OnUpdate: onUpdate,
	})
	if err != nil {
		return nil, fmt.Errorf("direct XMPP client for %s: %w", agent, err)
	}
	d := &benchDirect{c: c, done: make(chan struct{})}
	go func() { // #nosec G118 -- the direct client runs until Close, not for one request; Close ends Run
		defer close(d.done)
		_ = c.Run(context.Background()) // ended by Close
	}()
	return d, nil
}

// Close ends the session and waits for Run to return.
func (d *benchDirect) Close() {
	_ = d.c.Close()
	<-d.done
}

// --- the relay's browser side --------------------------------------------

// benchSignIn is the answer to POST /api/v1/sessions.
type benchSignIn struct {
	Session string `json:"session"`
	Ticket  string `json:"ticket"`
}

// signIn signs agent in through the relay (non-SSO, as the tab's form).
func (st *benchStack) signIn(ctx context.Context, agent string) (benchSignIn, error) {
	body := fmt.Sprintf(`{"loginId":%q,"password":%q}`, agent, benchPassword)
	var out benchSignIn
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.base+"/api/v1/sessions", strings.NewReader(body))
		if err != nil {
			return out, err
		}
		req.Header.Set("Content-Type", "application/json")
		rsp, err := st.relayHTTP.Do(req)
		if err != nil {
			return out, fmt.Errorf("sign-in %s: %w", agent, err)
		}
		b, _ := io.ReadAll(io.LimitReader(rsp.Body, 16<<10))
		rsp.Body.Close() // #nosec G104 -- closing a drained response body
		// 503 only while the relay's Manager is starting.
		if rsp.StatusCode == http.StatusServiceUnavailable && attempt < 50 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if rsp.StatusCode != http.StatusCreated || json.Unmarshal(b, &out) != nil || out.Ticket == "" {
			return out, fmt.Errorf("sign-in %s: %d %s", agent, rsp.StatusCode, bytes.TrimSpace(b))
		}
		return out, nil
	}
}

// ticket asks the relay for another WebSocket ticket of a session.
func (st *benchStack) ticket(ctx context.Context, session string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.base+"/api/v1/tickets", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+session)
	rsp, err := st.relayHTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("ticket: %w", err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(rsp.Body, 16<<10))
	var out benchSignIn
	if rsp.StatusCode != http.StatusCreated || json.Unmarshal(b, &out) != nil || out.Ticket == "" {
		return "", fmt.Errorf("ticket: %d %s", rsp.StatusCode, bytes.TrimSpace(b))
	}
	return out.Ticket, nil
}

// benchMsg is the part of a relay message the bench looks at. Data is kept
// raw: the direct client does not decode the object either.
type benchMsg struct {
	Type      string          `json:"type"`
	Seq       int64           `json:"seq"`
	Node      string          `json:"node"`
	Event     string          `json:"event"`
	RequestID string          `json:"requestId"`
	Upstream  string          `json:"upstream"`
	Data      json.RawMessage `json:"data"`
}

// benchTab is one browser tab: a gorilla WebSocket client of the relay
// whose reader goroutine decodes every message and hands it to onMsg with
// its arrival time.
type benchTab struct {
	ws        *websocket.Conn
	done      chan struct{}
	closeCode atomic.Int32 // set when the relay closed the connection
}

// openTab connects with ticket, waits for the welcome and for the status
// "up", then reads in the background until Close.
func (st *benchStack) openTab(ctx context.Context, ticket string, onMsg func(benchMsg, int, time.Time)) (*benchTab, error) {
	d := websocket.Dialer{HandshakeTimeout: benchWait}
	ws, rsp, err := d.DialContext(ctx, strings.Replace(st.base, "http", "ws", 1)+"/ws?ticket="+ticket, nil)
	if err != nil {
		if rsp != nil {
			return nil, fmt.Errorf("tab: %w (HTTP %d)", err, rsp.StatusCode)
		}
		return nil, fmt.Errorf("tab: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(benchWait))
	welcome := false
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			ws.Close() // #nosec G104 -- closing a bench WebSocket that failed
			return nil, fmt.Errorf("tab: waiting for the welcome and status up: %w", err)
		}
		var m benchMsg
		if err := json.Unmarshal(b, &m); err != nil {
			ws.Close() // #nosec G104 -- closing a bench WebSocket that failed
			return nil, fmt.Errorf("tab: not JSON: %.64q", b)
		}
		welcome = welcome || m.Type == "welcome"
		if welcome && m.Type == "status" && m.Upstream == "up" {
			break
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	t := &benchTab{ws: ws, done: make(chan struct{})}
	go t.read(onMsg)
	return t, nil
}

func (t *benchTab) read(onMsg func(benchMsg, int, time.Time)) {
	defer close(t.done)
	for {
		_, b, err := t.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				t.closeCode.Store(int32(ce.Code)) // #nosec G115 -- WebSocket close codes are below 5000
			}
			return
		}
		var m benchMsg
		if json.Unmarshal(b, &m) != nil || onMsg == nil {
			continue
		}
		onMsg(m, len(b), time.Now()) // arrival: read and decoded, as a browser would

	}
}

// closedByRelay reports whether the relay ended the connection.
func (t *benchTab) closedByRelay() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// Close closes the connection and waits for the reader.
func (t *benchTab) Close() {
	_ = t.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = t.ws.Close()
	<-t.done
}

// --- matching events -----------------------------------------------------

// benchTracker matches the arrivals of each event, by requestId, at the
// direct client and at every tab. Arrivals may come before the PUT's
// answer is registered; an event is complete when it was sent, reached the
// direct client and reached every tab.
type benchTracker struct {
	node string // the agent's User node; other events are ignored
	tabs int

	mu       sync.Mutex
	pending  map[string]*benchEvent
	finished []*benchEvent

	frames, frameBytes atomic.Int64
}

// benchEvent is one event's timeline.
type benchEvent struct {
	sent, direct, lastTab time.Time
	tabHits               int
	done                  chan struct{}
}

func newBenchTracker(agent string, tabs int) *benchTracker {
	return &benchTracker{node: finesse.UserNode(agent), tabs: tabs, pending: make(map[string]*benchEvent)}
}

func (t *benchTracker) get(id string) *benchEvent {
	e := t.pending[id]
	if e == nil {
		e = &benchEvent{done: make(chan struct{})}
		t.pending[id] = e
	}
	return e
}

func (t *benchTracker) check(id string, e *benchEvent) {
	if !e.sent.IsZero() && !e.direct.IsZero() && e.tabHits >= t.tabs {
		delete(t.pending, id)
		t.finished = append(t.finished, e)
		close(e.done)
	}
}

// sent registers the PUT that caused event id, made at at.
func (t *benchTracker) sent(id string, at time.Time) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.get(id)
	e.sent = at
	t.check(id, e)
	return e.done
}

// onUpdate is the direct client's OnUpdate: it never blocks.
func (t *benchTracker) onUpdate(u finesse.Update) {
	at := time.Now()
	if u.Node != t.node || u.RequestID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.get(u.RequestID)
	if e.direct.IsZero() {
		e.direct = at
		t.check(u.RequestID, e)
	}
}

// onMsg is a tab's handler.
func (t *benchTracker) onMsg(m benchMsg, size int, at time.Time) {
	if m.Type != "event" || m.Node != t.node || m.RequestID == "" {
		return
	}
	t.frames.Add(1)
	t.frameBytes.Add(int64(size))
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.get(m.RequestID)
	e.tabHits++
	if at.After(e.lastTab) {
		e.lastTab = at
	}
	t.check(m.RequestID, e)
}

// take returns the completed events and forgets them.
func (t *benchTracker) take() []*benchEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.finished
	t.finished = nil
	return f
}

// incomplete is the number of sent events still waiting for an arrival.
func (t *benchTracker) incomplete() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, e := range t.pending {
		if !e.sent.IsZero() {
			n++
		}
	}
	return n
}

// change sends one state change and waits until it is complete.
func (st *benchStack) change(ctx context.Context, tr *benchTracker, agent, body string) error {
	t0 := time.Now()
	id, err := st.setState(ctx, agent, body)
	if err != nil {
		return err
	}
	select {
	case <-tr.sent(id, t0):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(benchWait):
		return fmt.Errorf("event %s of agent %s did not reach the direct client and all %d tabs within %v", id, agent, tr.tabs, benchWait)
	}
}

// benchRig is one agent watched by a direct client and k relay tabs.
type benchRig struct {
	agent  string
	tr     *benchTracker
	direct *benchDirect
	tabs   []*benchTab
}

// newRig signs agent in through the relay and opens k tabs (none when k
// is 0), opens a direct client, and signs the agent in to Finesse (LOGIN, NOT_READY), so that
// every later state change produces exactly one event on its User node.
func (st *benchStack) newRig(ctx context.Context, agent string, k int) (*benchRig, error) {
	r := &benchRig{agent: agent, tr: newBenchTracker(agent, k)}
	var si benchSignIn
	var err error
	if k > 0 {
		if si, err = st.signIn(ctx, agent); err != nil {
			return nil, err
		}
	}
	for i := range k {
		ticket := si.Ticket
		if i > 0 {
			if ticket, err = st.ticket(ctx, si.Session); err != nil {
				r.Close()
				return nil, err
			}
		}
		t, err := st.openTab(ctx, ticket, r.tr.onMsg)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.tabs = append(r.tabs, t)
	}
	if r.direct, err = st.dialDirect(ctx, agent, r.tr.onUpdate); err != nil {
		r.Close()
		return nil, err
	}
	if err := st.change(ctx, r.tr, agent, benchLoginBody(agent)); err != nil {
		r.Close()
		return nil, fmt.Errorf("LOGIN: %w", err)
	}
	r.tr.take()
	return r, nil
}

// closedTabs counts the tabs the relay closed.
func (r *benchRig) closedTabs() (n int, codes []int) {
	for _, t := range r.tabs {
		if t.closedByRelay() {
			n++
			codes = append(codes, int(t.closeCode.Load()))
		}
	}
	return n, codes
}

// Close closes the tabs and the direct client.
func (r *benchRig) Close() {
	for _, t := range r.tabs {
		t.Close()
	}
	if r.direct != nil {
		r.direct.Close()
	}
}

// drive runs workers goroutines that each change the agent's state and
// wait for the event to complete, until n changes were made (n > 0) or
// until d has passed. It returns the first error.
func (r *benchRig) drive(ctx context.Context, st *benchStack, workers, n int, d time.Duration) error {
	var next atomic.Int64
	deadline := time.Now().Add(d)
	g, ctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for {
				i := next.Add(1) - 1
				if (n > 0 && i >= int64(n)) || (n <= 0 && time.Now().After(deadline)) {
					return nil
				}
				if err := st.change(ctx, r.tr, r.agent, benchStateBody(int(i))); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// warmUp makes 2×inFlight changes with inFlight in flight and forgets
// them, so that the measured run does not pay for opening inFlight HTTPS
// connections to the simulator.
func (r *benchRig) warmUp(ctx context.Context, st *benchStack, inFlight int) error {
	err := r.drive(ctx, st, inFlight, 2*inFlight, 0)
	r.tr.take()
	return err
}

// --- phases --------------------------------------------------------------

// runLatency times events one at a time at the rig's direct client and
// its tabs (one, normally).
func (r *benchRig) runLatency(ctx context.Context, st *benchStack, events int) (*benchLatency, error) {
	res := &benchLatency{agent: r.agent, warmup: min(50, max(2, events/10))}
	if err := r.drive(ctx, st, 1, res.warmup, 0); err != nil {
		return nil, err
	}
	r.tr.take()
	t0 := time.Now()
	err := r.drive(ctx, st, 1, events, 0)
	res.elapsed = time.Since(t0)
	for _, e := range r.tr.take() {
		res.direct = append(res.direct, e.direct.Sub(e.sent))
		res.relay = append(res.relay, e.lastTab.Sub(e.sent))
		res.hop = append(res.hop, e.lastTab.Sub(e.direct))
	}
	return res, err
}

// runFanOut drives events to the rig's tabs with inFlight changes in
// flight, for n events (n > 0) or for d.
func (r *benchRig) runFanOut(ctx context.Context, st *benchStack, inFlight, n int, d time.Duration) (*benchFanOut, error) {
	k := len(r.tabs)
	res := &benchFanOut{agent: r.agent, tabs: k, inFlight: inFlight}
	if err := r.warmUp(ctx, st, inFlight); err != nil {
		return res, err
	}
	stopCPU, cpuErr := benchStartCPU()
	t0 := time.Now()
	err := r.drive(ctx, st, inFlight, n, d)
	if cpuErr == nil {
		res.cpu, cpuErr = stopCPU()
	}
	res.cpuErr = cpuErr
	evs := r.tr.take()
	res.events = len(evs)
	res.incomplete = r.tr.incomplete()
	res.closedTabs, _ = r.closedTabs()
	var last time.Time
	for _, e := range evs {
		done := e.direct
		if k > 0 {
			res.lag = append(res.lag, e.lastTab.Sub(e.direct))
			if e.lastTab.After(done) {
				done = e.lastTab
			}
		}
		if done.After(last) {
			last = done
		}
	}
	if len(evs) > 0 {
		res.elapsed = last.Sub(t0)
		res.rate = float64(len(evs)) / res.elapsed.Seconds()
	}
	if f := r.tr.frames.Load(); f > 0 {
		res.frameBytes = r.tr.frameBytes.Load() / f
	}
	if err == nil && res.closedTabs > 0 {
		_, codes := r.closedTabs()
		err = fmt.Errorf("the relay closed %d of %d tabs (close codes %v)", res.closedTabs, k, codes)
	}
	return res, err
}

// runSessions signs in every agent of ids through the relay, parallel at a
// time, each with one tab that waits for the status "up", and measures
// the time, the heap and the goroutines this added.
func (st *benchStack) runSessions(ctx context.Context, ids []string, parallel, heapTop int) (*benchSessions, error) {
	res := &benchSessions{agents: len(ids), parallel: parallel}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = benchHeapRate
	defer func() { runtime.MemProfileRate = old }()
	before, err := st.snapshot(heapTop > 0)
	if err != nil {
		return nil, err
	}

	tabs := make([]*benchTab, len(ids))
	took := make([]time.Duration, len(ids))
	defer func() {
		for _, t := range tabs {
			if t != nil {
				t.Close()
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	t0 := time.Now()
	for i, id := range ids {
		g.Go(func() error {
			start := time.Now()
			si, err := st.signIn(gctx, id)
			if err != nil {
				return err
			}
			if tabs[i], err = st.openTab(gctx, si.Ticket, nil); err != nil {
				return fmt.Errorf("agent %s: %w", id, err)
			}
			took[i] = time.Since(start)
			return nil
		})
	}
	err = g.Wait()
	res.elapsed = time.Since(t0)
	for _, d := range took {
		if d > 0 {
			res.perAgent = append(res.perAgent, d)
		}
	}
	if err != nil {
		return res, err
	}
	after, err := st.snapshot(heapTop > 0)
	if err != nil {
		return res, err
	}
	res.heap = int64(after.mem.HeapAlloc) - int64(before.mem.HeapAlloc)     // #nosec G115 -- MemStats byte counts of one process are far below 2^63
	res.stacks = int64(after.mem.StackInuse) - int64(before.mem.StackInuse) // #nosec G115 -- MemStats byte counts of one process are far below 2^63
	res.goroutines = after.goroutines - before.goroutines
	for site, v := range after.sites {
		if d := v - before.sites[site]; d > 0 {
			res.sites = append(res.sites, benchSite{site: site, bytes: d})
		}
	}
	slices.SortFunc(res.sites, func(a, b benchSite) int { return cmp.Compare(b.bytes, a.bytes) })
	res.sites = res.sites[:min(heapTop, len(res.sites))]
	res.heapBy = make(map[string]int64)
	res.goroutinesBy = make(map[string]int)
	for _, part := range []string{benchPartRelay, benchPartSim, benchPartBench, benchPartOther} {
		res.heapBy[part] = after.heapBy[part] - before.heapBy[part]
		res.goroutinesBy[part] = after.goroutinesBy[part] - before.goroutinesBy[part]
	}
	return res, nil
}

// --- accounting ----------------------------------------------------------

// benchStartCPU starts the CPU profiler; stop ends it and returns the CPU
// time by benchLabel. It fails when a CPU profile is already running (go
// test -cpuprofile).
func benchStartCPU() (stop func() (map[string]time.Duration, error), err error) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		return nil, err
	}
	return func() (map[string]time.Duration, error) {
		pprof.StopCPUProfile()
		return benchCPUByPart(buf.Bytes())
	}, nil
}

// benchCPUByPart sums a gzipped pprof CPU profile by the value of the
// benchLabel label; unlabelled samples (the runtime, GC workers, timers)
// count as "other". It reads the protobuf directly: Profile.sample (2),
// Profile.string_table (6), Sample.value (2, packed or not; the last value
// is CPU nanoseconds), Sample.label (3), Label.key (1) and Label.str (2).
func benchCPUByPart(gz []byte) (map[string]time.Duration, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 512<<20))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	var samples [][]byte
	var strs []string
	err = benchPBFields(raw, func(num, wt int, _ uint64, b []byte) error {
		switch {
		case num == 2 && wt == 2:
			samples = append(samples, b)
		case num == 6 && wt == 2:
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	by := make(map[string]time.Duration)
	for _, sample := range samples {
		var vals []uint64
		part := benchPartOther
		err := benchPBFields(sample, func(num, wt int, v uint64, b []byte) error {
			switch {
			case num == 2 && wt == 0:
				vals = append(vals, v)
			case num == 2 && wt == 2:
				for len(b) > 0 {
					x, n := binary.Uvarint(b)
					if n <= 0 {
						return errors.New("bad packed value")
					}
					vals, b = append(vals, x), b[n:]
				}
			case num == 3 && wt == 2:
				var key, str uint64
				if err := benchPBFields(b, func(num, wt int, v uint64, _ []byte) error {
					if wt == 0 && num == 1 {
						key = v
					} else if wt == 0 && num == 2 {
						str = v
					}
					return nil
				}); err != nil {
					return err
				}
				if key < uint64(len(strs)) && strs[key] == benchLabel && str < uint64(len(strs)) {
					part = strs[str]
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("cpu profile sample: %w", err)
		}
		if len(vals) > 0 {
			by[part] += time.Duration(vals[len(vals)-1]) // #nosec G115 -- a CPU profile sample value in ns, far below 2^63
		}
	}
	return by, nil
}

// benchPBFields calls fn for every field of a protobuf message: its
// number, its wire type, the value of a varint and the bytes of a
// length-delimited field.
func benchPBFields(b []byte, fn func(num, wt int, v uint64, data []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad field key")
		}
		b = b[n:]
		num, wt := int(key>>3), int(key&7)
		var v uint64
		var data []byte
		switch wt {
		case 0:
			if v, n = binary.Uvarint(b); n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
		case 1, 5:
			size := 8
			if wt == 5 {
				size = 4
			}
			if len(b) < size {
				return errors.New("truncated fixed field")
			}
			b = b[size:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) { // #nosec G115 -- n > 0 was checked and n <= len(b), so len(b)-n >= 0
				return errors.New("bad length")
			}
			data, b = b[n:n+int(l)], b[n+int(l):] // #nosec G115 -- l <= len(b)-n was checked on the line above
		default:
			return fmt.Errorf("unsupported wire type %d", wt)
		}
		if err := fn(num, wt, v, data); err != nil {
			return err
		}
	}
	return nil
}

// benchSnapshot is the process's memory and goroutines at one moment.
type benchSnapshot struct {
	mem          runtime.MemStats
	heapBy       map[string]int64
	sites        map[string]int64 // by allocation site, when asked
	goroutines   int
	goroutinesBy map[string]int
}

// snapshot settles the heap (idle connections closed, two GCs) and reads
// the memory statistics, the heap profile by part and the goroutines by
// label.
func (st *benchStack) snapshot(sites bool) (*benchSnapshot, error) {
	st.relayHTTP.CloseIdleConnections()
	st.simHTTP.CloseIdleConnections()
	time.Sleep(50 * time.Millisecond) // let closed connections' goroutines exit
	runtime.GC()
	runtime.GC()
	s := &benchSnapshot{}
	runtime.ReadMemStats(&s.mem) // before the profiles allocate their buffers
	var err error
	if s.heapBy, s.sites, err = benchHeapByPart(sites); err != nil {
		return nil, err
	}
	if s.goroutinesBy, s.goroutines, err = benchGoroutinesByPart(); err != nil {
		return nil, err
	}
	return s, nil
}

var (
	benchHeapHeader   = regexp.MustCompile(`@ heap/(\d+)`)
	benchHeapRecord   = regexp.MustCompile(`^(\d+): (\d+) \[\d+: \d+\] @`)
	benchGoroutineRec = regexp.MustCompile(`^(\d+) @ `)
)

// benchHeapByPart reads the heap profile (in-use bytes, as of the last GC)
// and attributes every record to a part by its stack, scaling the samples
// as pprof does.
func benchHeapByPart(withSites bool) (by, sites map[string]int64, err error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 1); err != nil {
		return nil, nil, err
	}
	pkg := benchPackagePrefix()
	by = make(map[string]int64)
	if withSites {
		sites = make(map[string]int64)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	rate := 0.0
	var objs, size int64
	var funcs []string
	flush := func() {
		if objs > 0 && size > 0 {
			part, n := benchHeapPart(funcs, pkg), benchScale(objs, size, rate)
			by[part] += n
			if sites != nil {
				sites[part+": "+benchSiteName(funcs)] += n
			}
		}
		objs, size, funcs = 0, 0, funcs[:0]
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case rate == 0:
			m := benchHeapHeader.FindStringSubmatch(line)
			if m == nil {
				return nil, nil, fmt.Errorf("heap profile: unexpected header %.80q", line)
			}
			r, _ := strconv.ParseFloat(m[1], 64)
			rate = r / 2 // the header shows 2*MemProfileRate
		case benchHeapRecord.MatchString(line):
			flush()
			m := benchHeapRecord.FindStringSubmatch(line)
			objs, _ = strconv.ParseInt(m[1], 10, 64)
			size, _ = strconv.ParseInt(m[2], 10, 64)
		case strings.HasPrefix(line, "#\t0x"):
			if f := strings.Fields(line); len(f) >= 3 {
				name, _, _ := strings.Cut(f[2], "+0x")
				funcs = append(funcs, name)
			}
		case strings.HasPrefix(line, "# runtime.MemStats"):
			flush()
			return by, sites, sc.Err()
		}
	}
	flush()
	return by, sites, sc.Err()
}

// benchStdlib reports whether f is a function of the standard library or
// the runtime (its first path element has no dot and is not ours).
func benchStdlib(f string) bool {
	first, _, nested := strings.Cut(f, "/")
	if nested {
		return !strings.Contains(first, ".") && first != "finesse-relay"
	}
	pkg, _, _ := strings.Cut(f, ".")
	return pkg != "main" // a standard package without a slash: bufio, runtime, sync...
}

// benchSiteName names an allocation site: the allocating function and the
// first callers outside the standard library and the runtime.
func benchSiteName(funcs []string) string {
	var parts []string
	for i, f := range funcs {
		if i == 0 || !benchStdlib(f) {
			parts = append(parts, f)
		}
		if len(parts) == 3 {
			break
		}
	}
	return strings.Join(parts, " < ")
}

// benchPackagePrefix is the prefix of this package's function names in
// profiles: "main." in the command, the import path in a test binary.
func benchPackagePrefix() string {
	name := runtime.FuncForPC(reflect.ValueOf(benchPackagePrefix).Pointer()).Name()
	return strings.TrimSuffix(name, "benchPackagePrefix")
}

// benchScale undoes heap sampling like pprof's scaleHeapSample.
func benchScale(objs, size int64, rate float64) int64 {
	if rate <= 1 {
		return size
	}
	avg := float64(size) / float64(objs)
	return int64(float64(size) / (1 - math.Exp(-avg/rate)))
}

// benchHeapPart attributes an allocation stack (leaf first). The relay
// serves plain HTTP in the bench, so a TLS server frame belongs to the
// simulator; the simulator has no HTTP client and the bench closes its own
// idle connections before each snapshot, so an HTTP client connection
// belongs to the relay (its REST client). Allocations made by net/http's
// server connection goroutines before a handler runs (read and write
// buffers, the request) cannot be told apart: "other".
// pkg is this package's symbol prefix: "main." in the command,
// "finesse-relay/server." in its test binary.
func benchHeapPart(funcs []string, pkg string) string {
	var tlsFrame, httpServe bool
	for _, f := range funcs {
		switch {
		case strings.HasPrefix(f, "finesse-relay/server/sim"):
			return benchPartSim
		case strings.HasPrefix(f, pkg+"bench") || strings.HasPrefix(f, pkg+"(*bench"):
			return benchPartBench
		case strings.HasPrefix(f, "crypto/tls.(*serverHandshake"), f == "crypto/tls.(*Conn).serverHandshake":
			return benchPartSim
		case strings.HasPrefix(f, "finesse-relay/"), strings.HasPrefix(f, pkg):
			return benchPartRelay
		case strings.HasPrefix(f, "net/http.(*Transport)."), strings.HasPrefix(f, "net/http.(*persistConn)."):
			return benchPartRelay
		case strings.HasPrefix(f, "crypto/tls."):
			tlsFrame = true
		case f == "net/http.(*conn).serve":
			httpServe = true
		}
	}
	if tlsFrame && httpServe {
		return benchPartSim
	}
	return benchPartOther
}

// benchGoroutinesByPart counts goroutines by their benchLabel.
func benchGoroutinesByPart() (map[string]int, int, error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		return nil, 0, err
	}
	by := make(map[string]int)
	total := 0
	lines := strings.Split(buf.String(), "\n")
	key := `"` + benchLabel + `":"`
	for i, line := range lines {
		m := benchGoroutineRec.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		total += n
		part := benchPartOther
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "# labels: ") {
			if _, rest, ok := strings.Cut(lines[i+1], key); ok {
				part, _, _ = strings.Cut(rest, `"`)
			}
		}
		by[part] += n
	}
	return by, total, nil
}
