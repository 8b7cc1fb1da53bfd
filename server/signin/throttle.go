package signin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"finesse-relay/server/store"
)

// The sign-in throttle counts refused sign-ins per loginId and per client
// address in fixed windows of FailureWindow. A check looks at the current
// and the previous window, so no FailureWindow-long stretch ever sees more
// than MaxFailures forwarded failures for one loginId: the relay is never
// the reason Finesse locks an account (five failures).
//
// Only refusals count: a sign-in storm of agents who all know their
// passwords is never throttled. So that concurrent guesses of one loginId
// cannot overshoot the budget, one credential check per loginId runs at a
// time (the others wait for it: a few milliseconds each); the per-address
// budget is a coarse brake on guessing many loginIds and is only checked.

// gates serializes the credential checks of each loginId.
type gates struct {
	mu sync.Mutex
	m  map[string]*gate
}

type gate struct {
	ch   chan struct{} // a token: held by the check in progress
	refs int
}

// enter waits for loginID's gate or ctx; the caller calls the returned
// leave.
func (g *gates) enter(ctx context.Context, loginID string) (leave func(), err error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[string]*gate)
	}
	gt := g.m[loginID]
	if gt == nil {
		gt = &gate{ch: make(chan struct{}, 1)}
		g.m[loginID] = gt
	}
	gt.refs++
	g.mu.Unlock()
	release := func() {
		g.mu.Lock()
		if gt.refs--; gt.refs == 0 {
			delete(g.m, loginID)
		}
		g.mu.Unlock()
	}
	select {
	case gt.ch <- struct{}{}:
		return func() { <-gt.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// throttle is one admitted credential check.
type throttle struct {
	s     *Service
	keys  []string // counters of the current window: loginId, address
	leave func()
}

// ThrottledError says how long to wait.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many refused sign-ins; try again in %v", e.RetryAfter.Round(time.Second))
}

func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// clientAddress is the request's peer address (no port). The relay does not
// trust X-Forwarded-For: behind a proxy every agent shares its address,
// which the per-address budget allows for.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// reserve admits one credential check of loginID from addr, or fails with
// a *ThrottledError. The caller calls refused when Finesse refused the
// credential, then done in every case.
func (s *Service) reserve(ctx context.Context, loginID, addr string) (*throttle, error) {
	leave, err := s.gates.enter(ctx, loginID)
	if err != nil {
		return nil, err
	}
	w := s.cfg.FailureWindow
	now := s.cfg.Now()
	cur := now.Truncate(w)
	suffix := ":" + strconv.FormatInt(cur.Unix(), 10)
	prevSuffix := ":" + strconv.FormatInt(cur.Add(-w).Unix(), 10)
	ids := []string{"fail:id:" + loginID, "fail:ip:" + addr}
	limits := []int64{int64(s.cfg.MaxFailures), int64(s.cfg.MaxFailures * addressFailureFactor)}
	t := &throttle{s: s, keys: []string{ids[0] + suffix, ids[1] + suffix}, leave: leave}
	for i, id := range ids {
		var n int64
		for _, k := range []string{id + suffix, id + prevSuffix} {
			c, err := s.counter(ctx, k)
			if err != nil {
				leave()
				return nil, err
			}
			n += c
		}
		if n >= limits[i] {
			leave()
			s.cfg.Metrics.failure(failThrottled)
			return nil, &ThrottledError{RetryAfter: max(cur.Add(w).Sub(now), time.Second)}
		}
	}
	return t, nil
}

// counter reads a failure counter without creating it: a check writes
// nothing, so requests for made-up loginIds cannot fill the store; only a
// refusal Finesse gave (throttled itself) creates a counter.
func (s *Service) counter(ctx context.Context, key string) (int64, error) {
	v, err := s.cfg.Store.Get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, storeErr("count sign-in attempts", err)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("signin: counter %s: %w", key, err)
	}
	return n, nil
}

// refused counts the check as a refused sign-in.
func (t *throttle) refused(ctx context.Context) {
	for _, k := range t.keys {
		_, _ = t.s.cfg.Store.Incr(ctx, k, 1, 2*t.s.cfg.FailureWindow)
	}
}

// done lets the next check of the loginId in.
func (t *throttle) done() { t.leave() }
