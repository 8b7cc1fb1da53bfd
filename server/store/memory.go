package store

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sweepBudget is how many entries of each map a write looks at for
// expired ones, in the map's random iteration order (Redis's active
// expiry, in small). With lazy expiry on read this bounds what dead keys
// cost without a goroutine.
const sweepBudget = 16

// Memory is a Store in process memory: the demo's and the tests'. It
// starts no goroutine; expired entries are dropped when read and swept a
// few at a time by writes. Everything is lost when the process ends.
type Memory struct {
	now func() time.Time
	n   notifier

	mu      sync.Mutex
	closed  bool
	kv      map[string]memItem
	streams map[string]*memStream
	leases  map[string]*memLease
}

type memItem struct {
	value []byte
	exp   time.Time
}

type memStream struct {
	entries []Entry
	exp     time.Time
}

type memLease struct {
	owner string
	fence int64
	exp   time.Time // the lease's end; the record stays FenceRetention longer
	keep  time.Time // when the record (and its fence) is forgotten
}

// NewMemory returns an empty Memory store. now is its clock (nil:
// time.Now); tests pass a fake one to expire keys without sleeping.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:     now,
		kv:      make(map[string]memItem),
		streams: make(map[string]*memStream),
		leases:  make(map[string]*memLease),
	}
}

// lock takes the mutex and fails when the store is closed.
func (m *Memory) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("memory store: %w", errClosed)
	}
	return nil
}

// sweep drops a few expired entries; called with mu held, by writes.
func (m *Memory) sweep(now time.Time) {
	i := 0
	for k, it := range m.kv {
		if i++; i > sweepBudget {
			break
		}
		if expired(it.exp, now) {
			delete(m.kv, k)
		}
	}
	i = 0
	for k, s := range m.streams {
		if i++; i > sweepBudget {
			break
		}
		if expired(s.exp, now) {
			delete(m.streams, k)
		}
	}
	i = 0
	for k, l := range m.leases {
		if i++; i > sweepBudget {
			break
		}
		if expired(l.keep, now) {
			delete(m.leases, k)
		}
	}
}

// live returns key's item when it exists and has not expired; with mu held.
func (m *Memory) live(key string, now time.Time) (memItem, bool) {
	it, ok := m.kv[key]
	if ok && expired(it.exp, now) {
		delete(m.kv, key)
		return memItem{}, false
	}
	return it, ok
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKey("key", key); err != nil {
		return err
	}
	if err := checkValue(key, len(value)); err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	m.kv[key] = memItem{value: bytes.Clone(value), exp: expiry(now, ttl)}
	return nil
}

// PutNew implements Store.
func (m *Memory) PutNew(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkKey("key", key); err != nil {
		return false, err
	}
	if err := checkValue(key, len(value)); err != nil {
		return false, err
	}
	if err := m.lock(); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	if _, ok := m.live(key, now); ok {
		return false, nil
	}
	m.kv[key] = memItem{value: bytes.Clone(value), exp: expiry(now, ttl)}
	return true, nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	it, ok := m.live(key, m.now())
	if !ok {
		return nil, fmt.Errorf("get %q: %w", key, ErrNotFound)
	}
	return bytes.Clone(it.value), nil
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, key string) ([]byte, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	it, ok := m.live(key, m.now())
	if !ok {
		return nil, fmt.Errorf("take %q: %w", key, ErrNotFound)
	}
	delete(m.kv, key)
	return it.value, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.kv, key)
	return nil
}

// Incr implements Store.
func (m *Memory) Incr(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKey("key", key); err != nil {
		return 0, err
	}
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	it, ok := m.live(key, now)
	var n int64
	if ok {
		var err error
		if n, err = parseCounter(key, it.value); err != nil {
			return 0, err
		}
	} else {
		it.exp = expiry(now, ttl)
	}
	n += delta
	it.value = strconv.AppendInt(nil, n, 10)
	m.kv[key] = it
	return n, nil
}

// Scan implements Store. fn runs without the store's lock held, on a
// snapshot taken at the call, so it may call the store.
func (m *Memory) Scan(_ context.Context, prefix string, fn func(key string, value []byte) bool) error {
	if err := m.lock(); err != nil {
		return err
	}
	now := m.now()
	var snap []memKV
	for k, it := range m.kv {
		if strings.HasPrefix(k, prefix) && !expired(it.exp, now) {
			snap = append(snap, memKV{k, bytes.Clone(it.value)})
		}
	}
	m.mu.Unlock()
	for _, kv := range snap {
		if !fn(kv.k, kv.v) {
			break
		}
	}
	return nil
}

type memKV struct {
	k string
	v []byte
}

// liveStream returns the stream when it exists and has not expired; with
// mu held.
func (m *Memory) liveStream(name string, now time.Time) *memStream {
	s, ok := m.streams[name]
	if ok && expired(s.exp, now) {
		delete(m.streams, name)
		return nil
	}
	return s
}

// Append implements Store.
func (m *Memory) Append(_ context.Context, stream string, e Entry, maxLen int, ttl time.Duration) error {
	if err := checkAppend(stream, e, maxLen); err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	err := m.appendLocked(stream, e, maxLen, ttl, m.now())
	m.mu.Unlock()
	if err == nil {
		m.n.wake(stream)
	}
	return err
}

