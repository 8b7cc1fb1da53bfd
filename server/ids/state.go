package ids

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	// StateCookiePrefix starts the name of the cookie that binds a sign-in's
	// state to the browser. Each sign-in gets its own cookie (the prefix
	// plus the first characters of its state) so that several tabs can sign
	// in at the same time.
	StateCookiePrefix = "ids_state_"
	// StateLifetime is how long a sign-in may take.
	StateLifetime = 10 * time.Minute
	stateBytes    = 32
	cookieIDLen   = 12
	// maxPendingStates bounds the sign-ins in progress; beyond it the
	// oldest is forgotten.
	maxPendingStates = 10000
	maxReturnLen     = 2048
)

// stateStore remembers the sign-ins in progress so that a state is used
// once, even if its cookie is replayed.
type stateStore struct {
	mu sync.Mutex
	m  map[string]pendingLogin
}

type pendingLogin struct {
	returnTo string
	expires  time.Time
}

func (s *stateStore) add(state, returnTo string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]pendingLogin)
	}
	if len(s.m) >= maxPendingStates {
		oldest, first := "", true
		var oldestExp time.Time
		for k, p := range s.m {
			if !now.Before(p.expires) {
				delete(s.m, k)
				continue
			}
			if first || p.expires.Before(oldestExp) {
				oldest, oldestExp, first = k, p.expires, false
			}
		}
		if len(s.m) >= maxPendingStates {
			delete(s.m, oldest)
		}
	}
	s.m[state] = pendingLogin{returnTo: returnTo, expires: now.Add(StateLifetime)}
}

// take consumes a state.
func (s *stateStore) take(state string, now time.Time) (pendingLogin, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[state]
	if !ok {
		return pendingLogin{}, false
	}
	delete(s.m, state)
	return p, now.Before(p.expires)
}

// BeginLogin starts an SSO sign-in: it sets an HttpOnly, SameSite=Lax
// cookie (Secure when secure is true; path: the redirect URL's path;
// 10 minutes) holding a fresh random state, remembers returnTo for that
// state, and returns the IdS authorize URL to redirect the browser to.
// returnTo must be a local path ("/", "/supervisor?x=1"); anything that
// could leave the relay's origin is refused.
func (c *Client) BeginLogin(w http.ResponseWriter, secure bool, returnTo string) (authURL string, err error) {
	if !IsLocalPath(returnTo) {
		return "", fmt.Errorf("ids: return path %q: must be a local path starting with a single /", sanitize(returnTo, 80))
	}
	var b [stateBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("ids: random state: %w", err)
	}
	state := base64.RawURLEncoding.EncodeToString(b[:])
	now := c.now()
	c.states.add(state, returnTo, now)
	// #nosec G124 -- HttpOnly and SameSite=Lax; Secure whenever the relay serves HTTPS (secure is false only on plain-HTTP loopback/demo)
	http.SetCookie(w, &http.Cookie{
		Name:     StateCookiePrefix + state[:cookieIDLen],
		Value:    state,
		Path:     c.cookiePath,
		MaxAge:   int(StateLifetime / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	})
	return c.AuthCodeURL(state), nil
}

// FinishLogin checks the IdS callback (GET redirect_uri?code=…&state=…):
// the state must equal the browser's state cookie (constant-time), be one
// this client issued less than 10 minutes ago, and not have been used. The
// cookie is cleared and the state consumed whatever the outcome. An
// error=… from IdS becomes an [*AuthorizeError]; state problems wrap
// [ErrStateMismatch]. On success it returns the code to pass to
// [Client.Exchange] and the local path given to BeginLogin.
func (c *Client) FinishLogin(r *http.Request, w http.ResponseWriter) (code, returnTo string, err error) {
	q := r.URL.Query()
	state := q.Get("state")
	if len(state) != base64.RawURLEncoding.EncodedLen(stateBytes) || len(q["state"]) != 1 {
		return "", "", fmt.Errorf("%w: the callback carries no valid state", ErrStateMismatch)
	}
	name := StateCookiePrefix + state[:cookieIDLen]
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: c.cookiePath, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode}) // #nosec G124 -- this expires the state cookie (empty value, MaxAge -1)
	ck, cerr := r.Cookie(name)
	if cerr != nil {
		return "", "", fmt.Errorf("%w: no sign-in cookie in this browser (cookies blocked, another browser, or older than %v)", ErrStateMismatch, StateLifetime)
	}
	if subtle.ConstantTimeCompare([]byte(ck.Value), []byte(state)) != 1 {
		return "", "", fmt.Errorf("%w: the state differs from this browser's sign-in cookie", ErrStateMismatch)
	}
	p, ok := c.states.take(state, c.now())
	if !ok {
		return "", "", fmt.Errorf("%w: the state was already used or has expired", ErrStateMismatch)
	}
	if e := q.Get("error"); e != "" {
		return "", "", &AuthorizeError{Code: sanitize(e, 64), Description: sanitize(q.Get("error_description"), 200)}
	}
	code = q.Get("code")
	if code == "" || len(code) > maxCodeLen || len(q["code"]) != 1 {
		return "", "", &AuthorizeError{Code: "invalid_request", Description: "the callback carries no usable code"}
	}
	return code, p.returnTo, nil
}

// IsLocalPath reports whether p is a path on this origin that is safe to
// redirect to: it starts with one "/" (not "//" or "/\"), has no
// backslash, no control characters, no scheme and no host.
func IsLocalPath(p string) bool {
	if p == "" || len(p) > maxReturnLen || p[0] != '/' {
		return false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }) {
		return false
	}
	u, err := url.Parse(p)
	return err == nil && !u.IsAbs() && u.Host == "" && u.User == nil
}
