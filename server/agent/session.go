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

	"finesse-relay/server/cred"
	"finesse-relay/xmpp/finesse"
)

// errFailover ends one upstream attempt so that the next uses the other side.
var errFailover = errors.New("agent: failing over to the other side")

// maxInServiceFailures is how many connects in a row may fail on a side
// that did not say it is out of service (its SystemInfo unreachable, or
// IN_SERVICE with the XMPP login failing) before the Session tries the
// other side. Finesse logs out (reason 255) an agent whose session moved
// to the other side while this one is in service, and a side the relay
// cannot reach may well be in service (a network glitch), so it is retried
// first (about 3.5 s with the default backoff); a side that says
// OUT_OF_SERVICE is left at once.
const maxInServiceFailures = 3

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
	creds   cred.Source
	rest    Finesse
	pub     Publisher
	log     *zap.Logger

	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}

	cache   *stateCache
	pending *pendingRequests // requestIds accepted by Finesse, awaiting their notification

	mu        sync.Mutex
	up        *upstreamRun // the upstream session being served; nil between them
	side      string
	status    string
	endReason string
	grace     *time.Timer
	conns     int
}

func newSession(m *Manager, parent context.Context, user *finesse.User, creds cred.Source) *Session {
	ctx, cancel := context.WithCancelCause(parent)
	s := &Session{
		m: m, loginID: user.LoginID, roles: slices.Clone(user.Roles), user: user, creds: creds,
		log: m.log.WithLazy(zap.String("agent", user.LoginID)), // the core is cloned at the first log line, not per session
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		side: m.cfg.Sides[0],
	}
	s.rest = m.cfg.NewFinesse(user.LoginID, creds, s.Side)
	s.pub = m.cfg.NewPublisher(user.LoginID, s.subscribersChanged)
	s.pub.SetIdentity(user.LoginID, s.roles)
	s.cache = newStateCache(user.LoginID, s.pub, m.cfg.Metrics)
	s.pending = newPendingRequests(nil)
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
	if !idle {
		return
	}
	if w := s.m.cfg.WatchedElsewhere; w != nil && w(s.loginID) {
		s.mu.Lock()
		if s.conns == 0 && s.endReason == "" && s.grace != nil {
			s.grace.Reset(s.m.cfg.Grace)
		}
		s.mu.Unlock()
		return
	}
	s.log.Info("last browser left; ending the upstream session", zap.Duration("grace", s.m.cfg.Grace))
	s.End(EndIdle)
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

// signal hands a callback's observation to the running upstream session
// (it never blocks: the callbacks run on the XMPP reader).
func (s *Session) signal(sig signal) {
	s.mu.Lock()
	u := s.up
	s.mu.Unlock()
	if u != nil {
		u.signal(sig)
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
	inServiceFailures := 0
	for attempt := 0; s.ctx.Err() == nil; attempt++ {
		if delay > 0 && !sleep(s.ctx, jitter(delay)) {
			break
		}
		side := sides[idx%len(sides)]
		connected, err := s.connectAndServe(side, attempt)
		if s.ctx.Err() != nil {
			break
		}
		if connected || errors.Is(err, ErrOutOfService) {
			inServiceFailures = 0
		} else {
			inServiceFailures++
		}
		switch {
		case errors.Is(err, ErrSignInAgain):
			s.log.Warn("credentials refused; the agent must sign in again", zap.Error(err))
			s.End(EndSessionExpired)
			continue
		case len(sides) > 1 && (errors.Is(err, errFailover) || errors.Is(err, ErrOutOfService) ||
			inServiceFailures >= maxInServiceFailures):
			inServiceFailures = 0
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
	if reason == EndIdle {
		s.pub.End(EndShutdown)
	} else {
		s.pub.End(reason)
	}
	s.log.Info("session ended", zap.String("reason", reason))
	if s.m.cfg.OnEnd != nil {
		s.m.cfg.OnEnd(s.loginID, reason)
	}
}

// connectAndServe runs one upstream session on side. connected reports
// whether it got as far as a live XMPP session.
func (s *Session) connectAndServe(side string, attempt int) (connected bool, err error) {
	cfg := s.m.cfg
	if attempt == 0 {
		first := StatusConnecting
		if s.pub.Continued() {
			first = StatusReconnecting
		}
		s.setStatus(first, side, "")
	}
	s.mu.Lock()
	s.side = side
	browser := s.conns > 0
	s.mu.Unlock()

	// One connect slot from SystemInfo to the snapshot (or failure).
	if err := s.m.gate.acquire(s.ctx, browser); err != nil {
		return false, err
	}
	var released sync.Once
	release := func() { released.Do(s.m.gate.release) }
	defer release()

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
	cr, err := s.creds.Credential(s.ctx)
	if err != nil {
		return false, fmt.Errorf("credential for %s: %w", s.loginID, err)
	}
	secret := cr.Secret
	req := DialRequest{
		Side: side, Domain: si.XMPPDomain, PubSubDomain: si.XMPPPubSubDomain,
		Username: s.loginID, Password: secret,
		OnUpdate: s.onUpdate, OnServicePresence: s.onServicePresence,
	}
	n, err := cfg.Dial(s.ctx, req)
	if errors.Is(err, ErrUpstreamAuth) && cr.Kind == cred.Token {
		// The token may have been refreshed meanwhile: one retry with a
		// different token only. A refused password is never retried
		// (Finesse locks accounts after repeated failures).
		fresh, ferr := s.creds.Credential(s.ctx)
		if ferr == nil && fresh.Kind == cred.Token && fresh.Secret != secret {
			req.Password = fresh.Secret
			n, err = cfg.Dial(s.ctx, req)
		}
	}
	if errors.Is(err, ErrUpstreamAuth) {
		return false, fmt.Errorf("%w: %w", ErrSignInAgain, err)
	}
	if err != nil {
		return false, fmt.Errorf("side %s XMPP: %w", side, err)
	}
	// Requests Finesse accepted before this moment may have had their
	// notification sent to no session of ours: reconciled after the snapshot.
	upAt := s.pending.now()
	// The upstream session gets its own context: ending the Session closes
	// it gracefully through Close (unsubscribe, unavailable presence, close
	// stream) rather than abandoning it mid-stream. Run reads the stream on
	// this goroutine; setup (subscriptions, snapshot) and the reactions to
	// out-of-service signals run on goroutines that exist only meanwhile.
	u := &upstreamRun{s: s, n: n, side: side, si: si, release: release, upAt: upAt}
	s.mu.Lock()
	s.up = u
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.up = nil
		s.mu.Unlock()
	}()
	stopClose := context.AfterFunc(s.ctx, func() { _ = n.Close() })
	u.start()
	runErr := n.Run(context.Background())
	stopClose()
	u.stop()
	_ = n.Close() // returns at once: Run is over
	if s.ctx.Err() != nil {
		return true, runErr
	}
	if err := u.result(); err != nil {
		return true, err
	}
	if errors.Is(runErr, ErrUpstreamConflict) {
		s.log.Warn("another login bound our XMPP resource; reconnecting", zap.Error(runErr))
	}
	return true, fmt.Errorf("side %s: %w", side, runErr)
}

// upstreamRun is one served upstream session's control: setup, then the
// out-of-service state machine. Its work runs on short-lived goroutines
// (setup, a snapshot, a timer); it ends the session by closing the
// Notifier, and result says why.
type upstreamRun struct {
	s       *Session
	n       Notifier
	side    string
	si      *finesse.SystemInfo
	release func()    // the connect slot, once setup is over
	upAt    time.Time // when the XMPP session came up (reconciliation)

	wg      sync.WaitGroup
	mu      sync.Mutex
	stopped bool
	ready   bool     // setup done
	pending []signal // signals that came during setup
	oos     *time.Timer
	err     error // why the session was ended from here (setup, snapshot, failover)
}

func (u *upstreamRun) start() {
	u.wg.Add(1)
	go func() { // owned: stop waits
		defer u.wg.Done()
		if err := u.s.setup(u.n, u.si); err != nil {
			u.fail(err)
			return
		}
		u.release()
		u.s.reconcile(u.upAt)
		u.s.setStatus(StatusUp, u.side, sideHost(u.si, u.side, u.s.m.cfg.Sides))
		u.mu.Lock()
		u.ready = true
		pending := u.pending
		u.pending = nil
		u.mu.Unlock()
		for _, sig := range pending {
			u.signal(sig)
		}
	}()
}

// fail ends the session with err (the first reason wins).
func (u *upstreamRun) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
	_ = u.n.Close()
}

func (u *upstreamRun) result() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// stop waits for every goroutine of u; no new one starts after it.
func (u *upstreamRun) stop() {
	u.mu.Lock()
	u.stopped = true
	if u.oos != nil && u.oos.Stop() {
		u.wg.Done() // the timer will not run
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// signal reacts to an out-of-service observation: OUT_OF_SERVICE reports
// the status and arms a timer; IN_SERVICE before it fires takes a fresh
// snapshot; when it fires and the other side is in service, fail over.
func (u *upstreamRun) signal(sig signal) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.stopped || u.err != nil:
	case !u.ready:
		if len(u.pending) < 8 {
			u.pending = append(u.pending, sig)
		}
	case sig == sigOutOfService && u.oos == nil:
		u.s.setStatus(StatusOutOfService, u.side, "")
		u.wg.Add(1) // the timer's run, or stop's Stop
		u.oos = time.AfterFunc(u.s.m.cfg.OutOfServiceWait, u.oosExpired)
	case sig == sigInService && u.oos != nil:
		if u.oos.Stop() {
			u.wg.Done() // the timer will not run
		}
		u.oos = nil
		u.wg.Add(1)
		go func() { // owned: stop waits
			defer u.wg.Done()
			if err := u.s.snapshot(); err != nil {
				u.fail(err)
				return
			}
			u.s.reconcile(u.upAt)
			u.s.setStatus(StatusUp, u.side, "")
		}()
	}
}

// oosExpired runs on the timer's goroutine.
func (u *upstreamRun) oosExpired() {
	defer u.wg.Done()
	u.mu.Lock()
	if u.stopped {
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()
	if other, ok := u.s.otherSideInService(u.side); ok {
		u.s.log.Info("side out of service and the other side is in service", zap.String("side", u.side), zap.String("other", other))
		u.fail(errFailover)
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.stopped && u.oos != nil {
		u.wg.Add(1)
		u.oos = time.AfterFunc(u.s.m.cfg.OutOfServiceWait, u.oosExpired)
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
	// Nonvoice dialogs arrive only on an explicit subscription to the
	// user's own Dialogs/Media node; every tab of the agent gets them, so it
	// is not one of the allowed (opt-in) nodes. A deployment without
	// nonvoice media (UCCX) may not have the node: best effort.
	mediaDialogs := finesse.MediaDialogsNode(s.loginID)
	if removed, err := n.PruneSubscriptions(ctx, append([]string{mediaDialogs}, nodes...)); err != nil {
		s.log.Debug("could not list stale subscriptions", zap.Error(err))
	} else if removed > 0 {
		s.log.Info("removed stale subscriptions", zap.Int("count", removed))
	}
	if err := n.Subscribe(ctx, mediaDialogs); err != nil {
		s.log.Debug("no nonvoice dialogs node", zap.String("node", mediaDialogs), zap.Error(err))
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
	s.snapshotMedia(ctx)
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

// snapshotMedia publishes the agent's nonvoice state: one Media per MRD the
// agent has skills in (on its Media/{mrdId} node) and their dialogs (on
// Dialogs/Media). A deployment without nonvoice media (UCCX) answers with
// an error, which only means there is nothing to show.
func (s *Session) snapshotMedia(ctx context.Context) {
	list, err := s.rest.MediaList(ctx, s.loginID)
	if err != nil {
		s.log.Debug("no media list (no nonvoice MRD)", zap.Error(err))
		return
	}
	dialogs := []finesse.Dialog{}
	for i := range list {
		m := &list[i]
		if m.MRDID == "" || m.State == "" {
			continue // not in any skill group of this MRD
		}
		s.cache.setState(finesse.MediaNode(s.loginID, m.MRDID), m)
		ds, err := s.rest.MRDDialogs(ctx, s.loginID, m.MRDID)
		if err != nil {
			s.log.Debug("no dialogs for MRD", zap.String("mrd", m.MRDID), zap.Error(err))
			continue
		}
		dialogs = append(dialogs, ds...)
	}
	s.cache.setState(finesse.MediaDialogsNode(s.loginID), dialogs)
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
	if u.RequestID != "" {
		s.pending.resolve(u.RequestID)
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
