package sim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
)

// errBadCredentials is what XMPP authentication returns for every refusal.
var errBadCredentials = errors.New("sim: bad credentials")

func equalSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// authenticate identifies the caller of a REST request: Basic
// (loginId or loginName : password) with lockout after repeated failures,
// or Bearer (an IdS access token whose user_id is a login name or id).
// Call with m.mu held.
func (m *model) authenticate(r *http.Request) (*user, *restError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errUnauthorized("")
	}
	if tok, ok := cutScheme(h, "Bearer"); ok {
		if m.verify == nil || tok == "" {
			return nil, errUnauthorized("")
		}
		id, err := m.verify(tok)
		if err != nil {
			return nil, errUnauthorized("")
		}
		u := m.userByAny(id)
		if u == nil {
			return nil, errUnauthorized(id)
		}
		return u, nil
	}
	id, pw, ok := r.BasicAuth()
	if !ok {
		return nil, errUnauthorized("")
	}
	u := m.userByAny(id)
	if u == nil {
		return nil, errUnauthorized(id)
	}
	now := m.now()
	if now.Before(u.lockedUntil) {
		return nil, errUnauthorized(id)
	}
	if !equalSecret(pw, u.password) {
		u.failures++
		if u.failures >= m.t.lockoutFailures {
			u.failures = 0
			u.lockedUntil = now.Add(m.t.lockout)
		}
		return nil, errUnauthorized(id)
	}
	u.failures = 0
	return u, nil
}

// cutScheme returns the credentials of an Authorization header of the
// given scheme (case-insensitive).
func cutScheme(h, scheme string) (string, bool) {
	if len(h) < len(scheme)+1 || !strings.EqualFold(h[:len(scheme)], scheme) || h[len(scheme)] != ' ' {
		return "", false
	}
	return strings.TrimSpace(h[len(scheme)+1:]), true
}

// authXMPP checks SASL PLAIN credentials: username is the login id,
// password the user's password or an IdS access token of that user. A
// locked user is refused; XMPP failures do not count towards the lock.
func (m *model) authXMPP(username, password string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[username]
	if u == nil || m.now().Before(u.lockedUntil) {
		return errBadCredentials
	}
	if equalSecret(password, u.password) {
		return nil
	}
	if m.verify != nil {
		if id, err := m.verify(password); err == nil && m.userByAny(id) == u {
			return nil
		}
	}
	return errBadCredentials
}

// authorizeSubscribe allows explicit subscriptions: a team's Users node to
// its supervisors, queue nodes to every user, a user's own nodes to the
// user and its supervisors.
func (m *model) authorizeSubscribe(username, node string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[username]
	if u == nil {
		return errors.New("sim: unknown user")
	}
	rest, ok := strings.CutPrefix(node, "/finesse/api/")
	if !ok {
		return errors.New("sim: no such node")
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 3 && parts[0] == "Team" && parts[2] == "Users":
		if u.isSupervisorOf(parts[1]) {
			return nil
		}
	case len(parts) == 2 && parts[0] == "Queue":
		if m.queue(parts[1]) != nil {
			return nil
		}
		return errors.New("sim: no such queue")
	case len(parts) >= 2 && parts[0] == "User":
		t := m.users[parts[1]]
		if t == nil {
			return errors.New("sim: no such user")
		}
		if t == u || u.isSupervisorOf(TeamID) {
			return nil
		}
	case len(parts) == 1 && parts[0] == "SystemInfo":
		return nil
	default:
		return errors.New("sim: no such node")
	}
	return errors.New("sim: forbidden")
}

// newID returns a random request id in UUID form.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
