package ids

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

const (
	// keyRefetchEvery bounds public-key fetches: after a failed fetch, and
	// when a signature does not verify with the cached key (IdS may have
	// rotated its key pair), at most once per interval.
	keyRefetchEvery = time.Minute
	maxKeyBytes     = 64 << 10
	minRSABits      = 2048
)

// keyCache holds the IdS token-signing public key.
type keyCache struct {
	mu        sync.Mutex // held during a fetch: concurrent Verify calls wait for it
	key       *rsa.PublicKey
	fetchedAt time.Time // last attempt, successful or not
	err       error     // last failure while key == nil
}

// errBadSignature marks an RS256 signature that did not verify: worth one
// key refetch.
var errBadSignature = errors.New("ids: signature does not verify")

// Verify checks an IdS access token locally: RS256 signature with the IdS
// public key, usage "access", not expired by the client's clock. The key
// is fetched from the first node that answers, cached, and fetched again
// (at most once a minute) when a signature does not verify.
//
// Errors wrap ErrTokenInvalid, ErrTokenExpired, or ErrNoPublicKey when no
// node offers the key (IdS before 12.6(2), or unreachable): the caller then
// has to verify another way, e.g. by asking Finesse.
func (c *Client) Verify(ctx context.Context, accessToken string) (Claims, error) {
	if accessToken == "" || len(accessToken) > maxTokenLen {
		return Claims{}, fmt.Errorf("%w: empty or longer than %d bytes", ErrTokenInvalid, maxTokenLen)
	}
	key, fresh, err := c.publicKey(ctx, nil)
	if err != nil {
		return Claims{}, err
	}
	claims, err := c.verifyWith(key, accessToken)
	if errors.Is(err, errBadSignature) && !fresh {
		if k2, fresh2, kerr := c.publicKey(ctx, key); kerr == nil && fresh2 && !k2.Equal(key) {
			claims, err = c.verifyWith(k2, accessToken)
		}
	}
	return claims, err
}

func (c *Client) verifyWith(key *rsa.PublicKey, token string) (Claims, error) {
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	t, err := p.Parse(token, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodRS256 {
			return nil, fmt.Errorf("algorithm %v", t.Header["alg"])
		}
		return key, nil
	})
	if err != nil {
		if t != nil && t.Method == jwt.SigningMethodRS256 && errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return Claims{}, fmt.Errorf("%w: %w", ErrTokenInvalid, errBadSignature)
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	claims, usage, err := parseClaims(jwtPayload(token))
	if err != nil {
		return Claims{}, err
	}
	if usage != "access" {
		return Claims{}, fmt.Errorf("%w: usage %q, not an access token", ErrTokenInvalid, sanitize(usage, 20))
	}
	if !c.now().Before(claims.Expiry) {
		return Claims{}, fmt.Errorf("%w: at %s", ErrTokenExpired, claims.Expiry.Format(time.RFC3339))
	}
	return claims, nil
}

// publicKey returns the cached key, fetching it when there is none. With
// stale set (the key a signature failed with) it fetches again unless the
// last fetch was less than a minute ago. fresh reports a fetch by this call.
func (c *Client) publicKey(ctx context.Context, stale *rsa.PublicKey) (key *rsa.PublicKey, fresh bool, err error) {
	k := &c.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	now := c.now()
	recent := !k.fetchedAt.IsZero() && now.Sub(k.fetchedAt) < keyRefetchEvery
	switch {
	case k.key != nil && (stale == nil || !k.key.Equal(stale)):
		return k.key, false, nil // cached, or replaced by a concurrent refetch
	case k.key != nil && recent:
		return k.key, false, nil
	case k.key == nil && k.err != nil && recent:
		return nil, false, k.err
	}
	key, err = c.fetchKey(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, err // the caller gave up; not the IdS's fault
		}
		k.fetchedAt = now
		if k.key != nil {
			c.log.Warn("IdS public key refetch failed; keeping the cached key", zap.Error(err))
			return k.key, false, nil
		}
		k.err = err
		return nil, false, err
	}
	if k.key != nil {
		c.log.Info("IdS token-signing key changed")
	}
	k.key, k.err, k.fetchedAt = key, nil, now
	return key, true, nil
}

// fetchKey asks the nodes in order for the public key.
func (c *Client) fetchKey(ctx context.Context) (*rsa.PublicKey, error) {
	var failed nodeErrors
	allDown := true
	for _, i := range c.order() {
		base := c.nodes[i].base
		key, err := c.fetchKeyFrom(ctx, base)
		if err == nil {
			return key, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ids: public key: %w", ctx.Err())
		}
		allDown = allDown && errors.Is(err, ErrUnavailable)
		failed = append(failed, err)
	}
	if allDown {
		return nil, fmt.Errorf("%w: %w: %w", ErrNoPublicKey, ErrUnavailable, failed)
	}
	return nil, fmt.Errorf("%w (IdS before 12.6(2) has none): %w", ErrNoPublicKey, failed)
}

func (c *Client) fetchKeyFrom(ctx context.Context, base string) (*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	fail := func(status int, kind error, err error, desc string) error {
		return &RequestError{Node: base, Op: "public key", StatusCode: status, Kind: kind, Err: err, Description: desc}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+PublicKeyPath, nil)
	if err != nil {
		return nil, fail(0, nil, err, "")
	}
	req.SetBasicAuth(c.clientID, c.secret)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fail(0, ErrUnavailable, err, "")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyBytes+1))
	switch {
	case err != nil:
		return nil, fail(resp.StatusCode, ErrUnavailable, err, "")
	case resp.StatusCode >= 500:
		return nil, fail(resp.StatusCode, ErrUnavailable, nil, "")
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fail(resp.StatusCode, ErrClientRejected, nil, "")
	case resp.StatusCode != http.StatusOK:
		return nil, fail(resp.StatusCode, nil, nil, "")
	case len(body) > maxKeyBytes:
		return nil, fail(resp.StatusCode, nil, nil, "answer too large")
	}
	key, err := parsePublicKey(body)
	if err != nil {
		return nil, fail(resp.StatusCode, nil, err, "")
	}
	return key, nil
}

// parsePublicKey reads an RSA key of at least 2048 bits from PEM: "PUBLIC
// KEY" (PKIX, what IdS serves), "RSA PUBLIC KEY" (PKCS #1) or
// "CERTIFICATE" (the /x509 variant).
func parsePublicKey(data []byte) (*rsa.PublicKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("ids: public key answer is not PEM")
	}
	var pub any
	var err error
	switch blk.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(blk.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("ids: public key answer is PEM %q, want PUBLIC KEY", sanitize(blk.Type, 40))
	}
	if err != nil {
		return nil, fmt.Errorf("ids: public key: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("ids: public key is %T, want RSA", pub)
	}
	if rk.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("ids: public key has %d bits, want at least %d", rk.N.BitLen(), minRSABits)
	}
	return rk, nil
}
