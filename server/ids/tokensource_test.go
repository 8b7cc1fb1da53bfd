package ids_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"finesse-relay/server/ids"
)

func TestTokenSourceRefreshAt75Percent(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	tok := f.signedIn() // 300 s lifetime: refresh due at 225 s
	ts := f.client.TokenSource(tok)

	f.clock.Advance(224 * time.Second)
	got, err := ts.Token()
	if err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("before 75 %%: %v, same token %v", err, got != nil && got.AccessToken == tok.AccessToken)
	}
	if n := f.calls.get("refresh"); n != 0 {
		t.Fatalf("%d refreshes before 75 %% of the lifetime", n)
	}

	f.clock.Advance(time.Second)
	got, err = ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken == tok.AccessToken || got.RefreshToken == tok.RefreshToken {
		t.Fatal("no new pair at 75 %")
	}
	if n := f.calls.get("refresh"); n != 1 {
		t.Fatalf("%d refreshes at 75 %%, want 1", n)
	}
	if !got.Expiry.Equal(f.clock.Now().Add(300 * time.Second)) {
		t.Errorf("new expiry %v, want now+300s", got.Expiry)
	}
	// The new token is good for another 225 s without a call.
	f.clock.Advance(224 * time.Second)
	if again, _ := ts.Token(); again != got || f.calls.get("refresh") != 1 {
		t.Fatal("refreshed again too early")
	}
	// The rotated-out refresh token is dead at IdS.
	if _, err := f.client.TokenSource(&oauth2.Token{AccessToken: "x", RefreshToken: tok.RefreshToken, Expiry: f.clock.Now()}).Token(); !errors.Is(err, ids.ErrSignInAgain) {
		t.Errorf("old refresh token: %v, want ErrSignInAgain", err)
	}
}

func TestTokenSourceCustomRefreshAt(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	c, err := ids.New(ids.Config{Nodes: []string{f.nodes[0].URL}, ClientID: clientID, ClientSecret: secret,
		RedirectURL: redirectURL, HTTPClient: f.nodesHTTPClient(), RefreshAt: 0.5, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts := c.TokenSource(f.signedIn())
	f.clock.Advance(149 * time.Second)
	_, _ = ts.Token()
	if f.calls.get("refresh") != 0 {
		t.Fatal("refreshed before 50 %")
	}
	f.clock.Advance(time.Second)
	_, _ = ts.Token()
	if f.calls.get("refresh") != 1 {
		t.Fatal("no refresh at 50 %")
	}
}

func TestTokenSourceConcurrentOneRefresh(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	ts := f.client.TokenSource(f.signedIn())
	f.clock.Advance(250 * time.Second)
	f.delay.Store(int64(50 * time.Millisecond)) // widen the window

	const callers = 20
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		tokens = make([]string, callers)
		errs   = make([]error, callers)
	)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := ts.Token()
			errs[i] = err
			if tok != nil {
				tokens[i] = tok.AccessToken
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || tokens[i] != tokens[0] {
			t.Fatalf("caller %d: %v (token equal: %v)", i, errs[i], tokens[i] == tokens[0])
		}
	}
	if n := f.calls.get("refresh"); n != 1 {
		t.Fatalf("%d refreshes for %d concurrent callers, want 1", n, callers)
	}
}

func TestTokenSourceInvalidGrant(t *testing.T) {
	tests := []struct {
		name       string
		invalidate func(f *fixture)
	}{
		{"revoked", func(f *fixture) { f.sim.Revoke(user) }},
		{"refresh lifetime over", func(f *fixture) { f.clock.Advance(7200 * time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpt{})
			ts := f.client.TokenSource(f.signedIn())
			tt.invalidate(f)
			f.clock.Advance(230 * time.Second)
			_, err := ts.Token()
			if !errors.Is(err, ids.ErrSignInAgain) {
				t.Fatalf("err %v, want ErrSignInAgain", err)
			}
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Errorf("no RetrieveError invalid_grant behind %v", err)
			}
			// Sticky, without asking IdS again.
			n := f.calls.get("refresh")
			f.clock.Advance(time.Minute)
			if _, err := ts.Token(); !errors.Is(err, ids.ErrSignInAgain) || f.calls.get("refresh") != n {
				t.Errorf("second call: %v, refreshes %d → %d", err, n, f.calls.get("refresh"))
			}
		})
	}
}

