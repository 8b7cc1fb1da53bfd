package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"finesse-relay/server/sim"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat (100
// on every Linux architecture Go supports).
const clockTicks = 100

// proc is a child process: the simulator or the relay.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	logs *tailBuffer
}

// startProc execs exe args with the bench's environment plus env; its
// stderr is kept (the last lines, for errors) and its stdout discarded.
func startProc(name, exe string, args, env []string) (*proc, error) {
	cmd := exec.Command(exe, args...) // #nosec G204 -- the bench's own executable (or the operator's --relay-exe) with arguments the bench builds; no shell
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), logs: &tailBuffer{max: 8 << 10}}
	cmd.Stdout = io.Discard
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, exe, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports an error when the process has ended.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); its last output:\n%s", p.name, p.err, p.logs.String())
	default:
		return nil
	}
}

// stop sends SIGTERM, waits up to 15 s, then kills.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// stack is one simulator process and one relay process wired to it (in
// the cluster scenario also a redis-server and a second relay: cl).
type stack struct {
	dir       string
	sim       *proc
	relay     *proc
	base      string // the relay, http://127.0.0.1:port
	up        *Upstream
	rl        *Relay
	transport string
	cl        *clusterProcs // nil but in the cluster scenario

	// --profile: where profiles go, and the relay's METRICS_LISTEN
	// (http://127.0.0.1:port) serving /metrics and /debug/pprof/.
	profileDir, metricsBase string
}

// stackOptions configure startStack.
type stackOptions struct {
	exe       string   // finesse-relay (or a test binary acting as it)
	relayExe  string   // the relay's binary when not exe
	env       []string // extra environment of both children
	agents    int
	transport string
	relaySet  []string // extra --set KEY=VALUE of the relay
	// cluster also starts a private redis-server and a second relay, both
	// relays active on it (ACTIVE_INSTANCES=many).
	cluster bool
	// profileDir (--profile DIR): the relay also serves its profiles,
	// METRICS_LISTEN on a free loopback port and PPROF=true.
	profileDir string
}

// startStack starts `sim` and `serve` as two processes (with cluster:
// redis-server, `sim` and two `serve`) and waits until the relays are
// ready.
func startStack(ctx context.Context, o stackOptions) (st *stack, err error) {
	dir, err := os.MkdirTemp("", "finesse-relay-bench-")
	if err != nil {
		return nil, err
	}
	st = &stack{dir: dir, transport: o.transport}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	port, err := freePort()
	if err != nil {
		return st, err
	}
	st.base = "http://127.0.0.1:" + strconv.Itoa(port)
	st.sim, err = startProc("simulator", o.exe, []string{"sim", "--dir", dir, "--agents", strconv.Itoa(o.agents),
		"--fast", "--call-interval=-1s", "--forced-logout-delay=60s", "--transport", o.transport, "--relay-url", st.base, "--log-level", "error"}, o.env)
	if err != nil {
		return st, err
	}
	ep, ca, err := waitEndpoints(ctx, dir, st.sim)
	if err != nil {
		return st, err
	}
	if st.up, err = NewUpstream(ep, ca, o.transport); err != nil {
		return st, err
	}
	if o.cluster {
		if st.cl, err = startClusterStore(ctx, dir, o.agents); err != nil {
			return st, err
		}
	}
	relayArgs := func(port int, sets []string) []string {
		args := []string{"serve", "--config", filepath.Join(dir, "relay.env"), "--listen", "127.0.0.1:" + strconv.Itoa(port),
			"--log-level", "error", "--set", "SESSION_GRACE=10m", "--set", "LOG_FORMAT=console",
			// A store of this stack's own: by default the relay opens
			// finesse-relay.db in its working directory (the bench's), and
			// would restore the sessions of every earlier scenario and run.
			"--set", "STORE=file:" + filepath.Join(dir, "relay.db")}
		for _, s := range append(sets, o.relaySet...) {
			args = append(args, "--set", s)
		}
		return args
	}
	var profEnv []string // --profile (environment: below the --set flags)
	if o.profileDir != "" {
		mport, err := freePort()
		if err != nil {
			return st, err
		}
		st.profileDir, st.metricsBase = o.profileDir, "http://127.0.0.1:"+strconv.Itoa(mport)
		profEnv = []string{"METRICS_LISTEN=127.0.0.1:" + strconv.Itoa(mport), "PPROF=true"}
	}
	relayExe := o.exe
	if o.relayExe != "" {
		relayExe = o.relayExe
	}
	if st.relay, err = startProc("relay", relayExe, relayArgs(port, st.cl.sets("relay-a", st.base)), append(slices.Clip(o.env), profEnv...)); err != nil {
		return st, err
	}
	st.rl = NewRelay(st.base)
	if err := waitReady(ctx, st.rl, st.relay); err != nil || st.cl == nil {
		return st, err
	}
	if st.cl.relayB, err = startProc("relay B", relayExe, relayArgs(st.cl.portB, st.cl.sets("relay-b", st.cl.baseB)), o.env); err != nil {
		return st, err
	}
	st.cl.rlB = NewRelay(st.cl.baseB)
	return st, waitReady(ctx, st.cl.rlB, st.cl.relayB)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitEndpoints waits for the simulator's endpoints.json (written last).
func waitEndpoints(ctx context.Context, dir string, p *proc) (sim.Endpoints, []byte, error) {
	var ep sim.Endpoints
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "endpoints.json")) // #nosec G304 -- a fixed name in the bench's own os.MkdirTemp directory
		if err == nil {
			if err := json.Unmarshal(b, &ep); err != nil {
				return ep, nil, fmt.Errorf("simulator endpoints: %w", err)
			}
			ca, err := os.ReadFile(filepath.Join(dir, "ca.pem")) // #nosec G304 -- a fixed name in the bench's own os.MkdirTemp directory
			return ep, ca, err
		}
		if err := p.exited(); err != nil {
			return ep, nil, err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return ep, nil, errors.Join(errors.New("the simulator did not write its endpoints"), ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReady polls the /readyz of relay process p.
func waitReady(ctx context.Context, rl *Relay, p *proc) error {
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rl.Base+"/readyz", nil)
		rsp, err := rl.HTTP.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, rsp.Body)
			_ = rsp.Body.Close()
			if rsp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := p.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.Join(fmt.Errorf("%s did not become ready", p.name), ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// close stops the relays, then Redis and the simulator, and removes the
// directory.
func (st *stack) close() {
	if st.cl != nil && st.cl.relayB != nil {
		st.cl.relayB.stop() // first: it would adopt the agents relay A releases
	}
	if st.relay != nil {
		st.relay.stop()
	}
	if st.cl != nil {
		st.cl.close()
	}
	if st.sim != nil {
		st.sim.stop()
	}
	if st.rl != nil {
		st.rl.HTTP.CloseIdleConnections()
	}
	if st.up != nil {
		st.up.HTTP.CloseIdleConnections()
	}
	_ = os.RemoveAll(st.dir)
}

// Sample is one look at a process from /proc and, for the relay, its
// /metrics.
type Sample struct {
	At         time.Time
	RSS        int64         // bytes
	FDs        int           // open file descriptors
	CPU        time.Duration // user + system since start
	Heap       int64         // go_memstats_heap_alloc_bytes (relay only)
	Goroutines int           // go_goroutines (relay only)
	SessionsUp int           // finesse_relay_sessions{state="up"} (relay only)
	Sessions   int           // finesse_relay_sessions, every state (relay only)
	WSConns    int           // finesse_relay_ws_connections (relay only)
	// Latency is finesse_relay_event_relay_latency_seconds: cumulative
	// counts by upper bound in seconds (relay only).
	Latency map[float64]float64
}

// sampleProc reads RSS, fds and CPU of pid from /proc.
func sampleProc(pid int) (Sample, error) {
	s := Sample{At: time.Now()}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			s.RSS = kb << 10
		}
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return s, err
	}
	s.FDs = len(fds)
	s.CPU, err = procCPU(pid)
	return s, err
}

