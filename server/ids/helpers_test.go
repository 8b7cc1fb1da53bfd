package ids_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"finesse-relay/server/ids"
	"finesse-relay/server/sim/idsd"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	clientID    = "finesse-relay"
	secret      = "very-secret-value:+/=9931" // Basic form-encoding changes it
	redirectURL = "https://relay.example.com/idscallback"
	user        = "agent1001"
	password    = "demo"
)

// clock is an injectable time source shared by the simulator and client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)} }

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

// counter counts requests by kind: "code", "refresh", "key", "authorize".
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[kind]++
}

func (c *counter) get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

// countRequests wraps h and counts IdS calls; delay (if set) slows refreshes.
func countRequests(h http.Handler, c *counter, refreshDelay *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case ids.TokenPath:
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			form, _ := url.ParseQuery(string(body))
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			switch form.Get("grant_type") {
			case "authorization_code":
				c.add("code")
			case "refresh_token":
				c.add("refresh")
				if refreshDelay != nil {
					time.Sleep(time.Duration(refreshDelay.Load()))
				}
			}
		case ids.PublicKeyPath:
			c.add("key")
		case ids.AuthorizePath:
			c.add("authorize")
		}
		h.ServeHTTP(w, r)
	})
}

// fixture is a simulated IdS behind one or more TLS nodes and a client.
type fixture struct {
	t       testing.TB
	sim     *idsd.Server
	clock   *clock
	calls   *counter
	delay   atomic.Int64
	nodes   []*httptest.Server
	client  *ids.Client
	browser *http.Client
}

type fixtureOpt struct {
	// extraNodes are put before the simulator's node (e.g. a dead one).
	before []string
	logger *zap.Logger
}

func newFixture(t testing.TB, opt fixtureOpt) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock(), calls: &counter{}}
	sim, err := idsd.New(idsd.Config{
		Clients: map[string]idsd.Client{clientID: {Secret: secret, RedirectURIs: []string{redirectURL}}},
		Users:   []idsd.User{{ID: user, Name: "Ada Agent", Password: password}, {ID: "super2001", Name: "Sam Super", Password: password}},
		Now:     f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sim = sim
	srv := httptest.NewTLSServer(countRequests(sim.Handler(), f.calls, &f.delay))
	t.Cleanup(srv.Close)
	f.nodes = append(f.nodes, srv)
	f.client = f.newClient(t, append(append([]string(nil), opt.before...), srv.URL), opt.logger)
	f.browser = srv.Client()
	f.browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.Cleanup(f.browser.CloseIdleConnections)
	return f
}

func (f *fixture) newClient(t testing.TB, nodes []string, log *zap.Logger) *ids.Client {
	t.Helper()
	hc := f.nodesHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	c, err := ids.New(ids.Config{
		Nodes: nodes, ClientID: clientID, ClientSecret: secret, RedirectURL: redirectURL,
		HTTPClient: hc, Now: f.clock.Now, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nodesHTTPClient trusts httptest's certificate (shared by every TLS test
// server).
func (f *fixture) nodesHTTPClient() *http.Client {
	tr := f.nodesTransport()
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func (f *fixture) nodesTransport() *http.Transport {
	return f.nodes[0].Client().Transport.(*http.Transport).Clone()
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// browserSignIn plays the browser from BeginLogin to the callback: it
// follows the authorize URL, fills in the sign-in form as a user would,
// posts it, and returns the callback request (with the browser's cookies)
// that IdS redirected to.
func (f *fixture) browserSignIn(c *ids.Client, returnTo string) *http.Request {
	f.t.Helper()
	rec := httptest.NewRecorder()
	authURL, err := c.BeginLogin(rec, true, returnTo)
	if err != nil {
		f.t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	loc := f.submitSignIn(authURL, user, password)
	cb := httptest.NewRequest(http.MethodGet, loc, nil)
	for _, ck := range cookies {
		cb.AddCookie(ck)
	}
	return cb
}

// submitSignIn GETs the sign-in page at authURL, posts its form and returns
// the redirect location.
func (f *fixture) submitSignIn(authURL, username, pass string) string {
	f.t.Helper()
	resp, err := f.browser.Get(authURL)
	if err != nil {
		f.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("sign-in page: %s\n%s", resp.Status, page)
	}
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	form.Set("username", username)
	form.Set("password", pass)
	u, _ := url.Parse(authURL)
	resp, err = f.browser.PostForm(u.Scheme+"://"+u.Host+ids.AuthorizePath, form)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		f.t.Fatalf("sign-in form: %s", resp.Status)
	}
	return resp.Header.Get("Location")
}

// signedIn runs the whole code flow and returns the tokens.
func (f *fixture) signedIn() *oauth2.Token {
	f.t.Helper()
	cb := f.browserSignIn(f.client, "/")
	code, _, err := f.client.FinishLogin(cb, httptest.NewRecorder())
	if err != nil {
		f.t.Fatal(err)
	}
	tok, err := f.client.Exchange(context.Background(), code)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// deadURL returns the URL of a server that is closed (connection refused).
func deadURL(t testing.TB) string {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}
