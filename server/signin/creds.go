package signin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"finesse-relay/server/cred"
	"finesse-relay/server/ids"
	"finesse-relay/server/store"
	"finesse-relay/xmpp/finesse"
)

// Store keys (all under the store's own prefix).
func credKey(loginID string) string { return "cred:" + loginID }
func liveKey(loginID string) string { return "live:" + loginID }

// presented is a credential as a browser presented it, not yet verified.
type presented struct {
	kind   cred.Kind
	secret string             // password, or a token Finesse gave a gadget
	ids    *oauth2.Token      // an IdS token pair (SSO sign-in through /login)
	source oauth2.TokenSource // built from ids
}

// credRecord is an agent's credential at rest (sealed).
type credRecord struct {
	Kind    string          `json:"kind"` // "password", "token", "ids"
	Secret  string          `json:"secret,omitempty"`
	Access  string          `json:"access,omitempty"`
	Refresh string          `json:"refresh,omitempty"`
	Expiry  time.Time       `json:"expiry,omitzero"`
	User    json.RawMessage `json:"user"`
}

// holder is one agent's current credential: the newest verified one. It is
// the cred.Source both the XMPP login and the REST client ask.
type holder struct {
	h       *holders
	loginID string

	mu     sync.Mutex
	kind   cred.Kind
	secret string
	source oauth2.TokenSource
	last   *oauth2.Token // last IdS token seen (refresh detection)
	user   *finesse.User
	sealed []byte // the record in the store as last read or written
}

// Credential returns the agent's current credential (cred.Source).
func (c *holder) Credential(ctx context.Context) (cred.Credential, error) {
	c.mu.Lock()
	kind, secret, src := c.kind, c.secret, c.source
	c.mu.Unlock()
	if src == nil {
		return cred.Credential{LoginID: c.loginID, Kind: kind, Secret: secret}, nil
	}
	tok, err := src.Token()
	if err != nil {
		c.h.s.cfg.Metrics.refresh(false)
		if errors.Is(err, ids.ErrSignInAgain) {
			return cred.Credential{}, fmt.Errorf("%w: %w", cred.ErrSignInAgain, err)
		}
		return cred.Credential{}, fmt.Errorf("signin: IdS token for %s: %w", c.loginID, err)
	}
	c.mu.Lock()
	refreshed := c.source == src && c.last != nil && c.last.AccessToken != tok.AccessToken
	if c.source == src {
		c.last = tok
	}
	c.mu.Unlock()
	if refreshed {
		c.h.s.cfg.Metrics.refresh(true)
		// The refresh token may have rotated. A failed save is logged by
		// persist; the fresh access token is good for this call either way.
		_ = c.h.persist(ctx, c)
	}
	return cred.Credential{LoginID: c.loginID, Kind: cred.Token, Secret: tok.AccessToken}, nil
}

// set replaces the credential with a verified one.
func (c *holder) set(p presented, user *finesse.User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kind, c.secret, c.source, c.last, c.user = p.kind, p.secret, p.source, p.ids, user
}

func (c *holder) record() (credRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, err := json.Marshal(c.user)
	if err != nil {
		return credRecord{}, err
	}
	r := credRecord{User: u}
	switch {
	case c.source != nil && c.last != nil:
		r.Kind, r.Access, r.Refresh, r.Expiry = "ids", c.last.AccessToken, c.last.RefreshToken, c.last.Expiry
	case c.kind == cred.Token:
		r.Kind, r.Secret = "token", c.secret
	default:
		r.Kind, r.Secret = "password", c.secret
	}
	return r, nil
}

// holders are the agents' credentials in this process, backed by the store.
type holders struct {
	s  *Service
	mu sync.Mutex
	m  map[string]*holder
}

func newHolders(s *Service) *holders { return &holders{s: s, m: make(map[string]*holder)} }

