package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"finesse-relay/xmpp/finesse"
)

// errFailover ends one upstream attempt so that the next uses the other side.
var errFailover = errors.New("agent: failing over to the other side")

// signal is sent by notification callbacks to the Session goroutine.
type signal int

const (
	sigOutOfService signal = iota // SystemInfo OUT_OF_SERVICE or finesse user unavailable
	sigInService                  // SystemInfo IN_SERVICE or finesse user available again
)

// Session is one agent's upstream session and browser stream.
type Session struct {
	m       *Manager
	loginID string
	roles   []string
	user    *finesse.User
	creds   Credentials
	rest    Finesse
	pub     Publisher
	log     *zap.Logger

	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	sigs   chan signal

	cache *stateCache

	mu        sync.Mutex
	side      string
	status    string
	endReason string
	grace     *time.Timer
	conns     int
}

func newSession(m *Manager, parent context.Context, user *finesse.User, creds Credentials) *Session {
	ctx, cancel := context.WithCancelCause(parent)
	s := &Session{
		m: m, loginID: user.LoginID, roles: slices.Clone(user.Roles), user: user, creds: creds,
		log: m.log.With(zap.String("agent", user.LoginID)),
		ctx: ctx, cancel: cancel, done: make(chan struct{}), sigs: make(chan signal, 8),
		side: m.cfg.Sides[0],
	}
	s.rest = m.cfg.NewFinesse(creds, s.Side)
	s.pub = m.cfg.NewPublisher(user.LoginID, s.subscribersChanged)
	s.pub.SetIdentity(user.LoginID, s.roles)
	s.cache = newStateCache(user.LoginID, s.pub, m.cfg.Metrics)
	s.grace = time.AfterFunc(m.cfg.Grace, s.graceExpired)
	return s
}

// LoginID is the agent's Finesse loginId.
func (s *Session) LoginID() string { return s.loginID }

// Roles are the agent's Finesse roles (Agent, Supervisor).
func (s *Session) Roles() []string { return slices.Clone(s.roles) }

// IsSupervisor reports whether the agent has the Supervisor role.
func (s *Session) IsSupervisor() bool {
	return slices.ContainsFunc(s.roles, func(r string) bool { return strings.EqualFold(r, "Supervisor") })
}

// Publisher is the Session's browser stream.
func (s *Session) Publisher() Publisher { return s.pub }

// Finesse is the Session's REST view (the same credentials as upstream).
func (s *Session) Finesse() Finesse { return s.rest }

// Side is the Finesse side the Session uses now.
func (s *Session) Side() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.side
}

// Status is the upstream state last reported to browsers.
func (s *Session) Status() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Done is closed when the Session has ended and released its upstream.
func (s *Session) Done() <-chan struct{} { return s.done }

// End ends the Session: its goroutine closes the upstream session and the
// browser connections are closed with reason.
func (s *Session) End(reason string) {
	s.mu.Lock()
	if s.endReason == "" {
		s.endReason = reason
	}
	s.mu.Unlock()
	s.cancel(errors.New(reason))
}

func (s *Session) ending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endReason != ""
}

// touch restarts the grace period when a sign-in joins an idle Session.
func (s *Session) touch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == 0 && s.grace != nil {
		s.grace.Reset(s.m.cfg.Grace)
	}
}

// subscribersChanged is the Publisher's callback: the grace period runs
// while no browser is attached.
func (s *Session) subscribersChanged(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = n
	switch {
	case n == 0 && s.endReason == "":
		if s.grace == nil {
			s.grace = time.AfterFunc(s.m.cfg.Grace, s.graceExpired)
		} else {
			s.grace.Reset(s.m.cfg.Grace)
		}
	case n > 0 && s.grace != nil:
		s.grace.Stop()
	}
}

func (s *Session) graceExpired() {
	s.mu.Lock()
	idle := s.conns == 0
	s.mu.Unlock()
	if idle {
		s.log.Info("last browser left; ending the upstream session", zap.Duration("grace", s.m.cfg.Grace))
		s.End(EndShutdown)
	}
}

func (s *Session) setStatus(status, side, host string) {
	s.mu.Lock()
	prev := s.status
	s.status = status
	if side != "" {
		s.side = side
	}
	s.mu.Unlock()
	s.m.cfg.Metrics.sessionState(prev, status)
	s.pub.Status(status, side, host)
}

// signal hands a callback's observation to the Session goroutine without
// blocking (a full buffer already holds enough to act on).
func (s *Session) signal(sig signal) {
	select {
	case s.sigs <- sig:
	default:
	}
}

