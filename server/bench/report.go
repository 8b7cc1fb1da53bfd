package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one bench run measured; it is also the JSON --out
// writes.
type Report struct {
	Started   time.Time `json:"started"`
	Machine   Machine   `json:"machine"`
	Quick     bool      `json:"quick"`
	Results   []*Result `json:"results"`
	Elapsed   string    `json:"elapsed"`
	LoadAfter string    `json:"loadAfter"` // /proc/loadavg at the end
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	Model      string `json:"model"`
	Load       string `json:"load"` // /proc/loadavg at the start
}

// Result is one scenario's figures.
type Result struct {
	Name      string   `json:"name"`
	Transport string   `json:"transport"`
	Agents    int      `json:"agents"`
	Elapsed   string   `json:"elapsed"`
	Error     string   `json:"error,omitempty"`
	Skipped   string   `json:"skipped,omitempty"` // why the scenario did not run
	Figures   []Figure `json:"figures"`

	// Profiles (--profile) are the relay's, with their top functions.
	Profiles []*ProfileTop `json:"profiles,omitempty"`

	quick bool // sizes below the issue's: targets are not judged
}

// Figure is one measured value, with its target when the issue sets one.
type Figure struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"` // nil: no target, or not judged (quick runs)
}

// judge is nil or says whether a value meets its target.
type judge func(float64) bool

func less(x float64) judge   { return func(v float64) bool { return v < x } }
func lessEq(x float64) judge { return func(v float64) bool { return v <= x } }

// add records a figure; its target is judged unless the run is quick
// (small sizes say nothing of the performance targets; correctness
// targets are always judged).
func (r *Result) add(name string, v float64, unit, target string, ok judge) {
	f := Figure{Name: name, Value: v, Unit: unit, Target: target}
	if ok != nil && (!r.quick || correctness(target)) {
		met := ok(v)
		f.Met = &met
	}
	r.Figures = append(r.Figures, f)
}

// correctness targets (nothing lost, every session present) hold at any
// size; Run fails a scenario that misses one.
func correctness(target string) bool { return target == "0" || strings.HasPrefix(target, "= ") }

// missed lists the correctness figures that missed their target.
func (r *Result) missed() []string {
	var m []string
	for _, f := range r.Figures {
		if f.Met != nil && !*f.Met && correctness(f.Target) {
			m = append(m, fmt.Sprintf("%s = %v (want %s)", f.Name, f.Value, f.Target))
		}
	}
	return m
}

func (r *Result) addDur(name string, d time.Duration, target string) {
	r.add(name, ms(d), "ms", target, nil)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), Load: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.Model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// Print writes the report as one table.
func (rep *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "finesse-relay bench: %s, %d CPUs (GOMAXPROCS %d), %s; load average %s at the start, %s at the end; %s\n\n",
		rep.Machine.Model, rep.Machine.CPUs, rep.Machine.GOMAXPROCS, rep.Machine.Go, rep.Machine.Load, rep.LoadAfter, rep.Elapsed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tvalue\ttarget\tmet")
	for _, r := range rep.Results {
		name := fmt.Sprintf("%s (%d agents, %s)", r.Name, r.Agents, r.Transport)
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\tFAILED (see below)\t\t\t\n", name)
			name = ""
		}
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\tskipped: %s\t\t\t\n", name, r.Skipped)
		}
		for _, f := range r.Figures {
			met := ""
			if f.Met != nil {
				met = map[bool]string{true: "yes", false: "NO"}[*f.Met]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, f.Name, fmtValue(f), f.Target, met)
			name = ""
		}
	}
	_ = tw.Flush()
	rep.printProfiles(w)
	for _, r := range rep.Results {
		if r.Error != "" {
			fmt.Fprintf(w, "\n%s FAILED: %s\n", r.Name, r.Error)
		}
	}
}

func fmtValue(f Figure) string {
	var s string
	switch {
	case f.Value == float64(int64(f.Value)) && f.Unit == "":
		s = fmt.Sprintf("%d", int64(f.Value))
	case f.Value >= 100:
		s = fmt.Sprintf("%.0f", f.Value)
	case f.Value >= 10:
		s = fmt.Sprintf("%.1f", f.Value)
	default:
		s = fmt.Sprintf("%.3g", f.Value)
	}
	if f.Unit != "" {
		s += " " + f.Unit
	}
	return s
}

// WriteJSON writes the report to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}
