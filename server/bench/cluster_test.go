package bench

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCrossTracker: an event is measured when both tabs got it with the
// same seq; another seq on B, or no arrival on B, is missing on B.
func TestCrossTracker(t *testing.T) {
	c := newCrossTracker()
	var passed int
	next := func(*Msg, int, time.Time) { passed++ }
	a, b := c.handler(0, next), c.handler(1, next)
	t0 := time.Now()
	a(&Msg{Type: "event", RequestID: "both", Seq: 5}, 0, t0)
	b(&Msg{Type: "event", RequestID: "both", Seq: 5}, 0, t0.Add(3*time.Millisecond))
	b(&Msg{Type: "event", RequestID: "both", Seq: 9}, 0, t0.Add(time.Second)) // a repeat is ignored
	a(&Msg{Type: "event", RequestID: "otherseq", Seq: 6}, 0, t0)
	b(&Msg{Type: "event", RequestID: "otherseq", Seq: 7}, 0, t0)
	a(&Msg{Type: "event", RequestID: "onlyA", Seq: 8}, 0, t0)
	b(&Msg{Type: "event", RequestID: "onlyB", Seq: 9}, 0, t0)
	a(&Msg{Type: "status", Seq: 10}, 0, t0)
	a(&Msg{Type: "event", Seq: 11}, 0, t0) // no requestId: not a change of ours
	if passed != 9 {
		t.Errorf("%d messages passed on, want every one (9)", passed)
	}
	f := c.take()
	if len(f.added) != 1 || f.added[0] != 3*time.Millisecond {
		t.Errorf("added %v, want [3ms]", f.added)
	}
	if f.missingB != 2 || f.otherSeqB != 1 || f.missingA != 1 {
		t.Errorf("missing on B %d (other seq %d), on A %d; want 2 (1), 1", f.missingB, f.otherSeqB, f.missingA)
	}
	if f := c.take(); len(f.added)+f.missingA+f.missingB != 0 {
		t.Errorf("take did not forget: %+v", f)
	}
}

// TestQuickCluster runs the cluster scenario at --quick size: two relays
// on a private redis-server, every event on both tabs with the same seq,
// Redis memory measured.
func TestQuickCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the relay (-short)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not in PATH: scripts/test.sh installs it")
		}
		t.Skip("redis-server not in PATH (apt-get install redis-server)")
	}
	rep, table := runQuick(t, "cluster")
	if len(rep.Results) != 1 || rep.Results[0].Skipped != "" {
		t.Fatalf("results %+v", rep.Results)
	}
	got := map[string]float64{}
	for _, f := range rep.Results[0].Figures {
		got[f.Name] = f.Value
	}
	for k, v := range map[string]float64{
		"agents owned by relay A": 50, "events missing on B (or with another seq than on A)": 0,
		"events missing on A": 0, "seq gaps on the tabs on B": 0,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for _, k := range []string{"events on both tabs with the same seq", "cross-instance delivery added (B − A) p99",
		"Redis memory per 1,000 agents (used_memory)", "Redis keys (DBSIZE)", "agent stream entries (XLEN), mean"} {
		if got[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, got[k])
		}
	}
	if !strings.Contains(table, "cross-instance delivery added") {
		t.Errorf("table without the cross-instance figures:\n%s", table)
	}
}
