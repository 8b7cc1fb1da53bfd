package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The File store's buckets. Values in kv are an 8-byte big-endian expiry
// (Unix nanoseconds, 0 = none) followed by the value; each stream is a
// nested bucket of streams keyed by its seq (8-byte big-endian, so keys
// sort in seq order) with its expiry under streamExp; a lease is fence,
// expiry and retention (8 bytes each) followed by the owner.
var (
	bucketMeta      = []byte("meta")
	bucketKV        = []byte("kv")
	bucketStreams   = []byte("streams")
	bucketStreamExp = []byte("stream-expiry")
	bucketLeases    = []byte("leases")
	keyVersion      = []byte("version")
)

// fileFormat is the layout version written to the meta bucket.
const fileFormat = "1"

// FileOptions tune a File store. The zero value is ready to use.
type FileOptions struct {
	// Now is the store's clock (nil: time.Now).
	Now func() time.Time
	// LockTimeout is how long Open waits for another process to let go of
	// the file (default 1 s).
	LockTimeout time.Duration
	// SweepEvery is how often a write also deletes expired entries, a
	// bounded number at a time (default 1 min). Open sweeps them all.
	SweepEvery time.Duration
	// NoSync skips fsync after each write (tests and benchmarks only: a
	// crash may lose or corrupt the file).
	NoSync bool
}

// fileSweepBatch bounds how many entries of each bucket a periodic sweep
// looks at; the next sweep goes on from there.
const fileSweepBatch = 1000

// File is a Store in one bbolt file: the default for a single instance,
// so that relay sessions survive a restart with no other server. One
// process owns the file (bbolt locks it); waiting Reads are woken in
// process. Every write is synced to disk before it returns; concurrent
// writes share a transaction and its sync (group commit).
type File struct {
	db   *bolt.DB
	path string
	now  func() time.Time
	n    notifier

	// Group commit (see commit): updates waiting, and whether a commit
	// is running.
	commitMu   sync.Mutex
	pending    []*commitCall
	committing bool

	sweepEvery time.Duration
	sweepMu    sync.Mutex
	lastSweep  time.Time
	sweepFrom  map[string][]byte // bucket name → where the next sweep starts
}

// OpenFile opens (creating it and its directory when missing) the File
// store at path. Its errors name the path and say what to fix.
func OpenFile(path string, opts FileOptions) (*File, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = time.Minute
	}
	if path == "" {
		return nil, errors.New("file store: empty path: give one, e.g. file:/var/lib/finesse-relay/finesse-relay.db")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("file store %s: cannot create its directory: %w: create %s writable by the relay's user, or choose another path", path, err, dir)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, openFileError(path, err)
	}
	f := &File{db: db, path: path, now: opts.Now, sweepEvery: opts.SweepEvery, sweepFrom: make(map[string][]byte)}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketKV, bucketStreams, bucketStreamExp, bucketLeases} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keyVersion); {
		case v == nil:
			return meta.Put(keyVersion, []byte(fileFormat))
		case string(v) != fileFormat:
			return fmt.Errorf("layout version %q, this relay reads %q: use the relay version that wrote it, or move the file aside", v, fileFormat)
		}
		f.sweepAll(tx, f.now())
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("file store %s: %w", path, err)
	}
	f.lastSweep = f.now()
	return f, nil
}

// openFileError says what went wrong opening path and what to do about it.
func openFileError(path string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		who := lockHolder(path)
		return fmt.Errorf("file store %s is locked by another relay process%s: stop it, or give this one its own STORE=file:PATH", path, who)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("file store %s: %w: make the file and its directory writable by the relay's user, or choose another path", path, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return fmt.Errorf("file store %s is corrupt or not a relay store (%w): move it aside to start with an empty store (every relay session in it is lost)", path, err)
	default:
		return fmt.Errorf("file store %s: %w: check that the path is a writable file on a local disk", path, err)
	}
}

// lockHolder returns " (pid N?)" naming the process that holds path's
// lock when the platform can tell, else "".
func lockHolder(path string) string {
	pid := lockPID(path)
	if pid == 0 {
		return ""
	}
	return " (pid " + strconv.Itoa(pid) + "?)"
}

