package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// relayBinary builds finesse-relay once per test binary (the children of
// the bench are the real command, not this test binary).
func relayBinary(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "finesse-relay-bench-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "finesse-relay")
		out, err := exec.Command("go", "build", "-o", binPath, "finesse-relay/server").CombinedOutput()
		if err != nil {
			binErr = err
			tb.Logf("go build: %s", out)
		}
	})
	if binErr != nil {
		tb.Fatalf("building finesse-relay: %v", binErr)
	}
	return binPath
}

func TestParseMetricLine(t *testing.T) {
	tests := []struct {
		line, name, labels string
		v                  float64
		ok                 bool
	}{
		{"go_goroutines 42", "go_goroutines", "", 42, true},
		{`finesse_relay_sessions{state="up"} 7`, "finesse_relay_sessions", `{state="up"}`, 7, true},
		{"go_memstats_heap_alloc_bytes 1.5e+06", "go_memstats_heap_alloc_bytes", "", 1.5e6, true},
		{"# HELP go_goroutines Number of goroutines", "", "", 0, false},
		{"", "", "", 0, false},
		{"garbage", "", "", 0, false},
		{"x NaNx", "", "", 0, false},
	}
	for _, tt := range tests {
		name, labels, v, ok := parseMetricLine(tt.line)
		if name != tt.name || labels != tt.labels || v != tt.v || ok != tt.ok {
			t.Errorf("parseMetricLine(%q) = %q %q %v %v, want %q %q %v %v", tt.line, name, labels, v, ok, tt.name, tt.labels, tt.v, tt.ok)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	before := map[float64]float64{0.001: 10, 0.01: 10, math.Inf(1): 10}
	after := map[float64]float64{0.001: 60, 0.01: 108, math.Inf(1): 110} // 50 ≤ 1 ms, 48 ≤ 10 ms, 2 above
	tests := []struct {
		q, want float64
	}{{0.5, 0.001}, {0.9, 0.01}, {0.98, 0.01}, {0.99, math.Inf(1)}}
	for _, tt := range tests {
		if got := histogramQuantile(before, after, tt.q); got != tt.want {
			t.Errorf("q %v = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := histogramQuantile(after, after, 0.5); got != 0 {
		t.Errorf("no observations: %v", got)
	}
	if v, ok := labelValue(`{le="0.0025"}`, "le"); !ok || v != "0.0025" {
		t.Errorf("labelValue = %q %v", v, ok)
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {99, 10}, {100, 10}, {0, 1}, {10, 1}, {90, 9}}
	for _, tt := range tests {
		if got := pct(d, tt.p); got != tt.want {
			t.Errorf("pct(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if pct(nil, 50) != 0 {
		t.Error("pct of nothing is not 0")
	}
}

// TestTabSeqAccounting: a skipped seq is a lost message; snapshots and a
// fresh welcome are not.
func TestTabSeqAccounting(t *testing.T) {
	tests := []struct {
		name     string
		resuming bool
		msgs     []Msg
		gaps     int
		resumed  int
		snapshot int
	}{
		{"contiguous", false, []Msg{{Type: "welcome", Seq: 3}, {Type: "state", Seq: 3}, {Type: "status", Seq: 3}, {Type: "event", Seq: 4}, {Type: "state", Seq: 5}, {Type: "event", Seq: 6}}, 0, 0, 0},
		{"one missing", false, []Msg{{Type: "welcome", Seq: -1}, {Type: "event", Seq: 0}, {Type: "event", Seq: 2}}, 1, 0, 0},
		{"resumed replay", true, []Msg{{Type: "welcome", Seq: 9, Resumed: true}, {Type: "event", Seq: 6}, {Type: "event", Seq: 7}}, 0, 1, 0},
		{"resumed with snapshot", true, []Msg{{Type: "welcome", Seq: 9}, {Type: "state", Seq: 9}, {Type: "event", Seq: 10}}, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := &Tab{lastSeq: -2}
			if tt.resuming {
				tab.lastSeq = 5
			}
			for i := range tt.msgs {
				tab.account(&tt.msgs[i], tt.resuming && i == 0)
			}
			gaps, resumed, snapshot := tab.Counters()
			if gaps != tt.gaps || resumed != tt.resumed || snapshot != tt.snapshot {
				t.Errorf("gaps %d resumed %d snapshot %d, want %d %d %d", gaps, resumed, snapshot, tt.gaps, tt.resumed, tt.snapshot)
			}
		})
	}
}

func TestSampleProcReadsThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	f, err := os.Open(os.Args[0]) // one more fd than before
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS < 1<<20 || s.FDs < 4 {
		t.Errorf("RSS %d, fds %d: not this test process", s.RSS, s.FDs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for x := 0; time.Now().Before(deadline); x++ { // burn CPU until the tick counter moves
		if c, _ := procCPU(os.Getpid()); c > s.CPU {
			return
		}
	}
	t.Error("CPU time from /proc/self/stat does not advance")
}

func TestMainRefusesBadFlags(t *testing.T) {
	tests := [][]string{
		{"--scenarios", "nope"},
		{"--sessions", "0"},
		{"--sessions", "10001"},
		{"--relay-set", "NOEQUALS"},
		{"extra"},
	}
	for _, args := range tests {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), "/nonexistent", args, &out, &errb); code != exitConfig {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitConfig, errb.String())
		}
	}
}

// TestQuickScenarios runs the real binary as simulator and relay: the
// figures exist, nothing is lost, every session is up.
func TestQuickScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the relay (-short)")
	}
	rep, table := runQuick(t, "tabs,failover")
	want := map[string]float64{
		"upstream sessions": 20, "browser WebSockets": 60, "events that missed a tab": 0,
		"agents up on side B": 40, "messages missing on a tab (seq gaps)": 0, "changes on B not delivered": 0,
		"tabs dropped and resumed": 8,
	}
	got := map[string]float64{}
	for _, r := range rep.Results {
		for _, f := range r.Figures {
			got[f.Name] = f.Value
		}
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if !strings.Contains(table, "relay RSS per session") {
		t.Errorf("table without the per-session figures:\n%s", table)
	}
}

// benchRig is one agent with a direct client and k relay tabs, on its own
// stack.
func benchRig(b *testing.B, k int) (*run, *Direct) {
	b.Helper()
	exe := relayBinary(b)
	// BENCH_RELAY_EXE runs another build's relay: benchstat between builds.
	st, err := startStack(context.Background(), stackOptions{exe: exe, relayExe: os.Getenv("BENCH_RELAY_EXE"), agents: 2, transport: "websocket"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.close)
	r := &run{st: st, tr: newTracker(), progress: func(string, ...any) {}, res: &Result{}}
	id := AgentIDs(1)[0]
	agents, _, err := r.signInAll(context.Background(), []string{id}, k, 1, nil)
	b.Cleanup(func() { closeAll(agents) })
	if err != nil {
		b.Fatal(err)
	}
	d, err := st.up.DialDirect(context.Background(), id, r.tr.onDirect)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(d.Close)
	if err := r.tr.change(context.Background(), st.up, 0, id, LoginBody(id), k, true); err != nil {
		b.Fatal(err)
	}
	r.tr.take()
	return r, d
}

// BenchmarkRelayEvent: one state change at a time; ns/op is PUT → relay
// tab (JSON decoded); direct-ns/op the same event at the direct XMPP
// client, hop-ns/op their difference (what the relay adds).
func BenchmarkRelayEvent(b *testing.B) {
	r, _ := benchRig(b, 1)
	id := AgentIDs(1)[0]
	b.ResetTimer()
	for i := range b.N {
		if err := r.tr.change(context.Background(), r.st.up, 0, id, StateBody(i), 1, true); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var direct, relay, hop time.Duration
	evs := r.tr.take()
	for _, e := range evs {
		direct += e.direct.Sub(e.sent)
		relay += e.lastTab.Sub(e.sent)
		hop += e.lastTab.Sub(e.direct)
	}
	n := float64(max(len(evs), 1))
	b.ReportMetric(float64(direct)/n, "direct-ns/op")
	b.ReportMetric(float64(hop)/n, "hop-ns/op")
}

// BenchmarkFanOut: 64 changes in flight, each done when the direct client
// and all k tabs have it; relay-cpu-ns/op is the relay process's CPU per
// event (from /proc).
func BenchmarkFanOut(b *testing.B) {
	for _, k := range []int{1, 10, 100} {
		b.Run("tabs="+strconv.Itoa(k), func(b *testing.B) {
			r, _ := benchRig(b, k)
			id := AgentIDs(1)[0]
			gen := 0
			var mu sync.Mutex
			next := func() int { mu.Lock(); defer mu.Unlock(); gen++; return gen }
			cpu0, _ := procCPU(r.st.relay.pid())
			b.ResetTimer()
			var g errgroup.Group
			work := make(chan struct{}, b.N)
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			for range 64 {
				g.Go(func() error {
					for range work {
						if err := r.tr.change(context.Background(), r.st.up, 0, id, StateBody(next()), k, true); err != nil {
							return err
						}
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu1, _ := procCPU(r.st.relay.pid())
			b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "relay-cpu-ns/op")
		})
	}
}

// runQuick runs `bench --quick --scenarios scenarios` with the real binary
// as simulator and relay and returns its JSON report and its table.
func runQuick(t *testing.T, scenarios string) (Report, string) {
	t.Helper()
	exe := relayBinary(t)
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), exe, []string{"--quick", "--scenarios", scenarios, "--out", out}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep, stdout.String()
}
