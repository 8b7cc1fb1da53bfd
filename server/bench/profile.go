package bench

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"
)

// Profiles of the relay process (--profile DIR): the relay runs with
// METRICS_LISTEN on a free loopback port and PPROF=true, and the bench
// takes its profiles from there (net/http/pprof) while a scenario's
// measured phase runs. CPU profiles are taken in back-to-back windows of
// cpuWindow and merged, so a phase of unknown length (a sign-in storm) is
// covered from start to end; the last window may run past the phase's end
// by up to cpuWindow.
const cpuWindow = time.Second

// topN is how many functions the report lists per profile and order.
const topN = 15

// ProfileTop is one profile the bench saved, with its top functions.
type ProfileTop struct {
	Kind   string    `json:"kind"`   // "CPU" or "heap inuse_space"
	Phase  string    `json:"phase"`  // what ran meanwhile
	File   string    `json:"file"`   // where the profile was saved
	Window string    `json:"window"` // wall time covered (cpu)
	Total  float64   `json:"total"`  // ms of CPU samples, or MiB in use
	Unit   string    `json:"unit"`
	Flat   []TopFunc `json:"flat"` // by the function's own samples
	Cum    []TopFunc `json:"cum"`  // by the samples with the function on the stack
}

// TopFunc is one function's share of a profile.
type TopFunc struct {
	Func  string  `json:"func"`
	Value float64 `json:"value"` // in the profile's Unit
	Share float64 `json:"share"` // % of the profile's Total
}

// profiling reports whether this stack's relay serves its profiles.
func (st *stack) profiling() bool { return st.profileDir != "" && st.metricsBase != "" }

// fetchProfile GETs one profile from the relay's METRICS_LISTEN.
func (st *stack) fetchProfile(ctx context.Context, path string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.metricsBase+path, nil)
	rsp, err := st.rl.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("relay %s: %w", path, err)
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	if err == nil && rsp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", rsp.Status, bytes.TrimSpace(b))
	}
	if err != nil {
		return nil, fmt.Errorf("relay %s: %w", path, err)
	}
	return b, nil
}

// startCPUProfile profiles the relay's CPU until stop is called; stop
// saves DIR/<scenario>-cpu.pb.gz and adds its top functions to the
// result (calls after the first do nothing). Without --profile both do
// nothing.
func (r *run) startCPUProfile(ctx context.Context, phase string) (stop func()) {
	if !r.st.profiling() {
		return func() {}
	}
	var once sync.Once
	end := r.cpuProfiler(ctx, phase)
	return func() { once.Do(end) }
}

// cpuProfiler starts taking CPU profiles; the function it returns stops
// and saves them.
func (r *run) cpuProfiler(ctx context.Context, phase string) func() {
	ctx, cancel := context.WithCancel(ctx)
	var stopping atomic.Bool
	done := make(chan struct{})
	var parts []*profile.Profile
	var errs []error
	t0 := time.Now()
	go func() {
		defer close(done)
		path := fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(cpuWindow/time.Second))
		for !stopping.Load() && ctx.Err() == nil && len(errs) < 3 {
			b, err := r.st.fetchProfile(ctx, path)
			if err == nil {
				var p *profile.Profile
				if p, err = profile.ParseData(b); err == nil {
					parts = append(parts, p)
					continue
				}
			}
			if ctx.Err() == nil {
				errs = append(errs, err)
			}
		}
	}()
	return func() {
		stopping.Store(true)
		select {
		case <-done: // the window in flight ends (≤ cpuWindow)
		case <-time.After(cpuWindow + 5*time.Second):
		}
		cancel()
		<-done
		window := time.Since(t0)
		if len(parts) == 0 {
			r.progress("%s: no CPU profile: %v", r.res.Name, errors.Join(errs...))
			return
		}
		p, err := profile.Merge(parts)
		if err != nil {
			r.progress("%s: CPU profile: %v", r.res.Name, err)
			return
		}
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			r.progress("%s: CPU profile: %v", r.res.Name, err)
			return
		}
		top, err := r.saveProfile("cpu", phase, buf.Bytes(), p)
		if err != nil {
			r.progress("%s: CPU profile: %v", r.res.Name, err)
			return
		}
		top.Window = window.Round(100 * time.Millisecond).String()
		r.progress("%s: CPU profile of the relay (%s, %.0f ms of samples over %s) in %s", r.res.Name, phase, top.Total, top.Window, top.File)
	}
}

// heapProfile saves the relay's heap (after a GC: in use) to
// DIR/<scenario>-heap.pb.gz and adds its top functions by inuse_space.
func (r *run) heapProfile(ctx context.Context, phase string) {
	if !r.st.profiling() {
		return
	}
	b, err := r.st.fetchProfile(ctx, "/debug/pprof/heap?gc=1")
	if err == nil {
		var p *profile.Profile
		if p, err = profile.ParseData(b); err == nil {
			var top *ProfileTop
			if top, err = r.saveProfile("heap", phase, b, p); err == nil {
				r.progress("%s: heap profile of the relay (%.1f MiB in use) in %s", r.res.Name, top.Total, top.File)
			}
		}
	}
	if err != nil {
		r.progress("%s: heap profile: %v", r.res.Name, err)
	}
}

