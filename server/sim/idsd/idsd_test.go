package idsd

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testClient   = "relay"
	testSecret   = "s3cr:t+/= x" // characters that Basic form-encoding changes
	testRedirect = "https://relay.example.com/idscallback"
	testUser     = "agent1001"
	testPassword = "demo"
)

// clock is an injectable, settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	s     *Server
	srv   *httptest.Server
	clock *clock
	http  *http.Client // does not follow redirects
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := newClock()
	s, err := New(Config{
		Clients: map[string]Client{
			testClient: {Secret: testSecret, RedirectURIs: []string{testRedirect, "http://127.0.0.1:*/idscallback"}},
			"other":    {Secret: "other-secret", RedirectURIs: []string{"https://other.example.com/cb?x=1"}},
		},
		Users: []User{{ID: testUser, Name: "Ada Agent", Password: testPassword}, {ID: "super2001", Name: "Sam Super", Password: testPassword}},
		Now:   clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(hc.CloseIdleConnections)
	return &fixture{s: s, srv: srv, clock: clk, http: hc}
}

func (f *fixture) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := f.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func (f *fixture) get(t *testing.T, path string, q url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path+"?"+q.Encode(), nil)
	return f.do(t, req)
}

func (f *fixture) postForm(t *testing.T, path string, form url.Values, basic bool) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(testClient), url.QueryEscape(testSecret))
	}
	return f.do(t, req)
}

func authParams(redirect, state string) url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {testClient}, "redirect_uri": {redirect}, "state": {state}}
}

// signIn posts the sign-in form and returns the code from the redirect.
func (f *fixture) signIn(t *testing.T, redirect string) string {
	t.Helper()
	form := authParams(redirect, "st")
	form.Set("username", testUser)
	form.Set("password", testPassword)
	resp, body := f.postForm(t, "/ids/v1/oauth/authorize", form, false)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in: %s\n%s", resp.Status, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query().Get("code")
}