// set makes p the agent's credential and stores it sealed.
func (hs *holders) set(ctx context.Context, loginID string, p presented, user *finesse.User) (*holder, error) {
	hs.mu.Lock()
	c := hs.m[loginID]
	if c == nil {
		c = &holder{h: hs, loginID: loginID}
		hs.m[loginID] = c
	}
	hs.mu.Unlock()
	c.set(p, user)
	if err := hs.persist(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// persist writes c's credential, sealed, for the relay sessions' lifetime.
func (hs *holders) persist(ctx context.Context, c *holder) error {
	r, err := c.record()
	if err != nil {
		return fmt.Errorf("signin: encode credential of %s: %w", c.loginID, err)
	}
	plain, err := json.Marshal(r) // #nosec G117 -- the JSON is sealed (AES-256-GCM, seal.Keyring) just below before it reaches the store; it is never logged
	if err != nil {
		return fmt.Errorf("signin: encode credential of %s: %w", c.loginID, err)
	}
	key := credKey(c.loginID)
	sealed := hs.s.cfg.Sealer.Seal(plain, []byte(key))
	if err := hs.s.cfg.Store.Put(ctx, key, sealed, hs.s.cfg.SessionTTL); err != nil {
		hs.s.log.Warn("store: could not save a credential", zap.String("agent", c.loginID), zap.Error(err))
		return storeErr("save credential", err)
	}
	c.mu.Lock()
	c.sealed = sealed
	c.mu.Unlock()
	return nil
}

// sealedIs reports whether b is the sealed record this holder was read
// from or last wrote.
func (c *holder) sealedIs(b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Equal(c.sealed, b)
}

// get returns the agent's credential: the one in this process, else the
// one in the store (after a restart, or signed in on another instance).
// With a shared store (several active instances) the store is asked at
// every use, so a credential another instance replaced (a new sign-in, a
// gadget's refreshed token, a rotated IdS refresh token) or forgot (signed
// out) is seen at once; the copy here is kept while the store cannot be
// reached.
func (hs *holders) get(ctx context.Context, loginID string) (*holder, error) {
	hs.mu.Lock()
	c := hs.m[loginID]
	hs.mu.Unlock()
	if c != nil && !hs.s.cfg.Shared {
		return c, nil
	}
	key := credKey(loginID)
	sealed, err := hs.s.cfg.Store.Get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if c != nil {
			hs.mu.Lock()
			if hs.m[loginID] == c {
				delete(hs.m, loginID)
			}
			hs.mu.Unlock()
		}
		return nil, fmt.Errorf("%w: no credential for %s", ErrUnauthenticated, loginID)
	case err != nil && c != nil:
		return c, nil
	case err != nil:
		return nil, storeErr("load credential", err)
	case c != nil && c.sealedIs(sealed):
		return c, nil
	}
	fresh, err := hs.open(loginID, key, sealed)
	if err != nil {
		return nil, err
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if cur := hs.m[loginID]; cur != nil && cur != c { // set meanwhile by a sign-in here: newer
		return cur, nil
	}
	hs.m[loginID] = fresh
	return fresh, nil
}

// open unseals and decodes a stored credential into a holder.
func (hs *holders) open(loginID, key string, sealed []byte) (*holder, error) {
	plain, err := hs.s.cfg.Sealer.Open(sealed, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("signin: credential of %s cannot be unsealed (SESSION_KEY_FILE changed?): %w", loginID, err)
	}
	var r credRecord
	if err := json.Unmarshal(plain, &r); err != nil {
		return nil, fmt.Errorf("signin: credential of %s is corrupt: %w", loginID, err)
	}
	var user finesse.User
	if err := json.Unmarshal(r.User, &user); err != nil || user.LoginID == "" {
		return nil, fmt.Errorf("signin: credential of %s has no user", loginID)
	}
	p := presented{kind: cred.Password, secret: r.Secret}
	switch r.Kind {
	case "token":
		p.kind = cred.Token
	case "ids":
		if hs.s.cfg.IdS == nil {
			return nil, fmt.Errorf("%w: %s signed in with SSO but IDS_URL is no longer configured", ErrUnauthenticated, loginID)
		}
		tok := &oauth2.Token{AccessToken: r.Access, RefreshToken: r.Refresh, Expiry: r.Expiry, TokenType: "Bearer"}
		p = presented{kind: cred.Token, ids: tok, source: hs.s.cfg.IdS.TokenSource(tok)}
	case "password":
	default:
		return nil, fmt.Errorf("signin: credential of %s has unknown kind %q", loginID, r.Kind)
	}
	c := &holder{h: hs, loginID: loginID, sealed: sealed}
	c.set(p, &user)
	return c, nil
}

// forget drops the agent's credential here and in the store.
func (hs *holders) forget(ctx context.Context, loginID string) {
	hs.mu.Lock()
	delete(hs.m, loginID)
	hs.mu.Unlock()
	if err := hs.s.cfg.Store.Delete(ctx, credKey(loginID)); err != nil {
		hs.s.log.Warn("store: could not delete a credential", zap.String("agent", loginID), zap.Error(err))
	}
}

// user returns the User Finesse returned when c was verified.
func (c *holder) userObject() *finesse.User {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}
