package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is one backend under the conformance suite: a fresh store and a
// way to let time pass (a fake clock, or a real sleep for Redis).
type harness struct {
	s       Store
	advance func(time.Duration)
	ttl     time.Duration // the suite's short lifetime for this backend
}

type backend struct {
	name string
	open func(t *testing.T) harness
}

func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T) harness {
			c := newFakeClock()
			s := NewMemory(c.Now)
			t.Cleanup(func() { _ = s.Close() })
			return harness{s, c.Advance, shortTTL}
		}},
		{"file", func(t *testing.T) harness {
			c := newFakeClock()
			s, err := OpenFile(filepath.Join(t.TempDir(), "relay.db"), FileOptions{Now: c.Now, NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return harness{s, c.Advance, shortTTL}
		}},
		{"redis", openRedisHarness},
	}
}

// forEach runs test against every backend.
func forEach(t *testing.T, test func(t *testing.T, h harness)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { test(t, b.open(t)) })
	}
}

// shortTTL is the lifetime the suite gives keys it lets expire, with a
// fake clock; Redis tests really wait, and use a longer one so that a
// loaded machine does not expire keys mid-step.
const (
	shortTTL = 300 * time.Millisecond
	redisTTL = time.Second
)

func TestPutGetDelete(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		ttl := h.ttl
		s := h.s
		if _, err := s.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get missing: %v, want ErrNotFound", err)
		}
		if err := s.Put(ctx, "k", []byte("v1"), ttl); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "k", []byte("v2"), ttl); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "forever", []byte("f"), 0); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(ctx, "k"); err != nil || string(v) != "v2" {
			t.Fatalf("Get k = %q, %v; want v2", v, err)
		}
		h.advance(ttl + 100*time.Millisecond)
		if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get k after its ttl: %v, want ErrNotFound", err)
		}
		if v, err := s.Get(ctx, "forever"); err != nil || string(v) != "f" {
			t.Fatalf("Get forever = %q, %v; a ttl of 0 must not expire", v, err)
		}
		if err := s.Delete(ctx, "forever"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "forever"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "forever"); err != nil {
			t.Fatalf("Delete of a missing key: %v, want nil", err)
		}
		big := bytes.Repeat([]byte{0, 255, 'x'}, 10_000) // binary-safe
		if err := s.Put(ctx, "big", big, ttl); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(ctx, "big"); err != nil || !bytes.Equal(v, big) {
			t.Fatalf("Get big: %d bytes, %v; want %d bytes back unchanged", len(v), err, len(big))
		}
		if err := s.Put(ctx, "huge", make([]byte, MaxValueLen+1), ttl); err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("Put over MaxValueLen: %v, want a refusal", err)
		}
	})
}

