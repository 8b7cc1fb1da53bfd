package sim

import (
	"context"
	"sync"
	"time"
)

// notifier is what the model needs from one side's Notification Service
// (*xmppd.Server satisfies it).
type notifier interface {
	Publish(node string, updateDoc []byte)
	DropAll()
}

// sideMask selects sides: bit i is side i (0 = A, 1 = B).
type sideMask uint8

const bothSides sideMask = 3

// outItem is one queued publication, or a drop of a side's XMPP sessions.
type outItem struct {
	sides sideMask
	node  string
	doc   []byte
	drop  bool // DropAll on sides instead of publishing
}

// outbox carries publications from the model (which appends under its
// lock) to the publisher goroutine (which calls the notifiers without any
// model lock held), keeping their order. It is unbounded: it holds only
// what the model produced since the publisher last ran.
type outbox struct {
	mu    sync.Mutex
	items []outItem
	wake  chan struct{}
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) push(it outItem) {
	o.mu.Lock()
	o.items = append(o.items, it)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) take(buf []outItem) []outItem {
	o.mu.Lock()
	defer o.mu.Unlock()
	buf = append(buf[:0], o.items...)
	clear(o.items)
	o.items = o.items[:0]
	return buf
}

// run publishes until ctx is done. sides[i] may be nil (tests).
func (o *outbox) run(ctx context.Context, sides [2]notifier) {
	var batch []outItem
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
		batch = o.take(batch)
		for _, it := range batch {
			for i, n := range sides {
				if n == nil || it.sides&(1<<i) == 0 {
					continue
				}
				if it.drop {
					n.DropAll()
				} else {
					n.Publish(it.node, it.doc)
				}
			}
		}
		clear(batch)
	}
}

// timerSet runs callbacks under the model lock after a delay. Every timer
// is stopped by closeAll, which also waits for callbacks already running.
// after and stop must be called with the model lock held.
type timerSet struct {
	lock    sync.Locker // the model lock; callbacks run holding it
	wg      sync.WaitGroup
	pending map[*simTimer]struct{}
	closed  bool
}

// simTimer is one scheduled callback.
type simTimer struct {
	t       *time.Timer
	stopped bool
}

func newTimerSet(lock sync.Locker) *timerSet {
	return &timerSet{lock: lock, pending: make(map[*simTimer]struct{})}
}

// after runs fn (with the lock held) after d unless stopped first.
func (ts *timerSet) after(d time.Duration, fn func()) *simTimer {
	st := &simTimer{}
	if ts.closed {
		st.stopped = true
		return st
	}
	ts.wg.Add(1)
	ts.pending[st] = struct{}{}
	st.t = time.AfterFunc(d, func() {
		defer ts.wg.Done()
		ts.lock.Lock()
		defer ts.lock.Unlock()
		delete(ts.pending, st)
		if st.stopped || ts.closed {
			return
		}
		st.stopped = true
		fn()
	})
	return st
}

// stop cancels st; a nil or fired timer is ignored.
func (ts *timerSet) stop(st *simTimer) {
	if st == nil || st.stopped {
		return
	}
	st.stopped = true
	if st.t.Stop() {
		delete(ts.pending, st)
		ts.wg.Done()
	}
}

// closeAll stops every timer and waits for running callbacks. It must be
// called WITHOUT the lock held.
func (ts *timerSet) closeAll() {
	ts.lock.Lock()
	ts.closed = true
	for st := range ts.pending {
		st.stopped = true
		if st.t.Stop() {
			delete(ts.pending, st)
			ts.wg.Done()
		}
	}
	ts.lock.Unlock()
	ts.wg.Wait()
}
