package gadget

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// Ticket defaults.
const (
	// DefaultTicketTTL is how long an unused ticket stays valid.
	DefaultTicketTTL = 30 * time.Second
	// maxTickets bounds the tickets remembered (issued or used, not yet
	// expired). Past it the oldest is forgotten (it then reads as unknown).
	maxTickets = 1 << 16
	// ticketBytes is the entropy of a ticket.
	ticketBytes = 32
)

// Tickets issues and redeems single-use WebSocket tickets. A ticket is 32
// random bytes, base64url without padding (43 characters), valid for the
// TTL and for one connection. Used tickets are remembered until they would
// have expired, so a replay is reported as ErrTicketUsed; an expired ticket
// reads as ErrTicketExpired for one more TTL, then as ErrTicketUnknown.
// Entries are swept lazily on Issue and Redeem (no goroutine); at most
// 65536 tickets are remembered, the oldest forgotten first.
//
// Tickets is safe for concurrent use.
type Tickets struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	byKey map[string]*ticket
	fifo  []string // keys in issue order (= expiry order)
	head  int      // fifo[head:] are live keys
}

type ticket struct {
	stream  *Stream
	expires time.Time
	used    bool
}

// NewTickets returns a ticket store. ttl <= 0 means DefaultTicketTTL; a nil
// now means time.Now.
func NewTickets(ttl time.Duration, now func() time.Time) *Tickets {
	if ttl <= 0 {
		ttl = DefaultTicketTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Tickets{ttl: ttl, now: now, byKey: make(map[string]*ticket)}
}

// Issue returns a new ticket for s and how long it stays valid. A ticket
// for a Stream that has ended is still issued; the Gateway refuses it with
// 410 session_ended.
func (t *Tickets) Issue(s *Stream) (string, time.Duration) {
	var b [ticketBytes]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	key := base64.RawURLEncoding.EncodeToString(b[:])
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(now)
	if len(t.byKey) >= maxTickets {
		t.forgetOldestLocked()
	}
	t.byKey[key] = &ticket{stream: s, expires: now.Add(t.ttl)}
	t.fifo = append(t.fifo, key)
	return key, t.ttl
}

// Redeem returns the Stream of a valid ticket and marks it used. It fails
// with ErrTicketUnknown, ErrTicketExpired or ErrTicketUsed.
func (t *Tickets) Redeem(key string) (*Stream, error) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(now)
	tk := t.byKey[key]
	switch {
	case tk == nil:
		return nil, ErrTicketUnknown
	case tk.used:
		return nil, ErrTicketUsed
	case !now.Before(tk.expires):
		return nil, ErrTicketExpired
	}
	tk.used = true
	return tk.stream, nil
}

// Len returns the number of tickets remembered (issued or used, not yet
// swept).
func (t *Tickets) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byKey)
}

// sweepLocked forgets tickets that expired more than a TTL before now.
// Tickets expire in issue order, so it stops at the first one to keep.
func (t *Tickets) sweepLocked(now time.Time) {
	for t.head < len(t.fifo) {
		key := t.fifo[t.head]
		if tk := t.byKey[key]; tk != nil && now.Before(tk.expires.Add(t.ttl)) {
			break
		}
		delete(t.byKey, key)
		t.fifo[t.head] = ""
		t.head++
	}
	t.compactLocked()
}

func (t *Tickets) forgetOldestLocked() {
	if t.head < len(t.fifo) {
		delete(t.byKey, t.fifo[t.head])
		t.fifo[t.head] = ""
		t.head++
		t.compactLocked()
	}
}

// compactLocked reuses the fifo's space once half of it is dead.
func (t *Tickets) compactLocked() {
	if t.head > 0 && t.head >= len(t.fifo)/2 {
		n := copy(t.fifo, t.fifo[t.head:])
		clear(t.fifo[n:])
		t.fifo = t.fifo[:n]
		t.head = 0
	}
}
