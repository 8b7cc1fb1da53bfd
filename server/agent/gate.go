package agent

import (
	"context"
	"slices"
	"sync"
)

// connectGate bounds the upstream connects in flight (SystemInfo → XMPP
// login → subscriptions → snapshot) so that a sign-in or failover storm
// of thousands of Sessions does not open thousands of TLS handshakes and
// REST calls at once: each connect then finishes sooner, and the first
// agents are back in seconds instead of all of them together at the end.
//
// Waiters are served in two FIFO classes: Sessions with a browser attached
// first, then the others (a Session in its grace period, with nobody
// watching). The class is decided when the Session starts waiting.
type connectGate struct {
	mu      sync.Mutex
	limit   int
	active  int
	waiting [2][]chan struct{} // [0]: a browser is waiting; [1]: nobody is
}

func newConnectGate(limit int) *connectGate { return &connectGate{limit: max(limit, 1)} }

// acquire waits for a slot; release must follow a nil return.
func (g *connectGate) acquire(ctx context.Context, browserWaiting bool) error {
	g.mu.Lock()
	if g.active < g.limit {
		g.active++
		g.mu.Unlock()
		return nil
	}
	class := 1
	if browserWaiting {
		class = 0
	}
	w := make(chan struct{})
	g.waiting[class] = append(g.waiting[class], w)
	g.mu.Unlock()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		i := slices.Index(g.waiting[class], w)
		if i >= 0 {
			g.waiting[class] = slices.Delete(g.waiting[class], i, i+1)
		}
		g.mu.Unlock()
		if i < 0 { // granted meanwhile: pass the slot on
			g.release()
		}
		return ctx.Err()
	}
}

// release hands the slot to the first waiter, or frees it.
func (g *connectGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for class := range g.waiting {
		if q := g.waiting[class]; len(q) > 0 {
			close(q[0])
			q[0] = nil
			g.waiting[class] = q[1:]
			return
		}
	}
	g.active--
}

// inFlight and queued report the gate's state (tests).
func (g *connectGate) inFlight() (active, queued int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.active, len(g.waiting[0]) + len(g.waiting[1])
}
