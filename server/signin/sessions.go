package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"finesse-relay/gadget"
	"finesse-relay/server/store"
)

// A relay session is one browser sign-in. Its token is 32 random bytes,
// never an IdS token, and only its SHA-256 hash is stored. The hash (hex)
// is the session's id inside the relay: ticket grants and the Gateway's
// per-session accounting use it, never the token.

func sessionKey(id string) string               { return "rs:" + id }
func agentSessionKey(loginID, id string) string { return "rsa:" + loginID + ":" + id }
func ticketKey(hash string) string              { return "tk:" + hash }
func ticketUsedKey(hash string) string          { return "tku:" + hash }
func ticketCountKey(session string) string      { return "tkn:" + session }

// Session is a relay session as the store holds it.
type Session struct {
	// ID is the hex SHA-256 of the token.
	ID string `json:"-"`
	// LoginID is the agent the session belongs to.
	LoginID string `json:"loginId"`
	// Expires is the session's absolute end.
	Expires time.Time `json:"expires"`
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashOf(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// createSession stores a new relay session for loginID and returns its token.
func (s *Service) createSession(ctx context.Context, loginID string) (string, Session, error) {
	tok := randomToken()
	rs := Session{ID: hashOf(tok), LoginID: loginID, Expires: s.cfg.Now().Add(s.cfg.SessionTTL)}
	b, _ := json.Marshal(rs)
	if err := s.cfg.Store.Put(ctx, sessionKey(rs.ID), b, s.cfg.SessionTTL); err != nil {
		return "", Session{}, storeErr("save session", err)
	}
	if err := s.cfg.Store.Put(ctx, agentSessionKey(loginID, rs.ID), nil, s.cfg.SessionTTL); err != nil {
		return "", Session{}, storeErr("save session", err)
	}
	return tok, rs, nil
}

// lookup returns the relay session of a token.
func (s *Service) lookup(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > 128 {
		return Session{}, fmt.Errorf("%w: no session token", ErrUnauthenticated)
	}
	id := hashOf(token)
	b, err := s.cfg.Store.Get(ctx, sessionKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, fmt.Errorf("%w: unknown or expired relay session; sign in again", ErrUnauthenticated)
	}
	if err != nil {
		return Session{}, storeErr("load session", err)
	}
	var rs Session
	if err := json.Unmarshal(b, &rs); err != nil || rs.LoginID == "" {
		return Session{}, fmt.Errorf("%w: corrupt session record", ErrUnauthenticated)
	}
	if !s.cfg.Now().Before(rs.Expires) {
		return Session{}, fmt.Errorf("%w: relay session expired; sign in again", ErrUnauthenticated)
	}
	rs.ID = id
	return rs, nil
}

// endSession deletes a relay session, closes its WebSockets, and forgets the
// agent's credential when it was the agent's last session.
func (s *Service) endSession(ctx context.Context, rs Session) error {
	if err := s.cfg.Store.Delete(ctx, sessionKey(rs.ID)); err != nil {
		return storeErr("delete session", err)
	}
	_ = s.cfg.Store.Delete(ctx, agentSessionKey(rs.LoginID, rs.ID))
	if s.cfg.OnSignOut != nil {
		s.cfg.OnSignOut(rs.ID)
	}
	left := false
	err := s.cfg.Store.Scan(ctx, "rsa:"+rs.LoginID+":", func(string, []byte) bool {
		left = true
		return false
	})
	if err == nil && !left {
		s.creds.forget(ctx, rs.LoginID)
		s.log.Info("last relay session of the agent ended; credential forgotten", zap.String("agent", rs.LoginID))
	}
	return nil
}

// SessionLive reports whether the relay session id (a gadget.Grant's
// Session) still exists: false once it was signed out (on any instance)
// or expired.
func (s *Service) SessionLive(ctx context.Context, id string) (bool, error) {
	_, err := s.cfg.Store.Get(ctx, sessionKey(id))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, storeErr("look up session", err)
	}
	return true, nil
}

// ticketRecord is a ticket as the store holds it.
type ticketRecord struct {
	LoginID string    `json:"loginId"`
	Session string    `json:"session"`
	Expires time.Time `json:"expires"`
}

// issueTicket returns a single-use ticket for the relay session rs.
func (s *Service) issueTicket(ctx context.Context, rs Session) (string, time.Duration, error) {
	n, err := s.cfg.Store.Incr(ctx, ticketCountKey(rs.ID), 1, s.cfg.TicketTTL)
	if err != nil {
		return "", 0, storeErr("count tickets", err)
	}
	if n > int64(s.cfg.MaxTickets) {
		_, _ = s.cfg.Store.Incr(ctx, ticketCountKey(rs.ID), -1, s.cfg.TicketTTL)
		return "", 0, fmt.Errorf("%w: %d outstanding; use one or wait %v", ErrTooManyTickets, s.cfg.MaxTickets, s.cfg.TicketTTL)
	}
	t := randomToken()
	b, _ := json.Marshal(ticketRecord{LoginID: rs.LoginID, Session: rs.ID, Expires: s.cfg.Now().Add(s.cfg.TicketTTL)})
	// Kept for two lifetimes so an expired ticket reads as expired, not unknown.
	if err := s.cfg.Store.Put(ctx, ticketKey(hashOf(t)), b, 2*s.cfg.TicketTTL); err != nil {
		return "", 0, storeErr("save ticket", err)
	}
	return t, s.cfg.TicketTTL, nil
}

// Redeem redeems a WebSocket ticket (gadget.TicketRedeemer): single use,
// atomically, on any instance sharing the store.
func (s *Service) Redeem(ctx context.Context, ticket string) (gadget.Grant, error) {
	if ticket == "" || len(ticket) > 128 {
		return gadget.Grant{}, gadget.ErrTicketUnknown
	}
	h := hashOf(ticket)
	b, err := s.cfg.Store.Take(ctx, ticketKey(h))
	switch {
	case errors.Is(err, store.ErrNotFound):
		if _, uerr := s.cfg.Store.Get(ctx, ticketUsedKey(h)); uerr == nil {
			return gadget.Grant{}, gadget.ErrTicketUsed
		}
		return gadget.Grant{}, gadget.ErrTicketUnknown
	case err != nil:
		return gadget.Grant{}, storeErr("redeem ticket", err)
	}
	var tr ticketRecord
	if err := json.Unmarshal(b, &tr); err != nil {
		return gadget.Grant{}, gadget.ErrTicketUnknown
	}
	_ = s.cfg.Store.Put(ctx, ticketUsedKey(h), nil, 2*s.cfg.TicketTTL)
	if !s.cfg.Now().Before(tr.Expires) {
		return gadget.Grant{}, gadget.ErrTicketExpired
	}
	_, _ = s.cfg.Store.Incr(ctx, ticketCountKey(tr.Session), -1, s.cfg.TicketTTL)
	// The relay session may have signed out since the ticket was issued.
	if _, err := s.cfg.Store.Get(ctx, sessionKey(tr.Session)); errors.Is(err, store.ErrNotFound) {
		return gadget.Grant{}, fmt.Errorf("%w: the relay session signed out", gadget.ErrTicketUnknown)
	}
	st, ok := s.cfg.StreamOf(tr.LoginID)
	if !ok {
		return gadget.Grant{}, fmt.Errorf("%w: the agent session has ended", gadget.ErrTicketUnknown)
	}
	return gadget.Grant{Stream: st, Session: tr.Session}, nil
}