func TestTakeSingleUse(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		ttl := h.ttl
		for round := range 3 {
			key := fmt.Sprintf("ticket:%d", round)
			if err := h.s.Put(ctx, key, []byte("secret"), time.Minute); err != nil {
				t.Fatal(err)
			}
			var wins, misses atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 50 {
				wg.Go(func() {
					<-start
					v, err := h.s.Take(ctx, key)
					switch {
					case err == nil && string(v) == "secret":
						wins.Add(1)
					case errors.Is(err, ErrNotFound):
						misses.Add(1)
					default:
						t.Errorf("Take: %q, %v", v, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if wins.Load() != 1 || misses.Load() != 49 {
				t.Fatalf("round %d: %d winners, %d ErrNotFound; want exactly 1 and 49", round, wins.Load(), misses.Load())
			}
		}
		if err := h.s.Put(ctx, "old", []byte("x"), ttl); err != nil {
			t.Fatal(err)
		}
		h.advance(ttl + 100*time.Millisecond)
		if _, err := h.s.Take(ctx, "old"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Take of an expired key: %v, want ErrNotFound", err)
		}
	})
}

func TestPutNewRace(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		ttl := h.ttl
		var winners []int
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 50 {
			wg.Go(func() {
				<-start
				ok, err := h.s.PutNew(ctx, "state", fmt.Appendf(nil, "%d", i), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, i)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("PutNew winners %v, want exactly one", winners)
		}
		if v, err := h.s.Get(ctx, "state"); err != nil || string(v) != fmt.Sprint(winners[0]) {
			t.Fatalf("Get = %q, %v; want the winner's %d", v, err, winners[0])
		}
		if ok, err := h.s.PutNew(ctx, "state", []byte("again"), ttl); ok || err != nil {
			t.Fatalf("PutNew over a live key = %v, %v; want false", ok, err)
		}
		if ok, err := h.s.PutNew(ctx, "short", []byte("1"), ttl); !ok || err != nil {
			t.Fatalf("PutNew = %v, %v", ok, err)
		}
		h.advance(ttl + 100*time.Millisecond)
		if ok, err := h.s.PutNew(ctx, "short", []byte("again"), ttl); !ok || err != nil {
			t.Fatalf("PutNew over an expired key = %v, %v; want true", ok, err)
		}
	})
}

func TestIncrWindow(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		ttl := h.ttl
		steps := []struct {
			delta, want int64
			after       time.Duration // advance after this step
		}{
			{1, 1, 0},
			{1, 2, ttl / 2},
			{5, 7, ttl/2 + 100*time.Millisecond}, // the window is fixed from the first Incr
			{1, 1, 0},                            // a new window
			{-3, -2, 0},
		}
		for i, st := range steps {
			n, err := h.s.Incr(ctx, "throttle", st.delta, ttl)
			if err != nil || n != st.want {
				t.Fatalf("step %d: Incr(%d) = %d, %v; want %d", i, st.delta, n, err, st.want)
			}
			// Get reads a counter back as its decimal text.
			if v, err := h.s.Get(ctx, "throttle"); err != nil || string(v) != strconv.FormatInt(st.want, 10) {
				t.Fatalf("step %d: Get = %q, %v; want %d", i, v, err, st.want)
			}
			h.advance(st.after)
		}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if _, err := h.s.Incr(ctx, "many", 1, time.Minute); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n, err := h.s.Incr(ctx, "many", 0, time.Minute); n != 50 || err != nil {
			t.Fatalf("after 50 concurrent Incr: %d, %v; want 50", n, err)
		}
		if err := h.s.Put(ctx, "text", []byte("abc"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := h.s.Incr(ctx, "text", 1, time.Minute); err == nil {
			t.Fatal("Incr of a non-counter value succeeded")
		}
	})
}

func TestScanPrefix(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		ttl := h.ttl
		put := func(k, v string, ttl time.Duration) {
			if err := h.s.Put(ctx, k, []byte(v), ttl); err != nil {
				t.Fatal(err)
			}
		}
		put("sess:a", "1", time.Minute)
		put("sess:b", "2", 0)
		put("sess:gone", "3", ttl)
		put("sess*[x]", "4", time.Minute) // glob characters are literal
		put("sesx:c", "5", time.Minute)
		put("ticket:d", "6", time.Minute)
		h.advance(ttl + 100*time.Millisecond)
		scan := func(prefix string) []string {
			var got []string
			if err := h.s.Scan(ctx, prefix, func(k string, v []byte) bool {
				got = append(got, k+"="+string(v))
				return true
			}); err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			return got
		}
		if got, want := fmt.Sprint(scan("sess:")), "[sess:a=1 sess:b=2]"; got != want {
			t.Fatalf("Scan(sess:) = %s, want %s", got, want)
		}
		if got, want := fmt.Sprint(scan("sess*")), "[sess*[x]=4]"; got != want {
			t.Fatalf("Scan(sess*) = %s, want %s", got, want)
		}
		calls := 0
		if err := h.s.Scan(ctx, "", func(string, []byte) bool { calls++; return false }); err != nil || calls != 1 {
			t.Fatalf("Scan stopping at once: %d calls, %v; want 1", calls, err)
		}
	})
}

// appendAll appends the seqs to stream, failing the test on an error.
func appendAll(t *testing.T, s Store, stream string, maxLen int, seqs ...int64) {
	t.Helper()
	for _, seq := range seqs {
		if err := s.Append(context.Background(), stream, Entry{Seq: seq, Data: fmt.Appendf(nil, `{"seq":%d}`, seq)}, maxLen, time.Minute); err != nil {
			t.Fatalf("Append %d: %v", seq, err)
		}
	}
}

func seqs(es []Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func TestStream(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		ttl := h.ttl
		s := h.s
		if _, err := s.LastSeq(ctx, "agent:1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LastSeq of a missing stream: %v, want ErrNotFound", err)
		}
		if es, err := s.Read(ctx, "agent:1", 0, 10, 0); len(es) != 0 || err != nil {
			t.Fatalf("Read of a missing stream = %v, %v; want nothing", es, err)
		}
		appendAll(t, s, "agent:1", 100, 0, 1, 2, 3, 5, 8)
		for _, seq := range []int64{8, 7, 0} {
			err := s.Append(ctx, "agent:1", Entry{Seq: seq}, 100, time.Minute)
			if !errors.Is(err, ErrStaleSeq) {
				t.Fatalf("Append seq %d after 8: %v, want ErrStaleSeq", seq, err)
			}
		}
		if err := s.Append(ctx, "agent:1", Entry{Seq: -1}, 100, time.Minute); err == nil {
			t.Fatal("Append of a negative seq succeeded")
		}
		reads := []struct {
			after int64
			limit int
			want  string
		}{
			{-1, 100, "[0 1 2 3 5 8]"},
			{0, 100, "[1 2 3 5 8]"},
			{3, 100, "[5 8]"},
			{3, 1, "[5]"},
			{4, 100, "[5 8]"},
			{8, 100, "[]"},
		}
		for _, r := range reads {
			es, err := s.Read(ctx, "agent:1", r.after, r.limit, 0)
			if err != nil || fmt.Sprint(seqs(es)) != r.want {
				t.Fatalf("Read(after %d, limit %d) = %v, %v; want %s", r.after, r.limit, seqs(es), err, r.want)
			}
		}
		es, _ := s.Read(ctx, "agent:1", 4, 1, 0)
		if len(es) != 1 || string(es[0].Data) != `{"seq":5}` {
			t.Fatalf("Read data = %+v, want {\"seq\":5}", es)
		}
		if n, err := s.LastSeq(ctx, "agent:1"); n != 8 || err != nil {
			t.Fatalf("LastSeq = %d, %v; want 8", n, err)
		}

		// Trim by length: the newest maxLen stay; a reader behind sees the gap.
		appendAll(t, s, "agent:1", 3, 9, 10, 11, 12)
		if es, err := s.Read(ctx, "agent:1", 0, 100, 0); fmt.Sprint(seqs(es)) != "[10 11 12]" || err != nil {
			t.Fatalf("Read after trim to 3 = %v, %v; want [10 11 12]", seqs(es), err)
		}
		if n, _ := s.LastSeq(ctx, "agent:1"); n != 12 {
			t.Fatalf("LastSeq after trim = %d, want 12", n)
		}

		// Idle expiry: the stream goes; a new one may start anywhere.
		if err := s.Append(ctx, "agent:2", Entry{Seq: 40}, 10, ttl); err != nil {
			t.Fatal(err)
		}
		h.advance(ttl + 100*time.Millisecond)
		if _, err := s.LastSeq(ctx, "agent:2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LastSeq of an expired stream: %v, want ErrNotFound", err)
		}
		if es, _ := s.Read(ctx, "agent:2", 0, 10, 0); len(es) != 0 {
			t.Fatalf("Read of an expired stream = %v, want nothing", seqs(es))
		}
		appendAll(t, s, "agent:2", 10, 1)
		if es, _ := s.Read(ctx, "agent:2", 0, 10, 0); fmt.Sprint(seqs(es)) != "[1]" {
			t.Fatalf("Read of a restarted stream = %v, want [1]", seqs(es))
		}
	})
}

