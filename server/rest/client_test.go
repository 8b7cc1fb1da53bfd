package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/oauth2"

	"finesse-relay/server/cred"
	"finesse-relay/xmpp/finesse"
)

// testHTTPClient is an http.Client with its own transport, closed when the
// test ends (goleak checks for stray connection goroutines).
func testHTTPClient(t testing.TB) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func newTestClient(t testing.TB, f *fakeFinesse, creds Credentials, mod ...func(*Config)) *Client {
	cfg := Config{HTTPClient: testHTTPClient(t), Side: f.side, Credentials: creds}
	for _, m := range mod {
		m(&cfg)
	}
	return New(cfg)
}

var agent1001 = Basic{Username: "1001", Password: "demo"}

func TestDoSendsFinesseHeaders(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, agent1001)
	ctx := t.Context()

	rsp, err := c.Do(ctx, Request{Path: "User/1001"})
	if err != nil {
		t.Fatal(err)
	}
	got := f.lastRequest(t)
	if got.Path != "/finesse/api/User/1001" || got.Method != http.MethodGet {
		t.Errorf("request = %s %s, want GET /finesse/api/User/1001", got.Method, got.Path)
	}
	if a := got.Header.Get("Authorization"); a != "Basic MTAwMTpkZW1v" {
		t.Errorf("Authorization = %q, want Basic base64(1001:demo)", a)
	}
	if a := got.Header.Get("Accept"); a != "application/xml" {
		t.Errorf("Accept = %q", a)
	}
	if ct := got.Header.Get("Content-Type"); ct != "" {
		t.Errorf("Content-Type = %q on a request without body", ct)
	}
	id := got.Header.Get("requestId")
	if len(id) != 36 || id[14] != '4' || !ValidRequestID(id) {
		t.Errorf("generated requestId = %q, want a v4 UUID", id)
	}
	if rsp.RequestID != id || rsp.Status != http.StatusOK || rsp.Side.Name != "A" {
		t.Errorf("response = %d %q side %q, want 200 %q side A", rsp.Status, rsp.RequestID, rsp.Side.Name, id)
	}

	// A caller's requestId and body; absolute path form.
	rsp, err = c.Do(ctx, Request{Method: http.MethodPut, Path: "/finesse/api/User/1001", RequestID: "gadget-7",
		Body:   []byte("<User><state>READY</state></User>"),
		Header: http.Header{"Cookie": {"JSESSIONID=browser"}, "Authorization": {"Bearer browser"}, "Accept-Language": {"de"}}})
	if err != nil {
		t.Fatal(err)
	}
	got = f.lastRequest(t)
	if got.Header.Get("Content-Type") != "application/xml" || got.Header.Get("requestId") != "gadget-7" {
		t.Errorf("PUT headers: Content-Type %q requestId %q", got.Header.Get("Content-Type"), got.Header.Get("requestId"))
	}
	if got.Header.Get("Cookie") != "" || got.Header.Get("Authorization") != "Basic MTAwMTpkZW1v" || got.Header.Get("Accept-Language") != "de" {
		t.Errorf("Request.Header leaked credentials or lost Accept-Language: %v", got.Header)
	}
	if rsp.Status != http.StatusAccepted || rsp.RequestID != "gadget-7" {
		t.Errorf("PUT answer = %d %q, want 202 gadget-7", rsp.Status, rsp.RequestID)
	}
}

