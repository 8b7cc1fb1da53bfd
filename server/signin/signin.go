// Package signin is the browser side of signing in to the relay: relay
// sessions, WebSocket tickets, each agent's upstream credential, the sign-in
// throttle and the SSO redirect flow. Everything it remembers lives in a
// store.Store, credentials sealed, so sessions survive a relay restart and
// can be shared by several instances.
//
// A browser (or gadget) signs in with a password, a token Finesse gave it,
// or SSO through IdS. The credential is checked against Finesse before
// anything is created; a refused credential is counted, and once a loginId
// has used its budget of failures the relay answers 429 itself instead of
// forwarding another guess (Finesse locks an account after five). Success
// gives an opaque relay session token (cookie for the relay's own pages,
// bearer for gadgets) and single-use tickets for the WebSocket.
//
// One credential per agent (the newest verified one) is what both the
// agent's XMPP login and every REST call use: a cred.Source that carries
// its kind. It is forgotten when the agent's last relay session ends.
package signin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"finesse-relay/gadget"
	"finesse-relay/httpx"
	"finesse-relay/server/agent"
	"finesse-relay/server/cred"
	"finesse-relay/server/ids"
	"finesse-relay/server/rest"
	"finesse-relay/server/store"
	"finesse-relay/xmpp/finesse"
)

// Defaults for Config's zero values.
const (
	DefaultSessionTTL    = 12 * time.Hour
	DefaultTicketTTL     = 30 * time.Second
	DefaultMaxTickets    = 16
	DefaultMaxFailures   = 3
	DefaultFailureWindow = 15 * time.Minute
	// addressFailureFactor: a client address may fail this many times the
	// per-loginId budget (many agents share one NAT address).
	addressFailureFactor = 20
	// maxBody bounds sign-in request bodies.
	maxBody = 16 << 10
)

// Sealer seals secrets before they reach the store (package server/seal).
// aad binds a sealed value to the key it is stored under.
type Sealer interface {
	Seal(plaintext, aad []byte) []byte
	Open(sealed, aad []byte) ([]byte, error)
}

// Agents runs the agents' upstream sessions: on one instance its
// agent.Manager; with several active instances, the instance that owns
// each agent (which may be another one).
type Agents interface {
	// Join starts the agent's upstream session with user and creds, or
	// joins the one running (here or on the instance that owns it, which
	// reads the credential from the store). created reports a session
	// started by this call.
	Join(ctx context.Context, user *finesse.User, creds cred.Source) (created bool, err error)
	// Running reports whether the agent's upstream session runs, here or
	// on the instance that owns it.
	Running(ctx context.Context, loginID string) bool
}

// Config configures a Service.
type Config struct {
	// Store keeps sessions, tickets, throttles and sealed credentials.
	Store store.Store
	// Sealer seals credentials at rest.
	Sealer Sealer
	// Agents runs the agents' upstream sessions (this instance's
	// agent.Manager, or the instance that owns each agent).
	Agents Agents
	// Shared: other active instances use the same Store, so a credential
	// is read from the Store at every use rather than kept from the first.
	Shared bool
	// StreamOf returns the browser stream of an agent's current Session
	// (the one main built for it), for tickets.
	StreamOf func(loginID string) (*gadget.Stream, bool)
	// IdS is the SSO client (nil: SSO not configured).
	IdS *ids.Client
	// REST is the shared part of the REST clients that verify credentials
	// (HTTP client, timeout, metrics, logger).
	REST rest.Config
	// Sides are the Finesse sides in order (A first); verification asks
	// the next one when one is out of service or unreachable.
	Sides []rest.Side
	// Origins are the browser origins allowed to call the API cross-origin
	// (allowedOrigins); Own are the relay's own origins.
	Origins, Own httpx.Origins
	// SessionTTL is a relay session's absolute lifetime.
	SessionTTL time.Duration
	// TicketTTL is a ticket's lifetime; MaxTickets bounds the unredeemed
	// tickets of one relay session.
	TicketTTL  time.Duration
	MaxTickets int
	// MaxFailures refused sign-ins per loginId are forwarded to Finesse
	// within FailureWindow; then the relay answers 429 itself.
	MaxFailures   int
	FailureWindow time.Duration
	// OnSignOut closes the WebSockets of a relay session that signed out
	// (Gateway.CloseSession). May be nil.
	OnSignOut func(session string)
	// Metrics (nil: unregistered).
	Metrics *Metrics
	// Logger (nil: none). Secrets are never logged.
	Logger *zap.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Service is the sign-in layer. It is safe for concurrent use.
type Service struct {
	cfg   Config
	log   *zap.Logger
	creds *holders
	gates gates // one credential check per loginId at a time (throttle)
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Sealer == nil || cfg.Agents == nil || cfg.StreamOf == nil {
		return nil, errors.New("signin: Config needs Store, Sealer, Agents and StreamOf")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.SessionTTL, DefaultSessionTTL)
	def(&cfg.TicketTTL, DefaultTicketTTL)
	def(&cfg.FailureWindow, DefaultFailureWindow)
	if cfg.MaxTickets <= 0 {
		cfg.MaxTickets = DefaultMaxTickets
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	s.creds = newHolders(s)
	return s, nil
}

// Errors of the sign-in layer.
var (
	// ErrRefused: Finesse refused the credential.
	ErrRefused = errors.New("signin: finesse refused the credentials")
	// ErrThrottled: too many refused sign-ins; the relay did not ask Finesse.
	ErrThrottled = errors.New("signin: too many refused sign-ins")
	// ErrUnauthenticated: no valid relay session.
	ErrUnauthenticated = errors.New("signin: not signed in")
	// ErrTooManyTickets: the relay session holds too many unredeemed tickets.
	ErrTooManyTickets = errors.New("signin: too many unredeemed tickets")
)

// storeErr wraps a store failure for the HTTP layer (503 store_unavailable).
func storeErr(op string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("signin: %s: %w", op, err)
	}
	return fmt.Errorf("signin: %s: %w: %w", op, store.ErrUnavailable, err)
}

// OnSessionEnd is agent.Config.OnEnd: an agent's upstream Session ended.
// When it ended for good (signed out, credential expired) the agent's
// credential is forgotten; when the relay shut down it is kept, so the
// next start re-opens the session (Restore).
func (s *Service) OnSessionEnd(loginID, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch reason {
	case agent.EndShutdown:
		return // the relay is stopping: keep it live for Restore
	case agent.EndSessionExpired:
		s.cfg.Metrics.failure(failSignInAgain)
		s.creds.forget(ctx, loginID)
	case agent.EndSignedOut:
		s.creds.forget(ctx, loginID)
	}
	if err := s.cfg.Store.Delete(ctx, liveKey(loginID)); err != nil {
		s.log.Warn("store: could not clear the live mark", zap.String("agent", loginID), zap.Error(err))
	}
}
