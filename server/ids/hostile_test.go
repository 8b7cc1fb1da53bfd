package ids_test

import (
	"context"
	"encoding/json"
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
	"golang.org/x/oauth2"

	"finesse-relay/server/ids"
)

// tokenServer is a scripted IdS token endpoint. handle gets the parsed form
// and whether Basic credentials were sent.
func tokenServer(t *testing.T, handle func(w http.ResponseWriter, form url.Values, basic bool)) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ids.TokenPath || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		_, _, basic := r.BasicAuth()
		handle(w, r.PostForm, basic)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestExchangeFailover(t *testing.T) {
	down503 := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer down503.Close()
	tests := []struct {
		name  string
		first string
	}{
		{"first node refuses connections", deadURL(t)},
		{"first node answers 503", down503.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpt{})
			c := f.newClient(t, []string{tt.first, f.nodes[0].URL}, nil)
			if !strings.HasPrefix(c.AuthCodeURL("s"), tt.first) {
				t.Fatalf("AuthCodeURL %s should start on the first node", c.AuthCodeURL("s"))
			}
			cb := f.browserSignIn(f.client, "/") // the code comes from the live node
			code, _, err := f.client.FinishLogin(cb, httptest.NewRecorder())
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.Exchange(context.Background(), code)
			if err != nil {
				t.Fatalf("exchange with the first node down: %v", err)
			}
			if _, err := f.sim.Verify(tok.AccessToken); err != nil {
				t.Fatal(err)
			}
			// The node that answered is preferred from now on.
			if !strings.HasPrefix(c.AuthCodeURL("s"), f.nodes[0].URL) {
				t.Errorf("AuthCodeURL %s, want the node that answered", c.AuthCodeURL("s"))
			}
			// And a refresh goes straight to it.
			ts := c.TokenSource(tok)
			f.clock.Advance(230 * time.Second)
			if _, err := ts.Token(); err != nil || f.calls.get("refresh") != 1 {
				t.Fatalf("refresh: %v (%d calls)", err, f.calls.get("refresh"))
			}
		})
	}
}

func TestExchangeAllNodesDown(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	a, b := deadURL(t), deadURL(t)
	c := f.newClient(t, []string{a, b}, nil)
	_, err := c.Exchange(context.Background(), "code")
	if !errors.Is(err, ids.ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	for _, n := range []string{a, b} {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not name node %s", err, n)
		}
	}
}

func TestNoFailoverOn4xx(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	refusing := tokenServer(t, func(w http.ResponseWriter, _ url.Values, _ bool) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "code expired"})
	})
	c := f.newClient(t, []string{refusing.URL, f.nodes[0].URL}, nil)
	_, err := c.Exchange(context.Background(), "code")
	if !errors.Is(err, ids.ErrSignInAgain) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), "code expired") || !strings.Contains(err.Error(), refusing.URL) {
		t.Errorf("error %q lacks the node or description", err)
	}
	if f.calls.get("code") != 0 {
		t.Error("a 4xx answer was retried on the next node")
	}
}

// fakeAccessToken is an IdS-shaped access token signed by some key.
func fakeAccessToken(t *testing.T, now time.Time) string {
	return sign(t, jwt.SigningMethodRS256, rsaKey(t, 2048), idsClaims(now, "access"))
}

func TestClientAuthFallbackToBody(t *testing.T) {
	clk := newClock()
	access := fakeAccessToken(t, clk.Now())
	var mu sync.Mutex
	attempts := map[string]int{}
	srv := tokenServer(t, func(w http.ResponseWriter, form url.Values, basic bool) {
		mu.Lock()
		defer mu.Unlock()
		if basic {
			attempts["basic"]++
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
			return
		}
		attempts["body"]++
		if form.Get("client_id") != clientID || form.Get("client_secret") != secret {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
			return
		}
		writeJSON(w, 200, map[string]any{"access_token": access, "refresh_token": "r", "token_type": "Bearer", "expires_in": 300})
	})
	c := keyClient(t, clk, srv.URL)
	for i := range 3 {
		if _, err := c.Exchange(context.Background(), "code"); err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts["basic"] != 1 || attempts["body"] != 3 {
		t.Fatalf("attempts %v, want Basic once then the body every time", attempts)
	}
}

func TestClientRejected(t *testing.T) {
	srv := tokenServer(t, func(w http.ResponseWriter, _ url.Values, _ bool) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "bad client"})
	})
	c := keyClient(t, newClock(), srv.URL)
	_, err := c.Exchange(context.Background(), "code")
	if !errors.Is(err, ids.ErrClientRejected) || errors.Is(err, ids.ErrUnavailable) {
		t.Fatalf("err %v, want ErrClientRejected only", err)
	}
	var re *ids.RequestError
	if !errors.As(err, &re) || re.StatusCode != 401 || re.Code != "invalid_client" || re.Node != srv.URL {
		t.Fatalf("RequestError %+v", re)
	}
	if !strings.Contains(err.Error(), "client_id") {
		t.Errorf("error %q does not say what to fix", err)
	}
}