// Path returns the store's file.
func (f *File) Path() string { return f.path }

// keep marks an error of the caller's (not found, stale seq, lease lost,
// bad input) so that update/view pass it through instead of calling the
// store unavailable.
type keep struct{ error }

func (k keep) Unwrap() error { return k.error }

// classify turns a transaction's error into the Store's: the caller's own
// errors pass, I/O errors become ErrUnavailable.
func (f *File) classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var k keep
	if errors.As(err, &k) {
		return k.error
	}
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("file store %s: %s: %w", f.path, op, errClosed)
	}
	return fmt.Errorf("file store %s: %s: %w (%w)", f.path, op, ErrUnavailable, err)
}

func (f *File) update(op string, fn func(tx *bolt.Tx, now time.Time) error) error {
	return f.classify(op, f.commit(fn, f.now()))
}

// commitCall is one update waiting for a group commit: its outcome, or
// errLead (it leads the next commit), or errSolo (run it alone).
type commitCall struct {
	fn   func(tx *bolt.Tx, now time.Time) error
	now  time.Time
	done chan error
}

var (
	errLead = errors.New("store: lead the next commit")
	errSolo = errors.New("store: commit alone")
)

// commit runs fn in a write transaction synced to disk, grouped with the
// updates that arrive meanwhile (group commit): with no other update in
// flight it commits at once, alone; while one commit syncs, the updates
// that arrive wait and then go in one transaction and one sync, so a
// sign-in storm costs one fsync per batch instead of one per write.
// Every caller still returns after its own write is on disk. A batch
// whose transaction fails is retried without the failing update, which
// then runs alone (as bbolt's DB.Batch): updates are functions of the
// transaction's state and assign their results, so running one again
// after a rollback gives what it would have alone.
func (f *File) commit(fn func(tx *bolt.Tx, now time.Time) error, now time.Time) error {
	c := &commitCall{fn: fn, now: now, done: make(chan error, 1)}
	f.commitMu.Lock()
	f.pending = append(f.pending, c)
	lead := !f.committing
	f.committing = true
	f.commitMu.Unlock()
	if !lead {
		if err := <-c.done; !errors.Is(err, errLead) {
			return f.outcome(c, err)
		}
	}
	// The leader takes every update waiting (its own among them), commits
	// them, and hands the lead to the first of those that came meanwhile.
	f.commitMu.Lock()
	batch := f.pending
	f.pending = nil
	f.commitMu.Unlock()
	f.runBatch(batch)
	f.commitMu.Lock()
	if len(f.pending) > 0 {
		f.pending[0].done <- errLead
	} else {
		f.committing = false
	}
	f.commitMu.Unlock()
	return f.outcome(c, <-c.done)
}

// outcome is c's result once its batch told it err: errSolo runs it alone.
func (f *File) outcome(c *commitCall, err error) error {
	if errors.Is(err, errSolo) {
		return f.updateAlone(c.fn, c.now)
	}
	return err
}

// runBatch commits calls in one transaction (see commit) and tells each
// its outcome.
func (f *File) runBatch(calls []*commitCall) {
	for len(calls) > 0 {
		failed := -1
		err := f.db.Update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := safeCall(c.fn, tx, c.now); err != nil {
					failed = i
					return err
				}
			}
			f.maybeSweep(tx, calls[len(calls)-1].now)
			return nil
		})
		if failed < 0 || len(calls) == 1 {
			for _, c := range calls {
				c.done <- err
			}
			return
		}
		calls[failed].done <- errSolo
		calls = append(calls[:failed:failed], calls[failed+1:]...)
	}
}

// safeCall runs fn, a panic as its error (the leader must not leave the
// batch's other callers waiting).
func safeCall(fn func(tx *bolt.Tx, now time.Time) error, tx *bolt.Tx, now time.Time) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: update panicked: %v", p)
		}
	}()
	return fn(tx, now)
}

// updateAlone runs fn in a write transaction of its own.
func (f *File) updateAlone(fn func(tx *bolt.Tx, now time.Time) error, now time.Time) error {
	return f.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx, now); err != nil {
			return err
		}
		f.maybeSweep(tx, now)
		return nil
	})
}