func TestSetStateAcceptedThenEvent(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, agent1001)
	id, err := c.SetState(t.Context(), "1001", "NOT_READY", "16")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.lastRequest(t).Body; got != "<User><state>NOT_READY</state><reasonCodeId>16</reasonCodeId></User>" {
		t.Errorf("body = %s", got)
	}
	ev := f.eventsFor(id)
	if len(ev) != 1 || ev[0].Node != finesse.UserNode("1001") {
		t.Fatalf("events for requestId %q = %+v, want one on the User node", id, ev)
	}

	// Invalid state: Finesse's synchronous 400 ApiErrors.
	_, err = c.SetState(t.Context(), "1001", "DANCING", "")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || len(ae.Errors) != 1 || ae.Errors[0].ErrorMessage != "INVALID_STATE" {
		t.Fatalf("err = %v, want APIError 400 INVALID_STATE", err)
	}
	if !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "Invalid Input: INVALID_STATE") {
		t.Errorf("Error() = %q, want status and first error", err)
	}

	// Values that must not reach Finesse.
	for _, args := range [][3]string{{"1001", "ready", ""}, {"1001", "READY</state>", ""}, {"../1001", "READY", ""}, {"1001", "NOT_READY", "1/2"}} {
		before := len(f.seenRequests())
		if _, err := c.SetState(t.Context(), args[0], args[1], args[2]); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("SetState%q err = %v, want ErrInvalidRequest", args, err)
		}
		if len(f.seenRequests()) != before {
			t.Errorf("SetState%q sent a request", args)
		}
	}
}

func TestTypedCalls(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, agent1001)
	ctx := t.Context()

	si, err := c.SystemInfo(ctx)
	if err != nil || si.Status != "IN_SERVICE" || si.SecondaryNode == nil || si.SecondaryNode.Host != "finesse-b.example.com" {
		t.Errorf("SystemInfo = %+v, %v", si, err)
	}
	u, err := c.User(ctx, "1001")
	if err != nil || u.LoginID != "1001" || u.State != "NOT_READY" || u.Extension != "51001" {
		t.Errorf("User = %+v, %v", u, err)
	}
	ds, err := c.Dialogs(ctx, "1001")
	if err != nil || len(ds) != 1 || ds[0].ID != "16817001" || ds[0].Participants[0].Actions[0] != "ANSWER" {
		t.Errorf("Dialogs = %+v, %v", ds, err)
	}
	team, err := c.Team(ctx, "10")
	if err != nil || team.Name != "Support" || len(team.Users) != 2 {
		t.Errorf("Team = %+v, %v", team, err)
	}
	q, err := c.Queue(ctx, "5001")
	if err != nil || q.ID != "5001" || q.Statistics == nil || q.Statistics.CallsInQueue != 3 {
		t.Errorf("Queue = %+v, %v", q, err)
	}
	qs, err := c.UserQueues(ctx, "1001")
	if err != nil || len(qs) != 2 || qs[1].ID != "5002" {
		t.Errorf("UserQueues = %+v, %v", qs, err)
	}
	rc, err := c.ReasonCodes(ctx, "1001", "NOT_READY")
	if err != nil || len(rc) != 1 || rc[0].ID != "16" || rc[0].Category != "NOT_READY" {
		t.Errorf("ReasonCodes = %+v, %v", rc, err)
	}
	if got := f.lastRequest(t).RawQuery; got != "category=NOT_READY" {
		t.Errorf("ReasonCodes query = %q", got)
	}
	if _, err := c.ReasonCodes(ctx, "1001", "not ready"); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("bad category err = %v", err)
	}
	// An id with characters the path must escape stays one segment.
	if _, err := c.User(ctx, "a b?c"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("User(a b?c) err = %v, want 401 from Finesse", err)
	}
	if got := f.lastRequest(t).Path; got != "/finesse/api/User/a b?c" {
		t.Errorf("escaped id reached Finesse as %q", got)
	}
}