// run is the Session goroutine: connect, serve, reconnect, fail over.
func (s *Session) run() {
	defer s.m.wg.Done()
	defer close(s.done)
	defer s.m.remove(s)
	cfg := s.m.cfg
	sides := cfg.Sides
	idx := 0
	delay := time.Duration(0)
	for attempt := 0; s.ctx.Err() == nil; attempt++ {
		if delay > 0 && !sleep(s.ctx, jitter(delay)) {
			break
		}
		side := sides[idx%len(sides)]
		connected, err := s.connectAndServe(side, attempt)
		if s.ctx.Err() != nil {
			break
		}
		switch {
		case errors.Is(err, ErrSignInAgain):
			s.log.Warn("credentials refused; the agent must sign in again", zap.Error(err))
			cfg.Metrics.credentialFailure("sign_in_again")
			s.End(EndSessionExpired)
			continue
		case errors.Is(err, errFailover), errors.Is(err, ErrOutOfService), !connected && len(sides) > 1:
			idx++
			next := sides[idx%len(sides)]
			s.log.Warn("failing over", zap.String("from", side), zap.String("to", next), zap.Error(err))
			cfg.Metrics.failover()
			s.setStatus(StatusFailover, next, "")
		default:
			s.log.Info("upstream session ended; reconnecting", zap.String("side", side), zap.Error(err))
			s.setStatus(StatusReconnecting, side, "")
		}
		cfg.Metrics.reconnect()
		switch {
		case connected:
			delay = cfg.MinBackoff
		case delay == 0:
			delay = cfg.MinBackoff
		default:
			delay = min(delay*2, cfg.MaxBackoff)
		}
	}
	s.mu.Lock()
	reason := s.endReason
	if s.grace != nil {
		s.grace.Stop()
	}
	s.mu.Unlock()
	if reason == "" {
		reason = EndShutdown
	}
	if reason == EndSignedOut || reason == EndSessionExpired {
		s.setStatus(StatusSignedOut, "", "")
	}
	s.m.cfg.Metrics.sessionState(s.Status(), "")
	s.pub.End(reason)
	s.log.Info("session ended", zap.String("reason", reason))
}

// connectAndServe runs one upstream session on side. connected reports
// whether it got as far as a live XMPP session.
func (s *Session) connectAndServe(side string, attempt int) (connected bool, err error) {
	cfg := s.m.cfg
	if attempt == 0 {
		s.setStatus(StatusConnecting, side, "")
	}
	s.mu.Lock()
	s.side = side
	s.mu.Unlock()

	callCtx, cancel := context.WithTimeout(s.ctx, cfg.CallTimeout)
	si, err := s.rest.SystemInfo(callCtx, side)
	cancel()
	if err != nil {
		return false, fmt.Errorf("side %s SystemInfo: %w", side, err)
	}
	if !strings.EqualFold(si.Status, "IN_SERVICE") {
		s.setStatus(StatusOutOfService, side, "")
		return false, fmt.Errorf("side %s reports %s (%s): %w", side, si.Status, si.StatusReason, ErrOutOfService)
	}
	secret, err := s.creds.Secret(s.ctx)
	if err != nil {
		return false, fmt.Errorf("credential for %s: %w", s.loginID, err)
	}
	req := DialRequest{
		Side: side, Domain: si.XMPPDomain, PubSubDomain: si.XMPPPubSubDomain,
		Username: s.loginID, Password: secret,
		OnUpdate: s.onUpdate, OnServicePresence: s.onServicePresence,
	}
	n, err := cfg.Dial(s.ctx, req)
	if errors.Is(err, ErrUpstreamAuth) && s.creds.SSO {
		// The token may have been refreshed meanwhile: one retry with a
		// different token only. A refused password is never retried
		// (Finesse locks accounts after repeated failures).
		fresh, ferr := s.creds.Secret(s.ctx)
		if ferr == nil && fresh != secret {
			req.Password = fresh
			n, err = cfg.Dial(s.ctx, req)
		}
	}
	if errors.Is(err, ErrUpstreamAuth) {
		return false, fmt.Errorf("%w: %w", ErrSignInAgain, err)
	}
	if err != nil {
		return false, fmt.Errorf("side %s XMPP: %w", side, err)
	}
	// The upstream session gets its own context: ending the Session closes
	// it gracefully through Close (unsubscribe, unavailable presence, close
	// stream) rather than abandoning it mid-stream.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(s.ctx))
	defer cancelRun()
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(runCtx) }()
	stopped := false
	stop := func() error {
		stopped = true
		_ = n.Close()
		return <-runErr
	}
	defer func() {
		if !stopped {
			_ = n.Close()
		}
	}()

	if err := s.setup(n, si); err != nil {
		_ = stop()
		return true, err
	}
	s.setStatus(StatusUp, side, sideHost(si, side, s.m.cfg.Sides))

	var oos <-chan time.Time
	var oosTimer *time.Timer
	defer func() {
		if oosTimer != nil {
			oosTimer.Stop()
		}
	}()
	for {
		select {
		case err := <-runErr:
			stopped = true
			_ = n.Close()
			if errors.Is(err, ErrUpstreamConflict) {
				s.log.Warn("another login bound our XMPP resource; reconnecting", zap.Error(err))
			}
			return true, fmt.Errorf("side %s: %w", side, err)
		case <-s.ctx.Done():
			return true, stop()
		case sig := <-s.sigs:
			switch sig {
			case sigOutOfService:
				if oos != nil {
					continue
				}
				s.setStatus(StatusOutOfService, side, "")
				oosTimer = time.NewTimer(cfg.OutOfServiceWait)
				oos = oosTimer.C
			case sigInService:
				if oos == nil {
					continue
				}
				oosTimer.Stop()
				oos, oosTimer = nil, nil
				if err := s.snapshot(); err != nil {
					_ = stop()
					return true, err
				}
				s.setStatus(StatusUp, side, "")
			}
		case <-oos:
			if other, ok := s.otherSideInService(side); ok {
				s.log.Info("side out of service and the other side is in service", zap.String("side", side), zap.String("other", other))
				_ = stop()
				return true, errFailover
			}
			oosTimer.Reset(cfg.OutOfServiceWait)
		}
	}
}