// noFileSoftLimit is the soft "Max open files" of pid (0: unknown).
func noFileSoftLimit(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

// procCPU is utime + stime of pid.
func procCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields count
	// from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)  // field 14, utime
	stt, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+stt) * time.Second / clockTicks, nil
}

// sampleRelay reads the relay process from /proc and its /metrics.
func (st *stack) sampleRelay(ctx context.Context) (Sample, error) {
	s, err := sampleProc(st.relay.pid())
	if err != nil {
		return s, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.metricsURL(), nil)
	rsp, err := st.rl.HTTP.Do(req)
	if err != nil {
		return s, fmt.Errorf("relay /metrics: %w", err)
	}
	defer rsp.Body.Close()
	sc := bufio.NewScanner(rsp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, labels, v, ok := parseMetricLine(sc.Text())
		if !ok {
			continue
		}
		switch name {
		case "go_memstats_heap_alloc_bytes":
			s.Heap = int64(v)
		case "go_goroutines":
			s.Goroutines = int(v)
		case "finesse_relay_event_relay_latency_seconds_bucket":
			if le, ok := labelValue(labels, "le"); ok {
				b, err := strconv.ParseFloat(le, 64)
				if err == nil {
					if s.Latency == nil {
						s.Latency = make(map[float64]float64)
					}
					s.Latency[b] = v
				}
			}
		case "finesse_relay_ws_connections":
			s.WSConns += int(v)
		case "finesse_relay_sessions":
			s.Sessions += int(v)
			if strings.Contains(labels, `"up"`) {
				s.SessionsUp += int(v)
			}
		}
	}
	return s, sc.Err()
}

// labelValue returns one label's value from `{a="x",b="y"}`.
func labelValue(labels, name string) (string, bool) {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return "", false
	}
	v, _, ok := strings.Cut(rest, `"`)
	return v, ok
}

// histogramQuantile is the upper bound of the bucket holding quantile q
// of the observations between two cumulative snapshots (+Inf when beyond
// the last finite bound, 0 without observations).
func histogramQuantile(before, after map[float64]float64, q float64) float64 {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0
	}
	for _, b := range bounds {
		if after[b]-before[b] >= q*total {
			return b
		}
	}
	return bounds[len(bounds)-1]
}

// parseMetricLine splits one line of the Prometheus text format.
func parseMetricLine(line string) (name, labels string, v float64, ok bool) {
	if line == "" || line[0] == '#' {
		return "", "", 0, false
	}
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return "", "", 0, false
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return "", "", 0, false
	}
	name = line[:sp]
	if i := strings.IndexByte(name, '{'); i >= 0 {
		name, labels = name[:i], name[i:]
	}
	return name, labels, v, true
}
