package gadget

import (
	"sync"
	"time"
)

// item is one frame waiting in an outbox.
type item struct {
	data []byte
	// replaceable marks a Stream broadcast (event, state, status) or a
	// frame of a welcome batch: a later resume batch covers it, so a resume
	// drops it from the queue. Replies, errors and the state that follows a
	// subscribe are not replaceable.
	replaceable bool
	// arrived is when the event this frame carries reached the relay from
	// upstream (zero: not an event, or unknown); the writer observes the
	// relay latency when it writes the frame.
	arrived time.Time
}

// outbox is a connection's bounded send queue. The Stream pushes into it
// (under the Stream lock) and the connection's writer goroutine, started by
// notify while there is something to write, takes from it. Only items pushed with push count against the limit; a batch (the
// welcome plus its snapshot or replay) never does, so a resume of up to
// RingSize messages cannot overflow a small queue.
type outbox struct {
	mu      sync.Mutex
	items   []item
	counted int  // items pushed with push since the last take
	limit   int  // max counted items waiting
	closed  bool // no more pushes are accepted (they are ignored)
	// notify, set before the outbox is shared, is called (outside the
	// lock) after every push: it starts the connection's writer when none
	// is running. It must not block.
	notify func()
}

func newOutbox(limit int) *outbox {
	return &outbox{limit: limit}
}

func (o *outbox) signal() {
	if o.notify != nil {
		o.notify()
	}
}

// push appends one frame. It returns false when the queue is full (the
// caller then closes the connection with 4000); a push to a closed outbox
// is ignored and reports true.
func (o *outbox) push(data []byte, replaceable bool) bool {
	return o.pushItem(item{data: data, replaceable: replaceable})
}

// pushEvent pushes a broadcast event frame that arrived upstream at
// arrived.
func (o *outbox) pushEvent(data []byte, arrived time.Time) bool {
	return o.pushItem(item{data: data, replaceable: true, arrived: arrived})
}

func (o *outbox) pushItem(it item) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return true
	}
	if o.counted >= o.limit {
		o.mu.Unlock()
		return false
	}
	o.counted++
	o.items = append(o.items, it)
	o.mu.Unlock()
	o.signal()
	return true
}

// pushBatch appends frames that do not count against the limit.
func (o *outbox) pushBatch(frames [][]byte) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.appendBatchLocked(frames)
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) appendBatchLocked(frames [][]byte) {
	for _, f := range frames {
		o.items = append(o.items, item{data: f, replaceable: true})
	}
}

// replaceBatch drops every queued replaceable item (broadcasts and any
// earlier batch not yet written: the new batch covers them), keeps replies,
// errors and per-connection states in order, then appends the batch. So the
// queue never holds more than QueueSize counted items plus one batch.
func (o *outbox) replaceBatch(frames [][]byte) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	kept := o.items[:0]
	counted := 0
	for _, it := range o.items {
		if !it.replaceable {
			kept = append(kept, it)
			counted++
		}
	}
	clear(o.items[len(kept):])
	o.items = kept
	o.counted = min(o.counted, counted)
	o.appendBatchLocked(frames)
	o.mu.Unlock()
	o.signal()
}

// take moves every waiting item into dst (reset first) and returns it.
func (o *outbox) take(dst []item) []item {
	clear(dst)
	dst = dst[:0]
	o.mu.Lock()
	dst, o.items = o.items, dst
	o.counted = 0
	o.mu.Unlock()
	return dst
}

// close stops accepting pushes; waiting items stay for a flushing writer.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
}

// pending reports how many items wait (tests).
func (o *outbox) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.items)
}