// saveProfile writes b to DIR/<scenario>-<kind>.pb.gz and records the top
// functions of p (cpu: CPU time; heap: inuse_space).
func (r *run) saveProfile(kind, phase string, b []byte, p *profile.Profile) (*ProfileTop, error) {
	file := filepath.Join(r.st.profileDir, r.res.Name+"-"+kind+".pb.gz")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return nil, err
	}
	sampleType, unit, scale := "cpu", "ms", 1/float64(time.Millisecond)
	kind = strings.ToUpper(kind)
	if kind == "HEAP" {
		sampleType, unit, scale, kind = "inuse_space", "MiB", 1.0/(1<<20), "heap inuse_space"
	}
	top, err := topFunctions(p, sampleType, topN)
	if err != nil {
		return nil, err
	}
	top.Kind, top.Phase, top.File, top.Unit = kind, phase, file, unit
	top.Total *= scale
	for _, l := range [][]TopFunc{top.Flat, top.Cum} {
		for i := range l {
			l[i].Value *= scale
		}
	}
	r.res.Profiles = append(r.res.Profiles, top)
	return top, nil
}

// topFunctions sums sampleType's values by function: flat (the function
// on top of the stack, inlined frames included) and cum (anywhere on the
// stack, once per sample), the n largest of each, in the profile's own
// unit.
func topFunctions(p *profile.Profile, sampleType string, n int) (*ProfileTop, error) {
	idx := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == sampleType })
	if idx < 0 {
		return nil, fmt.Errorf("the profile has no %s samples", sampleType)
	}
	flat, cum := make(map[string]int64), make(map[string]int64)
	var total int64
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
		seen := make(map[string]bool)
		first := true
		for _, loc := range s.Location {
			names := make([]string, 0, len(loc.Line))
			for _, ln := range loc.Line {
				if ln.Function != nil {
					names = append(names, ln.Function.Name)
				}
			}
			if len(names) == 0 {
				names = append(names, fmt.Sprintf("0x%x", loc.Address))
			}
			for _, name := range names {
				if first {
					flat[name] += v
					first = false
				}
				if !seen[name] {
					seen[name] = true
					cum[name] += v
				}
			}
		}
	}
	top := &ProfileTop{Total: float64(total)}
	pick := func(m map[string]int64) []TopFunc {
		l := make([]TopFunc, 0, len(m))
		for f, v := range m {
			l = append(l, TopFunc{Func: f, Value: float64(v)})
		}
		slices.SortFunc(l, func(a, b TopFunc) int {
			return cmp.Or(cmp.Compare(b.Value, a.Value), strings.Compare(a.Func, b.Func))
		})
		l = l[:min(n, len(l))]
		for i := range l {
			if total > 0 {
				l[i].Share = 100 * l[i].Value / float64(total)
			}
		}
		return l
	}
	top.Flat, top.Cum = pick(flat), pick(cum)
	return top, nil
}

// printProfiles writes each saved profile's top functions.
func (rep *Report) printProfiles(w io.Writer) {
	for _, r := range rep.Results {
		for _, p := range r.Profiles {
			what := fmt.Sprintf("%.0f %s of samples", p.Total, p.Unit)
			if p.Window != "" {
				what += fmt.Sprintf(" over %s (%.0f%% of a core)", p.Window, p.Total/float64(parseDur(p.Window)/time.Millisecond)*100)
			}
			if p.Unit == "MiB" {
				what = fmt.Sprintf("%.1f MiB in use", p.Total)
			}
			fmt.Fprintf(w, "\n%s: relay %s profile, %s: %s; %s\n", r.Name, p.Kind, p.Phase, what, p.File)
			fmt.Fprintf(w, "%10s %6s  %-52s %10s %6s  %s\n", "flat "+p.Unit, "flat%", "", "cum "+p.Unit, "cum%", "")
			for i := range max(len(p.Flat), len(p.Cum)) {
				var f, c TopFunc
				if i < len(p.Flat) {
					f = p.Flat[i]
				}
				if i < len(p.Cum) {
					c = p.Cum[i]
				}
				fmt.Fprintf(w, "%10.1f %5.1f%%  %-52s %10.1f %5.1f%%  %s\n", f.Value, f.Share, clip(shortFunc(f.Func), 52), c.Value, c.Share, shortFunc(c.Func))
			}
		}
	}
}

// clip shortens s to n runes.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// shortFunc drops a function's module path (finesse-relay/xmpp.(*Conn).Run
// → xmpp.(*Conn).Run) so that two columns fit a terminal.
func shortFunc(f string) string {
	if i := strings.LastIndexByte(f, '/'); i >= 0 {
		return f[i+1:]
	}
	return f
}

func parseDur(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return max(d, time.Millisecond)
}

// metricsURL is where the relay serves /metrics: its METRICS_LISTEN with
// --profile, else the public port (loopback).
func (st *stack) metricsURL() string {
	if st.metricsBase != "" {
		return st.metricsBase + "/metrics"
	}
	return st.base + "/metrics"
}

// prepareProfileDir creates --profile's directory ("" = no profiles).
func prepareProfileDir(dir string) error {
	if dir == "" {
		return nil
	}
	return os.MkdirAll(dir, 0o750)
}
