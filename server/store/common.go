package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// FenceRetention is how long a lease's fence counter outlives the lease's
// last Acquire. A lease taken again within it gets a higher fence; one left
// alone longer starts over (no former owner can still be running by then).
const FenceRetention = 24 * time.Hour

// Limits on what callers may store; a bigger request is refused with an
// error rather than stored.
const (
	// MaxKeyLen is the longest key, stream or lease name accepted.
	MaxKeyLen = 512
	// MaxValueLen is the largest value or stream entry accepted.
	MaxValueLen = 1 << 20
)

var errClosed = errors.New("store: closed")

// checkKey refuses names no backend should hold.
func checkKey(kind, key string) error {
	if key == "" {
		return fmt.Errorf("store: empty %s name", kind)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("store: %s name of %d bytes is over the %d-byte limit", kind, len(key), MaxKeyLen)
	}
	return nil
}

func checkValue(key string, n int) error {
	if n > MaxValueLen {
		return fmt.Errorf("store: value of %d bytes for %q is over the %d-byte limit", n, key, MaxValueLen)
	}
	return nil
}

// checkAppend validates Append's arguments.
func checkAppend(stream string, e Entry, maxLen int) error {
	if err := checkKey("stream", stream); err != nil {
		return err
	}
	if e.Seq < 0 {
		return fmt.Errorf("store: negative seq %d for stream %q", e.Seq, stream)
	}
	if maxLen <= 0 {
		return fmt.Errorf("store: maxLen %d for stream %q: must be positive", maxLen, stream)
	}
	return checkValue(stream, len(e.Data))
}

// parseCounter reads a counter value as written by Incr.
func parseCounter(key string, v []byte) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("store: Incr %q: the key holds a value that is not a counter", key)
	}
	return n, nil
}

// expiry turns a ttl into an absolute deadline; the zero time means none.
func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// expired reports whether deadline exp has passed at now.
func expired(exp, now time.Time) bool {
	return !exp.IsZero() && !now.Before(exp)
}

// notifier wakes Read calls waiting on a stream when it is appended to.
// One process owns the waiters, so it serves Memory and File alike. A
// stream's channel lives only while someone waits on it.
type notifier struct {
	mu     sync.Mutex
	ch     map[string]*waiters
	any    chan struct{} // closed at the next Append to any stream; nil until asked
	closed bool
}

type waiters struct {
	c chan struct{}
	n int
}

// wait returns a channel closed at the stream's next Append (or at Close)
// and a func to call when done waiting. Take it before checking the
// stream, so an Append in between is not missed.
func (n *notifier) wait(stream string) (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		c := make(chan struct{})
		close(c)
		return c, func() {}
	}
	if n.ch == nil {
		n.ch = make(map[string]*waiters)
	}
	w, ok := n.ch[stream]
	if !ok {
		w = &waiters{c: make(chan struct{})}
		n.ch[stream] = w
	}
	w.n++
	return w.c, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		w.n--
		if w.n == 0 && n.ch[stream] == w {
			delete(n.ch, stream)
		}
	}
}

// wake releases the stream's waiters, and those waiting for any stream.
func (n *notifier) wake(stream string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w, ok := n.ch[stream]; ok {
		close(w.c)
		delete(n.ch, stream)
	}
	if n.any != nil {
		close(n.any)
		n.any = nil
	}
}

// waitAny returns a channel closed at the next Append to any stream (or at
// Close). Take it before checking the streams.
func (n *notifier) waitAny() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		c := make(chan struct{})
		close(c)
		return c
	}
	if n.any == nil {
		n.any = make(chan struct{})
	}
	return n.any
}

// readStreamsWait is ReadStreams over a backend's non-blocking Read of one
// stream: it reads every stream of from, and while none has anything new
// waits for an Append to any stream, ctx's end or wait's end.
func (n *notifier) readStreamsWait(ctx context.Context, from map[string]int64, wait time.Duration, read func(stream string, after int64) ([]Entry, error)) (map[string][]Entry, error) {
	var timer *time.Timer
	for {
		woken := n.waitAny()
		out := make(map[string][]Entry)
		for stream, after := range from {
			es, err := read(stream, after)
			if err != nil {
				return nil, err
			}
			if len(es) > 0 {
				out[stream] = es
			}
		}
		if len(out) > 0 || wait <= 0 {
			return out, nil
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-woken:
		case <-timer.C:
			return out, nil
		case <-ctx.Done():
			return out, nil
		}
	}
}

// checkStreams validates ReadStreams' stream names.
func checkStreams(from map[string]int64) error {
	for stream := range from {
		if err := checkKey("stream", stream); err != nil {
			return err
		}
	}
	return nil
}

// close releases every waiter, now and later.
func (n *notifier) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for s, w := range n.ch {
		close(w.c)
		delete(n.ch, s)
	}
	if n.any != nil {
		close(n.any)
		n.any = nil
	}
}

// readWait is Read's wait loop over a backend's non-blocking read: it
// reads, and while that finds nothing waits for an Append on the stream,
// ctx's end or wait's end.
func (n *notifier) readWait(ctx context.Context, stream string, wait time.Duration, read func() ([]Entry, error)) ([]Entry, error) {
	es, err := read()
	if err != nil || len(es) > 0 || wait <= 0 {
		return es, err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		c, done := n.wait(stream)
		es, err = read()
		if err != nil || len(es) > 0 {
			done()
			return es, err
		}
		select {
		case <-c:
			done()
		case <-timer.C:
			done()
			return nil, nil
		case <-ctx.Done():
			done()
			return nil, nil
		}
	}
}
