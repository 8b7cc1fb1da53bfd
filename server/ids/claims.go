package ids

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
)

// Limits on token input.
const (
	maxTokenLen   = 16 << 10 // a whole JWT
	maxSubLen     = 8 << 10  // the sub document
	maxUserIDLen  = 256
	maxUnixSecond = 253402300799 // 9999-12-31T23:59:59Z
)

// Claims are what a verified IdS access token says.
type Claims struct {
	// UserID is the IdS user_id. In UCCE it may be the loginName, not the
	// Finesse loginId: look it up with GET /finesse/api/User/{UserID}.
	UserID string
	// ClientID is the OAuth client the user signed in through.
	ClientID string
	// Issuer is the "iss" claim (the IdS host).
	Issuer string
	// Expiry is the "exp" claim (or, without it, the sub's "expiry" ms).
	Expiry time.Time
}

// wireClaims are the JWT claims an IdS token carries that we read.
type wireClaims struct {
	Iss string          `json:"iss"`
	Exp json.RawMessage `json:"exp"`
	Sub json.RawMessage `json:"sub"`
}

// wireSubject is the JSON document inside "sub" (reference A.6).
type wireSubject struct {
	UserID   string          `json:"user_id"`
	ClientID string          `json:"client_id"`
	Usage    string          `json:"usage"`
	Expiry   json.RawMessage `json:"expiry"`
}

// parseClaims decodes a JWT payload (the JSON, not base64) of an IdS
// token. "sub" must be a JSON string holding a JSON object (as IdS sends
// it); an object is accepted too. It returns the claims and the token's
// usage ("access" or "refresh"). It checks shape only: no signature, no
// expiry.
func parseClaims(payload []byte) (Claims, string, error) {
	if len(payload) == 0 || len(payload) > maxTokenLen {
		return Claims{}, "", fmt.Errorf("%w: empty or oversized payload", ErrTokenInvalid)
	}
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return Claims{}, "", fmt.Errorf("%w: payload is not a JSON object", ErrTokenInvalid)
	}
	subDoc := []byte(w.Sub)
	switch {
	case len(subDoc) > 0 && subDoc[0] == '"':
		var s string
		if err := json.Unmarshal(subDoc, &s); err != nil {
			return Claims{}, "", fmt.Errorf("%w: sub is not a JSON string", ErrTokenInvalid)
		}
		subDoc = []byte(s)
	case len(subDoc) > 0 && subDoc[0] == '{':
	default:
		return Claims{}, "", fmt.Errorf("%w: sub is missing or not a JSON document", ErrTokenInvalid)
	}
	if len(subDoc) > maxSubLen {
		return Claims{}, "", fmt.Errorf("%w: sub longer than %d bytes", ErrTokenInvalid, maxSubLen)
	}
	var sub wireSubject
	if err := json.Unmarshal(subDoc, &sub); err != nil {
		return Claims{}, "", fmt.Errorf("%w: sub does not hold a JSON object", ErrTokenInvalid)
	}
	if sub.Usage == "" {
		return Claims{}, "", fmt.Errorf("%w: sub has no usage", ErrTokenInvalid)
	}
	if sub.Usage == "access" && !validID(sub.UserID) {
		return Claims{}, "", fmt.Errorf("%w: missing or malformed user_id", ErrTokenInvalid)
	}
	exp, ok := seconds(w.Exp, 1)
	if !ok && len(w.Exp) == 0 {
		exp, ok = seconds(sub.Expiry, 1000)
	}
	if !ok {
		return Claims{}, "", fmt.Errorf("%w: missing or malformed exp", ErrTokenInvalid)
	}
	return Claims{
		UserID:   sub.UserID,
		ClientID: sanitize(sub.ClientID, maxUserIDLen),
		Issuer:   sanitize(w.Iss, maxUserIDLen),
		Expiry:   exp,
	}, sub.Usage, nil
}

// seconds reads a JSON number of 1/unit seconds since the epoch.
func seconds(raw json.RawMessage, unit float64) (time.Time, bool) {
	if len(raw) == 0 {
		return time.Time{}, false
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return time.Time{}, false
	}
	v /= unit
	if !(v >= 1 && v <= maxUnixSecond) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// validID accepts a non-empty printable identifier without spaces.
func validID(s string) bool {
	if s == "" || len(s) > maxUserIDLen {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar })
}

// UnverifiedClaims reads an IdS access token's claims WITHOUT checking its
// signature or expiry: for a relay whose IdS offers no public key, where
// Finesse verifies the token (it answers 401 to a forged one) before the
// relay trusts the user it names.
func UnverifiedClaims(token string) (Claims, error) {
	payload := jwtPayload(token)
	if payload == nil {
		return Claims{}, fmt.Errorf("%w: not a JWT", ErrTokenInvalid)
	}
	c, usage, err := parseClaims(payload)
	if err != nil {
		return Claims{}, err
	}
	// Only an access token names the user the relay then asks Finesse
	// about (a refresh token, or any other usage, has no user_id to trust).
	if usage != "access" {
		return Claims{}, fmt.Errorf("%w: not an access token (usage %q)", ErrTokenInvalid, sanitize(usage, maxUserIDLen))
	}
	return c, nil
}