func (f *File) view(op string, fn func(tx *bolt.Tx, now time.Time) error) error {
	now := f.now()
	return f.classify(op, f.db.View(func(tx *bolt.Tx) error { return fn(tx, now) }))
}

func putExp(b []byte, exp time.Time) {
	var n int64
	if !exp.IsZero() {
		n = exp.UnixNano()
	}
	binary.BigEndian.PutUint64(b, uint64(n))
}

func getExp(b []byte) time.Time {
	n := int64(binary.BigEndian.Uint64(b)) // #nosec G115 -- undoes putExp's uint64(n): a two's-complement round trip of UnixNano, exact for every int64
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func encodeItem(value []byte, exp time.Time) []byte {
	b := make([]byte, 8+len(value))
	putExp(b, exp)
	copy(b[8:], value)
	return b
}

// liveItem decodes a kv value; ok is false when it is missing, malformed
// or expired.
func liveItem(raw []byte, now time.Time) (value []byte, exp time.Time, ok bool) {
	if len(raw) < 8 {
		return nil, time.Time{}, false
	}
	exp = getExp(raw)
	if expired(exp, now) {
		return nil, exp, false
	}
	return raw[8:], exp, true
}

// Put implements Store.
func (f *File) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKey("key", key); err != nil {
		return err
	}
	if err := checkValue(key, len(value)); err != nil {
		return err
	}
	return f.update("put", func(tx *bolt.Tx, now time.Time) error {
		return tx.Bucket(bucketKV).Put([]byte(key), encodeItem(value, expiry(now, ttl)))
	})
}

// PutNew implements Store.
func (f *File) PutNew(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkKey("key", key); err != nil {
		return false, err
	}
	if err := checkValue(key, len(value)); err != nil {
		return false, err
	}
	stored := false
	err := f.update("put-new", func(tx *bolt.Tx, now time.Time) error {
		b := tx.Bucket(bucketKV)
		if _, _, ok := liveItem(b.Get([]byte(key)), now); ok {
			return nil
		}
		stored = true
		return b.Put([]byte(key), encodeItem(value, expiry(now, ttl)))
	})
	return stored && err == nil, err
}

