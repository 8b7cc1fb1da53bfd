package gadget

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// Ticket defaults.
const (
	// DefaultTicketTTL is how long an unused ticket stays valid.
	DefaultTicketTTL = 30 * time.Second
	// DefaultMaxTicketsPerSession bounds the outstanding (issued, not yet
	// redeemed, not expired) tickets of one relay session.
	DefaultMaxTicketsPerSession = 16
	// ticketBytes is the entropy of a ticket.
	ticketBytes = 32
)

// Grant is what a redeemed ticket gives: the agent's Stream and the relay
// session (an opaque id, never the session token) the ticket was issued to.
type Grant struct {
	Stream  *Stream
	Session string
}

// TicketRedeemer redeems single-use tickets (gadget.Tickets in memory; the
// sign-in package's store-backed tickets). Errors wrap ErrTicketUnknown,
// ErrTicketExpired or ErrTicketUsed, or anything else (→ 503 store_unavailable).
type TicketRedeemer interface {
	Redeem(ctx context.Context, ticket string) (Grant, error)
}

// TicketsConfig configures Tickets. Zero values take the defaults.
type TicketsConfig struct {
	// TTL is how long an unused ticket stays valid (0: DefaultTicketTTL).
	TTL time.Duration
	// MaxPerSession bounds the outstanding tickets of one relay session;
	// Issue fails with ErrTooManyTickets beyond it
	// (0: DefaultMaxTicketsPerSession).
	MaxPerSession int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Tickets issues and redeems single-use WebSocket tickets in memory. A
// ticket is 32 random bytes, base64url without padding (43 characters),
// valid for the TTL and for one connection, and bound to one relay session.
//
// Used tickets are remembered until a TTL after they would have expired, so
// a replay is reported as ErrTicketUsed; an expired ticket reads as
// ErrTicketExpired for at least one more TTL, then as ErrTicketUnknown.
//
// Memory is bounded per relay session, never relay-wide: a session may have
// at most MaxPerSession outstanding tickets (Issue refuses more with
// ErrTooManyTickets) and at most MaxPerSession spent ones (used or expired)
// remembered; past that its own oldest spent ticket is forgotten (a replay
// of it then reads as unknown, still refused). One session can therefore
// never push out another session's ticket. Entries are swept lazily, at
// most once per TTL, on Issue and Redeem (no goroutine).
//
// Tickets is safe for concurrent use.
type Tickets struct {
	ttl    time.Duration
	maxPer int
	now    func() time.Time

	mu        sync.Mutex
	byKey     map[string]*ticket
	bySession map[string][]string // keys of each session, in issue order
	lastSweep time.Time
}

type ticket struct {
	grant   Grant
	expires time.Time
	used    bool
}

// spent reports whether the ticket can no longer be redeemed.
func (tk *ticket) spent(now time.Time) bool { return tk.used || !now.Before(tk.expires) }

// NewTickets returns an in-memory ticket store.
func NewTickets(cfg TicketsConfig) *Tickets {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTicketTTL
	}
	if cfg.MaxPerSession <= 0 {
		cfg.MaxPerSession = DefaultMaxTicketsPerSession
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Tickets{
		ttl: cfg.TTL, maxPer: cfg.MaxPerSession, now: cfg.Now,
		byKey: make(map[string]*ticket), bySession: make(map[string][]string),
	}
}

// Issue returns a new ticket for s, bound to the relay session (an opaque
// id, never the session token), and how long it stays valid. It fails with
// ErrTooManyTickets when the session already has MaxPerSession outstanding
// tickets. A ticket for a Stream that has ended is still issued; the
// Gateway refuses it with 410 session_ended.
func (t *Tickets) Issue(s *Stream, session string) (string, time.Duration, error) {
	var b [ticketBytes]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	key := base64.RawURLEncoding.EncodeToString(b[:])
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.maybeSweepLocked(now)
	keys := t.bySession[session]
	outstanding := 0
	for _, k := range keys {
		if !t.byKey[k].spent(now) {
			outstanding++
		}
	}
	if outstanding >= t.maxPer {
		return "", 0, ErrTooManyTickets
	}
	// Forget this session's oldest spent tickets beyond the bound.
	for spent := len(keys) - outstanding; spent >= t.maxPer; spent-- {
		for i, k := range keys {
			if t.byKey[k].spent(now) {
				delete(t.byKey, k)
				keys = append(keys[:i], keys[i+1:]...)
				break
			}
		}
	}
	t.byKey[key] = &ticket{grant: Grant{Stream: s, Session: session}, expires: now.Add(t.ttl)}
	t.bySession[session] = append(keys, key)
	return key, t.ttl, nil
}

// Redeem returns the Grant of a valid ticket and marks it used. It fails
// with ErrTicketUnknown, ErrTicketExpired or ErrTicketUsed. ctx is unused
// (the store is in memory); it is there for TicketRedeemer.
func (t *Tickets) Redeem(_ context.Context, key string) (Grant, error) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.maybeSweepLocked(now)
	tk := t.byKey[key]
	switch {
	case tk == nil:
		return Grant{}, ErrTicketUnknown
	case tk.used:
		return Grant{}, ErrTicketUsed
	case !now.Before(tk.expires):
		return Grant{}, ErrTicketExpired
	}
	tk.used = true
	return tk.grant, nil
}

// Revoke forgets every ticket of a relay session (at sign-out): its
// outstanding tickets then read as unknown.
func (t *Tickets) Revoke(session string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range t.bySession[session] {
		delete(t.byKey, k)
	}
	delete(t.bySession, session)
}

// Len returns the number of tickets remembered (issued or used, not yet
// forgotten).
func (t *Tickets) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byKey)
}

// maybeSweepLocked forgets tickets that expired more than a TTL before now,
// at most once per TTL (so the cost, proportional to the tickets
// remembered, is amortized over a TTL of calls).
func (t *Tickets) maybeSweepLocked(now time.Time) {
	if now.Sub(t.lastSweep) < t.ttl {
		return
	}
	t.lastSweep = now
	for session, keys := range t.bySession {
		kept := keys[:0]
		for _, k := range keys {
			if now.Before(t.byKey[k].expires.Add(t.ttl)) {
				kept = append(kept, k)
			} else {
				delete(t.byKey, k)
			}
		}
		if len(kept) == 0 {
			delete(t.bySession, session)
		} else {
			clear(keys[len(kept):])
			t.bySession[session] = kept
		}
	}
}
