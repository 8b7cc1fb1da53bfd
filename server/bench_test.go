package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// The Go benchmarks of the relay path. Run them with
//
//	go test -run '^$' -bench . -count 5 ./server/
//
// Each starts the simulator and the relay on loopback (benchStack, the same
// harness as `finesse-relay bench`) and changes an agent's state with a
// REST PUT on the simulator; an operation ends when the event has reached
// the clients the benchmark watches. The simulator applies a change 10 ms
// after its 202 (the CTI round trip), so BenchmarkDirectXMPP and
// BenchmarkRelayEventLatency both sit above 10 ms/op: compare them with
// each other (benchstat), and read hop-ns/op for what the relay adds.

// benchTestStack starts a stack for a benchmark with n agents; it stops at
// the end of the benchmark.
func benchTestStack(tb testing.TB, agents int) (*benchStack, []string) {
	tb.Helper()
	st, err := startBenchStack(context.Background(), agents, "websocket", zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
	})
	return st, st.agentIDs(agents)
}

// benchTestRig watches agent with a direct client and k tabs.
func benchTestRig(tb testing.TB, st *benchStack, agent string, k int) *benchRig {
	tb.Helper()
	r, err := st.newRig(context.Background(), agent, k)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return r
}

// BenchmarkDirectXMPP is the baseline: state change → event at a direct
// xmpp.Client signed in as the agent (no relay session for this agent).
func BenchmarkDirectXMPP(b *testing.B) {
	st, ids := benchTestStack(b, 1)
	r := benchTestRig(b, st, ids[0], 0)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if err := st.change(ctx, r.tr, r.agent, benchStateBody(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkRelayEventLatency is the relay path: state change → event at a
// WebSocket tab of the relay, JSON decoded. A direct client watches the
// same agent, so hop-ns/op (tab minus direct, same event) is what the relay
// adds on top of the Notification Service.
func BenchmarkRelayEventLatency(b *testing.B) {
	st, ids := benchTestStack(b, 1)
	r := benchTestRig(b, st, ids[0], 1)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if err := st.change(ctx, r.tr, r.agent, benchStateBody(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	var hop time.Duration
	evs := r.tr.take()
	for _, e := range evs {
		hop += e.lastTab.Sub(e.direct)
	}
	if len(evs) > 0 {
		b.ReportMetric(float64(hop.Nanoseconds())/float64(len(evs)), "hop-ns/op")
	}
}

// BenchmarkFanOut drives state changes of one agent with tabs=K relay
// tabs, 64 changes in flight; an operation is one event delivered to the
// direct client and every tab, so ns/op is the inverse of the sustained
// event rate and msgs/s counts the tab messages. tabs=0 is the baseline:
// the same drive with the direct client only and no relay session.
func BenchmarkFanOut(b *testing.B) {
	sizes := []int{0, 1, 10, 100} // 0: the baseline, direct client only
	st, ids := benchTestStack(b, len(sizes))
	for i, k := range sizes {
		r := benchTestRig(b, st, ids[i], k)
		if err := r.warmUp(context.Background(), st, benchDefaultInFlight); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("tabs=%d", k), func(b *testing.B) {
			r.tr.take()
			t0 := time.Now()
			if err := r.drive(context.Background(), st, benchDefaultInFlight, b.N, 0); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N*k)/time.Since(t0).Seconds(), "msgs/s")
			if n, codes := r.closedTabs(); n > 0 {
				b.Fatalf("the relay closed %d tabs (close codes %v)", n, codes)
			}
		})
	}
}

// TestBenchCommandSmoke runs the bench command with tiny numbers and checks
// that it succeeds and prints every measurement, so that a broken harness
// is noticed.
func TestBenchCommandSmoke(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // the command stops everything it started
	var out, errb bytes.Buffer
	args := []string{"--agents", "2", "--events", "20", "--tabs", "2", "--duration", "300ms", "--in-flight", "8", "--heap-top", "3", "--timeout", "60s"}
	if code := cmdBench(context.Background(), args, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	text := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`Latency: 20 state changes of agent 1001`),
		regexp.MustCompile(`direct: xmpp.Client OnUpdate +\d+(\.\d+)? (µs|ms)`),
		regexp.MustCompile(`relay: WebSocket tab, JSON decoded +\d+(\.\d+)? (µs|ms)`),
		regexp.MustCompile(`ratio relay/direct +\d+\.\d\d`),
		regexp.MustCompile(`relay hop: tab − direct, same event +-?\d+`),
		regexp.MustCompile(`baseline: agent 1003, direct client only +\d+ events/s`),
		regexp.MustCompile(`relay: agent 1002, direct client \+ 2 tabs +\d+ events/s`),
		regexp.MustCompile(`ratio relay/baseline +\d+\.\d\d`),
		regexp.MustCompile(`fan-out lag: last tab − direct, same event +p50 `),
		regexp.MustCompile(`incomplete events, tabs closed by the relay +0, 0`),
		regexp.MustCompile(`an event frame is \d+ bytes`),
		regexp.MustCompile(`CPU per event(, from a CPU profile by goroutine label|: not measured)`),
		regexp.MustCompile(`time to sign in 2 agents +\d`),
		regexp.MustCompile(`one sign-in +p50 `),
		regexp.MustCompile(`heap per session \(whole process\) +-?\d`),
		regexp.MustCompile(`of which relay +-?\d`),
		regexp.MustCompile(`of which simulator +-?\d`),
		regexp.MustCompile(`goroutine stacks per session +-?\d`),
		regexp.MustCompile(`goroutines per session \(whole process\) +-?\d`),
		regexp.MustCompile(`heap per session by allocation site \(top \d\):`),
	} {
		if !want.MatchString(text) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(errb.String(), "ERROR") {
		t.Errorf("errors logged:\n%s", errb.String())
	}
}

func TestBenchFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--agents", "0"},
		{"--events", "0"},
		{"--tabs", "0"},
		{"--duration", "1ms"},
		{"--in-flight", "129"},
		{"--transport", "auto"},
		{"--transport", "carrier-pigeon"},
		{"--heap-top", "-1"},
		{"extra"},
	} {
		var out, errb bytes.Buffer
		if code := cmdBench(context.Background(), args, &out, &errb); code != exitConfig {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitConfig, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("%v: printed a report for refused flags: %q", args, out.String())
		}
	}
}

func TestBenchPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // unsorted on purpose
	}
	for _, tc := range []struct {
		d    []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(3, 1, 2), 50, 2 * time.Millisecond},
		{ms(3, 1, 2), 100, 3 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 95, 95 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 0, 1 * time.Millisecond},
	} {
		if got := pct(tc.d, tc.p); got != tc.want {
			t.Errorf("pct(%v, %v) = %v, want %v", tc.d, tc.p, got, tc.want)
		}
	}
}

func TestBenchHeapPart(t *testing.T) {
	for _, tc := range []struct {
		stack []string // leaf first
		want  string
	}{
		{[]string{"bufio.NewReaderSize", "finesse-relay/server/sim/xmppd.(*conn).run"}, benchPartSim},
		{[]string{"bytes.growSlice", "crypto/tls.(*Conn).readClientHello", "crypto/tls.(*Conn).serverHandshake", "net/http.(*conn).serve"}, benchPartSim},
		{[]string{"bytes.growSlice", "crypto/tls.(*Conn).Read", "net/http.(*connReader).Read", "net/http.(*conn).serve"}, benchPartSim},
		{[]string{"finesse-relay/gadget.NewStream", "main.(*App).wire.func2", "finesse-relay/server/agent.newSession"}, benchPartRelay},
		{[]string{"crypto/tls.Client", "net/http.(*persistConn).addTLS", "net/http.(*Transport).dialConn"}, benchPartRelay},
		{[]string{"github.com/gorilla/websocket.newConn", "github.com/gorilla/websocket.(*Dialer).DialContext", "finesse-relay/xmpp.dialWebSocket"}, benchPartRelay},
		{[]string{"github.com/gorilla/websocket.newConn", "github.com/gorilla/websocket.(*Dialer).DialContext", "main.(*benchStack).openTab"}, benchPartBench},
		{[]string{"encoding/json.Unmarshal", "main.benchHeapByPart"}, benchPartBench},
		{[]string{"bufio.NewWriterSize", "net/http.newBufioWriterSize", "net/http.(*conn).serve"}, benchPartOther},
		{[]string{"runtime.malg", "runtime.newproc1"}, benchPartOther},
	} {
		if got := benchHeapPart(tc.stack, "main."); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.stack, got, tc.want)
		}
	}
}

func TestBenchGoroutinesByPart(t *testing.T) {
	const n = 5
	stop := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	pprof.Do(context.Background(), pprof.Labels(benchLabel, "test-part"), func(context.Context) {
		for range n {
			go func() {
				defer done.Done()
				started.Done()
				<-stop
			}()
		}
	})
	started.Wait()
	by, total, err := benchGoroutinesByPart()
	close(stop)
	done.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if by["test-part"] != n {
		t.Errorf("labelled goroutines: %d, want %d (by part %v)", by["test-part"], n, by)
	}
	if total < n+1 {
		t.Errorf("total %d, want at least %d", total, n+1)
	}
}

func TestBenchPackagePrefix(t *testing.T) {
	// In this test binary package main is named by its import path.
	if got := benchPackagePrefix(); got != "finesse-relay/server." {
		t.Errorf("benchPackagePrefix() = %q", got)
	}
}

