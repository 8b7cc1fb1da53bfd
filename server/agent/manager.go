package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"finesse-relay/server/cred"
	"finesse-relay/xmpp/finesse"
)

// Config configures a Manager. Zero durations take the documented defaults.
type Config struct {
	// Sides are the Finesse side names in preference order, e.g. ["A", "B"].
	Sides []string
	// Dial opens a Notification Service session.
	Dial DialFunc
	// NewFinesse returns the REST view for one agent's credentials; side
	// reports the Session's current side at call time.
	NewFinesse func(loginID string, creds cred.Source, side func() string) Finesse
	// OnEnd, if set, is told when a Session has ended and why (one of the
	// End* reasons; EndShutdown when the Manager stopped). It runs on the
	// Session's goroutine after the browsers were told.
	OnEnd func(loginID, reason string)
	// NewPublisher returns the browser stream of a new Session. The Session
	// is told the number of attached browser connections via onSubscribers.
	NewPublisher func(loginID string, onSubscribers func(n int)) Publisher
	// Grace keeps a Session alive after its last browser left (default 30s).
	Grace time.Duration
	// WatchedElsewhere, if set, is asked when the grace period of a
	// Session with no browser here runs out: true (browsers of the agent
	// are attached to another instance) starts the grace period again
	// instead of ending the Session. It runs on a timer goroutine and may
	// block briefly (a store read).
	WatchedElsewhere func(loginID string) bool
	// MinBackoff and MaxBackoff bound the jittered reconnect delay
	// (defaults 500ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// OutOfServiceWait is how long a Session waits for its side to come back
	// before checking the other side (default 5s).
	OutOfServiceWait time.Duration
	// CallTimeout bounds each REST call and subscription (default 10s).
	CallTimeout time.Duration
	// ConnectConcurrency bounds the upstream connects in flight across
	// all Sessions (SystemInfo → XMPP login → snapshot); Sessions with a
	// browser attached go first (default 64).
	ConnectConcurrency int
	Logger             *zap.Logger
	Metrics            *Metrics
}

func (c *Config) defaults() error {
	if len(c.Sides) == 0 || c.Dial == nil || c.NewFinesse == nil || c.NewPublisher == nil {
		return errors.New("agent: Config needs Sides, Dial, NewFinesse and NewPublisher")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Grace, 30*time.Second)
	def(&c.MinBackoff, 500*time.Millisecond)
	def(&c.MaxBackoff, 30*time.Second)
	def(&c.OutOfServiceWait, 5*time.Second)
	def(&c.CallTimeout, 10*time.Second)
	if c.ConnectConcurrency <= 0 {
		c.ConnectConcurrency = 64
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// Manager owns every Session, keyed by loginId: two sign-ins of one agent
// share one Session.
type Manager struct {
	cfg  Config
	log  *zap.Logger
	gate *connectGate

	mu       sync.Mutex
	ctx      context.Context // the Run context; nil when not running
	sessions map[string]*Session
	wg       sync.WaitGroup
	running  chan struct{} // closed once Run accepts Joins
}

// NewManager returns a Manager; Run must be running before Join succeeds.
func NewManager(cfg Config) (*Manager, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, log: cfg.Logger.Named("agent"), gate: newConnectGate(cfg.ConnectConcurrency), sessions: make(map[string]*Session), running: make(chan struct{})}, nil
}

// Running is closed once Run accepts Joins.
func (m *Manager) Running() <-chan struct{} { return m.running }

// Run lets the Manager create Sessions until ctx is done, then ends every
// Session gracefully (unsubscribe, unavailable presence, close) and returns
// when all of their goroutines have finished.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	close(m.running)
	<-ctx.Done()
	m.mu.Lock()
	m.ctx = nil
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		s.End(EndShutdown)
	}
	m.wg.Wait()
	return nil
}

// Join returns the agent's Session, creating it when there is none. user is
// the User object Finesse returned for the verified credentials; creds are
// used by a new Session (an existing Session keeps its own, which the caller
// may have refreshed). Join restarts the grace period so that a browser that
// signs in has time to connect.
func (m *Manager) Join(user *finesse.User, creds cred.Source) (s *Session, created bool, err error) {
	if user == nil || user.LoginID == "" || creds == nil {
		return nil, false, errors.New("agent: Join needs a User with a loginId and credentials")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil {
		return nil, false, ErrManagerStopped
	}
	if s := m.sessions[user.LoginID]; s != nil && !s.ending() {
		s.touch()
		return s, false, nil
	}
	s = newSession(m, m.ctx, user, creds)
	m.sessions[user.LoginID] = s
	m.wg.Add(1)
	go s.run()
	return s, true, nil
}

// Get returns the running Session of loginID.
func (m *Manager) Get(loginID string) (*Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[loginID]
	if !ok || s.ending() {
		return nil, false
	}
	return s, true
}

// Len is the number of live Sessions.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// remove forgets s once its goroutine is done.
func (m *Manager) remove(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[s.loginID] == s {
		delete(m.sessions, s.loginID)
	}
}

func (m *Manager) String() string { return fmt.Sprintf("agent.Manager(%d sessions)", m.Len()) }