// setup runs after the XMPP session is up: stale subscriptions, supervisor
// subscriptions, then the snapshot.
func (s *Session) setup(n Notifier, si *finesse.SystemInfo) error {
	cfg := s.m.cfg
	ctx, cancel := context.WithTimeout(s.ctx, cfg.CallTimeout)
	defer cancel()
	nodes, err := s.supervisedNodes(ctx)
	if err != nil {
		return err
	}
	if removed, err := n.PruneSubscriptions(ctx, nodes); err != nil {
		s.log.Debug("could not list stale subscriptions", zap.Error(err))
	} else if removed > 0 {
		s.log.Info("removed stale subscriptions", zap.Int("count", removed))
	}
	for _, node := range nodes {
		if err := n.Subscribe(ctx, node); err != nil {
			return fmt.Errorf("subscribe %s: %w", node, err)
		}
	}
	s.pub.SetAllowedNodes(nodes)
	return s.snapshot()
}

// supervisedNodes are the Team and Queue nodes a supervisor watches.
func (s *Session) supervisedNodes(ctx context.Context) ([]string, error) {
	if !s.IsSupervisor() {
		return nil, nil
	}
	var nodes []string
	for _, t := range s.user.Teams {
		nodes = append(nodes, finesse.TeamUsersNode(t.ID))
	}
	qs, err := s.rest.UserQueues(ctx, s.loginID)
	if err != nil {
		s.log.Debug("no queue list (UCCX has none)", zap.Error(err))
	}
	for _, q := range qs {
		nodes = append(nodes, finesse.QueueNode(q.ID))
	}
	return nodes, nil
}

// snapshot GETs the current state of every node and publishes it as state
// messages. Notifications that arrive meanwhile are held and applied after,
// so a snapshot never overwrites a newer event.
func (s *Session) snapshot() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.m.cfg.CallTimeout)
	defer cancel()
	s.cache.hold()
	defer s.cache.release()
	user, err := s.rest.User(ctx, s.loginID)
	if err != nil {
		return fmt.Errorf("snapshot User: %w", err)
	}
	dialogs, err := s.rest.Dialogs(ctx, s.loginID)
	if err != nil {
		return fmt.Errorf("snapshot Dialogs: %w", err)
	}
	s.cache.setState(finesse.UserNode(s.loginID), user)
	s.cache.setState(finesse.DialogsNode(s.loginID), dialogs)
	if !s.IsSupervisor() {
		return nil
	}
	for _, t := range user.Teams {
		team, err := s.rest.Team(ctx, t.ID)
		if err != nil {
			return fmt.Errorf("snapshot Team %s: %w", t.ID, err)
		}
		s.cache.setState(finesse.TeamUsersNode(t.ID), team)
	}
	qs, _ := s.rest.UserQueues(ctx, s.loginID)
	for _, q := range qs {
		queue, err := s.rest.Queue(ctx, q.ID)
		if err != nil {
			continue
		}
		s.cache.setState(finesse.QueueNode(q.ID), queue)
	}
	return nil
}

// otherSideInService probes the next side's SystemInfo.
func (s *Session) otherSideInService(current string) (string, bool) {
	for _, side := range s.m.cfg.Sides {
		if side == current {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.m.cfg.CallTimeout)
		si, err := s.rest.SystemInfo(ctx, side)
		cancel()
		if err == nil && strings.EqualFold(si.Status, "IN_SERVICE") {
			return side, true
		}
	}
	return "", false
}

// onUpdate is the Notifier's callback: it must not block.
func (s *Session) onUpdate(u finesse.Update) {
	if u.Node == finesse.SystemInfoNode {
		if si, err := finesse.ParseSystemInfo(u.Data); err == nil {
			if strings.EqualFold(si.Status, "IN_SERVICE") {
				s.signal(sigInService)
			} else {
				s.signal(sigOutOfService)
			}
		}
	}
	s.cache.handle(u)
}

func (s *Session) onServicePresence(available bool) {
	if available {
		s.signal(sigInService)
	} else {
		s.signal(sigOutOfService)
	}
}

// jitter spreads reconnects of many sessions: d ± 20 %.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d)) // #nosec G404 -- reconnect jitter, not security
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sideHost is the host SystemInfo reports for a side (primaryNode for the
// first configured side, secondaryNode for the second).
func sideHost(si *finesse.SystemInfo, side string, sides []string) string {
	node := si.PrimaryNode
	if len(sides) > 1 && side == sides[1] {
		node = si.SecondaryNode
	}
	if node == nil {
		return ""
	}
	return node.Host
}