func TestErrorAnswers(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, agent1001)
	tests := []struct {
		name      string
		path      string
		status    int
		is        error
		errorType string // first ApiError's type, "" when none
		text      string // APIError.Text
	}{
		{"REST ApiErrors", "Dialog/unknown/x", 404, ErrNotFound, "Not Found", ""},
		{"lower-case apiErrors", "Dialog/lowercaseerror", 400, nil, "Invalid State", ""},
		{"forbidden", "Dialog/forbidden", 403, ErrForbidden, "Forbidden", ""},
		{"Tomcat HTML page", "Dialog/html500", 500, nil, "", "HTTP Status 500 – Internal Server Error"},
		{"plain text", "Dialog/plain", 502, nil, "", "upstream said no"},
		{"other user's object", "User/1002", 401, ErrUnauthorized, "Invalid Authorization User Specified", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rsp, err := c.Do(t.Context(), Request{Path: tc.path})
			if err != nil {
				t.Fatalf("Do: %v (non-2xx must not be an error)", err)
			}
			if rsp.Status != tc.status {
				t.Fatalf("status = %d, want %d", rsp.Status, tc.status)
			}
			err = newAPIError(rsp)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatal("not an APIError")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			for _, other := range []error{ErrUnauthorized, ErrForbidden, ErrNotFound, ErrOutOfService} {
				if other != tc.is && errors.Is(err, other) {
					t.Errorf("errors.Is(%v, %v) = true", err, other)
				}
			}
			first := ""
			if len(ae.Errors) > 0 {
				first = ae.Errors[0].ErrorType
			}
			if first != tc.errorType || ae.Text != tc.text {
				t.Errorf("errorType %q text %q, want %q %q", first, ae.Text, tc.errorType, tc.text)
			}
			if string(ae.Body) != string(rsp.Body) {
				t.Error("Body not kept")
			}
		})
	}
}

func TestOutOfService(t *testing.T) {
	f := newFakeFinesse(t)
	var mu sync.Mutex
	var observed []int
	c := newTestClient(t, f, agent1001, func(cfg *Config) {
		cfg.OnStatus = func(side Side, status int, err error) {
			mu.Lock()
			observed = append(observed, status)
			mu.Unlock()
			if err != nil {
				t.Errorf("OnStatus err = %v for an answer", err)
			}
		}
	})
	f.setOutOfService(true)
	_, err := c.User(t.Context(), "1001")
	if !errors.Is(err, ErrOutOfService) {
		t.Fatalf("err = %v, want ErrOutOfService", err)
	}
	si, err := c.SystemInfo(t.Context())
	if err != nil || si.Status != "OUT_OF_SERVICE" {
		t.Fatalf("SystemInfo while out of service = %+v, %v", si, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(observed) != 2 || observed[0] != 503 || observed[1] != 200 {
		t.Errorf("OnStatus saw %v, want [503 200]", observed)
	}
}

// TestBasicNeverRetried proves a refused Basic credential reaches Finesse
// once, however often the session or the browser asks: Finesse locks the
// account after 5 consecutive failures.
func TestBasicNeverRetried(t *testing.T) {
	f := newFakeFinesse(t)
	wrong := Basic{Username: "1001", Password: "old-password"}
	now := time.Now()
	c := newTestClient(t, f, wrong)
	c.now = func() time.Time { return now }

	for i := range 2 * lockoutAfter {
		_, err := c.User(t.Context(), "1001")
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("call %d: err = %v, want ErrUnauthorized", i, err)
		}
		if i > 0 && !errors.Is(err, ErrCredentialRefused) {
			t.Fatalf("call %d: err = %v, want ErrCredentialRefused (not sent)", i, err)
		}
	}
	if n := f.attempts("/finesse/api/User/1001"); n != 1 {
		t.Fatalf("Finesse saw %d attempts with the refused password, want 1", n)
	}
	f.mu.Lock()
	failures := f.failures["1001"]
	f.mu.Unlock()
	if failures != 1 {
		t.Fatalf("lockout counter = %d, want 1", failures)
	}

	// After Finesse's lockout window the same credential may be tried once more.
	now = now.Add(DefaultRefusedHold)
	if _, err := c.User(t.Context(), "1001"); errors.Is(err, ErrCredentialRefused) || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("after the hold: err = %v, want a 401 from Finesse", err)
	}
	if n := f.attempts("/finesse/api/User/1001"); n != 2 {
		t.Fatalf("after the hold Finesse saw %d attempts, want 2", n)
	}
}

