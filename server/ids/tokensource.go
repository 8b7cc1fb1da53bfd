package ids

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

const (
	// expiryMargin: a token this close to its expiry is no longer handed
	// out while a refresh is failing (as oauth2's 10 s expiry delta), at
	// most 5 % of its lifetime.
	expiryMargin = 10 * time.Second
	// refreshRetry is the pause between refresh attempts while IdS is
	// unavailable, so that Token() calls on a hot path do not hammer it.
	refreshRetry = 5 * time.Second
)

// TokenSource returns a long-lived token source that starts from tok (as
// returned by [Client.Exchange]) and is safe for concurrent use.
//
// Token() returns the current token until RefreshAt (75 %) of its lifetime
// has passed, then refreshes it: one refresh at a time (concurrent callers
// wait and get its result), under its own timeout. The lifetime is
// tok.ExpiresIn (the token endpoint's expires_in) ending at tok.Expiry; a
// token without ExpiresIn is treated as issued now.
//
// When the refresh fails:
//   - invalid_grant: the error wraps [ErrSignInAgain], now and on every
//     later call;
//   - IdS unavailable (or any other failure): while the current token is
//     still valid it keeps being returned and the refresh is retried at
//     most every 5 s; once it has expired the error (wrapping
//     [ErrUnavailable] when no node answered) is returned.
//
// Refresh tokens rotate: the source always keeps the newest one.
func (c *Client) TokenSource(tok *oauth2.Token) oauth2.TokenSource {
	s := &tokenSource{c: c, log: c.log}
	if tok == nil {
		s.dead = fmt.Errorf("%w: no token", ErrSignInAgain)
		return s
	}
	if claims, _, err := parseClaims(jwtPayload(tok.AccessToken)); err == nil {
		s.log = c.log.With(zap.String("user", claims.UserID))
	}
	t := *tok
	s.set(&t, c.now())
	return s
}

type tokenSource struct {
	c   *Client
	log *zap.Logger

	mu         sync.Mutex
	tok        *oauth2.Token // never modified once handed out
	refreshAt  time.Time     // zero: the token does not expire
	validUntil time.Time
	retryAt    time.Time // no refresh attempt before this
	lastErr    error     // the last failed refresh
	dead       error     // sticky: sign in again
}

var _ oauth2.TokenSource = (*tokenSource)(nil)

// set installs a new token and computes its refresh point.
func (s *tokenSource) set(tok *oauth2.Token, now time.Time) {
	s.tok = tok
	s.refreshAt, s.validUntil, s.retryAt, s.lastErr = time.Time{}, time.Time{}, time.Time{}, nil
	if tok.Expiry.IsZero() {
		return
	}
	lifetime := time.Duration(tok.ExpiresIn) * time.Second
	if lifetime <= 0 {
		lifetime = tok.Expiry.Sub(now)
	}
	issued := tok.Expiry.Add(-lifetime)
	s.refreshAt = issued.Add(time.Duration(float64(lifetime) * s.c.refreshAt))
	s.validUntil = tok.Expiry.Add(-min(expiryMargin, lifetime/20))
}

// Token implements oauth2.TokenSource.
func (s *tokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead != nil {
		return nil, s.dead
	}
	now := s.c.now()
	if s.refreshAt.IsZero() || now.Before(s.refreshAt) {
		return s.tok, nil
	}
	valid := s.tok.AccessToken != "" && now.Before(s.validUntil)
	switch {
	case s.tok.RefreshToken == "":
		if valid {
			return s.tok, nil
		}
		s.dead = fmt.Errorf("%w: the access token expired and there is no refresh token", ErrSignInAgain)
		return nil, s.dead
	case now.Before(s.retryAt):
		if valid {
			return s.tok, nil
		}
		return nil, s.lastErr
	}
	tok, err := s.c.refresh(s.tok.RefreshToken)
	if err == nil {
		s.set(tok, now)
		s.log.Debug("IdS token refreshed", zap.Time("expiry", tok.Expiry))
		return s.tok, nil
	}
	if errors.Is(err, ErrSignInAgain) {
		s.dead = err
		s.log.Info("IdS refused the refresh token; the user must sign in again", zap.Error(err))
		return nil, err
	}
	if s.lastErr == nil { // warn once per failure streak; retries log at debug
		s.log.Warn("IdS token refresh failed; retrying every 5 s", zap.Error(err), zap.Bool("token_still_valid", valid))
	} else {
		s.log.Debug("IdS token refresh failed again", zap.Error(err), zap.Bool("token_still_valid", valid))
	}
	s.lastErr, s.retryAt = err, now.Add(refreshRetry)
	if valid {
		return s.tok, nil
	}
	return nil, err
}
