package ids

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// IdS endpoint paths (reference A.3, A.4, A.7).
const (
	AuthorizePath = "/ids/v1/oauth/authorize"
	TokenPath     = "/ids/v1/oauth/token" // #nosec G101 -- an IdS URL path, not a credential
	PublicKeyPath = "/ids/v1/keys/token/public"
)

const (
	// DefaultRefreshAt is Cisco's rule: refresh after 75 % of the lifetime.
	DefaultRefreshAt = 0.75
	// requestTimeout bounds one call to one node.
	requestTimeout = 15 * time.Second
	// refreshTimeout bounds one refresh across all nodes.
	refreshTimeout = 30 * time.Second
	maxCodeLen     = 4096
)

// Config configures a [Client].
type Config struct {
	// Nodes are the IdS base URLs (scheme, host, port), publisher first,
	// e.g. https://ids-pub:8553 and https://ids-sub:8553. HTTPS is required
	// unless the host is a loopback address. Config key IDS_URL.
	Nodes []string
	// ClientID and ClientSecret are the relay's IdS client registration
	// (config keys client_id, client_secret). An empty secret is allowed
	// but logged: IdS normally issues one.
	ClientID, ClientSecret string
	// RedirectURL is the relay's /idscallback as registered in IdS
	// (config key REDIRECT_URI). HTTPS unless loopback.
	RedirectURL string
	// HTTPClient carries the CA bundle and is used for every IdS call;
	// nil means a client with a 15 s timeout and the system roots.
	HTTPClient *http.Client
	// RefreshAt is the share of a token's lifetime after which it is
	// refreshed; 0 means 0.75.
	RefreshAt float64
	// StateKey signs the state cookies of sign-ins in progress (at least
	// 32 bytes). Every instance behind one load balancer needs the same
	// key; nil means a random key per Client (a restart then fails the
	// sign-ins in progress).
	StateKey []byte
	// UseOnce records that a state was used and reports whether it was the
	// first use (the store's PutNew). nil means an in-process record.
	UseOnce func(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
}

// Client talks to IdS for the relay. Create it with [New].
type Client struct {
	nodes      []node
	clientID   string
	secret     string
	hc         *http.Client
	refreshAt  float64
	now        func() time.Time
	log        *zap.Logger
	cookiePath string

	preferred atomic.Int32 // index of the node that last answered
	bodyAuth  atomic.Bool  // IdS refused Basic and accepted body credentials

	stateKey []byte
	useOnce  func(ctx context.Context, key string, ttl time.Duration) (bool, error)
	used     usedStates
	keys     keyCache
}

// node is one IdS node with its two client-authentication variants.
type node struct {
	base   string
	header *oauth2.Config // client credentials in HTTP Basic
	body   *oauth2.Config // client credentials in the form body
}

// New validates cfg. Errors name the config key to fix.
func New(cfg Config) (*Client, error) {
	if len(cfg.Nodes) == 0 {
		return nil, errors.New("ids: IDS_URL: at least one IdS URL is required, e.g. https://ids.example.com:8553")
	}
	if cfg.ClientID == "" {
		return nil, errors.New("ids: client_id: required (the client id shown in IdS admin → Clients)")
	}
	redirect, err := checkURL("REDIRECT_URI", cfg.RedirectURL)
	if err != nil {
		return nil, err
	}
	if cfg.RefreshAt == 0 {
		cfg.RefreshAt = DefaultRefreshAt
	}
	if !(cfg.RefreshAt > 0 && cfg.RefreshAt < 1) {
		return nil, fmt.Errorf("ids: RefreshAt %v: must be between 0 and 1 (0.75 = Cisco's 75 %% rule)", cfg.RefreshAt)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: requestTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	c := &Client{
		clientID:   cfg.ClientID,
		secret:     cfg.ClientSecret,
		hc:         cfg.HTTPClient,
		refreshAt:  cfg.RefreshAt,
		now:        cfg.Now,
		log:        cfg.Logger,
		cookiePath: redirect.EscapedPath(),
		stateKey:   cfg.StateKey,
		useOnce:    cfg.UseOnce,
	}
	if len(c.stateKey) == 0 {
		c.stateKey = make([]byte, 32)
		_, _ = rand.Read(c.stateKey)
	} else if len(c.stateKey) < 32 {
		return nil, errors.New("ids: StateKey must be at least 32 bytes")
	}
	if c.useOnce == nil {
		c.useOnce = func(ctx context.Context, key string, ttl time.Duration) (bool, error) {
			return c.used.useOnce(ctx, key, ttl, c.now())
		}
	}
	if c.cookiePath == "" {
		c.cookiePath = "/"
	}
	seen := make(map[string]bool)
	for _, raw := range cfg.Nodes {
		u, err := checkURL("IDS_URL", raw)
		if err != nil {
			return nil, err
		}
		if u.RawQuery != "" {
			return nil, fmt.Errorf("ids: IDS_URL %q: must not have a query", raw)
		}
		base := strings.TrimSuffix(u.String(), "/")
		if seen[base] {
			return nil, fmt.Errorf("ids: IDS_URL %q: listed twice", raw)
		}
		seen[base] = true
		mk := func(style oauth2.AuthStyle) *oauth2.Config {
			return &oauth2.Config{
				ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: redirect.String(),
				Endpoint: oauth2.Endpoint{AuthURL: base + AuthorizePath, TokenURL: base + TokenPath, AuthStyle: style},
			}
		}
		c.nodes = append(c.nodes, node{base: base, header: mk(oauth2.AuthStyleInHeader), body: mk(oauth2.AuthStyleInParams)})
	}
	if cfg.ClientSecret == "" {
		c.log.Warn("IdS client secret is empty (client_secret); IdS normally requires one")
	}
	return c, nil
}

// checkURL parses an absolute http(s) URL; plain http only for loopback.
func checkURL(key, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("ids: %s: required", key)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("ids: %s %q: %w", key, raw, err)
	}
	switch {
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, fmt.Errorf("ids: %s %q: must be an absolute https:// URL", key, raw)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("ids: %s %q: must use https (plain http only on loopback)", key, raw)
	case u.User != nil || u.Fragment != "":
		return nil, fmt.Errorf("ids: %s %q: must not carry user info or a fragment", key, raw)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// order returns node indexes: the preferred node first, then the others as
// configured.
func (c *Client) order() []int {
	p := int(c.preferred.Load())
	idx := make([]int, 0, len(c.nodes))
	idx = append(idx, p)
	for i := range c.nodes {
		if i != p {
			idx = append(idx, i)
		}
	}
	return idx
}

// AuthCodeURL returns the IdS authorize URL on the preferred node:
// response_type=code, client_id, redirect_uri and state. No scope and no
// PKCE: IdS uses neither.
func (c *Client) AuthCodeURL(state string) string {
	return c.nodes[c.preferred.Load()].header.AuthCodeURL(state)
}

// Exchange trades an authorization code for tokens. ctx may be the
// callback request's context. invalid_grant wraps ErrSignInAgain; all
// nodes failing wraps ErrUnavailable. The token's Expiry is set from
// expires_in with the client's clock and ExpiresIn keeps the lifetime.
func (c *Client) Exchange(ctx context.Context, code string) (*oauth2.Token, error) {
	if code == "" || len(code) > maxCodeLen {
		return nil, &AuthorizeError{Code: "invalid_request", Description: "empty or oversized authorization code"}
	}
	return c.retrieve(ctx, "code exchange", func(ctx context.Context, conf *oauth2.Config) (*oauth2.Token, error) {
		return conf.Exchange(ctx, code)
	})
}

// refresh redeems a refresh token under its own timeout (never a request
// context).
func (c *Client) refresh(refreshToken string) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	return c.retrieve(ctx, "token refresh", func(ctx context.Context, conf *oauth2.Config) (*oauth2.Token, error) {
		return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	})
}

type tokenCall func(ctx context.Context, conf *oauth2.Config) (*oauth2.Token, error)

// retrieve runs a token request on the nodes in order until one answers
// something other than a connection failure or 5xx.
func (c *Client) retrieve(ctx context.Context, op string, call tokenCall) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.hc)
	var failed nodeErrors
	for _, i := range c.order() {
		n := c.nodes[i]
		tok, err := c.tryNode(ctx, n, op, call)
		if err == nil {
			if prev := c.preferred.Swap(int32(i)); int(prev) != i { // #nosec G115 -- i indexes the configured IdS nodes (at most a handful)
				c.log.Info("IdS node switched", zap.String("from", c.nodes[prev].base), zap.String("to", n.base), zap.String("op", op))
			}
			return tok, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ids: %s: %w", op, ctx.Err())
		}
		if !errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		c.log.Debug("IdS node failed; trying the next", zap.String("op", op), zap.String("node", n.base), zap.Error(err))
		failed = append(failed, err)
	}
	return nil, fmt.Errorf("%w: every IdS node failed: %w", ErrUnavailable, failed)
}