func TestNewCredentialSentAfterRefusal(t *testing.T) {
	f := newFakeFinesse(t)
	creds := &switchable{v: Basic{Username: "1001", Password: "wrong"}}
	c := newTestClient(t, f, creds)
	if _, err := c.User(t.Context(), "1001"); !errors.Is(err, ErrUnauthorized) {
		t.Fatal(err)
	}
	creds.set(agent1001) // the agent signed in again
	if _, err := c.User(t.Context(), "1001"); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

// TestAuthorizationOfOtherUserNotHeld: a 401 "Invalid Authorization User
// Specified" (the credential is fine, the object is someone else's) does
// not hold the credential back.
func TestAuthorizationOfOtherUserNotHeld(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, agent1001)
	if _, err := c.User(t.Context(), "1002"); !errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrCredentialRefused) {
		t.Fatalf("other user: err = %v", err)
	}
	if _, err := c.User(t.Context(), "1001"); err != nil {
		t.Fatalf("own user after that: %v", err)
	}
}

// switchable is Credentials whose value the test changes.
type switchable struct {
	mu sync.Mutex
	v  Credentials
}

func (s *switchable) set(v Credentials) { s.mu.Lock(); s.v = v; s.mu.Unlock() }
func (s *switchable) Credential(ctx context.Context) (cred.Credential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v.Credential(ctx)
}

// tokenSequence yields the next token of a list on each call (the last one
// repeats).
type tokenSequence struct {
	mu     sync.Mutex
	tokens []string
	calls  int
}

func (s *tokenSequence) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := s.tokens[min(s.calls, len(s.tokens)-1)]
	s.calls++
	return &oauth2.Token{AccessToken: tok, TokenType: "Bearer"}, nil
}

func TestBearerFreshOnEveryCall(t *testing.T) {
	f := newFakeFinesse(t)
	for _, tok := range []string{"tok-1", "tok-2", "tok-3"} {
		f.addToken(tok, "1001")
	}
	c := newTestClient(t, f, Bearer{Source: &tokenSequence{tokens: []string{"tok-1", "tok-2", "tok-3"}}})
	for i, want := range []string{"Bearer tok-1", "Bearer tok-2", "Bearer tok-3"} {
		if _, err := c.User(t.Context(), "1001"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got := f.lastRequest(t).Header.Get("Authorization"); got != want {
			t.Errorf("call %d Authorization = %q, want %q", i, got, want)
		}
	}
}

func TestBearerRetriedOnceWithDifferentToken(t *testing.T) {
	tests := []struct {
		name     string
		tokens   []string
		wantErr  error
		attempts int
	}{
		{"refreshed token", []string{"expired", "fresh"}, nil, 2},
		{"same token again", []string{"expired"}, ErrUnauthorized, 1},
		{"second token refused too", []string{"expired", "revoked", "fresh"}, ErrUnauthorized, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeFinesse(t)
			f.addToken("fresh", "1001")
			c := newTestClient(t, f, Bearer{Source: &tokenSequence{tokens: tc.tokens}})
			_, err := c.User(t.Context(), "1001")
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if n := f.attempts("/finesse/api/User/1001"); n != tc.attempts {
				t.Errorf("attempts = %d, want %d", n, tc.attempts)
			}
		})
	}
}

// failingSource fails every Token call with err (default: a plain
// "invalid_grant" error, as a transient IdS failure would surface).
type failingSource struct{ err error }

func (f failingSource) Token() (*oauth2.Token, error) {
	if f.err != nil {
		return nil, fmt.Errorf("invalid_grant: %w", f.err)
	}
	return nil, errors.New("invalid_grant")
}

func TestCredentialsFailure(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, Bearer{Source: failingSource{}})
	_, err := c.User(t.Context(), "1001")
	if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("err = %v, want ErrCredentials wrapping the source's error", err)
	}
	if len(f.seenRequests()) != 0 {
		t.Error("a request was sent without credentials")
	}
}

