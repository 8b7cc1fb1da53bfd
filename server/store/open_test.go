package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		spec    string
		wantErr []string // empty: opens
	}{
		{"memory", nil},
		{"file:" + filepath.Join(dir, "relay.db"), nil},
		{"", []string{"STORE is empty"}},
		{"file:", []string{"STORE=file: has no path"}},
		{"file:" + filepath.Join(dir, "relay.db", "x.db"), []string{"STORE: file store", "cannot create its directory"}},
		{"postgres://u:secret@h/db", []string{"STORE=", "not a store", "redis://"}},
		{"redis://:secret@" + freeAddr(t) + "/0?dial_timeout=200ms&max_retries=-1", []string{"STORE: redis store", "unavailable", "check that Redis runs"}},
		{"redis://h/0?nope=1", []string{"STORE: redis URL", "unexpected option"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := Open(ctx, tt.spec, Options{})
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Ping(ctx); err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.HasPrefix(err.Error(), "STORE") {
				t.Errorf("error %q does not start with STORE", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// failing is a Store whose Ping and Get fail as told.
type failing struct {
	Store
	mu  sync.Mutex
	err error
}

func (f *failing) set(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *failing) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *failing) Get(ctx context.Context, key string) ([]byte, error) {
	if err := f.Ping(ctx); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, key)
}

func TestHealth(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	fs := &failing{Store: NewMemory(nil)}
	var mu sync.Mutex
	var changes []bool
	h, err := NewHealth(fs, reg, HealthOptions{Every: 20 * time.Millisecond, OnChange: func(up bool, _ error) {
		mu.Lock()
		changes = append(changes, up)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor := func(up bool) {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Second); h.Up() != up; {
			if time.Now().After(deadline) {
				t.Fatalf("Up() stayed %v", !up)
			}
			time.Sleep(5 * time.Millisecond)
		}
		want := 0.0
		if up {
			want = 1
		}
		if g := testutil.ToFloat64(h.upGauge); g != want {
			t.Fatalf("finesse_relay_store_up = %v, want %v", g, want)
		}
	}
	if !h.Up() {
		t.Fatal("a new Health is down")
	}
	fs.set(errors.New("disk gone"))
	waitFor(false)
	if n := testutil.ToFloat64(h.errs.WithLabelValues("ping")); n < 1 {
		t.Fatalf("errors_total{op=ping} = %v, want ≥ 1", n)
	}
	fs.set(nil)
	waitFor(true)

	// Calls through Store() count and flip Up at once; answers do not.
	s := h.Store()
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(h.errs.WithLabelValues("get")); n != 0 {
		t.Fatalf("ErrNotFound counted as an error: errors_total{op=get} = %v", n)
	}
	fs.set(ErrUnavailable)
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(h.errs.WithLabelValues("get")); n != 1 {
		t.Fatalf("errors_total{op=get} = %v, want 1", n)
	}
	waitFor(false)
	fs.set(nil)
	waitFor(true)
	mu.Lock()
	if len(changes) < 4 || changes[0] || !changes[1] {
		t.Errorf("OnChange calls %v, want down, up, down, up", changes)
	}
	mu.Unlock()
	if n, err := testutil.GatherAndCount(reg, "finesse_relay_store_up", "finesse_relay_store_errors_total"); err != nil || n != 1+len(healthOps) {
		t.Fatalf("registry holds %d series, %v; want %d", n, err, 1+len(healthOps))
	}
	if _, err := NewHealth(fs, reg, HealthOptions{}); err == nil {
		t.Fatal("registering the metrics twice succeeded")
	}
}
