package signin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"finesse-relay/server/cred"
	"finesse-relay/server/rest"
	"finesse-relay/xmpp/finesse"
)

// agentSource is the cred.Source an agent's Session holds: it asks for the
// agent's current credential at every use, so a newer sign-in (another
// kind included) takes effect at once, and a forgotten credential ends the
// Session instead of lingering in it.
type agentSource struct {
	hs      *holders
	loginID string
}

// Credential returns the agent's current credential.
func (a agentSource) Credential(ctx context.Context) (cred.Credential, error) {
	c, err := a.hs.get(ctx, a.loginID)
	if errors.Is(err, ErrUnauthenticated) {
		return cred.Credential{}, fmt.Errorf("%w: %w", cred.ErrSignInAgain, err)
	}
	if err != nil {
		return cred.Credential{}, err
	}
	return c.Credential(ctx)
}

// presentedSource is a presented, unverified credential as a cred.Source.
type presentedSource struct {
	p       presented
	loginID string
}

func (ps presentedSource) Credential(context.Context) (cred.Credential, error) {
	if ps.p.source != nil {
		tok, err := ps.p.source.Token()
		if err != nil {
			return cred.Credential{}, err
		}
		return cred.Credential{LoginID: ps.loginID, Kind: cred.Token, Secret: tok.AccessToken}, nil
	}
	return cred.Credential{LoginID: ps.loginID, Kind: ps.p.kind, Secret: ps.p.secret}, nil
}

// verify checks a credential against Finesse: GET /finesse/api/User/{id}
// with it must answer 200 and name the same user. It asks the sides in
// order when one is out of service or unreachable, and never retries a
// refused credential.
func (s *Service) verify(ctx context.Context, id string, p presented) (*finesse.User, error) {
	var lastErr error
	for _, side := range s.cfg.Sides {
		rc := s.cfg.REST
		rc.Side = func() rest.Side { return side }
		rc.Credentials = presentedSource{p: p, loginID: id}
		u, err := rest.New(rc).User(ctx, id)
		switch {
		case err == nil:
			if !strings.EqualFold(u.LoginID, id) && !strings.EqualFold(u.LoginName, id) {
				return nil, fmt.Errorf("%w: Finesse answered for user %q, not %q", ErrRefused, u.LoginID, id)
			}
			return u, nil
		case errors.Is(err, rest.ErrUnauthorized), errors.Is(err, rest.ErrForbidden), errors.Is(err, rest.ErrNotFound):
			return nil, fmt.Errorf("%w: %w", ErrRefused, err)
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = errors.New("no Finesse side configured (FINESSE_A_HOST)")
	}
	return nil, lastErr
}

// join verifies a presented credential (throttled per loginId and client
// address unless it came from the relay's own IdS exchange), makes it the
// agent's credential, and joins or starts the agent's Session.
func (s *Service) join(ctx context.Context, id string, p presented, addr, method string) (*finesse.User, error) {
	var t *throttle
	if p.source == nil {
		var err error
		if t, err = s.reserve(ctx, id, addr); err != nil {
			return nil, err
		}
		defer t.done()
	}
	user, err := s.verify(ctx, id, p)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			s.cfg.Metrics.failure(failRefused)
			if t != nil {
				t.refused(ctx)
			}
		}
		return nil, err
	}
	if _, err := s.creds.set(ctx, user.LoginID, p, user); err != nil {
		return nil, err
	}
	created, err := s.cfg.Agents.Join(ctx, user, agentSource{hs: s.creds, loginID: user.LoginID})
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.Put(ctx, liveKey(user.LoginID), []byte(user.LoginID), s.cfg.SessionTTL); err != nil {
		s.log.Warn("store: could not mark the session live", zap.String("agent", user.LoginID), zap.Error(err))
	}
	s.cfg.Metrics.signIn(method)
	if created {
		s.log.Info("agent session started", zap.String("agent", user.LoginID), zap.Strings("roles", user.Roles), zap.String("method", method))
	}
	return user, nil
}

// rejoin starts the agent's Session again from the stored credential (the
// grace period ran out, or the relay restarted) without asking the browser.
// It returns the User the credential was verified with.
func (s *Service) rejoin(ctx context.Context, loginID string) (*finesse.User, error) {
	c, err := s.creds.get(ctx, loginID)
	if err != nil {
		return nil, err
	}
	user := c.userObject()
	if s.cfg.Agents.Running(ctx, loginID) {
		return user, nil
	}
	created, err := s.cfg.Agents.Join(ctx, user, agentSource{hs: s.creds, loginID: loginID})
	if err != nil {
		return nil, err
	}
	if created {
		if err := s.cfg.Store.Put(ctx, liveKey(loginID), []byte(loginID), s.cfg.SessionTTL); err != nil {
			s.log.Warn("store: could not mark the session live", zap.String("agent", loginID), zap.Error(err))
		}
		s.log.Info("agent session resumed from the stored credential", zap.String("agent", loginID))
	}
	return user, nil
}

// Restore re-opens the upstream session of every agent whose session was
// live when the relay last stopped (SIGTERM or crash), with the sealed
// credential, before browsers come back: Finesse logs an agent out 60 s
// after its presence goes. It returns how many sessions it started. With
// several active instances main calls it every few seconds: it adopts the
// agents whose owner stopped or died (their lease is free) and leaves
// alone those another instance runs.
func (s *Service) Restore(ctx context.Context) (int, error) {
	var ids []string
	err := s.cfg.Store.Scan(ctx, "live:", func(key string, _ []byte) bool {
		ids = append(ids, strings.TrimPrefix(key, "live:"))
		return true
	})
	if err != nil {
		return 0, storeErr("list live sessions", err)
	}
	n := 0
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		if s.cfg.Agents.Running(ctx, id) {
			continue // here already, or owned by another instance
		}
		if _, err := s.rejoin(ctx, id); err != nil {
			s.log.Warn("could not restore an agent session", zap.String("agent", id), zap.Error(err))
			if errors.Is(err, ErrUnauthenticated) {
				_ = s.cfg.Store.Delete(ctx, liveKey(id))
			}
			continue
		}
		n++
	}
	return n, nil
}

// Source returns the agent's credential as a cred.Source that asks for
// the current one at every use (for the REST client of an agent whose
// session another instance owns).
func (s *Service) Source(loginID string) cred.Source {
	return agentSource{hs: s.creds, loginID: loginID}
}