func TestTimeout(t *testing.T) {
	f := newFakeFinesse(t)
	var status atomic.Int64
	var observed atomic.Value
	c := newTestClient(t, f, agent1001, func(cfg *Config) {
		cfg.Timeout = 100 * time.Millisecond
		cfg.OnStatus = func(_ Side, s int, err error) { status.Store(int64(s)); observed.Store(err) }
	})
	start := time.Now()
	_, err := c.Do(t.Context(), Request{Path: "Dialog/slow"})
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnreachable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s with a 100ms timeout", d)
	}
	if e, _ := observed.Load().(error); !errors.Is(e, ErrUnreachable) || status.Load() != 0 {
		t.Errorf("OnStatus got (%d, %v), want (0, ErrUnreachable)", status.Load(), e)
	}
}

func TestCallerCancellationIsNotUnreachable(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, agent1001)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Do(ctx, Request{Path: "Dialog/slow"})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want context.Canceled and not ErrUnreachable", err)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, agent1001)
	for _, path := range []string{"Dialog/huge", "Dialog/hugechunked"} {
		if _, err := c.Do(t.Context(), Request{Path: path}); !errors.Is(err, ErrResponseTooLarge) {
			t.Errorf("%s: err = %v, want ErrResponseTooLarge", path, err)
		}
	}
	small := newTestClient(t, f, agent1001, func(cfg *Config) { cfg.MaxResponseSize = 100 })
	if _, err := small.User(t.Context(), "1001"); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("100-byte limit: err = %v", err)
	}
}

func TestRedirectIsAnError(t *testing.T) {
	https := newFakeFinesse(t)
	plain := newRedirector(t, https.srv.URL)
	port := strings.TrimPrefix(plain.URL[strings.LastIndex(plain.URL, ":"):], ":")
	c := New(Config{HTTPClient: testHTTPClient(t), Credentials: agent1001,
		Side: func() Side { return Side{Name: "A", BaseURL: plain.URL} }})
	_, err := c.User(t.Context(), "1001")
	if !errors.Is(err, ErrRedirect) {
		t.Fatalf("err = %v, want ErrRedirect", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "configured port "+port) || !strings.Contains(msg, "301") || !strings.Contains(msg, "8445") {
		t.Errorf("message %q should name the configured port %s, the status and 8445", msg, port)
	}
	if n := len(https.seenRequests()); n != 0 {
		t.Errorf("the redirect was followed: the target saw %d requests", n)
	}
}

func TestRedirectDoesNotChangeSharedClient(t *testing.T) {
	hc := testHTTPClient(t)
	New(Config{HTTPClient: hc})
	if hc.CheckRedirect != nil {
		t.Fatal("New changed the shared http.Client")
	}
}

func TestNoCookiesKept(t *testing.T) {
	var sawCookie atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "" {
			sawCookie.Store(true)
		}
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "agent-1001", Path: "/"})
		writeXML(w, http.StatusOK, "<SystemInfo><status>IN_SERVICE</status></SystemInfo>")
	}))
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	shared := testHTTPClient(t)
	shared.Jar = jar // a shared client with a jar, as another package might configure it
	for _, user := range []string{"1001", "1002"} {
		c := New(Config{HTTPClient: shared, Credentials: Basic{Username: user, Password: "demo"},
			Side: func() Side { return Side{Name: "A", BaseURL: srv.URL} }})
		for range 2 {
			if _, err := c.SystemInfo(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if sawCookie.Load() {
		t.Fatal("a Finesse session cookie was sent back")
	}
	if shared.Jar == nil {
		t.Fatal("New changed the shared client's jar")
	}
}

func TestUnreachable(t *testing.T) {
	f := newFakeFinesse(t)
	base := f.srv.URL
	f.srv.Close()
	c := New(Config{HTTPClient: testHTTPClient(t), Credentials: agent1001,
		Side: func() Side { return Side{Name: "B", BaseURL: base} }})
	_, err := c.SystemInfo(t.Context())
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnreachable (not a timeout)", err)
	}
}

func TestPathValidation(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, agent1001)
	bad := []string{
		"", "User/../SystemInfo", "User/%2e%2e/SystemInfo", "User/1001/..", "./SystemInfo", "User//1001",
		"User/1001/", "User/a%2Fb", "User/a%2fb", "User/a%5Cb", "User\\1001", "User/1001?x=1", "User/1001#x",
		"/other/api/User/1001", "/finesse/apiUser", "User/10 01", "User/%zz", "User/%00", "User/1001\n",
	}
	for _, p := range bad {
		if _, err := c.Do(t.Context(), Request{Path: p}); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("path %q: err = %v, want ErrInvalidRequest", p, err)
		}
	}
	if n := len(f.seenRequests()); n != 0 {
		t.Fatalf("%d invalid requests reached Finesse", n)
	}
	for _, p := range []string{"User/1001", "/finesse/api/User/1001", "User/1001/Dialogs/Media", "User/jane%40corp.com"} {
		if _, err := c.Do(t.Context(), Request{Path: p}); err != nil {
			t.Errorf("path %q: %v", p, err)
		}
	}
	if _, err := c.Do(t.Context(), Request{Path: "User/1001", Method: "GET /x"}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("bad method: %v", err)
	}
	if _, err := c.Do(t.Context(), Request{Path: "User/1001", RequestID: "has space"}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("bad requestId: %v", err)
	}
	for _, base := range []string{"", "ftp://x", "https://user:pw@x", "https://x/?q", "x:8445"} {
		c := New(Config{Side: func() Side { return Side{Name: "A", BaseURL: base} }})
		if _, err := c.SystemInfo(t.Context()); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("base %q: err = %v", base, err)
		}
	}
	if _, err := New(Config{}).Do(t.Context(), Request{Path: "SystemInfo"}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("no side: %v", err)
	}
}

