package signin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// The sign-in throttle counts refused sign-ins per loginId and per client
// address in fixed windows of FailureWindow. A check looks at the current
// and the previous window, so no FailureWindow-long stretch ever sees more
// than MaxFailures forwarded failures for one loginId: the relay is never
// the reason Finesse locks an account (five failures).
//
// An attempt reserves a slot before Finesse is asked (so concurrent guesses
// cannot overshoot) and gives it back when Finesse accepts.

type throttle struct {
	s    *Service
	keys []string // counters of the current window
	prev []string // counters of the previous window
	max  []int64
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

// reserve takes one attempt for loginID from addr, or fails with a
// *ThrottledError. The caller calls release when Finesse accepted.
func (s *Service) reserve(ctx context.Context, loginID, addr string) (*throttle, error) {
	w := s.cfg.FailureWindow
	now := s.cfg.Now()
	cur := now.Truncate(w)
	suffix := ":" + strconv.FormatInt(cur.Unix(), 10)
	prevSuffix := ":" + strconv.FormatInt(cur.Add(-w).Unix(), 10)
	t := &throttle{
		s:    s,
		keys: []string{"fail:id:" + loginID + suffix, "fail:ip:" + addr + suffix},
		prev: []string{"fail:id:" + loginID + prevSuffix, "fail:ip:" + addr + prevSuffix},
		max:  []int64{int64(s.cfg.MaxFailures), int64(s.cfg.MaxFailures * addressFailureFactor)},
	}
	for i, k := range t.keys {
		n, err := s.cfg.Store.Incr(ctx, k, 1, 2*w)
		if err != nil {
			t.undo(ctx, i)
			return nil, storeErr("count sign-in attempts", err)
		}
		var before int64
		if b, err := s.cfg.Store.Incr(ctx, t.prev[i], 0, 2*w); err == nil {
			before = b
		}
		if before+n > t.max[i] {
			t.undo(ctx, i+1)
			retry := cur.Add(w).Sub(now)
			s.cfg.Metrics.failure(failThrottled)
			return nil, &ThrottledError{RetryAfter: max(retry, time.Second)}
		}
	}
	return t, nil
}

// undo gives back the first n reservations.
func (t *throttle) undo(ctx context.Context, n int) {
	for _, k := range t.keys[:n] {
		_, _ = t.s.cfg.Store.Incr(ctx, k, -1, 2*t.s.cfg.FailureWindow)
	}
}

// release: Finesse accepted, so the attempt was no failure.
func (t *throttle) release(ctx context.Context) { t.undo(ctx, len(t.keys)) }