// Get implements Store.
func (f *File) Get(_ context.Context, key string) ([]byte, error) {
	var out []byte
	err := f.view("get", func(tx *bolt.Tx, now time.Time) error {
		v, _, ok := liveItem(tx.Bucket(bucketKV).Get([]byte(key)), now)
		if !ok {
			return keep{fmt.Errorf("get %q: %w", key, ErrNotFound)}
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// Take implements Store.
func (f *File) Take(_ context.Context, key string) ([]byte, error) {
	var out []byte
	err := f.update("take", func(tx *bolt.Tx, now time.Time) error {
		b := tx.Bucket(bucketKV)
		v, _, ok := liveItem(b.Get([]byte(key)), now)
		if !ok {
			return keep{fmt.Errorf("take %q: %w", key, ErrNotFound)}
		}
		out = bytes.Clone(v)
		return b.Delete([]byte(key))
	})
	return out, err
}

// Delete implements Store.
func (f *File) Delete(_ context.Context, key string) error {
	return f.update("delete", func(tx *bolt.Tx, _ time.Time) error {
		return tx.Bucket(bucketKV).Delete([]byte(key))
	})
}

// Incr implements Store.
func (f *File) Incr(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKey("key", key); err != nil {
		return 0, err
	}
	var n int64
	err := f.update("incr", func(tx *bolt.Tx, now time.Time) error {
		b := tx.Bucket(bucketKV)
		v, exp, ok := liveItem(b.Get([]byte(key)), now)
		if ok {
			var err error
			if n, err = parseCounter(key, v); err != nil {
				return keep{err}
			}
		} else {
			n, exp = 0, expiry(now, ttl)
		}
		n += delta
		return b.Put([]byte(key), encodeItem(strconv.AppendInt(nil, n, 10), exp))
	})
	return n, err
}

// Scan implements Store. fn runs after the read transaction, on a
// snapshot, so it may call the store.
func (f *File) Scan(_ context.Context, prefix string, fn func(key string, value []byte) bool) error {
	var snap []memKV
	err := f.view("scan", func(tx *bolt.Tx, now time.Time) error {
		c := tx.Bucket(bucketKV).Cursor()
		p := []byte(prefix)
		for k, raw := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, raw = c.Next() {
			if v, _, ok := liveItem(raw, now); ok {
				snap = append(snap, memKV{string(k), bytes.Clone(v)})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, kv := range snap {
		if !fn(kv.k, kv.v) {
			break
		}
	}
	return nil
}

func seqKey(seq int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seq)) // #nosec G115 -- seq >= 0: checkAppend rejects negative seqs and Read clamps from to 0
	return b[:]
}

// liveStream returns the stream's bucket when it exists and has not
// expired (nil otherwise).
func liveStreamBucket(tx *bolt.Tx, name string, now time.Time) *bolt.Bucket {
	raw := tx.Bucket(bucketStreamExp).Get([]byte(name))
	if len(raw) != 8 || expired(getExp(raw), now) {
		return nil
	}
	return tx.Bucket(bucketStreams).Bucket([]byte(name))
}

// Append implements Store.
func (f *File) Append(_ context.Context, stream string, e Entry, maxLen int, ttl time.Duration) error {
	if err := checkAppend(stream, e, maxLen); err != nil {
		return err
	}
	err := f.update("append", func(tx *bolt.Tx, now time.Time) error {
		return appendTx(tx, now, stream, e, maxLen, ttl)
	})
	if err == nil {
		f.n.wake(stream)
	}
	return err
}

// AppendFenced implements Store.
func (f *File) AppendFenced(_ context.Context, lease string, fence int64, stream string, e Entry, maxLen int, ttl time.Duration) error {
	if err := checkAppend(stream, e, maxLen); err != nil {
		return err
	}
	err := f.update("append", func(tx *bolt.Tx, now time.Time) error {
		l, ok := decodeLease(tx.Bucket(bucketLeases).Get([]byte(lease)))
		if !ok || expired(l.exp, now) || l.fence != fence {
			return keep{fmt.Errorf("append to %q under lease %q with fence %d: %w", stream, lease, fence, ErrLeaseLost)}
		}
		return appendTx(tx, now, stream, e, maxLen, ttl)
	})
	if err == nil {
		f.n.wake(stream)
	}
	return err
}

func appendTx(tx *bolt.Tx, now time.Time, stream string, e Entry, maxLen int, ttl time.Duration) error {
	name := []byte(stream)
	streams := tx.Bucket(bucketStreams)
	b := liveStreamBucket(tx, stream, now)
	if b == nil {
		if streams.Bucket(name) != nil {
			if err := streams.DeleteBucket(name); err != nil {
				return err
			}
		}
		var err error
		if b, err = streams.CreateBucket(name); err != nil {
			return err
		}
	} else if k, _ := b.Cursor().Last(); k != nil {
		if last := int64(binary.BigEndian.Uint64(k)); e.Seq <= last { // #nosec G115 -- keys are seqKey(seq >= 0), so the top bit is clear
			return keep{fmt.Errorf("append seq %d to %q (last %d): %w", e.Seq, stream, last, ErrStaleSeq)}
		}
	}
	if err := b.Put(seqKey(e.Seq), bytes.Clone(e.Data)); err != nil {
		return err
	}
	if err := trim(b, maxLen); err != nil {
		return err
	}
	exp := make([]byte, 8)
	putExp(exp, expiry(now, ttl))
	return tx.Bucket(bucketStreamExp).Put(name, exp)
}

// trim deletes b's oldest entries beyond its newest maxLen: it walks back
// maxLen entries from the end and deletes everything before.
func trim(b *bolt.Bucket, maxLen int) error {
	c := b.Cursor()
	k, _ := c.Last()
	for i := 1; i < maxLen && k != nil; i++ {
		k, _ = c.Prev()
	}
	if k == nil {
		return nil
	}
	var old [][]byte
	for k, _ = c.Prev(); k != nil; k, _ = c.Prev() {
		old = append(old, bytes.Clone(k))
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Read implements Store.
func (f *File) Read(ctx context.Context, stream string, after int64, limit int, wait time.Duration) ([]Entry, error) {
	return f.n.readWait(ctx, stream, wait, func() ([]Entry, error) {
		var out []Entry
		err := f.view("read", func(tx *bolt.Tx, now time.Time) error {
			b := liveStreamBucket(tx, stream, now)
			if b == nil {
				return nil
			}
			from := after + 1
			if from < 0 {
				from = 0
			}
			c := b.Cursor()
			for k, v := c.Seek(seqKey(from)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
				out = append(out, Entry{Seq: int64(binary.BigEndian.Uint64(k)), Data: bytes.Clone(v)}) // #nosec G115 -- keys are seqKey(seq >= 0), so the top bit is clear
			}
			return nil
		})
		return out, err
	})
}

// ReadStreams implements Store.
func (f *File) ReadStreams(ctx context.Context, from map[string]int64, limit int, wait time.Duration) (map[string][]Entry, error) {
	if err := checkStreams(from); err != nil {
		return nil, err
	}
	return f.n.readStreamsWait(ctx, from, wait, func(stream string, after int64) ([]Entry, error) {
		return f.Read(ctx, stream, after, limit, 0)
	})
}

// LastSeq implements Store.
func (f *File) LastSeq(_ context.Context, stream string) (int64, error) {
	var seq int64
	err := f.view("last-seq", func(tx *bolt.Tx, now time.Time) error {
		if b := liveStreamBucket(tx, stream, now); b != nil {
			if k, _ := b.Cursor().Last(); k != nil {
				seq = int64(binary.BigEndian.Uint64(k)) // #nosec G115 -- keys are seqKey(seq >= 0), so the top bit is clear
				return nil
			}
		}
		return keep{fmt.Errorf("last seq of %q: %w", stream, ErrNotFound)}
	})
	return seq, err
}

type fileLease struct {
	fence     int64
	exp, keep time.Time
	owner     string
}

func decodeLease(raw []byte) (fileLease, bool) {
	if len(raw) < 24 {
		return fileLease{}, false
	}
	return fileLease{
		fence: int64(binary.BigEndian.Uint64(raw)), // #nosec G115 -- written by encode from a fence that starts at 1 and only grows by 1
		exp:   getExp(raw[8:]),
		keep:  getExp(raw[16:]),
		owner: string(raw[24:]),
	}, true
}

func (l fileLease) encode() []byte {
	b := make([]byte, 24+len(l.owner))
	binary.BigEndian.PutUint64(b, uint64(l.fence)) // #nosec G115 -- fence starts at 1 and only grows by 1, never negative
	putExp(b[8:], l.exp)
	putExp(b[16:], l.keep)
	copy(b[24:], l.owner)
	return b
}

// Acquire implements Store.
func (f *File) Acquire(_ context.Context, name, owner string, ttl time.Duration) (int64, bool, error) {
	if err := checkKey("lease", name); err != nil {
		return 0, false, err
	}
	if owner == "" {
		return 0, false, fmt.Errorf("store: acquire %q: empty owner", name)
	}
	if ttl <= 0 {
		return 0, false, fmt.Errorf("store: acquire %q: ttl %v must be positive", name, ttl)
	}
	var fence int64
	var ok bool
	err := f.update("acquire", func(tx *bolt.Tx, now time.Time) error {
		b := tx.Bucket(bucketLeases)
		l, found := decodeLease(b.Get([]byte(name)))
		if found && expired(l.keep, now) {
			found = false
		}
		switch {
		case !found:
			l = fileLease{fence: 1, owner: owner}
		case l.owner == owner && !expired(l.exp, now):
		case expired(l.exp, now):
			l.owner = owner
			l.fence++
		default:
			fence = l.fence
			return keep{errRefused}
		}
		l.exp = now.Add(ttl)
		l.keep = l.exp.Add(FenceRetention)
		fence, ok = l.fence, true
		return b.Put([]byte(name), l.encode())
	})
	if errors.Is(err, errRefused) {
		return fence, false, nil
	}
	return fence, ok, err
}

// errRefused rolls back an Acquire that another owner's lease refuses.
var errRefused = errors.New("store: lease held by another owner")

// Release implements Store.
func (f *File) Release(_ context.Context, name, owner string) error {
	return f.update("release", func(tx *bolt.Tx, now time.Time) error {
		b := tx.Bucket(bucketLeases)
		l, ok := decodeLease(b.Get([]byte(name)))
		if !ok || l.owner != owner || expired(l.exp, now) {
			return keep{fmt.Errorf("release %q as %q: %w", name, owner, ErrLeaseLost)}
		}
		l.exp = now
		return b.Put([]byte(name), l.encode())
	})
}

// Holder implements Store.
func (f *File) Holder(_ context.Context, name string) (string, int64, error) {
	var l fileLease
	err := f.view("holder", func(tx *bolt.Tx, now time.Time) error {
		var ok bool
		l, ok = decodeLease(tx.Bucket(bucketLeases).Get([]byte(name)))
		if !ok || expired(l.exp, now) {
			return keep{fmt.Errorf("holder of %q: %w", name, ErrNotFound)}
		}
		return nil
	})
	return l.owner, l.fence, err
}

// Ping implements Store: a read transaction.
func (f *File) Ping(context.Context) error {
	return f.view("ping", func(tx *bolt.Tx, _ time.Time) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("meta bucket missing")
		}
		return nil
	})
}

// Close implements Store: it closes the file (releasing its lock) and
// wakes waiting Reads.
func (f *File) Close() error {
	err := f.db.Close() // first: woken Reads then find it closed
	f.n.close()
	if err != nil {
		return fmt.Errorf("file store %s: close: %w", f.path, err)
	}
	return nil
}

// maybeSweep runs a bounded sweep inside a write transaction when the
// last one is SweepEvery old.
func (f *File) maybeSweep(tx *bolt.Tx, now time.Time) {
	f.sweepMu.Lock()
	defer f.sweepMu.Unlock()
	if now.Sub(f.lastSweep) < f.sweepEvery {
		return
	}
	f.lastSweep = now
	f.sweep(tx, now, fileSweepBatch)
}

// sweepAll deletes every expired entry (at Open).
func (f *File) sweepAll(tx *bolt.Tx, now time.Time) {
	f.sweepMu.Lock()
	defer f.sweepMu.Unlock()
	f.sweep(tx, now, 0)
}

// sweep looks at up to max entries of each bucket (0: all), from where
// the last sweep stopped, and deletes the expired ones. Errors are left
// for the next sweep: expiry is also checked on every read.
func (f *File) sweep(tx *bolt.Tx, now time.Time, max int) {
	f.sweepBucket(tx.Bucket(bucketKV), "kv", max, func(_, v []byte) bool {
		_, _, ok := liveItem(v, now)
		return !ok
	}, nil)
	f.sweepBucket(tx.Bucket(bucketLeases), "leases", max, func(_, v []byte) bool {
		l, ok := decodeLease(v)
		return !ok || expired(l.keep, now)
	}, nil)
	streams := tx.Bucket(bucketStreams)
	f.sweepBucket(tx.Bucket(bucketStreamExp), "streams", max, func(_, v []byte) bool {
		return len(v) != 8 || expired(getExp(v), now)
	}, func(k []byte) {
		if streams.Bucket(k) != nil {
			_ = streams.DeleteBucket(k)
		}
	})
}

func (f *File) sweepBucket(b *bolt.Bucket, name string, max int, dead func(k, v []byte) bool, also func(k []byte)) {
	c := b.Cursor()
	k, v := c.Seek(f.sweepFrom[name])
	var doomed [][]byte
	n := 0
	for ; k != nil && (max == 0 || n < max); k, v = c.Next() {
		n++
		if dead(k, v) {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	if k == nil {
		delete(f.sweepFrom, name)
	} else {
		f.sweepFrom[name] = bytes.Clone(k)
	}
	for _, k := range doomed {
		if err := b.Delete(k); err == nil && also != nil {
			also(k)
		}
	}
}

// String names the store for logs.
func (f *File) String() string { return "file:" + f.path }
