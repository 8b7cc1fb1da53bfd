package idsd

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors returned by [Server.Verify]. Every one means "answer 401".
var (
	// ErrTokenInvalid: malformed, wrong algorithm, bad signature, or not an
	// access token.
	ErrTokenInvalid = errors.New("idsd: token invalid")
	// ErrTokenExpired: the token's lifetime has passed.
	ErrTokenExpired = errors.New("idsd: token expired")
	// ErrTokenRevoked: the token was revoked (Revoke) or is unknown to this
	// IdS.
	ErrTokenRevoked = errors.New("idsd: token revoked")
)

// Claims are what [Server.Verify] reports about a valid access token.
type Claims struct {
	UserID   string    // IdS user_id (the sign-in name, e.g. "agent1001")
	ClientID string    // the client the user signed in through
	Usage    string    // always "access" for a verified token
	JTI      string    // token id (jti, = "token" in sub)
	Expiry   time.Time // exp
}

// subject is the JSON document carried, as a string, in the "sub" claim.
// The field order follows the IdS example tokens (reference A.6).
type subject struct {
	Scope    []string `json:"scope,omitempty"`
	RT       string   `json:"rt,omitempty"`
	UserID   string   `json:"user_id,omitempty"`
	Realm    string   `json:"realm,omitempty"`
	UPN      string   `json:"upn,omitempty"`
	IDSID    string   `json:"ids_id"`
	ClientID string   `json:"client_id"`
	Token    string   `json:"token"`
	Expiry   int64    `json:"expiry"` // ms since the epoch
	Usage    string   `json:"usage"`
	Ver      string   `json:"ver"`
}

const (
	usageAccess  = "access"
	usageRefresh = "refresh"
	scope        = "ccc_onprem_apps"
)

// pair is a freshly issued access/refresh pair.
type pair struct {
	access, refresh           string
	accessTTL, refreshExpires time.Duration
}

// issueLocked signs a new pair for one sign-in (family) whose refresh
// lifetime ends at familyExpires, and records both tokens.
func (s *Server) issueLocked(now time.Time, userID, clientID, family string, familyExpires time.Time) (pair, error) {
	s.sweepLocked(now)
	accessJTI, err := randomID()
	if err != nil {
		return pair{}, err
	}
	refreshJTI, err := randomID()
	if err != nil {
		return pair{}, err
	}
	idsID := idsIDOf(userID)
	accessExp := now.Add(s.accessTTL)
	if accessExp.After(familyExpires) {
		accessExp = familyExpires
	}
	access, err := s.sign(now, accessExp, accessJTI, subject{
		Scope: []string{scope}, RT: refreshJTI, UserID: userID, Realm: s.realm,
		UPN: userID + "@" + s.realm, IDSID: idsID, ClientID: clientID,
		Token: accessJTI, Expiry: accessExp.UnixMilli(), Usage: usageAccess, Ver: "1.0",
	})
	if err != nil {
		return pair{}, err
	}
	refresh, err := s.sign(now, familyExpires, refreshJTI, subject{
		IDSID: idsID, ClientID: clientID, Token: refreshJTI,
		Expiry: familyExpires.UnixMilli(), Usage: usageRefresh, Ver: "1.0",
	})
	if err != nil {
		return pair{}, err
	}
	s.access[accessJTI] = grant{userID: userID, clientID: clientID, family: family, expires: accessExp}
	s.refresh[refreshJTI] = grant{userID: userID, clientID: clientID, family: family, expires: familyExpires}
	return pair{access: access, refresh: refresh, accessTTL: accessExp.Sub(now), refreshExpires: familyExpires.Sub(now)}, nil
}

// sign produces an IdS-shaped RS256 JWT.
func (s *Server) sign(now, exp time.Time, jti string, sub subject) (string, error) {
	subJSON, err := json.Marshal(sub)
	if err != nil {
		return "", fmt.Errorf("idsd: encode sub: %w", err)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": s.issuer,
		"exp": exp.Unix(),
		"iat": now.Unix(),
		"jti": jti,
		"sub": string(subJSON),
	})
	t.Header = map[string]any{"cty": "JWT", "alg": "RS256"} // IdS sends no "typ"
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("idsd: sign token: %w", err)
	}
	return signed, nil
}

// parsed is a token whose signature checked out.
type parsed struct {
	jti string
	exp time.Time
	sub subject
}

// parse checks the signature (RS256 with this server's key only) and
// decodes the claims. It does not look at expiry or records.
func (s *Server) parse(token string) (parsed, error) {
	if len(token) > maxTokenLen {
		return parsed{}, fmt.Errorf("%w: longer than %d bytes", ErrTokenInvalid, maxTokenLen)
	}
	var mc jwt.MapClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation(), jwt.WithJSONNumber(), jwt.WithStrictDecoding())
	if _, err := p.ParseWithClaims(token, &mc, func(*jwt.Token) (any, error) { return &s.key.PublicKey, nil }); err != nil {
		return parsed{}, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	subStr, _ := mc["sub"].(string)
	jti, _ := mc["jti"].(string)
	expNum, _ := mc["exp"].(json.Number)
	exp, err := expNum.Int64()
	if subStr == "" || jti == "" || err != nil {
		return parsed{}, fmt.Errorf("%w: missing sub, jti or exp", ErrTokenInvalid)
	}
	var sub subject
	if err := json.Unmarshal([]byte(subStr), &sub); err != nil {
		return parsed{}, fmt.Errorf("%w: sub is not a JSON document: %w", ErrTokenInvalid, err)
	}
	return parsed{jti: jti, exp: time.Unix(exp, 0), sub: sub}, nil
}

// Verify checks an access token for the simulated Finesse (REST Bearer and
// XMPP SASL): RS256 signature by this IdS, usage "access", not expired, not
// revoked. The error wraps ErrTokenInvalid, ErrTokenExpired or
// ErrTokenRevoked.
func (s *Server) Verify(token string) (Claims, error) {
	p, err := s.parse(token)
	if err != nil {
		return Claims{}, err
	}
	if p.sub.Usage != usageAccess {
		return Claims{}, fmt.Errorf("%w: usage %q, want %q", ErrTokenInvalid, p.sub.Usage, usageAccess)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.now().Before(p.exp) {
		return Claims{}, fmt.Errorf("%w: at %s", ErrTokenExpired, p.exp.UTC().Format(time.RFC3339))
	}
	g, ok := s.access[p.jti]
	if !ok {
		return Claims{}, ErrTokenRevoked
	}
	return Claims{UserID: g.userID, ClientID: g.clientID, Usage: usageAccess, JTI: p.jti, Expiry: p.exp}, nil
}

// randomID returns 128 random bits in hex (jti, sign-in family).
func randomID() (string, error) { return randomHex(16) }

// randomHex returns n random bytes in hex.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("idsd: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// idsIDOf is a stable per-user ids_id (UUID-shaped, derived from the id).
func idsIDOf(userID string) string {
	h := sha256.Sum256([]byte("ids_id:" + userID))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