func TestReadStreams(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		s := h.s
		appendAll(t, s, "a", 100, 0, 1, 2)
		appendAll(t, s, "b", 100, 5)
		show := func(m map[string][]Entry) string {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			var b strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&b, "%s%v ", k, seqs(m[k]))
			}
			return strings.TrimSpace(b.String())
		}
		reads := []struct {
			from  map[string]int64
			limit int
			want  string
		}{
			{map[string]int64{"a": -1, "b": -1}, 0, "a[0 1 2] b[5]"},
			{map[string]int64{"a": 0, "b": 5}, 0, "a[1 2]"},
			{map[string]int64{"a": 0, "b": 4}, 1, "a[1] b[5]"},
			{map[string]int64{"a": 2, "b": 5, "missing": -1}, 0, ""},
			{map[string]int64{}, 0, ""},
		}
		for _, r := range reads {
			got, err := s.ReadStreams(ctx, r.from, r.limit, 0)
			if err != nil || show(got) != r.want {
				t.Fatalf("ReadStreams(%v, limit %d) = %q, %v; want %q", r.from, r.limit, show(got), err, r.want)
			}
		}
		if got, _ := s.ReadStreams(ctx, map[string]int64{"b": 4}, 0, 0); string(got["b"][0].Data) != `{"seq":5}` {
			t.Fatalf("ReadStreams data = %+v", got)
		}

		// Woken by an Append to any of its streams, one that did not exist
		// yet included.
		got := make(chan map[string][]Entry, 1)
		go func() {
			m, err := s.ReadStreams(ctx, map[string]int64{"a": 2, "b": 5, "c": -1}, 10, 10*time.Second)
			if err != nil {
				t.Error(err)
			}
			got <- m
		}()
		time.Sleep(100 * time.Millisecond)
		t0 := time.Now()
		appendAll(t, s, "c", 10, 0)
		select {
		case m := <-got:
			if show(m) != "c[0]" {
				t.Fatalf("woken ReadStreams = %q, want c[0]", show(m))
			}
			if d := time.Since(t0); d > 2*time.Second {
				t.Fatalf("woken ReadStreams took %v after the Append", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("ReadStreams not woken by an Append")
		}

		// A wait that ends with nothing: no error, nothing; and ctx's end.
		t0 = time.Now()
		m, err := s.ReadStreams(ctx, map[string]int64{"a": 2}, 10, 200*time.Millisecond)
		if len(m) != 0 || err != nil {
			t.Fatalf("ReadStreams with nothing new = %q, %v", show(m), err)
		}
		if d := time.Since(t0); d < 150*time.Millisecond {
			t.Fatalf("ReadStreams returned after %v, before its 200ms wait", d)
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = s.ReadStreams(cctx, map[string]int64{"a": 2}, 10, time.Minute)
		}()
		time.Sleep(50 * time.Millisecond)
		cancel()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatal("ReadStreams did not return when its ctx ended")
		}
		if _, err := s.ReadStreams(ctx, map[string]int64{"": 0}, 0, 0); err == nil {
			t.Fatal("ReadStreams of an empty stream name succeeded")
		}
	})
}

