package ids

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fuzzKey is one RSA key shared by the verification fuzzer's runs
// (generating one per run would dominate the fuzzing time).
var fuzzKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// fuzzNow is the verifier's clock: before every seed token's expiry.
var fuzzNow = time.Unix(1772438700, 0)

// signRS256 builds an RS256 JWT over header and payload with key.
func signRS256(t testing.TB, key *rsa.PrivateKey, header, payload string) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	h := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + enc.EncodeToString(sig)
}

// FuzzVerifyToken feeds arbitrary tokens to the RS256 verification the
// relay runs on every IdS access token. It must never panic, fail only
// with ErrTokenInvalid or ErrTokenExpired, and accept a token only when
// its signature verifies with the key (checked independently here), its
// alg is RS256, its usage is access, its user_id valid and it has not
// expired.
func FuzzVerifyToken(f *testing.F) {
	key, err := fuzzKey()
	if err != nil {
		f.Fatal(err)
	}
	access := `{"iss":"ids.demo.local","exp":1772438930,"iat":1772438630,"sub":"{\"user_id\":\"agent1001\",\"client_id\":\"relay\",\"usage\":\"access\",\"expiry\":1772438930000}"}`
	refresh := `{"iss":"ids.demo.local","exp":1772438930,"sub":"{\"client_id\":\"relay\",\"usage\":\"refresh\"}"}`
	expired := `{"iss":"ids.demo.local","exp":1772438600,"sub":"{\"user_id\":\"agent1001\",\"usage\":\"access\"}"}`
	enc := base64.RawURLEncoding
	good := signRS256(f, key, `{"alg":"RS256","typ":"JWT"}`, access)
	parts := strings.Split(good, ".")
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	seeds := []string{
		good,
		signRS256(f, key, `{"alg":"RS256","typ":"JWT","cty":"JWT"}`, refresh),
		signRS256(f, key, `{"alg":"RS256"}`, expired),
		signRS256(f, key, `{"alg":"RS256"}`, `{"exp":1772438930,"sub":"{\"user_id\":\"../../x\",\"usage\":\"access\"}"}`),
		// alg confusion and none
		enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		enc.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + parts[1] + "." + enc.EncodeToString(pub[:32]),
		enc.EncodeToString([]byte(`{"alg":"RS512"}`)) + "." + parts[1] + "." + parts[2],
		// tampered payload, padding, extra parts
		parts[0] + "." + enc.EncodeToString([]byte(strings.Replace(access, "agent1001", "agent1002", 1))) + "." + parts[2],
		good + "=", good + ".x", parts[0] + "." + parts[1], "", ".", "..", "a.b.c",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	c := &Client{now: func() time.Time { return fuzzNow }}
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := c.verifyWith(&key.PublicKey, token)
		if err != nil {
			if !errors.Is(err, ErrTokenInvalid) && !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("error %v wraps neither ErrTokenInvalid nor ErrTokenExpired", err)
			}
			return
		}
		// Accepted: check it the long way.
		p := strings.Split(token, ".")
		if len(p) != 3 {
			t.Fatalf("accepted a token with %d parts", len(p))
		}
		var hdr struct{ Alg string }
		hb, err := enc.DecodeString(p[0])
		if err != nil || json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "RS256" {
			t.Fatalf("accepted a token whose header is %q", hb)
		}
		sig, err := enc.DecodeString(p[2])
		if err != nil {
			t.Fatalf("accepted a signature that is not base64url: %v", err)
		}
		h := sha256.Sum256([]byte(p[0] + "." + p[1]))
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, h[:], sig); err != nil {
			t.Fatalf("accepted a token the key did not sign: %v", err)
		}
		if !validID(claims.UserID) {
			t.Fatalf("accepted user_id %q", claims.UserID)
		}
		if !fuzzNow.Before(claims.Expiry) {
			t.Fatalf("accepted a token that expired at %v", claims.Expiry)
		}
	})
}

// FuzzParsePublicKey feeds arbitrary answers of IdS's public key endpoint
// to the key parser: no panic, and only RSA keys of at least 2048 bits.
func FuzzParsePublicKey(f *testing.F) {
	key, err := fuzzKey()
	if err != nil {
		f.Fatal(err)
	}
	pkix, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pkix}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("not pem"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := parsePublicKey(data)
		if err != nil {
			if k != nil {
				t.Fatal("a key and an error")
			}
			return
		}
		if k.N.BitLen() < minRSABits {
			t.Fatalf("accepted a %d-bit key", k.N.BitLen())
		}
	})
}