func TestBenchStdlib(t *testing.T) {
	for f, want := range map[string]bool{
		"bufio.NewReaderSize":                  true,
		"crypto/tls.(*Conn).Read":              true,
		"net/http.(*conn).serve":               true,
		"main.(*App).wire":                     false,
		"finesse-relay/gadget.NewStream":       false,
		"github.com/gorilla/websocket.newConn": false,
		"go.uber.org/zap.(*Logger).With":       false,
	} {
		if got := benchStdlib(f); got != want {
			t.Errorf("benchStdlib(%q) = %v, want %v", f, got, want)
		}
	}
}

func TestBenchCPUByPart(t *testing.T) {
	stop, err := benchStartCPU()
	if err != nil {
		t.Skipf("CPU profiling unavailable: %v", err)
	}
	// A labelled goroutine spins for 300 ms of wall time.
	done := make(chan struct{})
	pprof.Do(context.Background(), pprof.Labels(benchLabel, "test-spin"), func(context.Context) {
		go func() {
			defer close(done)
			x := 0
			for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
				x++
			}
			_ = x
		}()
	})
	<-done
	by, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	// On a loaded machine the spinner gets a share of a core: want at
	// least a few 10 ms samples, and nothing attributed to a part that did
	// not run.
	if by["test-spin"] < 30*time.Millisecond {
		t.Errorf("labelled spinner got %v of CPU (by part %v)", by["test-spin"], by)
	}
	for part := range by {
		if part != "test-spin" && part != benchPartOther && part != benchPartBench {
			t.Errorf("CPU attributed to %q, which did not run", part)
		}
	}
}

func TestBenchPBFieldsRefusesBadInput(t *testing.T) {
	for _, b := range [][]byte{
		{0x08},             // varint field without its value
		{0x12, 0x05, 0x01}, // length 5, 1 byte left
		{0x09, 0x01},       // fixed64 truncated
		{0x0b},             // wire type 3 (groups)
		{0x80},             // key varint truncated
	} {
		if err := benchPBFields(b, func(int, int, uint64, []byte) error { return nil }); err == nil {
			t.Errorf("% x: no error", b)
		}
	}
	var got []string
	// field 1 varint 150, field 2 bytes "hi", field 3 fixed32
	msg := []byte{0x08, 0x96, 0x01, 0x12, 0x02, 'h', 'i', 0x1d, 1, 2, 3, 4}
	if err := benchPBFields(msg, func(num, wt int, v uint64, b []byte) error {
		got = append(got, fmt.Sprintf("%d/%d/%d/%s", num, wt, v, b))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"1/0/150/", "2/2/0/hi", "3/5/0/"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("fields %v, want %v", got, want)
	}
}

// FuzzBenchPBFields: the protobuf walker never panics, never hands out
// bytes beyond its input, and nested walks are as safe.
func FuzzBenchPBFields(f *testing.F) {
	f.Add([]byte{0x08, 0x96, 0x01, 0x12, 0x02, 'h', 'i', 0x1d, 1, 2, 3, 4})
	f.Add([]byte{0x12, 0x04, 0x08, 0x01, 0x10, 0x02})
	f.Add([]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var walk func(b []byte, depth int) error
		walk = func(b []byte, depth int) error {
			return benchPBFields(b, func(num, wt int, v uint64, data []byte) error {
				if len(data) > len(b) {
					t.Fatalf("field %d: %d bytes out of %d", num, len(data), len(b))
				}
				if wt == 2 && depth < 4 {
					_ = walk(data, depth+1)
				}
				return nil
			})
		}
		_ = walk(b, 0)
	})
}

func TestBenchHeapByPartFindsAllocations(t *testing.T) {
	// Retained allocations made under a bench frame must show up as bench
	// heap, scaled back to about their real size.
	old := runtime.MemProfileRate
	runtime.MemProfileRate = benchHeapRate
	defer func() { runtime.MemProfileRate = old }()
	runtime.GC() // the profile is as of the last GC: settle earlier tests' garbage
	runtime.GC()
	before, _, err := benchHeapByPart(false)
	if err != nil {
		t.Fatal(err)
	}
	keep := benchAllocate(256, 4096)
	after, _, err := benchHeapByPart(false)
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(keep)
	const want = 256 * 4096
	if got := after[benchPartBench] - before[benchPartBench]; got < want*3/4 || got > want*5/4 {
		t.Errorf("bench heap grew by %d bytes after retaining %d", got, want)
	}
}

// benchAllocate allocates n blocks of size bytes under a "main.bench"
// frame and forces a GC so that the heap profile includes them.
func benchAllocate(n, size int) [][]byte {
	b := make([][]byte, n)
	for i := range b {
		b[i] = make([]byte, size)
	}
	runtime.GC()
	runtime.GC()
	return b
}