func TestBaseURLWithPath(t *testing.T) {
	f := newFakeFinesse(t)
	// A base URL with a trailing slash still reaches /finesse/api/.
	c := New(Config{HTTPClient: testHTTPClient(t), Side: func() Side { return Side{Name: "A", BaseURL: f.srv.URL + "/"} }})
	if _, err := c.SystemInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.lastRequest(t).Path; got != "/finesse/api/SystemInfo" {
		t.Errorf("path = %q", got)
	}
}

func TestMetrics(t *testing.T) {
	f := newFakeFinesse(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if NewMetrics(reg) == nil { // registering twice reuses the collectors
		t.Fatal("second NewMetrics returned nil")
	}
	c := newTestClient(t, f, agent1001, func(cfg *Config) { cfg.Metrics = m })
	for range 3 {
		if _, err := c.User(t.Context(), "1001"); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.User(t.Context(), "1002")
	if got := counterValue(t, m.requests.WithLabelValues("GET", "200", "A")); got != 3 {
		t.Errorf("GET 200 A = %v, want 3", got)
	}
	if got := counterValue(t, m.requests.WithLabelValues("GET", "401", "A")); got != 1 {
		t.Errorf("GET 401 A = %v, want 1", got)
	}
	shared := NewMetrics(reg)
	if got := counterValue(t, shared.requests.WithLabelValues("GET", "200", "A")); got != 3 {
		t.Errorf("second NewMetrics on the registry sees %v, want the shared 3", got)
	}
	var nilMetrics *Metrics
	nilMetrics.observe("GET", "200", "A", time.Second) // must not panic
	nilMetrics.proxy("forwarded")
}

func TestAuthorizationLineBreakRefused(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, Bearer{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "a\r\nX-Evil: 1"})})
	if _, err := c.User(t.Context(), "1001"); !errors.Is(err, ErrCredentials) {
		t.Fatalf("err = %v, want ErrCredentials", err)
	}
}

func TestQueryEncoding(t *testing.T) {
	f := newFakeFinesse(t)
	c := newTestClient(t, f, agent1001)
	if _, err := c.Do(t.Context(), Request{Path: "User/1001/ReasonCodes", Query: url.Values{"category": {"LOGOUT"}}}); err != nil {
		t.Fatal(err)
	}
	if got := f.lastRequest(t).RawQuery; got != "category=LOGOUT" {
		t.Errorf("query = %q", got)
	}
}

// counterValue reads a counter (prometheus/testutil is not in go.sum).
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
