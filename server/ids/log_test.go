package ids_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestNoSecretsLogged runs every flow with a debug-level observer and checks
// that no log message, field, or returned error carries a token, code,
// state, password or the client secret.
func TestNoSecretsLogged(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	f := newFixture(t, fixtureOpt{logger: log})
	var secrets []string
	var errTexts []string
	keep := func(err error) {
		if err != nil {
			errTexts = append(errTexts, err.Error())
		}
	}

	// Full code flow on the logging client.
	cb := f.browserSignIn(f.client, "/")
	secrets = append(secrets, cb.URL.Query().Get("code"), cb.URL.Query().Get("state"))
	code, _, err := f.client.FinishLogin(cb, httptest.NewRecorder())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.client.Exchange(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, tok.AccessToken, tok.RefreshToken)
	replay := httptest.NewRequest(http.MethodGet, cb.URL.String(), nil)
	replay.AddCookie(cb.Cookies()[0])
	_, _, err = f.client.FinishLogin(replay, httptest.NewRecorder())
	keep(err)
	if _, err := f.client.Verify(context.Background(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	_, err = f.client.Verify(context.Background(), tok.RefreshToken)
	keep(err)

	// Refresh, outage, recovery, revocation.
	ts := f.client.TokenSource(tok)
	f.clock.Advance(230 * time.Second)
	t2, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, t2.AccessToken, t2.RefreshToken)
	f.sim.SetAvailable(false)
	f.clock.Advance(230 * time.Second)
	_, err = ts.Token()
	keep(err)
	f.clock.Advance(80 * time.Second)
	_, err = ts.Token()
	keep(err)
	f.sim.SetAvailable(true)
	f.sim.Revoke(user)
	f.clock.Advance(10 * time.Second)
	_, err = ts.Token()
	keep(err)

	// Failover through a dead node.
	c2 := f.newClient(t, []string{deadURL(t), f.nodes[0].URL}, log)
	cb = f.browserSignIn(f.client, "/")
	secrets = append(secrets, cb.URL.Query().Get("code"), cb.URL.Query().Get("state"))
	code, _, err = f.client.FinishLogin(cb, httptest.NewRecorder())
	if err != nil {
		t.Fatal(err)
	}
	t3, err := c2.Exchange(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, t3.AccessToken, t3.RefreshToken, secret, password)
	_, err = c2.Exchange(context.Background(), code) // reuse: invalid_grant
	keep(err)

	if logs.FilterLevelExact(zapcore.WarnLevel).Len() == 0 || logs.FilterLevelExact(zapcore.InfoLevel).Len() == 0 || len(errTexts) < 5 {
		t.Fatalf("the flows did not log/fail as expected: %d warn, %d info, %d errors", logs.FilterLevelExact(zapcore.WarnLevel).Len(), logs.FilterLevelExact(zapcore.InfoLevel).Len(), len(errTexts))
	}
	var corpus []string
	for _, e := range logs.All() {
		corpus = append(corpus, e.Message+" "+fmt.Sprint(e.ContextMap()))
	}
	corpus = append(corpus, errTexts...)
	for _, s := range secrets {
		if s == "" {
			t.Fatal("a secret of the test is empty")
		}
		for _, line := range corpus {
			if strings.Contains(line, s) || (len(s) > 40 && strings.Contains(line, s[:40])) {
				t.Errorf("secret %.12s… found in %q", s, line)
			}
		}
	}
}