func TestReadWait(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		s := h.s
		appendAll(t, s, "w", 10, 1)

		// Woken by an Append well before the wait ends.
		got := make(chan []Entry, 1)
		go func() {
			es, err := s.Read(ctx, "w", 1, 10, 10*time.Second)
			if err != nil {
				t.Error(err)
			}
			got <- es
		}()
		time.Sleep(100 * time.Millisecond)
		t0 := time.Now()
		appendAll(t, s, "w", 10, 2)
		select {
		case es := <-got:
			if fmt.Sprint(seqs(es)) != "[2]" {
				t.Fatalf("woken Read = %v, want [2]", seqs(es))
			}
			if d := time.Since(t0); d > 2*time.Second {
				t.Fatalf("woken Read took %v after the Append", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Read not woken by Append")
		}

		// A wait that ends with nothing: no error, nothing.
		t0 = time.Now()
		es, err := s.Read(ctx, "w", 2, 10, 200*time.Millisecond)
		if len(es) != 0 || err != nil {
			t.Fatalf("Read with nothing new = %v, %v", seqs(es), err)
		}
		if d := time.Since(t0); d < 150*time.Millisecond {
			t.Fatalf("Read returned after %v, before its 200ms wait", d)
		}

		// ctx's end ends the wait.
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = s.Read(cctx, "w", 2, 10, time.Minute)
		}()
		time.Sleep(50 * time.Millisecond)
		cancel()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatal("Read did not return when its ctx ended")
		}

		// A stream that does not exist yet: the first Append wakes it.
		go func() {
			es, _ := s.Read(ctx, "new", -1, 10, 10*time.Second)
			got <- es
		}()
		time.Sleep(100 * time.Millisecond)
		appendAll(t, s, "new", 10, 0)
		select {
		case es := <-got:
			if fmt.Sprint(seqs(es)) != "[0]" {
				t.Fatalf("Read of a new stream = %v, want [0]", seqs(es))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Read of a new stream not woken")
		}
	})
}

