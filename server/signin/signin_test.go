package signin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"finesse-relay/gadget"
	"finesse-relay/server/cred"
	"finesse-relay/server/ids"
	"finesse-relay/server/seal"
	"finesse-relay/server/store"
	"finesse-relay/xmpp/finesse"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestService is a Service over a memory store, without an agent
// Manager (the tests here do not join sessions).
func newTestService(t *testing.T, mutate ...func(*Config)) (*Service, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	key := make([]byte, seal.KeySize)
	keys, err := seal.NewKeyring(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Store: store.NewMemory(clk.Now), Sealer: keys, Now: clk.Now,
		StreamOf: func(string) (*gadget.Stream, bool) { return gadget.NewStream(gadget.StreamConfig{}), true },
	}
	for _, m := range mutate {
		m(&cfg)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.SessionTTL, DefaultSessionTTL)
	def(&cfg.TicketTTL, DefaultTicketTTL)
	def(&cfg.FailureWindow, DefaultFailureWindow)
	if cfg.MaxTickets == 0 {
		cfg.MaxTickets = DefaultMaxTickets
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	cfg.Metrics = NewMetrics(nil)
	s := &Service{cfg: cfg, log: zapNop()}
	s.creds = newHolders(s)
	return s, clk
}

// seqSource hands out the tokens in order, then fails with err.
type seqSource struct {
	mu   sync.Mutex
	n    int
	toks []string
	err  error
}

func (s *seqSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= len(s.toks) {
		return nil, s.err
	}
	t := s.toks[s.n]
	s.n++
	return &oauth2.Token{AccessToken: t, RefreshToken: "r-" + t}, nil
}

func TestHolderCountsRefreshesAndEndsOnInvalidGrant(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	src := &seqSource{toks: []string{"tok-1", "tok-1", "tok-2"}, err: fmt.Errorf("%w: invalid_grant", ids.ErrSignInAgain)}
	if _, err := s.creds.set(ctx, "1001", presented{kind: cred.Token, ids: &oauth2.Token{AccessToken: "tok-1"}, source: src}, &finesse.User{LoginID: "1001"}); err != nil {
		t.Fatal(err)
	}
	a := agentSource{hs: s.creds, loginID: "1001"}
	for _, want := range []string{"tok-1", "tok-1", "tok-2"} {
		c, err := a.Credential(ctx)
		if err != nil || c.Secret != want || c.Kind != cred.Token || c.Authorization() != "Bearer "+want {
			t.Fatalf("credential %+v %v, want token %q", c, err, want)
		}
	}
	if _, err := a.Credential(ctx); !errors.Is(err, cred.ErrSignInAgain) {
		t.Fatalf("invalid_grant must become cred.ErrSignInAgain (the session ends with 4101), got %v", err)
	}
	if got := counter(t, s.cfg.Metrics.refreshes, "ok"); got != 1 {
		t.Errorf("refreshes ok = %v, want 1", got)
	}
	if got := counter(t, s.cfg.Metrics.refreshes, "failed"); got != 1 {
		t.Errorf("refreshes failed = %v, want 1", got)
	}
}

// The kind travels with the credential: SSO then password sign-in of one
// agent makes every use Basic, and back (hole: Bearer <password>).
func TestCredentialKindFollowsTheNewestSignIn(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	user := &finesse.User{LoginID: "1001"}
	a := agentSource{hs: s.creds, loginID: "1001"}
	steps := []struct {
		p    presented
		want string
	}{
		{presented{kind: cred.Token, secret: "finesse-token"}, "Bearer finesse-token"},
		{presented{kind: cred.Password, secret: "demo"}, "Basic MTAwMTpkZW1v"},
		{presented{kind: cred.Token, secret: "tok-2"}, "Bearer tok-2"},
	}
	for i, st := range steps {
		if _, err := s.creds.set(ctx, "1001", st.p, user); err != nil {
			t.Fatal(err)
		}
		c, err := a.Credential(ctx)
		if err != nil || c.Authorization() != st.want {
			t.Fatalf("step %d: %q %v, want %q", i, c.Authorization(), err, st.want)
		}
	}
}

// A credential survives the process: a new Service over the same store
// (a restart) reads it back, unsealed, with its kind.
func TestCredentialSurvivesRestart(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	if _, err := s.creds.set(ctx, "1001", presented{kind: cred.Password, secret: "demo"}, &finesse.User{LoginID: "1001", Roles: []string{"Agent"}}); err != nil {
		t.Fatal(err)
	}
	raw, err := s.cfg.Store.Get(ctx, credKey("1001"))
	if err != nil {
		t.Fatal(err)
	}
	if containsBytes(raw, "demo") {
		t.Fatal("the stored credential holds the password in clear")
	}
	s2, _ := newTestService(t, func(c *Config) { c.Store = s.cfg.Store; c.Sealer = s.cfg.Sealer })
	c, err := agentSource{hs: s2.creds, loginID: "1001"}.Credential(ctx)
	if err != nil || c.Secret != "demo" || c.Kind != cred.Password {
		t.Fatalf("after restart: %+v %v", c, err)
	}
	// A store sealed with another key is refused with a clear error.
	other, _ := seal.NewKeyring(make32(7), nil)
	s3, _ := newTestService(t, func(c *Config) { c.Store = s.cfg.Store; c.Sealer = other })
	if _, err := s3.creds.get(ctx, "1001"); err == nil || !containsBytes([]byte(err.Error()), "SESSION_KEY_FILE") {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestTickets(t *testing.T) {
	s, clk := newTestService(t, func(c *Config) { c.MaxTickets = 3 })
	ctx := context.Background()
	_, rsA, err := s.createSession(ctx, "1001")
	if err != nil {
		t.Fatal(err)
	}
	_, rsB, _ := s.createSession(ctx, "1002")

	// Single use: of 20 concurrent redeems exactly one wins.
	tk, _, err := s.issueTicket(ctx, rsA)
	if err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g, err := s.Redeem(ctx, tk); err == nil && g.Session == rsA.ID {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d redeems won, want exactly 1", wins.Load())
	}
	if _, err := s.Redeem(ctx, tk); !errors.Is(err, gadget.ErrTicketUsed) {
		t.Fatalf("replay: %v, want ErrTicketUsed", err)
	}
	if _, err := s.Redeem(ctx, "never-issued"); !errors.Is(err, gadget.ErrTicketUnknown) {
		t.Fatalf("unknown: %v", err)
	}

	// Cap per relay session; another session is never affected.
	var held []string
	for range 3 {
		tk, _, err := s.issueTicket(ctx, rsA)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, tk)
	}
	if _, _, err := s.issueTicket(ctx, rsA); !errors.Is(err, ErrTooManyTickets) {
		t.Fatalf("4th outstanding ticket: %v, want ErrTooManyTickets", err)
	}
	tkB, _, err := s.issueTicket(ctx, rsB)
	if err != nil {
		t.Fatalf("another session's ticket refused: %v", err)
	}
	if _, err := s.Redeem(ctx, held[0]); err != nil {
		t.Fatalf("a held ticket: %v", err)
	}
	if _, _, err := s.issueTicket(ctx, rsA); err != nil {
		t.Fatalf("after one redeem a new ticket must be issued: %v", err)
	}

	// Expiry.
	clk.Add(DefaultTicketTTL + time.Second)
	if _, err := s.Redeem(ctx, tkB); !errors.Is(err, gadget.ErrTicketExpired) {
		t.Fatalf("expired: %v, want ErrTicketExpired", err)
	}
}

// A ticket of a relay session that signed out since is refused.
func TestTicketAfterSignOut(t *testing.T) {
	var closed []string
	s, _ := newTestService(t, func(c *Config) { c.OnSignOut = func(id string) { closed = append(closed, id) } })
	ctx := context.Background()
	_, rs, _ := s.createSession(ctx, "1001")
	tk, _, _ := s.issueTicket(ctx, rs)
	if err := s.endSession(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if len(closed) != 1 || closed[0] != rs.ID {
		t.Fatalf("OnSignOut got %v, want the session id", closed)
	}
	if _, err := s.Redeem(ctx, tk); !errors.Is(err, gadget.ErrTicketUnknown) {
		t.Fatalf("ticket of a signed-out session: %v", err)
	}
}

// The agent's credential is forgotten with its last relay session.
func TestCredentialForgottenWithLastSession(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	if _, err := s.creds.set(ctx, "1001", presented{kind: cred.Password, secret: "demo"}, &finesse.User{LoginID: "1001"}); err != nil {
		t.Fatal(err)
	}
	_, rs1, _ := s.createSession(ctx, "1001")
	_, rs2, _ := s.createSession(ctx, "1001")
	if err := s.endSession(ctx, rs1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.creds.get(ctx, "1001"); err != nil {
		t.Fatalf("one session left, credential must stay: %v", err)
	}
	if err := s.endSession(ctx, rs2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cfg.Store.Get(ctx, credKey("1001")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("credential still stored after the last session: %v", err)
	}
	if _, err := s.creds.get(ctx, "1001"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("credential still in memory: %v", err)
	}
}

// guess is one wrong password checked through the throttle: admitted and
// refused by Finesse, or throttled.
func guess(s *Service, loginID, addr string) error {
	ctx := context.Background()
	tr, err := s.reserve(ctx, loginID, addr)
	if err != nil {
		return err
	}
	tr.refused(ctx)
	tr.done()
	return nil
}

func TestThrottle(t *testing.T) {
	s, clk := newTestService(t)
	ctx := context.Background()
	// Three failures are forwarded, the fourth is refused by the relay.
	for i := range 3 {
		if err := guess(s, "1016", "10.0.0.9"); err != nil {
			t.Fatalf("attempt %d refused: %v", i+1, err)
		}
	}
	err := guess(s, "1016", "10.0.0.9")
	var te *ThrottledError
	if !errors.As(err, &te) || te.RetryAfter <= 0 || te.RetryAfter > DefaultFailureWindow {
		t.Fatalf("4th attempt: %v, want a ThrottledError with a Retry-After", err)
	}
	// Another agent from the same address is not blocked by 1016's budget.
	if err := guess(s, "1017", "10.0.0.9"); err != nil {
		t.Fatalf("another loginId refused: %v", err)
	}
	// Successes never count: a storm of good sign-ins is never throttled.
	for range 100 {
		tr, err := s.reserve(ctx, "1018", "10.0.0.9")
		if err != nil {
			t.Fatalf("a good sign-in throttled: %v", err)
		}
		tr.done()
	}
	// The next window still counts the previous one: no stretch of one
	// window ever sees more than 3 forwarded failures.
	clk.Add(DefaultFailureWindow)
	if err := guess(s, "1016", "10.0.0.9"); err == nil {
		t.Fatal("right after the window turned, the previous window's failures must still count")
	}
	clk.Add(DefaultFailureWindow)
	if err := guess(s, "1016", "10.0.0.9"); err != nil {
		t.Fatalf("two windows later: %v", err)
	}
	if got := counter(t, s.cfg.Metrics.failures, failThrottled); got < 2 {
		t.Errorf("throttled failures counted %v", got)
	}
}

// Concurrent guesses cannot overshoot the budget: checks of one loginId
// run one at a time, so exactly three wrong guesses reach Finesse.
func TestThrottleConcurrent(t *testing.T) {
	s, _ := newTestService(t)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if guess(s, "1016", "10.0.0.9") == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 3 {
		t.Fatalf("%d concurrent wrong guesses forwarded, want 3", ok.Load())
	}
}

// Many agents signing in at once from one address (a contact center
// behind NAT) are never throttled.
func TestThrottleSignInStormFromOneAddress(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var throttled atomic.Int32
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := s.reserve(ctx, fmt.Sprintf("%d", 1000+i), "10.0.0.9")
			if err != nil {
				throttled.Add(1)
				return
			}
			tr.done()
		}()
	}
	wg.Wait()
	if throttled.Load() != 0 {
		t.Fatalf("%d of 500 good sign-ins from one address throttled", throttled.Load())
	}
}

// A throttle check writes nothing: requests for made-up loginIds from a
// client without credentials cannot grow the store.
func TestThrottleCheckCreatesNoKeys(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	for i := range 50 {
		tr, err := s.reserve(ctx, fmt.Sprintf("nobody%d", i), "10.0.0.9")
		if err != nil {
			t.Fatal(err)
		}
		tr.done()
	}
	n := 0
	if err := s.cfg.Store.Scan(ctx, "fail:", func(string, []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d counters created by checks alone", n)
	}
}
