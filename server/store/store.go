// Package store is the relay's durable, shareable state behind one small
// interface: keys with lifetimes, atomic single use, counters, one
// append-only stream per agent, and leases with fencing tokens.
//
// The sign-in package keeps relay sessions (hashed tokens), tickets, sign-in
// throttles and sealed credentials in it; the agent core keeps each agent's
// outbound message stream and its ownership lease. Three implementations
// share one conformance suite: Memory (demo, tests), File (bbolt; the
// default for a single instance: it survives restarts) and Redis (several
// instances behind a load balancer).
//
// Values are opaque bytes: callers seal secrets before they reach a Store
// (package server/seal). Keys, stream and lease names are not secret:
// they appear in error messages (and so in logs) and in Redis in the
// clear, so a key derived from a token or a ticket must be its hash. Nothing in a Store grows without bound: every key
// written with a positive TTL expires, streams are trimmed by length and
// expire when idle.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every implementation. Implementations wrap them with
// context; test with errors.Is.
var (
	// ErrNotFound: the key does not exist or has expired.
	ErrNotFound = errors.New("store: not found")
	// ErrUnavailable: the store cannot be reached or failed (I/O, network).
	// It is transient: the same call may succeed later.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrStaleSeq: Append was given a seq not above the stream's last one.
	ErrStaleSeq = errors.New("store: seq not above the stream's last")
	// ErrLeaseLost: the caller does not hold the lease (Renew, Release,
	// AppendFenced).
	ErrLeaseLost = errors.New("store: lease not held")
)

// Store is the relay's durable state. Implementations are safe for
// concurrent use. A ttl <= 0 means "no expiry" where a ttl is taken.
type Store interface {
	// Put stores value under key for ttl, replacing any value.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// PutNew stores value only when key does not exist; it reports
	// whether it did. Of concurrent PutNew calls on one key exactly one
	// stores.
	PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Get returns key's value or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take returns key's value and deletes it, atomically: of concurrent
	// Takes of one key exactly one gets the value, the others ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Incr adds delta to the integer counter at key and returns the new
	// value (Get reads it back as its decimal text). A counter that does not exist starts at 0 and gets ttl; an
	// existing counter keeps its expiry (a fixed window).
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// Scan calls fn for every live key starting with prefix, in no
	// particular order, until fn returns false.
	Scan(ctx context.Context, prefix string, fn func(key string, value []byte) bool) error

	// Append adds e to the stream named stream. e.Seq must be above the
	// stream's last seq (else ErrStaleSeq). The stream is trimmed to its
	// newest maxLen entries and expires ttl after its last Append.
	Append(ctx context.Context, stream string, e Entry, maxLen int, ttl time.Duration) error
	// AppendFenced is Append done only while the lease named lease is held
	// with fence (Acquire's fence), checked atomically with the append:
	// when the lease has expired or passed to another owner it fails with
	// ErrLeaseLost and appends nothing.
	AppendFenced(ctx context.Context, lease string, fence int64, stream string, e Entry, maxLen int, ttl time.Duration) error
	// Read returns up to limit (<= 0: all) entries of stream with
	// Seq > after, oldest first; a first entry above after+1 means the
	// ones between were trimmed. When there are none it waits until one is appended, ctx ends
	// or wait elapses (wait <= 0: does not wait), then returns what it has
	// (possibly nothing, with a nil error).
	Read(ctx context.Context, stream string, after int64, limit int, wait time.Duration) ([]Entry, error)
	// ReadStreams is Read over several streams in one call: from maps each
	// stream to the last seq its caller has, and the result maps each
	// stream that has newer entries to up to limit (<= 0: all) of them.
	// When none has, it waits until one is appended to, ctx ends or wait
	// elapses, then returns what it has (possibly nothing, with a nil
	// error). However many streams it reads, a waiting call holds one
	// connection (Redis), so one reader can follow thousands of agents.
	ReadStreams(ctx context.Context, from map[string]int64, limit int, wait time.Duration) (map[string][]Entry, error)
	// LastSeq returns the seq of the stream's newest entry, or ErrNotFound
	// when the stream is empty or gone.
	LastSeq(ctx context.Context, stream string) (int64, error)

	// Acquire takes the lease name for owner for ttl, or renews it when
	// owner already holds it. ok is false when another owner holds it.
	// fence grows every time the lease is taken anew (by another owner,
	// or by the same one after it expired or was released), so a paused
	// former owner's writes can be told apart; a renewal keeps it.
	Acquire(ctx context.Context, name, owner string, ttl time.Duration) (fence int64, ok bool, err error)
	// Release gives the lease up when owner holds it (else ErrLeaseLost).
	Release(ctx context.Context, name, owner string) error
	// Holder returns the lease's current owner and fence, or ErrNotFound.
	Holder(ctx context.Context, name string) (owner string, fence int64, err error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store's resources. Calls after Close fail.
	Close() error
}

// Entry is one message of an agent's stream.
type Entry struct {
	// Seq is the message's sequence number in the agent's stream; it is
	// never negative.
	Seq int64
	// Data is the message (opaque to the store).
	Data []byte
}