type tokenAnswer struct {
	AccessToken           string `json:"access_token"`
	RefreshToken          string `json:"refresh_token"`
	TokenType             string `json:"token_type"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
	Error                 string `json:"error"`
	ErrorDescription      string `json:"error_description"`
}

func (f *fixture) token(t *testing.T, form url.Values, basic bool) (int, tokenAnswer, http.Header) {
	t.Helper()
	resp, body := f.postForm(t, "/ids/v1/oauth/token", form, basic)
	var a tokenAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("token answer %s is not JSON: %v\n%s", resp.Status, err, body)
	}
	return resp.StatusCode, a, resp.Header
}

func (f *fixture) exchange(t *testing.T) tokenAnswer {
	t.Helper()
	code := f.signIn(t, testRedirect)
	st, a, _ := f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}}, true)
	if st != http.StatusOK {
		t.Fatalf("exchange: %d %+v", st, a)
	}
	return a
}

func TestAuthorizePage(t *testing.T) {
	f := newFixture(t)
	resp, body := f.get(t, "/ids/v1/oauth/authorize", authParams(testRedirect, `x"<y>`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	for _, want := range []string{
		"<title>Cisco Identity Service (simulated)</title>", `name="username"`, `type="password"`,
		"agent1001", "Ada Agent", "super2001", `value="x&#34;&lt;y&gt;"`, `action="/ids/v1/oauth/authorize"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://cdn"} {
		if strings.Contains(strings.ReplaceAll(body, testRedirect, ""), bad) {
			t.Errorf("page contains %q (no scripts or external assets expected)", bad)
		}
	}
	if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q", got)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		params     url.Values
		wantStatus int
		wantError  string // error= in the redirect, for 302
	}{
		{"unknown client", url.Values{"response_type": {"code"}, "client_id": {"nobody"}, "redirect_uri": {testRedirect}}, 400, ""},
		{"unregistered redirect", authParams("https://evil.example.com/idscallback", "s"), 400, ""},
		{"redirect differs by a slash", authParams(testRedirect+"/", "s"), 400, ""},
		{"redirect with extra query", authParams(testRedirect+"?a=1", "s"), 400, ""},
		{"missing redirect, two registered", url.Values{"response_type": {"code"}, "client_id": {testClient}}, 400, ""},
		{"loopback wildcard, other host", authParams("http://10.0.0.1:8080/idscallback", "s"), 400, ""},
		{"loopback wildcard, other path", authParams("http://127.0.0.1:8080/other", "s"), 400, ""},
		{"loopback wildcard, https", authParams("https://127.0.0.1:8080/idscallback", "s"), 400, ""},
		{"loopback wildcard, no port", authParams("http://127.0.0.1/idscallback", "s"), 400, ""},
		{"repeated client_id", url.Values{"response_type": {"code"}, "client_id": {testClient, testClient}, "redirect_uri": {testRedirect}}, 400, ""},
		{"loopback wildcard, any port", authParams("http://127.0.0.1:53211/idscallback", "s"), 200, ""},
		{"missing redirect, one registered", url.Values{"response_type": {"code"}, "client_id": {"other"}}, 200, ""},
		{"response_type token", url.Values{"response_type": {"token"}, "client_id": {testClient}, "redirect_uri": {testRedirect}, "state": {"s"}}, 302, "unsupported_response_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, "/ids/v1/oauth/authorize", tt.params)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d\n%s", resp.StatusCode, tt.wantStatus, body)
			}
			loc := resp.Header.Get("Location")
			if tt.wantStatus != 302 {
				if loc != "" {
					t.Fatalf("redirected to %s", loc)
				}
				return
			}
			u, _ := url.Parse(loc)
			if got := u.Query().Get("error"); got != tt.wantError || u.Query().Get("state") != "s" || !strings.HasPrefix(loc, testRedirect) {
				t.Fatalf("redirect %s, want error=%s with state", loc, tt.wantError)
			}
		})
	}
}

func TestSignInForm(t *testing.T) {
	f := newFixture(t)
	const state = "a b&c=d/é%?"
	const redirect = "https://other.example.com/cb?x=1"
	tests := []struct {
		name, user, password string
		ok                   bool
	}{
		{"wrong password", testUser, "nope", false},
		{"unknown user", "agent9999", testPassword, false},
		{"empty password", testUser, "", false},
		{"right password", testUser, testPassword, true},
		{"user id is case-insensitive", "AGENT1001", testPassword, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"response_type": {"code"}, "client_id": {"other"}, "redirect_uri": {redirect}, "state": {state},
				"username": {tt.user}, "password": {tt.password}}
			resp, body := f.postForm(t, "/ids/v1/oauth/authorize", form, false)
			if !tt.ok {
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, "wrong password") || resp.Header.Get("Location") != "" {
					t.Fatalf("want the page again with an error, got %s %q", resp.Status, resp.Header.Get("Location"))
				}
				return
			}
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %s\n%s", resp.Status, body)
			}
			u, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if u.Host != "other.example.com" || u.Path != "/cb" || q.Get("x") != "1" {
				t.Errorf("redirect %s does not keep the registered URI", u)
			}
			if q.Get("state") != state {
				t.Errorf("state %q, want %q verbatim", q.Get("state"), state)
			}
			if len(q.Get("code")) < 32 {
				t.Errorf("code %q too short", q.Get("code"))
			}
		})
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	f := newFixture(t)
	code := func() string { return f.signIn(t, testRedirect) }
	tests := []struct {
		name       string
		form       func() url.Values
		basic      bool
		header     func(*http.Request)
		wantStatus int
		wantError  string
	}{
		{"wrong secret in body", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {testRedirect}, "client_id": {testClient}, "client_secret": {"bad"}}
		}, false, nil, 401, "invalid_client"},
		{"unknown client", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {testRedirect}, "client_id": {"nobody"}, "client_secret": {testSecret}}
		}, false, nil, 401, "invalid_client"},
		{"no client authentication", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {testRedirect}}
		}, false, nil, 401, "invalid_client"},
		{"wrong Basic secret", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {testRedirect}}
		}, false, func(r *http.Request) { r.SetBasicAuth(testClient, "bad") }, 401, "invalid_client"},
		{"Basic and body secret together", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {testRedirect}, "client_secret": {testSecret}}
		}, true, nil, 400, "invalid_request"},
		{"body client_id differs from Basic", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {testRedirect}, "client_id": {"other"}}
		}, true, nil, 400, "invalid_request"},
		{"redirect mismatch", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {"https://relay.example.com/other"}}
		}, true, nil, 400, "invalid_grant"},
		{"redirect missing", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code()}}
		}, true, nil, 400, "invalid_grant"},
		{"unknown code", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {"bogus"}, "redirect_uri": {testRedirect}}
		}, true, nil, 400, "invalid_grant"},
		{"code of another client", func() url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {testRedirect}, "client_id": {"other"}, "client_secret": {"other-secret"}}
		}, false, nil, 400, "invalid_grant"},
		{"missing code", func() url.Values { return url.Values{"grant_type": {"authorization_code"}} }, true, nil, 400, "invalid_request"},
		{"missing grant_type", func() url.Values { return url.Values{"code": {"x"}} }, true, nil, 400, "invalid_request"},
		{"password grant", func() url.Values {
			return url.Values{"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}}
		}, true, nil, 400, "unsupported_grant_type"},
		{"repeated parameter", func() url.Values {
			return url.Values{"grant_type": {"authorization_code", "authorization_code"}, "code": {"x"}}
		}, true, nil, 400, "invalid_request"},
		{"JSON body", func() url.Values { return url.Values{"grant_type": {"authorization_code"}} }, true,
			func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }, 400, "invalid_request"},
		{"missing refresh_token", func() url.Values { return url.Values{"grant_type": {"refresh_token"}} }, true, nil, 400, "invalid_request"},
		{"garbage refresh_token", func() url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"a.b.c"}}
		}, true, nil, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/ids/v1/oauth/token", strings.NewReader(tt.form().Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.basic {
				req.SetBasicAuth(url.QueryEscape(testClient), url.QueryEscape(testSecret))
			}
			if tt.header != nil {
				tt.header(req)
			}
			resp, body := f.do(t, req)
			var a tokenAnswer
			_ = json.Unmarshal([]byte(body), &a)
			if resp.StatusCode != tt.wantStatus || a.Error != tt.wantError {
				t.Fatalf("got %d %q (%s), want %d %q", resp.StatusCode, a.Error, a.ErrorDescription, tt.wantStatus, tt.wantError)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Error("Cache-Control: no-store missing")
			}
			usedBasic := req.Header.Get("Authorization") != ""
			if gotWWW := resp.Header.Get("WWW-Authenticate") != ""; tt.wantStatus == 401 && gotWWW != usedBasic {
				t.Errorf("WWW-Authenticate present=%v, want %v (only when Basic was used)", gotWWW, usedBasic)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, _ := f.get(t, "/ids/v1/oauth/token", url.Values{"grant_type": {"authorization_code"}})
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status %s", resp.Status)
		}
	})
}

func TestCodeGrant(t *testing.T) {
	tests := []struct {
		name  string
		basic bool
	}{
		{"Basic client authentication", true},
		{"client credentials in the body", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			code := f.signIn(t, testRedirect)
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}}
			if !tt.basic {
				form.Set("client_id", testClient)
				form.Set("client_secret", testSecret)
			}
			st, a, h := f.token(t, form, tt.basic)
			if st != http.StatusOK {
				t.Fatalf("status %d %+v", st, a)
			}
			if a.TokenType != "Bearer" || a.ExpiresIn != 300 || a.RefreshTokenExpiresIn != 7200 || a.AccessToken == "" || a.RefreshToken == "" {
				t.Fatalf("answer %+v", a)
			}
			if h.Get("Cache-Control") != "no-store" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Errorf("headers %v", h)
			}
			c, err := f.s.Verify(a.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if c.UserID != testUser || c.ClientID != testClient || c.Usage != "access" || !c.Expiry.Equal(f.clock.Now().Add(300*time.Second)) {
				t.Errorf("claims %+v", c)
			}
			// Single use: the second redemption fails and revokes what the
			// first one produced.
			st, a2, _ := f.token(t, form, tt.basic)
			if st != 400 || a2.Error != "invalid_grant" {
				t.Fatalf("second use: %d %+v", st, a2)
			}
			if _, err := f.s.Verify(a.AccessToken); !errors.Is(err, ErrTokenRevoked) {
				t.Errorf("Verify after code reuse: %v, want ErrTokenRevoked", err)
			}
		})
	}
}

func TestCodeExpiry(t *testing.T) {
	f := newFixture(t)
	form := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}}
	}
	code := f.signIn(t, testRedirect)
	f.clock.Advance(DefaultCodeLifetime - time.Second)
	if st, a, _ := f.token(t, form(code), true); st != 200 {
		t.Fatalf("code just before expiry: %d %+v", st, a)
	}
	code = f.signIn(t, testRedirect)
	f.clock.Advance(DefaultCodeLifetime)
	if st, a, _ := f.token(t, form(code), true); st != 400 || a.Error != "invalid_grant" {
		t.Fatalf("expired code: %d %+v", st, a)
	}
}

func TestRefreshRotation(t *testing.T) {
	f := newFixture(t)
	first := f.exchange(t)
	refresh := func(rt string, extra url.Values) (int, tokenAnswer) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		for k, v := range extra {
			form[k] = v
		}
		st, a, _ := f.token(t, form, true)
		return st, a
	}
	f.clock.Advance(1000 * time.Second)
	st, second := refresh(first.RefreshToken, url.Values{"token": {first.AccessToken}})
	if st != 200 {
		t.Fatalf("refresh: %d %+v", st, second)
	}
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh did not issue a new pair")
	}
	if second.RefreshTokenExpiresIn != 7200-1000 {
		t.Errorf("refresh_token_expires_in = %d, want 6200 (absolute from sign-in)", second.RefreshTokenExpiresIn)
	}
	if _, err := f.s.Verify(second.AccessToken); err != nil {
		t.Errorf("new access token: %v", err)
	}
	if st, a := refresh(first.RefreshToken, nil); st != 400 || a.Error != "invalid_grant" {
		t.Errorf("rotated refresh token: %d %+v, want invalid_grant", st, a)
	}
	if st, a := refresh(second.AccessToken, nil); st != 400 || a.Error != "invalid_grant" {
		t.Errorf("access token as refresh token: %d %+v, want invalid_grant", st, a)
	}
	// Another client cannot use it.
	st, a, _ := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}, "client_id": {"other"}, "client_secret": {"other-secret"}}, false)
	if st != 400 || a.Error != "invalid_grant" {
		t.Errorf("other client: %d %+v", st, a)
	}
	// The sign-in's absolute lifetime ends.
	f.clock.Advance(6200 * time.Second)
	if st, a := refresh(second.RefreshToken, nil); st != 400 || a.Error != "invalid_grant" {
		t.Errorf("after the refresh lifetime: %d %+v, want invalid_grant", st, a)
	}
}

func TestRefreshAccessLifetimeCappedBySignIn(t *testing.T) {
	f := newFixture(t)
	f.s.SetLifetimes(300*time.Second, 400*time.Second)
	first := f.exchange(t)
	f.clock.Advance(200 * time.Second)
	st, a, _ := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, true)
	if st != 200 || a.ExpiresIn != 200 || a.RefreshTokenExpiresIn != 200 {
		t.Fatalf("got %d %+v, want expires_in 200 (capped by the sign-in's end)", st, a)
	}
}

func TestRevoke(t *testing.T) {
	f := newFixture(t)
	a := f.exchange(t)
	pending := f.signIn(t, testRedirect)
	ga, _, err := f.s.IssueForTest("super2001", "finesse")
	if err != nil {
		t.Fatal(err)
	}
	f.s.Revoke(testUser)
	if _, err := f.s.Verify(a.AccessToken); !errors.Is(err, ErrTokenRevoked) {
		t.Errorf("Verify: %v, want ErrTokenRevoked", err)
	}
	if st, ans, _ := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken}}, true); st != 400 || ans.Error != "invalid_grant" {
		t.Errorf("refresh: %d %+v", st, ans)
	}
	if st, ans, _ := f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {pending}, "redirect_uri": {testRedirect}}, true); st != 400 || ans.Error != "invalid_grant" {
		t.Errorf("pending code: %d %+v", st, ans)
	}
	if _, err := f.s.Verify(ga); err != nil {
		t.Errorf("another user's token: %v", err)
	}
}

func TestOutage(t *testing.T) {
	f := newFixture(t)
	a := f.exchange(t)
	f.s.SetAvailable(false)
	check := func(want int) {
		t.Helper()
		reqs := []*http.Request{}
		r1, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/ids/v1/oauth/authorize?"+authParams(testRedirect, "s").Encode(), nil)
		r2, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/ids/v1/oauth/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken}}.Encode()))
		r2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r2.SetBasicAuth(url.QueryEscape(testClient), url.QueryEscape(testSecret))
		r3, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/ids/v1/keys/token/public", nil)
		r3.SetBasicAuth(url.QueryEscape(testClient), url.QueryEscape(testSecret))
		reqs = append(reqs, r1, r2, r3)
		for _, r := range reqs {
			if resp, _ := f.do(t, r); resp.StatusCode != want {
				t.Errorf("%s %s: %d, want %d", r.Method, r.URL.Path, resp.StatusCode, want)
			}
		}
	}
	check(http.StatusServiceUnavailable)
	f.s.SetAvailable(true)
	check(http.StatusOK)
}

// decodeSegment decodes one JWT segment into v.
func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

func TestTokenShape(t *testing.T) {
	f := newFixture(t)
	a := f.exchange(t)
	now := f.clock.Now()
	parts := strings.Split(a.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d segments", len(parts))
	}
	var hdr map[string]any
	decodeSegment(t, parts[0], &hdr)
	if len(hdr) != 2 || hdr["alg"] != "RS256" || hdr["cty"] != "JWT" {
		t.Errorf("header %v, want exactly {alg:RS256, cty:JWT}", hdr)
	}
	var claims map[string]any
	decodeSegment(t, parts[1], &claims)
	sub, ok := claims["sub"].(string)
	if !ok {
		t.Fatalf("sub is %T, want a JSON string", claims["sub"])
	}
	if claims["iss"] != DefaultIssuer || claims["exp"] != float64(now.Add(300*time.Second).Unix()) || claims["iat"] != float64(now.Unix()) {
		t.Errorf("claims %v", claims)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(sub), &s); err != nil {
		t.Fatalf("sub %q is not JSON: %v", sub, err)
	}
	want := map[string]any{
		"user_id": testUser, "client_id": testClient, "usage": "access", "realm": "demo.local",
		"upn": testUser + "@demo.local", "ver": "1.0", "token": claims["jti"],
		"expiry": float64(now.Add(300 * time.Second).UnixMilli()),
	}
	for k, v := range want {
		if s[k] != v {
			t.Errorf("sub.%s = %v, want %v", k, s[k], v)
		}
	}
	if sc, _ := s["scope"].([]any); len(sc) != 1 || sc[0] != "ccc_onprem_apps" {
		t.Errorf("sub.scope = %v", s["scope"])
	}
	if s["ids_id"] == "" || s["rt"] == "" {
		t.Errorf("sub lacks ids_id or rt: %v", s)
	}
	// The refresh token: usage refresh, no user_id, rt names it.
	var rc map[string]any
	decodeSegment(t, strings.Split(a.RefreshToken, ".")[1], &rc)
	var rs map[string]any
	if err := json.Unmarshal([]byte(rc["sub"].(string)), &rs); err != nil {
		t.Fatal(err)
	}
	if rs["usage"] != "refresh" || rs["user_id"] != nil || rs["client_id"] != testClient || rc["jti"] != s["rt"] {
		t.Errorf("refresh sub %v (rt %v)", rs, s["rt"])
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	a := f.exchange(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// resign keeps the claims of a valid token but signs with method/key.
	resign := func(method jwt.SigningMethod, key any) string {
		var mc jwt.MapClaims
		decodeSegment(t, strings.Split(a.AccessToken, ".")[1], &mc)
		s, err := jwt.NewWithClaims(method, mc).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&f.s.key.PublicKey)
	parts := strings.Split(a.AccessToken, ".")
	tests := []struct {
		name    string
		token   func() string
		advance time.Duration
		want    error
	}{
		{"valid", func() string { return a.AccessToken }, 0, nil},
		{"just before expiry", func() string { return a.AccessToken }, 299 * time.Second, nil},
		{"expired", func() string { return a.AccessToken }, time.Second, ErrTokenExpired},
		{"refresh token", func() string { return a.RefreshToken }, 0, ErrTokenInvalid},
		{"signed by another key", func() string { return resign(jwt.SigningMethodRS256, other) }, 0, ErrTokenInvalid},
		{"HS256 with the public key as secret", func() string {
			return resign(jwt.SigningMethodHS256, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
		}, 0, ErrTokenInvalid},
		{"alg none", func() string { return resign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType) }, 0, ErrTokenInvalid},
		{"payload swapped", func() string {
			var mc jwt.MapClaims
			decodeSegment(t, parts[1], &mc)
			mc["sub"] = strings.Replace(mc["sub"].(string), testUser, "super2001", 1)
			b, _ := json.Marshal(mc)
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
		}, 0, ErrTokenInvalid},
		{"garbage", func() string { return "not-a-jwt" }, 0, ErrTokenInvalid},
		{"oversized", func() string { return strings.Repeat("a", maxTokenLen+1) }, 0, ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token()
			f.clock.Advance(tt.advance)
			c, err := f.s.Verify(tok)
			if tt.want == nil {
				if err != nil || c.UserID != testUser {
					t.Fatalf("Verify: %+v, %v", c, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPublicKey(t *testing.T) {
	f := newFixture(t)
	a := f.exchange(t)
	tests := []struct {
		name       string
		user, pass string
		basic      bool
		query      string
		wantStatus int
	}{
		{"no credentials", "", "", false, "", 401},
		{"wrong secret", testClient, "bad", true, "", 401},
		{"unknown client", "nobody", testSecret, true, "", 401},
		{"client credentials", url.QueryEscape(testClient), url.QueryEscape(testSecret), true, "", 200},
		{"raw (not form-encoded) secret", testClient, testSecret, true, "", 200},
		{"download", testClient, testSecret, true, "?download=true", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/ids/v1/keys/token/public"+tt.query, nil)
			if tt.basic {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, body := f.do(t, req)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if got := resp.Header.Get("Content-Disposition") != ""; got != (tt.query != "") {
				t.Errorf("Content-Disposition present=%v", got)
			}
			blk, _ := pem.Decode([]byte(body))
			if blk == nil || blk.Type != "PUBLIC KEY" {
				t.Fatalf("not a PUBLIC KEY PEM: %q", body)
			}
			pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jwt.Parse(a.AccessToken, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(f.clock.Now)); err != nil {
				t.Errorf("token does not verify with the published key: %v", err)
			}
		})
	}
}

func TestSetLifetimes(t *testing.T) {
	f := newFixture(t)
	f.s.SetLifetimes(60*time.Second, 600*time.Second)
	a := f.exchange(t)
	if a.ExpiresIn != 60 || a.RefreshTokenExpiresIn != 600 {
		t.Fatalf("got %+v", a)
	}
	f.s.SetLifetimes(0, 0)
	a = f.exchange(t)
	if a.ExpiresIn != 300 || a.RefreshTokenExpiresIn != 7200 {
		t.Fatalf("defaults not restored: %+v", a)
	}
}

func TestIssueForTest(t *testing.T) {
	f := newFixture(t)
	access, refresh, err := f.s.IssueForTest(testUser, "finesse")
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.s.Verify(access)
	if err != nil || c.UserID != testUser || c.ClientID != "finesse" {
		t.Fatalf("Verify: %+v %v", c, err)
	}
	if _, err := f.s.Verify(refresh); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("refresh token verified as access: %v", err)
	}
	if _, _, err := f.s.IssueForTest("nobody", "finesse"); err == nil {
		t.Error("unknown user accepted")
	}
	if _, _, err := f.s.IssueForTest(testUser, ""); err == nil {
		t.Error("empty client accepted")
	}
}

func TestNewValidation(t *testing.T) {
	ok := Client{Secret: "s", RedirectURIs: []string{"https://r/cb"}}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no clients", Config{}, "at least one client"},
		{"empty secret", Config{Clients: map[string]Client{"c": {RedirectURIs: []string{"https://r/cb"}}}}, "empty secret"},
		{"no redirect", Config{Clients: map[string]Client{"c": {Secret: "s"}}}, "no redirect URI"},
		{"relative redirect", Config{Clients: map[string]Client{"c": {Secret: "s", RedirectURIs: []string{"/cb"}}}}, "absolute URL"},
		{"wildcard on a public host", Config{Clients: map[string]Client{"c": {Secret: "s", RedirectURIs: []string{"http://example.com:*/cb"}}}}, "loopback"},
		{"duplicate user", Config{Clients: map[string]Client{"c": ok}, Users: []User{{ID: "a"}, {ID: "A"}}}, "duplicate user"},
		{"valid", Config{Clients: map[string]Client{"c": ok, "d": {Secret: "s", RedirectURIs: []string{"http://[::1]:*/cb"}}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "idsd: ") {
				t.Fatalf("err %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestUnknownPath(t *testing.T) {
	f := newFixture(t)
	if resp, _ := f.get(t, "/ids/v1/oauth/introspect", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %s", resp.Status)
	}
}
