package xmppd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"mellium.im/xmpp/jid"
)

// Server is the simulator's Notification Service: an XMPP server for the
// subset of Openfire that Finesse uses (see the package documentation).
// Create it with New; it is safe for concurrent use.
type Server struct {
	cfg    Config
	addr   addresses
	cfgErr error // non-nil when the Config is unusable
	log    *zap.Logger

	// presMu serializes presence transitions with their OnPresence calls,
	// so the callback sees them in order. It is taken before mu.
	presMu sync.Mutex

	mu        sync.RWMutex
	closed    bool
	active    int                              // admitted connections (MaxConnections)
	conns     map[*conn]struct{}               // every tracked connection
	listeners map[net.Listener]struct{}        // listeners of running Serve calls
	sessions  map[string]*conn                 // full JID -> bound session
	users     map[string]*userState            // localpart -> the user's sessions
	subs      map[string]map[string]subscriber // node -> subscribed JID -> subscriber
	subCount  map[string]int                   // bare JID -> stored subscriptions
	service   bool                             // the finesse user is available

	wg sync.WaitGroup // one count per tracked connection goroutine
}

// userState is the set of bound sessions of one user.
type userState struct {
	conns  map[*conn]struct{}
	online int // sessions that sent available presence
}

// subscriber is one stored explicit subscription.
type subscriber struct {
	user string // localpart of the subscribed JID
	bare string // bare JID
	full bool   // the subscribed JID has a resource
}

// New returns a Server for cfg with defaults applied. An invalid Config
// (no Domain, unparsable addresses) does not panic: Serve returns an error
// wrapping ErrConfig and the WebSocket handler answers 503.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	addr, err := cfg.validate()
	return &Server{
		cfg:       cfg,
		addr:      addr,
		cfgErr:    err,
		log:       cfg.Logger.Named("xmppd"),
		conns:     make(map[*conn]struct{}),
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[string]*conn),
		users:     make(map[string]*userState),
		subs:      make(map[string]map[string]subscriber),
		subCount:  make(map[string]int),
		service:   true,
	}
}

// Serve accepts connections on ln and serves them in mode until ctx is
// done or Close is called. It closes ln, then ends every connection it
// accepted (system-shutdown stream error) and waits for them before it
// returns: nil when ctx ended it, ErrServerClosed after Close, else the
// accept or config error. Temporary accept errors are retried with
// backoff.
//
// ModeSTARTTLS and ModeTLS need Config.TLSConfig. In ModeTLS, ln may be a
// plain TCP listener (Serve runs the TLS handshake, bounded by
// HandshakeTimeout) or a tls.NewListener (its connections are used as
// they are).
func (s *Server) Serve(ctx context.Context, ln net.Listener, mode ListenMode) error {
	if err := s.checkMode(mode); err != nil {
		_ = ln.Close()
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	stopAccept := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stopAccept()

	var (
		ownMu sync.Mutex
		own   = make(map[*conn]struct{})
		ownWG sync.WaitGroup
	)
	err := s.acceptLoop(ctx, ln, func(raw net.Conn) {
		if !s.admit() {
			s.log.Debug("connection refused: limit reached", zap.Int("max", s.cfg.MaxConnections))
			_ = raw.Close()
			return
		}
		c := s.newConn(raw, mode)
		if !s.track(c) {
			_ = raw.Close()
			return
		}
		ownMu.Lock()
		own[c] = struct{}{}
		ownMu.Unlock()
		ownWG.Add(1)
		go func() {
			defer s.wg.Done()
			defer ownWG.Done()
			c.run(ctx)
			ownMu.Lock()
			delete(own, c)
			ownMu.Unlock()
		}()
	})
	_ = ln.Close()
	ownMu.Lock()
	for c := range own {
		c.stop(&streamSystemShutdown, false)
	}
	ownMu.Unlock()
	ownWG.Wait()
	return err
}

// acceptLoop calls handle for each accepted connection until the listener
// fails for good.
func (s *Server) acceptLoop(ctx context.Context, ln net.Listener, handle func(net.Conn)) error {
	var delay time.Duration
	for {
		raw, err := ln.Accept()
		if err == nil {
			delay = 0
			handle(raw)
			continue
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case s.isClosed():
			return ErrServerClosed
		case errors.Is(err, net.ErrClosed):
			return fmt.Errorf("xmppd: accept: %w", err)
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		s.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("delay", delay))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// checkMode reports whether Serve can run mode with the Config.
func (s *Server) checkMode(mode ListenMode) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	switch mode {
	case ModeSTARTTLS, ModeTLS:
		if s.cfg.TLSConfig == nil {
			return fmt.Errorf("%w: %s mode needs TLSConfig", ErrConfig, mode)
		}
	case ModeSecure:
	default:
		return fmt.Errorf("%w: unknown listen mode %d", ErrConfig, int(mode))
	}
	return nil
}

// Close stops every Serve call (closing its listener), ends every client
// connection with a system-shutdown stream error and waits for their
// goroutines. Later connections are refused. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	conns := s.connList()
	s.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
	for _, c := range conns {
		c.stop(&streamSystemShutdown, false)
	}
	s.wg.Wait()
	return nil
}

// DropAll closes every client connection abruptly, without a stream error
// or stream end (an XMPP-only failure, as when Openfire dies). Listeners
// keep accepting; explicit subscriptions are kept.
func (s *Server) DropAll() {
	s.mu.RLock()
	conns := s.connList()
	s.mu.RUnlock()
	for _, c := range conns {
		c.stop(nil, true)
	}
}

// connList returns the tracked connections. s.mu must be held.
func (s *Server) connList() []*conn {
	l := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		l = append(l, c)
	}
	return l
}

