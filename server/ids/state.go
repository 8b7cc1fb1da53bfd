package ids

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
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
	maxReturnLen  = 2048
)

// usedStates remembers, in process, the states whose callback was already
// accepted (when no Config.UseOnce is given). Entries are added only by a
// callback that carries a valid signed cookie, and expire after
// StateLifetime, so nobody can flush it or grow it without bound by
// starting sign-ins.
type usedStates struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (u *usedStates) useOnce(_ context.Context, key string, ttl time.Duration, now time.Time) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = make(map[string]time.Time)
	}
	for k, exp := range u.m {
		if !now.Before(exp) {
			delete(u.m, k)
		}
	}
	if _, used := u.m[key]; used {
		return false, nil
	}
	u.m[key] = now.Add(ttl)
	return true, nil
}

// stateMAC signs what the state cookie carries.
func (c *Client) stateMAC(state, returnTo string, expires int64) string {
	m := hmac.New(sha256.New, c.stateKey)
	fmt.Fprintf(m, "%s\x00%s\x00%d", state, returnTo, expires)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// BeginLogin starts an SSO sign-in: it sets an HttpOnly, SameSite=Lax
// cookie (Secure when secure is true; path: the redirect URL's path;
// 10 minutes) holding a fresh random state, returnTo and the expiry, signed
// with the client's state key, and returns the IdS authorize URL to
// redirect the browser to. Nothing is remembered server-side until the
// callback: starting sign-ins cannot disturb anyone else's.
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
	expires := c.now().Add(StateLifetime).Unix()
	value := state + "." + base64.RawURLEncoding.EncodeToString([]byte(returnTo)) + "." +
		strconv.FormatInt(expires, 10) + "." + c.stateMAC(state, returnTo, expires)
	// #nosec G124 -- HttpOnly and SameSite=Lax; Secure whenever the relay serves HTTPS (secure is false only on plain-HTTP loopback/demo)
	http.SetCookie(w, &http.Cookie{
		Name:     StateCookiePrefix + state[:cookieIDLen],
		Value:    value,
		Path:     c.cookiePath,
		MaxAge:   int(StateLifetime / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	})
	return c.AuthCodeURL(state), nil
}

// FinishLogin checks the IdS callback (GET redirect_uri?code=…&state=…):
// the state must equal the one in the browser's state cookie (constant-time),
// the cookie must carry this client's signature and be less than 10 minutes
// old, and the state must not have been used (Config.UseOnce). The
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
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 4 || subtle.ConstantTimeCompare([]byte(parts[0]), []byte(state)) != 1 {
		return "", "", fmt.Errorf("%w: the state differs from this browser's sign-in cookie", ErrStateMismatch)
	}
	rt, rerr := base64.RawURLEncoding.DecodeString(parts[1])
	expires, eerr := strconv.ParseInt(parts[2], 10, 64)
	if rerr != nil || eerr != nil || !hmac.Equal([]byte(parts[3]), []byte(c.stateMAC(state, string(rt), expires))) {
		return "", "", fmt.Errorf("%w: the sign-in cookie was not issued by this relay (or its key changed)", ErrStateMismatch)
	}
	if !c.now().Before(time.Unix(expires, 0)) {
		return "", "", fmt.Errorf("%w: the sign-in took longer than %v; start again", ErrStateMismatch, StateLifetime)
	}
	first, uerr := c.useOnce(r.Context(), "idsstate:"+state, StateLifetime)
	if uerr != nil {
		return "", "", fmt.Errorf("ids: cannot check the state: %w", uerr)
	}
	if !first {
		return "", "", fmt.Errorf("%w: the state was already used", ErrStateMismatch)
	}
	p := struct{ returnTo string }{string(rt)}
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
