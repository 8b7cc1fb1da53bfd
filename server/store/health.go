package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HealthOptions tune a Health. The zero value is ready to use.
type HealthOptions struct {
	// Every is the time between pings (default 5 s).
	Every time.Duration
	// Timeout bounds one ping (default 2 s, at most Every).
	Timeout time.Duration
	// OnChange, when set, is called (from Run's goroutine or a store
	// call's) when the store goes down or comes back; err is why it is
	// down, nil when up.
	OnChange func(up bool, err error)
}

// Health watches a store: it pings it every few seconds, counts failed
// calls and tells whether the store is up, for sign-ins to answer 503
// store_unavailable while it is not. Metrics:
//
//	finesse_relay_store_up               1 when the last ping or call succeeded, else 0
//	finesse_relay_store_errors_total{op} failed store calls by operation
type Health struct {
	s    Store
	opts HealthOptions
	up   atomic.Bool

	upGauge prometheus.Gauge
	errs    *prometheus.CounterVec
}

// healthOps are the op label's values, created at zero so that rates
// work from the start.
var healthOps = []string{"put", "put_new", "get", "take", "delete", "incr", "scan", "append", "read", "last_seq", "acquire", "release", "holder", "ping"}

// NewHealth returns a Health for s (taken to be up: Open checked it) and
// registers its metrics on reg (nil: not registered).
func NewHealth(s Store, reg prometheus.Registerer, opts HealthOptions) (*Health, error) {
	if opts.Every <= 0 {
		opts.Every = 5 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	opts.Timeout = min(opts.Timeout, opts.Every)
	h := &Health{
		s:    s,
		opts: opts,
		upGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "finesse_relay_store_up",
			Help: "1 when the durable store (STORE) answered the last ping or call, else 0.",
		}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finesse_relay_store_errors_total",
			Help: "Store calls that failed (unavailable store or I/O error), by operation.",
		}, []string{"op"}),
	}
	for _, op := range healthOps {
		h.errs.WithLabelValues(op)
	}
	h.up.Store(true)
	h.upGauge.Set(1)
	if reg != nil {
		for _, c := range []prometheus.Collector{h.upGauge, h.errs} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("store health metrics: %w", err)
			}
		}
	}
	return h, nil
}

// Up reports whether the store answered the last ping or call.
func (h *Health) Up() bool { return h.up.Load() }

// Run pings the store every opts.Every until ctx ends; it returns nil
// then.
func (h *Health) Run(ctx context.Context) error {
	t := time.NewTicker(h.opts.Every)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
		err := h.s.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil { // whatever the error, a store that does not answer a ping is down
			h.errs.WithLabelValues("ping").Inc()
			h.set(false, err)
		} else {
			h.set(true, nil)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Observe records the outcome of a store call named op: a failure counts
// in errors_total; ErrUnavailable marks the store down, a success up.
// Errors that are answers (ErrNotFound, ErrStaleSeq, ErrLeaseLost) and a
// caller's cancelled ctx are neither.
func (h *Health) Observe(op string, err error) {
	switch {
	case err == nil:
		h.set(true, nil)
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrStaleSeq), errors.Is(err, ErrLeaseLost),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	default:
		h.errs.WithLabelValues(op).Inc()
		if errors.Is(err, ErrUnavailable) {
			h.set(false, err)
		}
	}
}

func (h *Health) set(up bool, err error) {
	if h.up.Swap(up) == up {
		return
	}
	if up {
		h.upGauge.Set(1)
	} else {
		h.upGauge.Set(0)
	}
	if h.opts.OnChange != nil {
		h.opts.OnChange(up, err)
	}
}

// Store returns s with every call observed (errors counted, Up kept
// current), for the packages that use the store.
func (h *Health) Store() Store { return observed{h.s, h} }

// observed is a Store whose calls report to a Health.
type observed struct {
	s Store
	h *Health
}

func (o observed) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	err := o.s.Put(ctx, key, value, ttl)
	o.h.Observe("put", err)
	return err
}

func (o observed) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := o.s.PutNew(ctx, key, value, ttl)
	o.h.Observe("put_new", err)
	return ok, err
}

func (o observed) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := o.s.Get(ctx, key)
	o.h.Observe("get", err)
	return v, err
}

func (o observed) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := o.s.Take(ctx, key)
	o.h.Observe("take", err)
	return v, err
}

func (o observed) Delete(ctx context.Context, key string) error {
	err := o.s.Delete(ctx, key)
	o.h.Observe("delete", err)
	return err
}

func (o observed) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	n, err := o.s.Incr(ctx, key, delta, ttl)
	o.h.Observe("incr", err)
	return n, err
}

func (o observed) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) bool) error {
	err := o.s.Scan(ctx, prefix, fn)
	o.h.Observe("scan", err)
	return err
}

func (o observed) Append(ctx context.Context, stream string, e Entry, maxLen int, ttl time.Duration) error {
	err := o.s.Append(ctx, stream, e, maxLen, ttl)
	o.h.Observe("append", err)
	return err
}

func (o observed) AppendFenced(ctx context.Context, lease string, fence int64, stream string, e Entry, maxLen int, ttl time.Duration) error {
	err := o.s.AppendFenced(ctx, lease, fence, stream, e, maxLen, ttl)
	o.h.Observe("append", err)
	return err
}

func (o observed) Read(ctx context.Context, stream string, after int64, limit int, wait time.Duration) ([]Entry, error) {
	es, err := o.s.Read(ctx, stream, after, limit, wait)
	o.h.Observe("read", err)
	return es, err
}

func (o observed) ReadStreams(ctx context.Context, from map[string]int64, limit int, wait time.Duration) (map[string][]Entry, error) {
	es, err := o.s.ReadStreams(ctx, from, limit, wait)
	o.h.Observe("read", err)
	return es, err
}

func (o observed) LastSeq(ctx context.Context, stream string) (int64, error) {
	n, err := o.s.LastSeq(ctx, stream)
	o.h.Observe("last_seq", err)
	return n, err
}

func (o observed) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (int64, bool, error) {
	f, ok, err := o.s.Acquire(ctx, name, owner, ttl)
	o.h.Observe("acquire", err)
	return f, ok, err
}

func (o observed) Release(ctx context.Context, name, owner string) error {
	err := o.s.Release(ctx, name, owner)
	o.h.Observe("release", err)
	return err
}

func (o observed) Holder(ctx context.Context, name string) (string, int64, error) {
	owner, f, err := o.s.Holder(ctx, name)
	o.h.Observe("holder", err)
	return owner, f, err
}

func (o observed) Ping(ctx context.Context) error {
	err := o.s.Ping(ctx)
	o.h.Observe("ping", err)
	return err
}

func (o observed) Close() error { return o.s.Close() }