func TestLease(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		ttl := h.ttl
		s := h.s
		if _, _, err := s.Holder(ctx, "agent:1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Holder of a free lease: %v, want ErrNotFound", err)
		}
		f1, ok, err := s.Acquire(ctx, "agent:1", "relay-a", ttl)
		if !ok || err != nil {
			t.Fatalf("Acquire = %d, %v, %v", f1, ok, err)
		}
		if f, ok, err := s.Acquire(ctx, "agent:1", "relay-a", ttl); f != f1 || !ok || err != nil {
			t.Fatalf("renew = %d, %v, %v; want the same fence %d", f, ok, err, f1)
		}
		if _, ok, err := s.Acquire(ctx, "agent:1", "relay-b", ttl); ok || err != nil {
			t.Fatalf("Acquire by another owner = %v, %v; want refused", ok, err)
		}
		if o, f, err := s.Holder(ctx, "agent:1"); o != "relay-a" || f != f1 || err != nil {
			t.Fatalf("Holder = %q, %d, %v", o, f, err)
		}
		if err := s.AppendFenced(ctx, "agent:1", f1, "agent:1", Entry{Seq: 1}, 10, time.Minute); err != nil {
			t.Fatalf("AppendFenced by the holder: %v", err)
		}
		if err := s.Release(ctx, "agent:1", "relay-b"); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Release by a non-holder: %v, want ErrLeaseLost", err)
		}

		// relay-a pauses past its ttl; relay-b takes over with a higher fence.
		h.advance(ttl + 100*time.Millisecond)
		if _, _, err := s.Holder(ctx, "agent:1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Holder of an expired lease: %v, want ErrNotFound", err)
		}
		if err := s.AppendFenced(ctx, "agent:1", f1, "agent:1", Entry{Seq: 2}, 10, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("AppendFenced on an expired lease: %v, want ErrLeaseLost", err)
		}
		f2, ok, err := s.Acquire(ctx, "agent:1", "relay-b", ttl)
		if !ok || err != nil || f2 <= f1 {
			t.Fatalf("takeover = %d, %v, %v; want a fence above %d", f2, ok, err, f1)
		}
		if err := s.AppendFenced(ctx, "agent:1", f1, "agent:1", Entry{Seq: 2}, 10, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("AppendFenced with the stale fence: %v, want ErrLeaseLost", err)
		}
		if err := s.AppendFenced(ctx, "agent:1", f2, "agent:1", Entry{Seq: 2}, 10, time.Minute); err != nil {
			t.Fatalf("AppendFenced by the new holder: %v", err)
		}
		if err := s.AppendFenced(ctx, "agent:1", f2, "agent:1", Entry{Seq: 2}, 10, time.Minute); !errors.Is(err, ErrStaleSeq) {
			t.Fatalf("AppendFenced of a stale seq: %v, want ErrStaleSeq", err)
		}
		if es, _ := s.Read(ctx, "agent:1", 0, 10, 0); fmt.Sprint(seqs(es)) != "[1 2]" {
			t.Fatalf("stream = %v, want [1 2] (nothing from the stale owner)", seqs(es))
		}
		if err := s.Release(ctx, "agent:1", "relay-a"); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Release by the former owner: %v, want ErrLeaseLost", err)
		}
		if err := s.Release(ctx, "agent:1", "relay-b"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Holder(ctx, "agent:1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Holder after Release: %v, want ErrNotFound", err)
		}
		if err := s.AppendFenced(ctx, "agent:1", f2, "agent:1", Entry{Seq: 3}, 10, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("AppendFenced after Release: %v, want ErrLeaseLost", err)
		}
		f3, ok, err := s.Acquire(ctx, "agent:1", "relay-a", ttl)
		if !ok || err != nil || f3 <= f2 {
			t.Fatalf("Acquire after Release = %d, %v, %v; want a fence above %d", f3, ok, err, f2)
		}

		// Of racing owners of a free lease exactly one wins.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if _, ok, err := s.Acquire(ctx, "agent:race", fmt.Sprint("relay-", i), time.Minute); err != nil {
					t.Error(err)
				} else if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d owners acquired one free lease, want 1", wins.Load())
		}
	})
}

func TestClose(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		if err := h.s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = h.s.Read(ctx, "idle", 0, 10, time.Minute)
		}()
		time.Sleep(100 * time.Millisecond)
		if err := h.s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a waiting Read did not return at Close")
		}
		if err := h.s.Put(ctx, "k", []byte("v"), 0); err == nil {
			t.Fatal("Put after Close succeeded")
		}
		if _, err := h.s.Get(ctx, "k"); err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Close: %v, want a failure", err)
		}
		if err := h.s.Ping(ctx); err == nil {
			t.Fatal("Ping after Close succeeded")
		}
	})
}
