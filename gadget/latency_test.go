package gadget

import (
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// histogram returns the sample count and sum of a histogram in reg.
func histogram(t testing.TB, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	return 0, 0
}

// TestRelayLatencyObservedAtWrite: an event with an arrival time is
// observed once per connection that writes it, with at least the time it
// spent in the relay; events without one, states and statuses are not.
func TestRelayLatencyObservedAtWrite(t *testing.T) {
	const name = "finesse_relay_event_relay_latency_seconds"
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	c1, c2 := h.dial(nil), h.dial(nil)
	c1.expect("welcome")
	c2.expect("welcome")

	h.stream.Event(userNode, "PUT", "", "r0", map[string]string{"state": "READY"}, nil)
	h.stream.State(userNode, map[string]string{"state": "READY"})
	h.stream.Status("up", "A", "")
	for _, c := range []*client{c1, c2} {
		c.expect("event")
		c.expect("state")
		c.expect("status")
	}
	if n, _ := histogram(t, h.reg, name); n != 0 {
		t.Fatalf("%d observations for frames without an arrival time", n)
	}

	arrived := time.Now().Add(-50 * time.Millisecond) // as if decoding took 50 ms
	h.stream.EventAt(arrived, userNode, "PUT", "", "r1", map[string]string{"state": "NOT_READY"}, nil)
	c1.expect("event")
	c2.expect("event")
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, sum := histogram(t, h.reg, name)
		if n == 2 {
			if sum < 2*0.050 || sum > 2*5.0 {
				t.Fatalf("sum %v s over 2 observations, want at least 0.1 s", sum)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d observations, want 2 (one per connection)", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestIdleConnectionHasOnlyItsReader: once its queue is written, a
// connection keeps no writer goroutine (the writer runs only while frames
// wait, the heartbeat is a timer); a new frame is still delivered.
func TestIdleConnectionHasOnlyItsReader(t *testing.T) {
	const n = 20 // one relay session's sockets: above the default cap of 16
	h := newHarness(t, GatewayConfig{MaxSocketsPerSession: n}, StreamConfig{})
	before := runtime.NumGoroutine()
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = h.dial(nil)
		clients[i].expect("welcome")
	}
	// Server side per connection: the handler (the reader) only. The test's
	// clients read on demand, so they add no goroutine of their own.
	deadline := time.Now().Add(5 * time.Second)
	for {
		delta := runtime.NumGoroutine() - before
		if delta <= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines for %d idle connections, want at most one each", delta, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.stream.Event(userNode, "PUT", "", "r9", map[string]string{"state": "READY"}, nil)
	for _, c := range clients {
		if m := c.expect("event"); m.RequestID != "r9" {
			t.Fatalf("event %v", m)
		}
	}
}