// tryNode runs call on one node, falling back from Basic to body client
// authentication when IdS answers invalid_client.
func (c *Client) tryNode(ctx context.Context, n node, op string, call tokenCall) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	start := c.now()
	conf := n.header
	if c.bodyAuth.Load() {
		conf = n.body
	}
	tok, err := call(ctx, conf)
	if err != nil && conf == n.header && clientRejected(err) {
		tok, err = call(ctx, n.body)
		if err == nil || !clientRejected(err) {
			if c.bodyAuth.CompareAndSwap(false, true) {
				c.log.Info("IdS refused HTTP Basic client authentication; using client_id/client_secret in the body", zap.String("node", n.base))
			}
		}
	}
	if err != nil {
		return nil, c.requestError(n.base, op, err)
	}
	if tok.AccessToken == "" {
		return nil, &RequestError{Node: n.base, Op: op, StatusCode: http.StatusOK, Description: "answer without access_token", Kind: ErrUnavailable}
	}
	if tt := tok.TokenType; tt != "" && !strings.EqualFold(tt, "bearer") {
		return nil, &RequestError{Node: n.base, Op: op, StatusCode: http.StatusOK, Description: "token_type " + sanitize(tt, 40) + ", want Bearer"}
	}
	stamp(tok, start)
	return tok, nil
}