func TestTokenSourceOutage(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	tok := f.signedIn()
	ts := f.client.TokenSource(tok)
	f.sim.SetAvailable(false)

	// Due for refresh, IdS down, token still valid: keep working.
	f.clock.Advance(230 * time.Second)
	got, err := ts.Token()
	if err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("during outage with a valid token: %v", err)
	}
	if f.calls.get("refresh") != 1 {
		t.Fatalf("refresh attempts %d, want 1", f.calls.get("refresh"))
	}
	// No hammering: the next attempt waits 5 s.
	for range 10 {
		if _, err := ts.Token(); err != nil {
			t.Fatal(err)
		}
	}
	if f.calls.get("refresh") != 1 {
		t.Fatalf("refresh attempts %d within the retry pause, want 1", f.calls.get("refresh"))
	}
	f.clock.Advance(5 * time.Second)
	if _, err := ts.Token(); err != nil || f.calls.get("refresh") != 2 {
		t.Fatalf("after the pause: %v, attempts %d, want 2", err, f.calls.get("refresh"))
	}

	// Past expiry (minus the 10 s margin): ErrUnavailable.
	f.clock.Advance(60 * time.Second)
	_, err = ts.Token()
	if !errors.Is(err, ids.ErrUnavailable) {
		t.Fatalf("after expiry: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error %q does not name the status", err)
	}
	if _, err := ts.Token(); !errors.Is(err, ids.ErrUnavailable) {
		t.Fatalf("within the pause after expiry: %v, want ErrUnavailable", err)
	}

	// IdS back: the next attempt recovers.
	f.sim.SetAvailable(true)
	f.clock.Advance(5 * time.Second)
	got, err = ts.Token()
	if err != nil || got.AccessToken == tok.AccessToken {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestTokenSourceWithoutRefreshToken(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	tok := f.signedIn()
	tok.RefreshToken = ""
	ts := f.client.TokenSource(tok)
	f.clock.Advance(280 * time.Second)
	if got, err := ts.Token(); err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("valid token without refresh token: %v", err)
	}
	f.clock.Advance(20 * time.Second)
	if _, err := ts.Token(); !errors.Is(err, ids.ErrSignInAgain) {
		t.Fatalf("expired without refresh token: %v, want ErrSignInAgain", err)
	}
	if f.calls.get("refresh") != 0 {
		t.Error("refresh attempted without a refresh token")
	}
	if _, err := f.client.TokenSource(nil).Token(); !errors.Is(err, ids.ErrSignInAgain) {
		t.Errorf("nil token: %v", err)
	}
}

func TestTokenSourceDoesNotUseRequestContext(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	// The sign-in happens in a request whose context ends right after.
	ctx, cancel := context.WithCancel(context.Background())
	cb := f.browserSignIn(f.client, "/")
	code, _, err := f.client.FinishLogin(cb, httptest.NewRecorder())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.client.Exchange(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	ts := f.client.TokenSource(tok)
	cancel()
	f.clock.Advance(230 * time.Second)
	if got, err := ts.Token(); err != nil || got.AccessToken == tok.AccessToken {
		t.Fatalf("refresh after the request ended: %v", err)
	}
}

// A token source used through oauth2.Transport puts the bearer on requests.
func TestTokenSourceWithTransport(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	tok := f.signedIn()
	var seen string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}))
	defer api.Close()
	hc := &http.Client{Transport: &oauth2.Transport{Source: f.client.TokenSource(tok), Base: api.Client().Transport}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c, err := f.sim.Verify(seen); err != nil || c.UserID != user {
		t.Fatalf("bearer on the request: %v", err)
	}
}
