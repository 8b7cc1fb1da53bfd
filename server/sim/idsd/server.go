package idsd

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Default lifetimes (the lab example of reference A.6 and an IdS-like code
// lifetime).
const (
	DefaultAccessTokenLifetime  = 300 * time.Second
	DefaultRefreshTokenLifetime = 7200 * time.Second
	DefaultCodeLifetime         = 60 * time.Second
	DefaultIssuer               = "ids.demo.local"
)

// Limits on what callers send.
const (
	maxFormBytes = 64 << 10 // a token or sign-in form
	maxParamLen  = 8 << 10  // one form or query value
	maxTokenLen  = 16 << 10 // a JWT handed to Verify or the token endpoint
	sweepEvery   = time.Minute
	sweepAbove   = 10000 // records; sweep expired ones at once beyond this
)

// User is one person who can sign in on the simulated sign-in page.
type User struct {
	// ID is the IdS user_id and the sign-in name, e.g. "agent1001" (the
	// loginName; Finesse maps it to the loginId).
	ID string
	// Name is the display name shown on the sign-in page.
	Name string
	// Password is checked on the sign-in page.
	Password string
}

// Client is an OAuth client registration (IdS admin → Clients).
type Client struct {
	// Secret is the client secret; required.
	Secret string
	// RedirectURIs are compared exactly with the redirect_uri a request
	// names. One exception for local tools: a registered URI whose port is
	// "*" and whose host is a loopback name ("http://127.0.0.1:*/idscallback",
	// also localhost or [::1]) matches that host with any port, same scheme
	// and the exact same path.
	RedirectURIs []string
}

// Config configures a [Server]. Zero values take the documented defaults.
type Config struct {
	// Issuer is the "iss" claim (the IdS host). Default "ids.demo.local".
	Issuer string
	// Clients maps client_id to its registration. At least one is required.
	Clients map[string]Client
	// Users can sign in on the sign-in page.
	Users []User
	// AccessTokenLifetime; default 300 s.
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime is the absolute lifetime of a sign-in: rotated
	// refresh tokens keep the first one's expiry. Default 7200 s.
	RefreshTokenLifetime time.Duration
	// CodeLifetime is how long an authorization code stays valid; default 60 s.
	CodeLifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
}

// Server is the simulated IdS. Create it with [New].
type Server struct {
	key    *rsa.PrivateKey
	pubPEM []byte
	issuer string
	realm  string
	now    func() time.Time
	log    *zap.Logger
	users  map[string]User // by lower-cased ID
	order  []User          // as configured, for the sign-in page

	clients map[string]Client // read-only after New

	mu        sync.Mutex
	available bool
	accessTTL time.Duration
	refreshTL time.Duration
	codeTTL   time.Duration
	codes     map[string]*codeGrant
	access    map[string]grant // jti → grant of a live access token
	refresh   map[string]grant // jti → grant of the current refresh token of a family
	lastSweep time.Time
}

// grant records who a token was issued to.
type grant struct {
	userID, clientID string
	family           string    // one sign-in: the code, carried through rotations
	expires          time.Time // access: token expiry; refresh: family expiry
}

// codeGrant is an authorization code.
type codeGrant struct {
	userID, clientID, redirectURI string
	expires                       time.Time
	used                          bool
}

// New validates cfg and generates the in-memory RSA-2048 signing key.
func New(cfg Config) (*Server, error) {
	if len(cfg.Clients) == 0 {
		return nil, errors.New("idsd: Config.Clients: at least one client registration is required")
	}
	clients := make(map[string]Client, len(cfg.Clients))
	for id, c := range cfg.Clients {
		if id == "" {
			return nil, errors.New("idsd: Config.Clients: empty client_id")
		}
		if c.Secret == "" {
			return nil, fmt.Errorf("idsd: Config.Clients[%q]: empty secret", id)
		}
		if len(c.RedirectURIs) == 0 {
			return nil, fmt.Errorf("idsd: Config.Clients[%q]: no redirect URI registered", id)
		}
		for _, u := range c.RedirectURIs {
			if err := checkRegisteredURI(u); err != nil {
				return nil, fmt.Errorf("idsd: Config.Clients[%q]: %w", id, err)
			}
		}
		clients[id] = Client{Secret: c.Secret, RedirectURIs: append([]string(nil), c.RedirectURIs...)}
	}
	users := make(map[string]User, len(cfg.Users))
	for _, u := range cfg.Users {
		if u.ID == "" {
			return nil, errors.New("idsd: Config.Users: empty user ID")
		}
		k := strings.ToLower(u.ID)
		if _, dup := users[k]; dup {
			return nil, fmt.Errorf("idsd: Config.Users: duplicate user %q", u.ID)
		}
		users[k] = u
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("idsd: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("idsd: encode public key: %w", err)
	}
	s := &Server{
		key:       key,
		issuer:    cfg.Issuer,
		pubPEM:    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		realm:     realmOf(cfg.Issuer),
		now:       cfg.Now,
		log:       cfg.Logger,
		users:     users,
		order:     append([]User(nil), cfg.Users...),
		clients:   clients,
		available: true,
		codes:     make(map[string]*codeGrant),
		access:    make(map[string]grant),
		refresh:   make(map[string]grant),
	}
	s.setLifetimes(cfg.AccessTokenLifetime, cfg.RefreshTokenLifetime)
	s.codeTTL = orDefault(cfg.CodeLifetime, DefaultCodeLifetime)
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// realmOf derives the realm (the users' domain) from the issuer host:
// "ids.demo.local" → "demo.local".
func realmOf(issuer string) string {
	if _, rest, ok := strings.Cut(issuer, "."); ok && rest != "" {
		return rest
	}
	return issuer
}

// Handler returns the IdS HTTP handler; mount it at "/".
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ids/v1/oauth/authorize", s.handleAuthorize)
	mux.HandleFunc("/ids/v1/oauth/token", s.handleToken)
	mux.HandleFunc("/ids/v1/keys/token/public", s.handlePublicKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.isAvailable() {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "Cisco Identity Service is unavailable (simulated outage)", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// SetAvailable switches the simulated outage: false makes every endpoint
// answer 503 until it is set back to true.
func (s *Server) SetAvailable(available bool) {
	s.mu.Lock()
	s.available = available
	s.mu.Unlock()
	s.log.Info("IdS availability changed", zap.Bool("available", available))
}

func (s *Server) isAvailable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.available
}

// SetLifetimes changes the lifetimes of tokens issued from now on; zero or
// negative restores the default.
func (s *Server) SetLifetimes(access, refresh time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLifetimes(access, refresh)
}

func (s *Server) setLifetimes(access, refresh time.Duration) {
	s.accessTTL = orDefault(access, DefaultAccessTokenLifetime)
	s.refreshTL = orDefault(refresh, DefaultRefreshTokenLifetime)
}

// Revoke ends every sign-in of userID: its codes, access tokens and
// refresh tokens stop working (Verify fails, refresh answers invalid_grant).
func (s *Server) Revoke(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, c := range s.codes {
		if strings.EqualFold(c.userID, userID) {
			delete(s.codes, k)
		}
	}
	for k, g := range s.access {
		if strings.EqualFold(g.userID, userID) {
			delete(s.access, k)
			n++
		}
	}
	for k, g := range s.refresh {
		if strings.EqualFold(g.userID, userID) {
			delete(s.refresh, k)
			n++
		}
	}
	s.log.Info("IdS tokens revoked", zap.String("user", userID), zap.Int("tokens", n))
}

// revokeFamilyLocked ends one sign-in (used when a code is presented twice,
// RFC 6749 §4.1.2).
func (s *Server) revokeFamilyLocked(family string) {
	for k, g := range s.access {
		if g.family == family {
			delete(s.access, k)
		}
	}
	for k, g := range s.refresh {
		if g.family == family {
			delete(s.refresh, k)
		}
	}
}

// IssueForTest issues an access/refresh pair for userID as if the user had
// signed in through clientID (what Finesse hands a gadget). The client need
// not be registered; the user must exist.
func (s *Server) IssueForTest(userID, clientID string) (access, refresh string, err error) {
	u, ok := s.user(userID)
	if !ok {
		return "", "", fmt.Errorf("idsd: unknown user %q", userID)
	}
	if clientID == "" {
		return "", "", errors.New("idsd: empty client_id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	family, err := randomID()
	if err != nil {
		return "", "", err
	}
	p, err := s.issueLocked(now, u.ID, clientID, family, now.Add(s.refreshTL))
	if err != nil {
		return "", "", err
	}
	return p.access, p.refresh, nil
}

func (s *Server) user(id string) (User, bool) {
	u, ok := s.users[strings.ToLower(id)]
	return u, ok
}

// sweepLocked drops expired codes and tokens, at most once a minute unless
// the tables grew large.
func (s *Server) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < sweepEvery && len(s.access)+len(s.refresh)+len(s.codes) < sweepAbove {
		return
	}
	s.lastSweep = now
	for k, c := range s.codes {
		if !now.Before(c.expires) {
			delete(s.codes, k)
		}
	}
	for k, g := range s.access {
		if !now.Before(g.expires) {
			delete(s.access, k)
		}
	}
	for k, g := range s.refresh {
		if !now.Before(g.expires) {
			delete(s.refresh, k)
		}
	}
}

// checkRegisteredURI validates a registered redirect URI.
func checkRegisteredURI(raw string) error {
	if p, ok := parsePattern(raw); ok {
		if !isLoopbackName(p.host) {
			return fmt.Errorf("redirect URI %q: a port wildcard is allowed only with a loopback host", raw)
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("redirect URI %q: must be an absolute URL without fragment", raw)
	}
	return nil
}

// pattern is a registered "scheme://loopback:*/path" redirect URI.
type pattern struct{ scheme, host, path string }

func parsePattern(raw string) (pattern, bool) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return pattern{}, false
	}
	hostport, path, _ := strings.Cut(rest, "/")
	host, ok := strings.CutSuffix(hostport, ":*")
	if !ok || strings.ContainsAny(path, "?#") {
		return pattern{}, false
	}
	return pattern{scheme: scheme, host: strings.Trim(host, "[]"), path: "/" + path}, true
}

func isLoopbackName(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// redirectAllowed reports whether uri is registered for c (exact string
// match, or the loopback port wildcard).
func redirectAllowed(c Client, uri string) bool {
	for _, reg := range c.RedirectURIs {
		if reg == uri {
			return true
		}
		p, ok := parsePattern(reg)
		if !ok {
			continue
		}
		u, err := url.Parse(uri)
		if err != nil || u.Scheme != p.scheme || u.Hostname() != p.host || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || u.Path != p.path || u.RawPath != "" {
			continue
		}
		port, err := strconv.Atoi(u.Port())
		if err == nil && port > 0 && port < 65536 && u.Port() == strconv.Itoa(port) {
			return true
		}
	}
	return false
}
