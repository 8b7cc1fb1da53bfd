package ids_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"finesse-relay/server/ids"
)

// payloadOf decodes a JWT's claims.
func payloadOf(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var mc jwt.MapClaims
	if err := json.Unmarshal(b, &mc); err != nil {
		t.Fatal(err)
	}
	return mc
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["cty"] = "JWT"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemOf(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifyAgainstSimulator(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	tok := f.signedIn()
	other := rsaKey(t, 2048)
	keyPEM := func() []byte {
		req, _ := http.NewRequest(http.MethodGet, f.nodes[0].URL+ids.PublicKeyPath, nil)
		req.SetBasicAuth(clientID, secret)
		resp, err := f.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	claims := payloadOf(t, tok.AccessToken)
	fetchesBefore := f.calls.get("key") // the test's own fetch above
	tests := []struct {
		name    string
		token   string
		advance time.Duration
		want    error
	}{
		{"valid", tok.AccessToken, 0, nil},
		{"refresh token", tok.RefreshToken, 0, ids.ErrTokenInvalid},
		{"signed by another key", sign(t, jwt.SigningMethodRS256, other, claims), 0, ids.ErrTokenInvalid},
		{"HS256 keyed with the IdS public key", sign(t, jwt.SigningMethodHS256, keyPEM, claims), 0, ids.ErrTokenInvalid},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims), 0, ids.ErrTokenInvalid},
		{"PS256 with another key", sign(t, jwt.SigningMethodPS256, other, claims), 0, ids.ErrTokenInvalid},
		{"signature stripped", strings.Join(strings.Split(tok.AccessToken, ".")[:2], ".") + ".", 0, ids.ErrTokenInvalid},
		{"not a JWT", "opaque-token", 0, ids.ErrTokenInvalid},
		{"empty", "", 0, ids.ErrTokenInvalid},
		{"oversized", strings.Repeat("x", 17<<10), 0, ids.ErrTokenInvalid},
		{"valid, one second before expiry", tok.AccessToken, 299 * time.Second, nil},
		{"expired", tok.AccessToken, time.Second, ids.ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Advance(tt.advance)
			c, err := f.client.Verify(context.Background(), tt.token)
			if tt.want == nil {
				if err != nil || c.UserID != user {
					t.Fatalf("Verify: %+v %v", c, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
	// One key fetch served every check (the forged signatures came within
	// the minute after the fetch).
	if n := f.calls.get("key") - fetchesBefore; n != 1 {
		t.Errorf("%d public key fetches, want 1", n)
	}
}

// keyServer is a hostile or scripted IdS public-key endpoint.
type keyServer struct {
	mu      sync.Mutex
	status  int
	body    []byte
	fetches int
	srv     *httptest.Server
}

func newKeyServer(t *testing.T, status int, body []byte) *keyServer {
	k := &keyServer{status: status, body: body}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		defer k.mu.Unlock()
		if r.URL.Path != ids.PublicKeyPath {
			http.NotFound(w, r)
			return
		}
		if id, s, ok := r.BasicAuth(); !ok || id != clientID || s != secret {
			http.Error(w, "credentials", http.StatusUnauthorized)
			return
		}
		k.fetches++
		w.WriteHeader(k.status)
		_, _ = w.Write(k.body)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *keyServer) set(status int, body []byte) {
	k.mu.Lock()
	k.status, k.body = status, body
	k.mu.Unlock()
}

func (k *keyServer) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetches
}

func idsClaims(now time.Time, usage string) jwt.MapClaims {
	sub, _ := json.Marshal(map[string]any{
		"user_id": user, "client_id": clientID, "usage": usage, "token": "j1",
		"expiry": now.Add(5 * time.Minute).UnixMilli(), "scope": []string{"ccc_onprem_apps"}, "ver": "1.0",
	})
	return jwt.MapClaims{"iss": "ids.lab", "exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": "j1", "sub": string(sub)}
}

func keyClient(t *testing.T, clk *clock, nodes ...string) *ids.Client {
	t.Helper()
	hc := &http.Client{Transport: tlsTransport(t), Timeout: 5 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := ids.New(ids.Config{Nodes: nodes, ClientID: clientID, ClientSecret: secret, RedirectURL: redirectURL, HTTPClient: hc, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsTransport trusts httptest's shared certificate.
func tlsTransport(t *testing.T) *http.Transport {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	tr := srv.Client().Transport.(*http.Transport).Clone()
	srv.Close()
	return tr
}

func TestVerifyKeyRotation(t *testing.T) {
	clk := newClock()
	k1, k2 := rsaKey(t, 2048), rsaKey(t, 2048)
	ks := newKeyServer(t, http.StatusOK, pemOf(t, &k1.PublicKey))
	c := keyClient(t, clk, ks.srv.URL)
	ctx := context.Background()

	if _, err := c.Verify(ctx, sign(t, jwt.SigningMethodRS256, k1, idsClaims(clk.Now(), "access"))); err != nil {
		t.Fatal(err)
	}
	// IdS rotates its key pair.
	ks.set(http.StatusOK, pemOf(t, &k2.PublicKey))
	tok2 := sign(t, jwt.SigningMethodRS256, k2, idsClaims(clk.Now(), "access"))
	if _, err := c.Verify(ctx, tok2); !errors.Is(err, ids.ErrTokenInvalid) {
		t.Fatalf("within a minute of the last fetch: %v, want ErrTokenInvalid (no refetch yet)", err)
	}
	if ks.count() != 1 {
		t.Fatalf("%d fetches, want 1", ks.count())
	}
	clk.Advance(61 * time.Second)
	if _, err := c.Verify(ctx, sign(t, jwt.SigningMethodRS256, k2, idsClaims(clk.Now(), "access"))); err != nil {
		t.Fatalf("after the minute, the new key is fetched: %v", err)
	}
	if ks.count() != 2 {
		t.Fatalf("%d fetches, want 2", ks.count())
	}
	// Forged tokens do not cause a fetch per call.
	forged := sign(t, jwt.SigningMethodRS256, rsaKey(t, 2048), idsClaims(clk.Now(), "access"))
	for range 5 {
		if _, err := c.Verify(ctx, forged); !errors.Is(err, ids.ErrTokenInvalid) {
			t.Fatal(err)
		}
	}
	if ks.count() != 2 {
		t.Fatalf("%d fetches after forged tokens, want 2", ks.count())
	}
}

func TestVerifyKeyProblems(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weak := rsaKey(t, 1024)
	tests := []struct {
		name   string
		status int
		body   []byte
		want   []error
	}{
		{"IdS before 12.6(2): 404", http.StatusNotFound, []byte("not found"), []error{ids.ErrNoPublicKey}},
		{"node error 500", http.StatusInternalServerError, nil, []error{ids.ErrNoPublicKey, ids.ErrUnavailable}},
		{"not PEM", http.StatusOK, []byte("hello"), []error{ids.ErrNoPublicKey}},
		{"EC key", http.StatusOK, pemOf(t, &ec.PublicKey), []error{ids.ErrNoPublicKey}},
		{"1024-bit RSA key", http.StatusOK, pemOf(t, &weak.PublicKey), []error{ids.ErrNoPublicKey}},
		{"oversized answer", http.StatusOK, []byte(strings.Repeat("A", 70<<10)), []error{ids.ErrNoPublicKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			ks := newKeyServer(t, tt.status, tt.body)
			c := keyClient(t, clk, ks.srv.URL)
			tok := sign(t, jwt.SigningMethodRS256, weak, idsClaims(clk.Now(), "access"))
			_, err := c.Verify(context.Background(), tok)
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Fatalf("err %v, want %v", err, w)
				}
			}
			if !strings.Contains(err.Error(), ks.srv.URL) {
				t.Errorf("error %q does not name the node", err)
			}
			// Negative answers are cached for a minute.
			_, _ = c.Verify(context.Background(), tok)
			if ks.count() != 1 {
				t.Errorf("%d fetches within a minute, want 1", ks.count())
			}
			clk.Advance(61 * time.Second)
			_, _ = c.Verify(context.Background(), tok)
			if ks.count() != 2 {
				t.Errorf("%d fetches after a minute, want 2", ks.count())
			}
		})
	}
}

func TestVerifyKeyFailover(t *testing.T) {
	clk := newClock()
	k := rsaKey(t, 2048)
	ks := newKeyServer(t, http.StatusOK, pemOf(t, &k.PublicKey))
	c := keyClient(t, clk, deadURL(t), ks.srv.URL)
	if _, err := c.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k, idsClaims(clk.Now(), "access"))); err != nil {
		t.Fatalf("second node not used: %v", err)
	}
	// Both nodes unreachable: ErrNoPublicKey and ErrUnavailable.
	c2 := keyClient(t, clk, deadURL(t), deadURL(t))
	_, err := c2.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k, idsClaims(clk.Now(), "access")))
	if !errors.Is(err, ids.ErrNoPublicKey) || !errors.Is(err, ids.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
}

func TestVerifyClaimsShape(t *testing.T) {
	clk := newClock()
	k := rsaKey(t, 2048)
	ks := newKeyServer(t, http.StatusOK, pemOf(t, &k.PublicKey))
	c := keyClient(t, clk, ks.srv.URL)
	now := clk.Now()
	mod := func(f func(jwt.MapClaims)) jwt.MapClaims {
		mc := idsClaims(now, "access")
		f(mc)
		return mc
	}
	tests := []struct {
		name   string
		claims jwt.MapClaims
		want   error
	}{
		{"IdS shape", idsClaims(now, "access"), nil},
		{"sub as an object", mod(func(m jwt.MapClaims) {
			m["sub"] = map[string]any{"user_id": user, "usage": "access"}
		}), nil},
		{"no exp, expiry in ms", mod(func(m jwt.MapClaims) { delete(m, "exp") }), nil},
		{"refresh usage", idsClaims(now, "refresh"), ids.ErrTokenInvalid},
		{"sub a plain string", mod(func(m jwt.MapClaims) { m["sub"] = user }), ids.ErrTokenInvalid},
		{"sub missing", mod(func(m jwt.MapClaims) { delete(m, "sub") }), ids.ErrTokenInvalid},
		{"no user_id", mod(func(m jwt.MapClaims) { m["sub"] = `{"usage":"access"}` }), ids.ErrTokenInvalid},
		{"user_id with a newline", mod(func(m jwt.MapClaims) { m["sub"] = `{"usage":"access","user_id":"a\nb"}` }), ids.ErrTokenInvalid},
		{"exp a string", mod(func(m jwt.MapClaims) { m["exp"] = "soon" }), ids.ErrTokenInvalid},
		{"exp in the past", mod(func(m jwt.MapClaims) { m["exp"] = now.Add(-time.Second).Unix() }), ids.ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := c.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k, tt.claims))
			if tt.want == nil {
				if err != nil || cl.UserID != user {
					t.Fatalf("Verify: %+v %v", cl, err)
				}
				if !cl.Expiry.Equal(now.Add(5 * time.Minute)) {
					t.Errorf("expiry %v", cl.Expiry)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}