// Available reports whether username (a loginId) has a session that sent
// available presence.
func (s *Server) Available(username string) bool {
	u := s.canonUser(username)
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.users[u]
	return st != nil && st.online > 0
}

// Subscriptions returns the JIDs explicitly subscribed to node, sorted.
// Default subscriptions (a user's own User, Dialogs, Media and Queues
// nodes, and SystemInfo) are implicit and not listed.
func (s *Server) Subscriptions(node string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := make([]string, 0, len(s.subs[node]))
	for j := range s.subs[node] {
		l = append(l, j)
	}
	slices.Sort(l)
	return l
}

// SetServiceAvailable sets the presence of the Finesse server user
// (finesse@Domain/ServiceResource, F.11) and sends it to every session that
// has sent available presence: available, or type='unavailable'. Each new
// session gets the current one right after its initial presence. The
// initial state is available.
func (s *Server) SetServiceAvailable(available bool) {
	var full []*conn
	s.mu.Lock()
	s.service = available
	for _, c := range s.sessions {
		if c.online && !c.enqueue(outItem{raw: c.servicePresence(available)}) {
			full = append(full, c)
		}
	}
	s.mu.Unlock()
	s.dropFull(full)
}

// dropFull ends the connections whose queue overflowed. Their client is
// not reading, so a write in progress is cut short: the stream error gets
// closeTimeout to go out, not WriteTimeout.
func (s *Server) dropFull(full []*conn) {
	for _, c := range full {
		c.log.Warn("outbound queue full; dropping connection", zap.Int("queue", s.cfg.QueueSize))
		c.stop(&streamResourceLimit, false)
		_ = c.raw.SetWriteDeadline(time.Now().Add(closeTimeout))
	}
}

// isClosed reports whether Close was called.
func (s *Server) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// admit reserves a connection slot; release returns it.
func (s *Server) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.active >= s.cfg.MaxConnections {
		return false
	}
	s.active++
	return true
}

func (s *Server) release() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
}

// track registers an admitted connection whose goroutine the caller is
// about to run, adding one to s.wg (the goroutine calls s.wg.Done). It
// fails, releasing the slot, once the server is closed.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.active--
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// bind registers c's bound full JID, replacing (conflict stream error) an
// earlier session with the same full JID.
func (s *Server) bind(c *conn) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	old := s.sessions[c.full]
	s.sessions[c.full] = c
	u := s.users[c.user]
	if u == nil {
		u = &userState{conns: make(map[*conn]struct{})}
		s.users[c.user] = u
	}
	u.conns[c] = struct{}{}
	c.bound = true
	s.mu.Unlock()
	if old != nil {
		old.log.Debug("session replaced by a new connection")
		old.stop(&streamConflict, false)
	}
	return true
}

// forget removes c from every registry when its goroutine ends, and
// reports the user unavailable if c was the last available session.
func (s *Server) forget(c *conn) {
	s.presMu.Lock()
	defer s.presMu.Unlock()
	s.mu.Lock()
	delete(s.conns, c)
	s.active--
	notify := false
	if c.bound {
		c.bound = false
		if s.sessions[c.full] == c {
			delete(s.sessions, c.full)
		}
		if u := s.users[c.user]; u != nil {
			delete(u.conns, c)
			if c.online {
				c.online = false
				u.online--
				notify = u.online == 0
			}
			if len(u.conns) == 0 {
				delete(s.users, c.user)
			}
		}
	}
	s.mu.Unlock()
	if notify && s.cfg.OnPresence != nil {
		s.cfg.OnPresence(c.user, false)
	}
}

// setPresence records c's broadcast presence. The first available
// presence of a session also queues the finesse user's presence for it.
func (s *Server) setPresence(c *conn, online bool, priority int) {
	s.presMu.Lock()
	defer s.presMu.Unlock()
	s.mu.Lock()
	u := s.users[c.user]
	if !c.bound || u == nil {
		s.mu.Unlock()
		return
	}
	was := c.online
	c.online, c.priority = online, priority
	notify, overflow := false, false
	switch {
	case online && !was:
		u.online++
		notify = u.online == 1
		overflow = !c.enqueue(outItem{raw: c.servicePresence(s.service)})
	case !online && was:
		u.online--
		notify = u.online == 0
	}
	s.mu.Unlock()
	if overflow {
		s.dropFull([]*conn{c})
	}
	if notify && s.cfg.OnPresence != nil {
		s.cfg.OnPresence(c.user, online)
	}
}

// canonUser returns the JID localpart form of a loginId (PRECIS case
// mapping; numeric loginIds are unchanged).
func (s *Server) canonUser(id string) string {
	simple := id != ""
	for i := 0; i < len(id) && simple; i++ {
		c := id[i]
		simple = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '.' || c == '_' || c == '-'
	}
	if simple {
		return id
	}
	j, err := jid.New(id, s.cfg.Domain, "")
	if err != nil {
		return id
	}
	return j.Localpart()
}
