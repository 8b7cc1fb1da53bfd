package store

import (
	"context"
	"errors"
	"fmt"
	bolt "go.etcd.io/bbolt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFileSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	c := newFakeClock()
	path := filepath.Join(t.TempDir(), "sub", "dir", "relay.db") // directories are created
	s, err := OpenFile(path, FileOptions{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "session", []byte("sealed"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "short", []byte("x"), time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(ctx, "throttle", 3, time.Hour); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, "agent:1", 10, 1, 2)
	f1, _, err := s.Acquire(ctx, "agent:1", "relay-a", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file mode: %v, %v; want 0600", fi.Mode(), err)
	}

	c.Advance(2 * time.Second)
	s, err = OpenFile(path, FileOptions{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Get(ctx, "session"); err != nil || string(v) != "sealed" {
		t.Fatalf("after reopen Get = %q, %v", v, err)
	}
	if n, err := s.Incr(ctx, "throttle", 1, time.Hour); n != 4 || err != nil {
		t.Fatalf("after reopen Incr = %d, %v; want 4", n, err)
	}
	if n, err := s.LastSeq(ctx, "agent:1"); n != 2 || err != nil {
		t.Fatalf("after reopen LastSeq = %d, %v; want 2", n, err)
	}
	if f2, ok, err := s.Acquire(ctx, "agent:1", "relay-b", time.Second); !ok || err != nil || f2 <= f1 {
		t.Fatalf("after reopen takeover = %d, %v, %v; want a fence above %d", f2, ok, err, f1)
	}
	// The sweep at open deleted the expired key from the file itself.
	raw := 0
	if err := s.view("test", func(tx *bolt.Tx, _ time.Time) error {
		raw = tx.Bucket(bucketKV).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if raw != 2 {
		t.Fatalf("kv bucket holds %d keys after the open sweep, want 2 (session, throttle)", raw)
	}
}

func TestFileSweepOnWrite(t *testing.T) {
	ctx := context.Background()
	c := newFakeClock()
	s, err := OpenFile(filepath.Join(t.TempDir(), "relay.db"), FileOptions{Now: c.Now, NoSync: true, SweepEvery: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.db.Update(func(tx *bolt.Tx) error { // one transaction: fast
		for i := range 2500 {
			if err := tx.Bucket(bucketKV).Put([]byte("k"+strconv.Itoa(i)), encodeItem(nil, c.Now().Add(time.Second))); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, "gone", 10, 1)
	c.Advance(2 * time.Minute)
	count := func() (kv, streams int) {
		_ = s.view("test", func(tx *bolt.Tx, _ time.Time) error {
			kv = tx.Bucket(bucketKV).Stats().KeyN
			streams = tx.Bucket(bucketStreamExp).Stats().KeyN
			return nil
		})
		return
	}
	// Each sweep looks at fileSweepBatch keys; three writes a minute apart
	// clear 2,500 expired keys and the expired stream.
	for i := range 3 {
		if err := s.Put(ctx, "live", nil, time.Hour); err != nil {
			t.Fatal(err)
		}
		kv, _ := count()
		if want := 2500 - (i+1)*fileSweepBatch; want > 0 && kv > want+1 {
			t.Fatalf("after sweep %d: %d keys, want at most %d", i+1, kv, want+1)
		}
		c.Advance(time.Minute)
	}
	if kv, streams := count(); kv != 1 || streams != 0 {
		t.Fatalf("after sweeping: %d keys and %d streams, want 1 and 0", kv, streams)
	}
}

func TestFileOpenErrors(t *testing.T) {
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked.db")
	held, err := OpenFile(locked, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, []byte(strings.Repeat("not a bbolt file ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(dir, "ro")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       []string
	}{
		{"locked", locked, []string{locked, "locked by another relay process", "(pid " + strconv.Itoa(os.Getpid()) + "?)"}},
		{"corrupt", corrupt, []string{corrupt, "corrupt", "move it aside"}},
		{"unwritable directory", filepath.Join(readOnly, "relay.db"), []string{filepath.Join(readOnly, "relay.db"), "writable"}},
		{"directory is a file", filepath.Join(corrupt, "relay.db"), []string{filepath.Join(corrupt, "relay.db"), "cannot create its directory", "writable"}},
		{"empty path", "", []string{"empty path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "unwritable directory" && os.Geteuid() == 0 {
				t.Skip("root writes anywhere")
			}
			s, err := OpenFile(tt.path, FileOptions{LockTimeout: 50 * time.Millisecond})
			if err == nil {
				s.Close()
				t.Fatal("OpenFile succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if errors.Is(err, ErrNotFound) {
				t.Errorf("error %v is ErrNotFound", err)
			}
		})
	}
}

// Concurrent writes share transactions and syncs (group commit); each
// caller still gets its own outcome, also when a batch-mate fails, and
// everything is on disk once the writes return.
func TestFileGroupCommit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := OpenFile(path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	got := make([]int64, n)
	errs := make(chan error, 3*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(3)
		go func() {
			defer wg.Done()
			v, err := s.Incr(ctx, "counter", 1, time.Hour)
			got[i] = v
			errs <- err
		}()
		go func() {
			defer wg.Done()
			errs <- s.Put(ctx, "k"+strconv.Itoa(i), []byte(strconv.Itoa(i)), time.Hour)
		}()
		go func() { // fails: the rest of its batch must still commit
			defer wg.Done()
			if _, err := s.Take(ctx, "absent"+strconv.Itoa(i)); !errors.Is(err, ErrNotFound) {
				errs <- fmt.Errorf("Take of a missing key: %v, want ErrNotFound", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(got)
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("Incr results %v: want 1..%d, each once", got, n)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = OpenFile(path, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range n {
		if v, err := s.Get(ctx, "k"+strconv.Itoa(i)); err != nil || string(v) != strconv.Itoa(i) {
			t.Fatalf("k%d after reopen: %q, %v", i, v, err)
		}
	}
	if v, err := s.Get(ctx, "counter"); err != nil || string(v) != strconv.Itoa(n) {
		t.Fatalf("counter after reopen: %q, %v", v, err)
	}
}
