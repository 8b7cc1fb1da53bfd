package ids_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"finesse-relay/server/ids"
)

func TestCodeFlow(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	rec := httptest.NewRecorder()
	authURL, err := f.client.BeginLogin(rec, true, "/supervisor?team=10")
	if err != nil {
		t.Fatal(err)
	}

	// The authorize URL: exactly response_type, client_id, redirect_uri, state.
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != ids.AuthorizePath || !strings.HasPrefix(authURL, f.nodes[0].URL) {
		t.Errorf("authorize URL %s", authURL)
	}
	if len(q) != 4 || q.Get("response_type") != "code" || q.Get("client_id") != clientID || q.Get("redirect_uri") != redirectURL || q.Get("state") == "" {
		t.Errorf("authorize query %v, want exactly response_type, client_id, redirect_uri, state", q)
	}

	// The state cookie.
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	ck := cookies[0]
	if !strings.HasPrefix(ck.Name, ids.StateCookiePrefix) || !strings.HasPrefix(ck.Value, q.Get("state")+".") || !ck.HttpOnly || !ck.Secure ||
		ck.SameSite != http.SameSiteLaxMode || ck.Path != "/idscallback" || ck.MaxAge != 600 {
		t.Errorf("state cookie %+v", ck)
	}

	// The browser signs in; IdS redirects to the callback.
	loc := f.submitSignIn(authURL, user, password)
	if !strings.HasPrefix(loc, redirectURL+"?") {
		t.Fatalf("IdS redirected to %s", loc)
	}
	cb := httptest.NewRequest(http.MethodGet, loc, nil)
	cb.AddCookie(ck)
	rec = httptest.NewRecorder()
	code, returnTo, err := f.client.FinishLogin(cb, rec)
	if err != nil {
		t.Fatal(err)
	}
	if returnTo != "/supervisor?team=10" {
		t.Errorf("returnTo %q", returnTo)
	}
	if cl := rec.Result().Cookies(); len(cl) != 1 || cl[0].Name != ck.Name || cl[0].MaxAge >= 0 {
		t.Errorf("state cookie not cleared: %v", cl)
	}

	tok, err := f.client.Exchange(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != 300 || !tok.Expiry.Equal(f.clock.Now().Add(300*time.Second)) {
		t.Errorf("token: expires_in %d, expiry %v (now %v)", tok.ExpiresIn, tok.Expiry, f.clock.Now())
	}
	claims, err := f.client.Verify(context.Background(), tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if claims.UserID != user || claims.ClientID != clientID || claims.Issuer != "ids.demo.local" {
		t.Errorf("claims %+v", claims)
	}
	// The simulated Finesse accepts it too.
	if c, err := f.sim.Verify(tok.AccessToken); err != nil || c.UserID != user {
		t.Errorf("idsd.Verify: %+v %v", c, err)
	}
	// The code is single use.
	if _, err := f.client.Exchange(context.Background(), code); !errors.Is(err, ids.ErrSignInAgain) {
		t.Errorf("second exchange: %v, want ErrSignInAgain", err)
	}
}

func TestFinishLoginState(t *testing.T) {
	tests := []struct {
		name string
		// prepare returns the callback request to check.
		prepare func(f *fixture) *http.Request
		advance time.Duration
		want    error
	}{
		{"valid", func(f *fixture) *http.Request { return f.browserSignIn(f.client, "/") }, 0, nil},
		{"missing cookie", func(f *fixture) *http.Request {
			cb := f.browserSignIn(f.client, "/")
			r := httptest.NewRequest(http.MethodGet, cb.URL.String(), nil)
			return r
		}, 0, ids.ErrStateMismatch},
		{"cookie of another sign-in", func(f *fixture) *http.Request {
			a := f.browserSignIn(f.client, "/")
			b := f.browserSignIn(f.client, "/")
			r := httptest.NewRequest(http.MethodGet, a.URL.String(), nil)
			ck := b.Cookies()[0]
			ck.Name = a.Cookies()[0].Name // same cookie name, other state
			r.AddCookie(ck)
			return r
		}, 0, ids.ErrStateMismatch},
		{"state altered", func(f *fixture) *http.Request {
			cb := f.browserSignIn(f.client, "/")
			q := cb.URL.Query()
			s := q.Get("state")
			q.Set("state", s[:len(s)-1]+string(rune('A'+(s[len(s)-1]+1)%26)))
			r := httptest.NewRequest(http.MethodGet, "/idscallback?"+q.Encode(), nil)
			r.AddCookie(cb.Cookies()[0])
			return r
		}, 0, ids.ErrStateMismatch},
		{"no state", func(f *fixture) *http.Request {
			cb := f.browserSignIn(f.client, "/")
			r := httptest.NewRequest(http.MethodGet, "/idscallback?code="+cb.URL.Query().Get("code"), nil)
			r.AddCookie(cb.Cookies()[0])
			return r
		}, 0, ids.ErrStateMismatch},
		{"state forged with a matching cookie", func(f *fixture) *http.Request {
			state := strings.Repeat("A", 43)
			r := httptest.NewRequest(http.MethodGet, "/idscallback?code=x&state="+state, nil)
			r.AddCookie(&http.Cookie{Name: ids.StateCookiePrefix + state[:12], Value: state})
			return r
		}, 0, ids.ErrStateMismatch},
		{"older than 10 minutes", func(f *fixture) *http.Request { return f.browserSignIn(f.client, "/") }, 10*time.Minute + time.Second, ids.ErrStateMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpt{})
			r := tt.prepare(f)
			f.clock.Advance(tt.advance)
			code, _, err := f.client.FinishLogin(r, httptest.NewRecorder())
			if tt.want == nil {
				if err != nil || code == "" {
					t.Fatalf("FinishLogin: %q %v", code, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || code != "" {
				t.Fatalf("FinishLogin: %q %v, want %v", code, err, tt.want)
			}
		})
	}
}

func TestFinishLoginReplay(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	cb := f.browserSignIn(f.client, "/")
	if _, _, err := f.client.FinishLogin(cb, httptest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	// The same callback, with the same cookie, again.
	replay := httptest.NewRequest(http.MethodGet, cb.URL.String(), nil)
	replay.AddCookie(cb.Cookies()[0])
	if code, _, err := f.client.FinishLogin(replay, httptest.NewRecorder()); !errors.Is(err, ids.ErrStateMismatch) {
		t.Fatalf("replay: %q %v, want ErrStateMismatch", code, err)
	}
}

// Issue 12, hole 2: 10,500 sign-ins started by someone else (the old
// pending-state table kept 10,000 and evicted the oldest) must not break a
// real user's sign-in in progress: nothing is stored before the callback.
func TestSignInFloodDoesNotBreakPendingSignIn(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	rec := httptest.NewRecorder()
	authURL, err := f.client.BeginLogin(rec, true, "/")
	if err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	for range 10500 {
		if _, err := f.client.BeginLogin(httptest.NewRecorder(), true, "/"); err != nil {
			t.Fatal(err)
		}
	}
	loc := f.submitSignIn(authURL, user, password)
	cb := httptest.NewRequest(http.MethodGet, loc, nil)
	for _, ck := range cookies {
		cb.AddCookie(ck)
	}
	if code, _, err := f.client.FinishLogin(cb, httptest.NewRecorder()); err != nil || code == "" {
		t.Fatalf("the real user's callback after the flood: %q %v", code, err)
	}
}

func TestConcurrentSignInsInOneBrowser(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	a := f.browserSignIn(f.client, "/a")
	b := f.browserSignIn(f.client, "/b")
	// One browser holds both cookies; both callbacks succeed.
	for _, tt := range []struct {
		cb   *http.Request
		want string
	}{{a, "/a"}, {b, "/b"}} {
		r := httptest.NewRequest(http.MethodGet, tt.cb.URL.String(), nil)
		r.AddCookie(a.Cookies()[0])
		r.AddCookie(b.Cookies()[0])
		if _, ret, err := f.client.FinishLogin(r, httptest.NewRecorder()); err != nil || ret != tt.want {
			t.Fatalf("FinishLogin: %q %v, want %q", ret, err, tt.want)
		}
	}
}

func TestFinishLoginIdSError(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	rec := httptest.NewRecorder()
	authURL, err := f.client.BeginLogin(rec, false, "/")
	if err != nil {
		t.Fatal(err)
	}
	ck := rec.Result().Cookies()[0]
	if ck.Secure {
		t.Error("cookie Secure although secure=false")
	}
	state := mustQuery(t, authURL).Get("state")
	r := httptest.NewRequest(http.MethodGet, "/idscallback?"+url.Values{
		"error": {"access_denied"}, "error_description": {"user cancelled\r\nSet-Cookie: x=1"}, "state": {state},
	}.Encode(), nil)
	r.AddCookie(ck)
	_, _, err = f.client.FinishLogin(r, httptest.NewRecorder())
	var ae *ids.AuthorizeError
	if !errors.As(err, &ae) || ae.Code != "access_denied" {
		t.Fatalf("err %v, want AuthorizeError access_denied", err)
	}
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("error text keeps control characters: %q", err.Error())
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestBeginLoginRefusesNonLocalReturn(t *testing.T) {
	tests := []struct {
		path  string
		local bool
	}{
		{"/", true},
		{"/supervisor?team=10", true},
		{"/a/b#frag", true},
		{"/%2F%2Fevil.example.com", true}, // a path segment, not a host
		{"", false},
		{"//evil.example.com", false},
		{"///evil.example.com", false},
		{`/\evil.example.com`, false},
		{`\\evil.example.com`, false},
		{"https://evil.example.com/", false},
		{"javascript:alert(1)", false},
		{"evil.example.com", false},
		{"/ok\r\nSet-Cookie: a=b", false},
		{"/\t/evil.example.com", false},
		{"/" + strings.Repeat("a", 3000), false},
	}
	f := newFixture(t, fixtureOpt{})
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := ids.IsLocalPath(tt.path); got != tt.local {
				t.Errorf("IsLocalPath = %v, want %v", got, tt.local)
			}
			rec := httptest.NewRecorder()
			_, err := f.client.BeginLogin(rec, true, tt.path)
			if (err == nil) != tt.local {
				t.Fatalf("BeginLogin err = %v, want local=%v", err, tt.local)
			}
			if !tt.local && len(rec.Result().Cookies()) != 0 {
				t.Error("cookie set for a refused return path")
			}
		})
	}
}

func TestExchangeErrors(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	tests := []struct {
		name string
		code string
		want error
	}{
		{"unknown code", "no-such-code", ids.ErrSignInAgain},
		{"empty code", "", nil},
		{"oversized code", strings.Repeat("c", 5000), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.calls.get("code")
			_, err := f.client.Exchange(context.Background(), tt.code)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err %v, want %v", err, tt.want)
				}
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
					t.Errorf("no RetrieveError invalid_grant behind %v", err)
				}
				if !strings.Contains(err.Error(), f.nodes[0].URL) || !strings.Contains(err.Error(), "400") {
					t.Errorf("error %q does not name the node and status", err)
				}
				return
			}
			var ae *ids.AuthorizeError
			if !errors.As(err, &ae) || f.calls.get("code") != before {
				t.Errorf("err %v; IdS called: %v", err, f.calls.get("code") != before)
			}
		})
	}
}