// AppendFenced implements Store.
func (m *Memory) AppendFenced(_ context.Context, lease string, fence int64, stream string, e Entry, maxLen int, ttl time.Duration) error {
	if err := checkAppend(stream, e, maxLen); err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	now := m.now()
	var err error
	if l := m.leases[lease]; l == nil || expired(l.exp, now) || l.fence != fence {
		err = fmt.Errorf("append to %q under lease %q with fence %d: %w", stream, lease, fence, ErrLeaseLost)
	} else {
		err = m.appendLocked(stream, e, maxLen, ttl, now)
	}
	m.mu.Unlock()
	if err == nil {
		m.n.wake(stream)
	}
	return err
}

func (m *Memory) appendLocked(stream string, e Entry, maxLen int, ttl time.Duration, now time.Time) error {
	m.sweep(now)
	s := m.liveStream(stream, now)
	if s == nil {
		s = &memStream{}
		m.streams[stream] = s
	} else if n := len(s.entries); n > 0 && e.Seq <= s.entries[n-1].Seq {
		return fmt.Errorf("append seq %d to %q (last %d): %w", e.Seq, stream, s.entries[n-1].Seq, ErrStaleSeq)
	}
	s.entries = append(s.entries, Entry{Seq: e.Seq, Data: bytes.Clone(e.Data)})
	if over := len(s.entries) - maxLen; over > 0 {
		clear(s.entries[:over])
		s.entries = s.entries[over:]
	}
	s.exp = expiry(now, ttl)
	return nil
}

// Read implements Store.
func (m *Memory) Read(ctx context.Context, stream string, after int64, limit int, wait time.Duration) ([]Entry, error) {
	return m.n.readWait(ctx, stream, wait, func() ([]Entry, error) {
		if err := m.lock(); err != nil {
			return nil, err
		}
		defer m.mu.Unlock()
		s := m.liveStream(stream, m.now())
		if s == nil {
			return nil, nil
		}
		var out []Entry
		for _, e := range s.entries {
			if e.Seq > after && (limit <= 0 || len(out) < limit) {
				out = append(out, Entry{Seq: e.Seq, Data: bytes.Clone(e.Data)})
			}
		}
		return out, nil
	})
}

// ReadStreams implements Store.
func (m *Memory) ReadStreams(ctx context.Context, from map[string]int64, limit int, wait time.Duration) (map[string][]Entry, error) {
	if err := checkStreams(from); err != nil {
		return nil, err
	}
	return m.n.readStreamsWait(ctx, from, wait, func(stream string, after int64) ([]Entry, error) {
		return m.Read(ctx, stream, after, limit, 0)
	})
}

// LastSeq implements Store.
func (m *Memory) LastSeq(_ context.Context, stream string) (int64, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	s := m.liveStream(stream, m.now())
	if s == nil || len(s.entries) == 0 {
		return 0, fmt.Errorf("last seq of %q: %w", stream, ErrNotFound)
	}
	return s.entries[len(s.entries)-1].Seq, nil
}

// Acquire implements Store.
func (m *Memory) Acquire(_ context.Context, name, owner string, ttl time.Duration) (int64, bool, error) {
	if err := checkKey("lease", name); err != nil {
		return 0, false, err
	}
	if owner == "" {
		return 0, false, fmt.Errorf("store: acquire %q: empty owner", name)
	}
	if ttl <= 0 {
		return 0, false, fmt.Errorf("store: acquire %q: ttl %v must be positive", name, ttl)
	}
	if err := m.lock(); err != nil {
		return 0, false, err
	}
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	l := m.leases[name]
	if l != nil && expired(l.keep, now) {
		l = nil
	}
	switch {
	case l == nil:
		l = &memLease{fence: 1, owner: owner}
		m.leases[name] = l
	case l.owner == owner && !expired(l.exp, now):
		// renewal: same fence
	case expired(l.exp, now):
		l.owner = owner
		l.fence++
	default:
		return l.fence, false, nil
	}
	l.exp = now.Add(ttl)
	l.keep = l.exp.Add(FenceRetention)
	return l.fence, true, nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, name, owner string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.now()
	l := m.leases[name]
	if l == nil || l.owner != owner || expired(l.exp, now) {
		return fmt.Errorf("release %q as %q: %w", name, owner, ErrLeaseLost)
	}
	l.exp = now // ended; the fence is kept
	return nil
}

// Holder implements Store.
func (m *Memory) Holder(_ context.Context, name string) (string, int64, error) {
	if err := m.lock(); err != nil {
		return "", 0, err
	}
	defer m.mu.Unlock()
	l := m.leases[name]
	if l == nil || expired(l.exp, m.now()) {
		return "", 0, fmt.Errorf("holder of %q: %w", name, ErrNotFound)
	}
	return l.owner, l.fence, nil
}

// Ping implements Store.
func (m *Memory) Ping(context.Context) error {
	if err := m.lock(); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

// Close implements Store: later calls fail and waiting Reads return.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.kv, m.streams, m.leases = nil, nil, nil
	m.mu.Unlock()
	m.n.close()
	return nil
}
