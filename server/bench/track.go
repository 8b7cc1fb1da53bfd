package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"finesse-relay/xmpp/finesse"
)

// tracker matches the arrivals of each event, by requestId, at the direct
// clients and at every tab. Arrivals may come before the PUT's answer is
// registered; an event is complete when it was sent, reached the direct
// client (when the agent has one) and reached every tab of the agent.
type tracker struct {
	mu       sync.Mutex
	pending  map[string]*event
	finished []*event

	tabEvents atomic.Int64 // event messages read by tabs
}

// event is one state change's timeline.
type event struct {
	agent                  string
	sent, direct, lastTab  time.Time
	tabHits, wantTabs      int
	wantDirect, registered bool
	done                   chan struct{}
}

func newTracker() *tracker { return &tracker{pending: make(map[string]*event)} }

func (t *tracker) get(id string) *event {
	e := t.pending[id]
	if e == nil {
		e = &event{done: make(chan struct{})}
		t.pending[id] = e
	}
	return e
}

func (t *tracker) check(id string, e *event) {
	if e.registered && (!e.wantDirect || !e.direct.IsZero()) && e.tabHits >= e.wantTabs {
		delete(t.pending, id)
		t.finished = append(t.finished, e)
		close(e.done)
	}
}

// sent registers the PUT that caused event id, made at at.
func (t *tracker) sent(id, agent string, at time.Time, tabs int, direct bool) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.get(id)
	e.agent, e.sent, e.wantTabs, e.wantDirect, e.registered = agent, at, tabs, direct, true
	t.check(id, e)
	return e.done
}

// onDirect is a direct client's OnUpdate: it never blocks.
func (t *tracker) onDirect(u finesse.Update) {
	at := time.Now()
	if u.RequestID == "" {
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

// onTab is every tab's handler.
func (t *tracker) onTab(m *Msg, _ int, at time.Time) {
	if m.Type != "event" || m.RequestID == "" {
		return
	}
	t.tabEvents.Add(1)
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
func (t *tracker) take() []*event {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.finished
	t.finished = nil
	return f
}

// forget drops every pending event (after a phase, so that late arrivals
// of abandoned events do not linger).
func (t *tracker) forget() (incomplete int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, e := range t.pending {
		if e.registered {
			incomplete++
		}
		delete(t.pending, id)
	}
	return incomplete
}

// change sends one state change of agent on side and waits until it is
// complete (or Wait passes).
func (t *tracker) change(ctx context.Context, up *Upstream, side int, agent, body string, tabs int, direct bool) error {
	t0 := time.Now()
	id, err := up.SetState(ctx, side, agent, body)
	if err != nil {
		return err
	}
	timer := time.NewTimer(Wait)
	defer timer.Stop()
	select {
	case <-t.sent(id, agent, t0, tabs, direct):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return fmt.Errorf("event %s of agent %s did not reach its %d tabs (direct: %v) within %v", id, agent, tabs, direct, Wait)
	}
}

// durations collects one figure per event.
func durations(evs []*event, f func(*event) (time.Duration, bool)) []time.Duration {
	var d []time.Duration
	for _, e := range evs {
		if v, ok := f(e); ok {
			d = append(d, v)
		}
	}
	slices.Sort(d)
	return d
}

// pct is the p-th percentile (0..100) of sorted d, nearest rank.
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(p/100*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}