// stamp sets Expiry from expires_in with our clock (oauth2 uses the wall
// clock); without expires_in it falls back to the access token's exp claim.
func stamp(tok *oauth2.Token, issued time.Time) {
	if tok.ExpiresIn <= 0 {
		tok.Expiry = time.Time{}
		if c, _, err := parseClaims(jwtPayload(tok.AccessToken)); err == nil && c.Expiry.After(issued) {
			tok.ExpiresIn = int64(c.Expiry.Sub(issued).Seconds())
		}
	}
	if tok.ExpiresIn > 0 {
		tok.Expiry = issued.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
}

// jwtPayload returns the decoded payload segment of a JWT, or nil.
func jwtPayload(token string) []byte {
	if len(token) > maxTokenLen {
		return nil
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	return b
}

// clientRejected reports an invalid_client answer (or a bare 401).
func clientRejected(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return false
	}
	return re.ErrorCode == "invalid_client" || (re.ErrorCode == "" && re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized)
}

// requestError classifies a failed token call.
func (c *Client) requestError(nodeURL, op string, err error) error {
	e := &RequestError{Node: nodeURL, Op: op, Err: err}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// Transport failure, timeout or an unreadable answer: try elsewhere.
		e.Kind = ErrUnavailable
		return e
	}
	if re.Response != nil {
		e.StatusCode = re.Response.StatusCode
	}
	e.Code = sanitize(re.ErrorCode, 64)
	e.Description = sanitize(re.ErrorDescription, 200)
	switch {
	case re.ErrorCode == "invalid_grant":
		e.Kind = ErrSignInAgain
	case clientRejected(err):
		e.Kind = ErrClientRejected
	case e.StatusCode >= 500 || re.ErrorCode == "temporarily_unavailable":
		e.Kind = ErrUnavailable
	}
	return e
}