func TestHostileTokenAnswers(t *testing.T) {
	clk := newClock()
	access := fakeAccessToken(t, clk.Now())
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter)
		check  func(t *testing.T, tok *oauth2.Token, err error)
	}{
		{"not JSON", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "<html>proxy error</html>")
		}, func(t *testing.T, _ *oauth2.Token, err error) {
			if !errors.Is(err, ids.ErrUnavailable) {
				t.Fatalf("err %v, want ErrUnavailable (try another node)", err)
			}
		}},
		{"huge body", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"`+strings.Repeat("a", 3<<20)+`"}`)
		}, func(t *testing.T, _ *oauth2.Token, err error) {
			if err == nil {
				t.Fatal("a 3 MiB answer was accepted")
			}
		}},
		{"no access_token", func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": 300})
		}, func(t *testing.T, _ *oauth2.Token, err error) {
			if err == nil {
				t.Fatal("answer without access_token accepted")
			}
		}},
		{"token_type mac", func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"access_token": access, "token_type": "mac", "expires_in": 300})
		}, func(t *testing.T, _ *oauth2.Token, err error) {
			if err == nil || !strings.Contains(err.Error(), "token_type") {
				t.Fatalf("err %v", err)
			}
		}},
		{"no expires_in: lifetime from exp", func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"access_token": access, "refresh_token": "r", "token_type": "Bearer"})
		}, func(t *testing.T, tok *oauth2.Token, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if tok.ExpiresIn != 300 || !tok.Expiry.Equal(clk.Now().Add(5*time.Minute)) {
				t.Fatalf("expires_in %d expiry %v", tok.ExpiresIn, tok.Expiry)
			}
		}},
		{"expires_in as a string", func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": "120"})
		}, func(t *testing.T, tok *oauth2.Token, err error) {
			if err != nil || tok.ExpiresIn != 120 {
				t.Fatalf("%v %+v", err, tok)
			}
		}},
		{"error text with control characters", func(w http.ResponseWriter) {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "x\r\n\x1b[31m" + strings.Repeat("y", 5000)})
		}, func(t *testing.T, _ *oauth2.Token, err error) {
			if !errors.Is(err, ids.ErrSignInAgain) {
				t.Fatal(err)
			}
			if strings.ContainsAny(err.Error(), "\r\n\x1b") || len(err.Error()) > 600 {
				t.Fatalf("error text not sanitized (%d bytes): %q", len(err.Error()), err.Error()[:80])
			}
		}},
		{"5xx with body", func(w http.ResponseWriter) {
			http.Error(w, "stack trace with secrets", http.StatusBadGateway)
		}, func(t *testing.T, _ *oauth2.Token, err error) {
			if !errors.Is(err, ids.ErrUnavailable) || strings.Contains(err.Error(), "stack trace") {
				t.Fatalf("err %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokenServer(t, func(w http.ResponseWriter, _ url.Values, _ bool) { tt.handle(w) })
			c := keyClient(t, clk, srv.URL)
			tok, err := c.Exchange(context.Background(), "code")
			tt.check(t, tok, err)
		})
	}
}

func TestExchangeHonoursContext(t *testing.T) {
	release := make(chan struct{})
	srv := tokenServer(t, func(w http.ResponseWriter, _ url.Values, _ bool) { <-release })
	defer close(release)
	c := keyClient(t, newClock(), srv.URL, deadURL(t))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exchange(ctx, "code")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestRefreshWithoutRotation(t *testing.T) {
	clk := newClock()
	access := fakeAccessToken(t, clk.Now())
	var gotRefresh []string
	var mu sync.Mutex
	srv := tokenServer(t, func(w http.ResponseWriter, form url.Values, _ bool) {
		mu.Lock()
		gotRefresh = append(gotRefresh, form.Get("refresh_token"))
		mu.Unlock()
		// Like the Finesse wrapper's refresh answer: no new refresh token.
		writeJSON(w, 200, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 300})
	})
	c := keyClient(t, clk, srv.URL)
	ts := c.TokenSource(&oauth2.Token{AccessToken: "a0", RefreshToken: "keep-me", ExpiresIn: 300, Expiry: clk.Now().Add(300 * time.Second)})
	for range 2 {
		clk.Advance(230 * time.Second)
		tok, err := ts.Token()
		if err != nil || tok.RefreshToken != "keep-me" {
			t.Fatalf("%v %+v", err, tok)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gotRefresh) != 2 || gotRefresh[1] != "keep-me" {
		t.Fatalf("refresh tokens sent %v", gotRefresh)
	}
}
