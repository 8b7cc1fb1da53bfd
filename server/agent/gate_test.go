package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// waitGate waits until the gate has the given figures.
func waitGate(t *testing.T, g *connectGate, active, queued int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, q := g.inFlight()
		if a == active && q == queued {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gate: %d active %d queued, want %d %d", a, q, active, queued)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConnectGateOrder: at most limit connects run; when slots free up,
// waiters with a browser go first, each class in arrival order.
func TestConnectGateOrder(t *testing.T) {
	tests := []struct {
		name    string
		limit   int
		waiters []bool // browserWaiting, in arrival order (after limit holders)
		want    string
	}{
		{"fifo without browsers", 1, []bool{false, false, false}, "[0 1 2]"},
		{"browsers first", 1, []bool{false, true, false, true}, "[1 3 0 2]"},
		{"two slots", 2, []bool{false, true}, "[1 0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newConnectGate(tt.limit)
			for range tt.limit {
				if err := g.acquire(context.Background(), false); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			var order []int
			var wg sync.WaitGroup
			for i, browser := range tt.waiters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := g.acquire(context.Background(), browser); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					order = append(order, i)
					mu.Unlock()
				}()
				waitGate(t, g, tt.limit, i+1) // arrival order is the loop order
			}
			for range tt.waiters { // one slot at a time: the order is the gate's
				mu.Lock()
				n := len(order)
				mu.Unlock()
				g.release()
				deadline := time.Now().Add(5 * time.Second)
				for {
					mu.Lock()
					m := len(order)
					mu.Unlock()
					if m == n+1 || time.Now().After(deadline) {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			wg.Wait()
			if got := fmt.Sprint(order); got != tt.want {
				t.Errorf("order %s, want %s", got, tt.want)
			}
			for range tt.limit {
				g.release()
			}
			waitGate(t, g, 0, 0)
		})
	}
}

// TestConnectGateCancel: a waiter whose context ends leaves the queue and
// takes no slot.
func TestConnectGateCancel(t *testing.T) {
	g := newConnectGate(1)
	if err := g.acquire(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.acquire(ctx, true) }()
	waitGate(t, g, 1, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire after cancel: %v", err)
	}
	waitGate(t, g, 1, 0)
	g.release()
	waitGate(t, g, 0, 0)
}

// TestConnectGateBoundsSessions: many Sessions joining at once never have
// more than ConnectConcurrency upstream connects in flight, and all come up.
func TestConnectGateBoundsSessions(t *testing.T) {
	const limit, agents = 3, 8 // the rig's publisher channel holds 8
	var mu sync.Mutex
	inFlight, peak := 0, 0
	r := newRig(t, agent1001, func(c *Config) {
		dial := c.Dial
		c.ConnectConcurrency = limit
		c.Dial = func(ctx context.Context, req DialRequest) (Notifier, error) {
			mu.Lock()
			inFlight++
			peak = max(peak, inFlight)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			inFlight--
			mu.Unlock()
			return dial(ctx, req)
		}
	})
	var pubs []*fakePublisher
	for i := range agents {
		u := agent1001
		u.LoginID = fmt.Sprint(1001 + i)
		if _, _, err := r.m.Join(&u, password(u.LoginID)); err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, <-r.pubs)
	}
	for _, p := range pubs {
		p.waitFor(t, "up", hasStatus(StatusUp, "A"))
	}
	mu.Lock()
	defer mu.Unlock()
	if peak > limit || peak == 0 {
		t.Errorf("peak of %d dials in flight, want 1..%d", peak, limit)
	}
	if a, q := r.m.gate.inFlight(); a != 0 || q != 0 {
		t.Errorf("gate after every session is up: %d active, %d queued", a, q)
	}
}
