package gadget

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"finesse-relay/httpx"
)

// Gateway defaults.
const (
	// DefaultMaxMessageSize bounds an inbound message (bytes).
	DefaultMaxMessageSize = 4 << 10
	// DefaultHeartbeat is how often the client should send a ping (and the
	// relay sends a WebSocket ping). The read deadline is 2.5× this.
	DefaultHeartbeat = 25 * time.Second
	// DefaultWriteTimeout bounds each frame write.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultMaxBadMessages is how many refused messages a connection may
	// send per minute; one more closes it with 4103.
	DefaultMaxBadMessages = 10
	// DefaultMaxSocketsPerSession bounds the WebSockets open at once per
	// relay session.
	DefaultMaxSocketsPerSession = 16
)

// Fixed timings and rates.
const (
	// closeGrace is how long the relay waits for the client's close frame
	// after sending its own, before dropping the TCP connection.
	closeGrace = time.Second
	// handshakeTimeout bounds writing the upgrade response.
	handshakeTimeout = 10 * time.Second
	// badMessageWindow is the window of MaxBadMessages.
	badMessageWindow = time.Minute
	// commandRate and commandBurst bound inbound commands per connection
	// (token bucket): beyond them a command is refused with rate_limited.
	// The burst covers a supervisor re-subscribing a team and many queues
	// right after a reconnect.
	commandRate  = 20 // per second
	commandBurst = 100
)

// GatewayConfig configures a Gateway. Zero values take the defaults.
type GatewayConfig struct {
	// AllowedOrigins are the exact browser origins (scheme://host[:port],
	// case-insensitive, default ports optional) allowed to open the
	// WebSocket; "*" allows every origin (the caller should warn). A request
	// without an Origin header (a non-browser client) is always allowed: the
	// ticket authenticates it.
	AllowedOrigins []string
	// Tickets redeems the ?ticket= of each request (nil: an empty in-memory
	// Tickets, so every request is refused with 401).
	Tickets TicketRedeemer
	// MaxSocketsPerSession bounds the connections open at once per relay
	// session (Grant.Session); one more is refused with 429
	// too_many_connections before the upgrade (0:
	// DefaultMaxSocketsPerSession).
	MaxSocketsPerSession int
	// QueueSize bounds each connection's live queue (0: the Stream's
	// QueueSize).
	QueueSize int
	// MaxMessageSize bounds an inbound message in bytes
	// (0: DefaultMaxMessageSize). A bigger one gets error too_large and
	// close 1009.
	MaxMessageSize int64
	// Heartbeat is the ping interval announced to clients and used for the
	// relay's own WebSocket pings; nothing received for 2.5×Heartbeat closes
	// the connection with 4001 (0: DefaultHeartbeat).
	Heartbeat time.Duration
	// WriteTimeout bounds each frame write (0: DefaultWriteTimeout).
	WriteTimeout time.Duration
	// MaxBadMessages is how many refused messages per minute a connection
	// may send; one more closes it with 4103 (0: DefaultMaxBadMessages).
	MaxBadMessages int
	// Metrics (nil: unregistered metrics).
	Metrics *Metrics
	// Logger (nil: no logging).
	Logger *zap.Logger
}

// Gateway is the browser-facing WebSocket endpoint: GET /ws?ticket=…
// [&since=N[&stream=ID]]. It checks the Origin and the ticket, upgrades,
// attaches the connection to the ticket's Stream and serves it with one
// reader (a goroutine started after the upgrade; the handler returns) and one writer goroutine.
//
// A Gateway is safe for concurrent use.
type Gateway struct {
	cfg      GatewayConfig
	origins  httpx.Origins
	upgrader websocket.Upgrader
	readWait time.Duration
	log      *zap.Logger

	mu       sync.Mutex
	closed   bool
	conns    map[*conn]struct{}
	sessions map[string]*sessionConns // relay session → its connections
	wg       sync.WaitGroup           // one per ServeHTTP past the refusal checks
}

// sessionConns are the connections of one relay session. A slot is
// reserved before the upgrade (so the cap holds under concurrent upgrades)
// and released when the handler returns; the entry goes with the last slot.
type sessionConns struct {
	reserved int
	conns    map[*conn]struct{}
	// closing, when set, is applied to connections that register after
	// CloseSession was called while their upgrade was in flight.
	closing *closeInfo
}

// NewGateway returns a Gateway.
func NewGateway(cfg GatewayConfig) *Gateway {
	if cfg.Tickets == nil {
		cfg.Tickets = NewTickets(TicketsConfig{})
	}
	if cfg.MaxSocketsPerSession <= 0 {
		cfg.MaxSocketsPerSession = DefaultMaxSocketsPerSession
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxBadMessages <= 0 {
		cfg.MaxBadMessages = DefaultMaxBadMessages
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	g := &Gateway{
		cfg:      cfg,
		origins:  httpx.NewOrigins(cfg.AllowedOrigins...),
		readWait: cfg.Heartbeat * 5 / 2,
		log:      cfg.Logger,
		conns:    make(map[*conn]struct{}),
		sessions: make(map[string]*sessionConns),
	}
	g.upgrader = websocket.Upgrader{
		HandshakeTimeout: handshakeTimeout,
		WriteBufferPool:  &sync.Pool{},
		// The Origin was checked before the upgrade.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			httpx.WriteError(w, status, CodeBadRequest, reason.Error())
		},
	}
	return g
}

// ServeHTTP serves GET /ws?ticket=…[&since=N[&stream=ID]].
//
// Refusals before the upgrade, with a JSON body {"error":{"code","message"}}:
// 405 method_not_allowed; 403 origin_not_allowed; 400 bad_request (not a
// WebSocket upgrade, or a malformed since/stream); 401 invalid_ticket
// (missing, unknown, expired or already used — the message says which);
// 410 session_ended (the Stream has ended); 429 too_many_connections (the
// relay session already has MaxSocketsPerSession connections; the ticket is
// used up); 503 shutting_down; 503 store_unavailable (the TicketRedeemer
// failed for another reason).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		httpx.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	if !g.originAllowed(r.Header.Get("Origin")) {
		httpx.WriteError(w, http.StatusForbidden, "origin_not_allowed", "this origin may not open the relay's WebSocket")
		return
	}
	q := r.URL.Query()
	rp, err := parseResumePoint(q)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		httpx.WriteError(w, http.StatusBadRequest, CodeBadRequest, "a WebSocket upgrade is required")
		return
	}
	key := q.Get("ticket")
	if key == "" {
		httpx.WriteError(w, http.StatusUnauthorized, "invalid_ticket", "ticket missing")
		return
	}
	grant, err := g.cfg.Tickets.Redeem(r.Context(), key)
	switch {
	case errors.Is(err, ErrTicketUnknown):
		httpx.WriteError(w, http.StatusUnauthorized, "invalid_ticket", "ticket unknown")
		return
	case errors.Is(err, ErrTicketExpired):
		httpx.WriteError(w, http.StatusUnauthorized, "invalid_ticket", "ticket expired")
		return
	case errors.Is(err, ErrTicketUsed):
		httpx.WriteError(w, http.StatusUnauthorized, "invalid_ticket", "ticket already used")
		return
	case err != nil:
		g.log.Warn("websocket ticket could not be redeemed", zap.Error(err))
		httpx.WriteError(w, http.StatusServiceUnavailable, "store_unavailable", "the relay cannot check tickets right now; retry shortly")
		return
	case grant.Stream == nil:
		g.log.Error("ticket redeemer returned a grant without a stream")
		httpx.WriteError(w, http.StatusServiceUnavailable, "store_unavailable", "the relay cannot check tickets right now; retry shortly")
		return
	}
	if ended, _, _ := grant.Stream.endedCode(); ended {
		httpx.WriteError(w, http.StatusGone, "session_ended", "the agent session has ended; sign in again for a new one")
		return
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		httpx.WriteError(w, http.StatusServiceUnavailable, "shutting_down", "the relay is shutting down; retry shortly")
		return
	}
	sc := g.sessions[grant.Session]
	if sc == nil {
		sc = &sessionConns{conns: make(map[*conn]struct{})}
		g.sessions[grant.Session] = sc
	}
	if sc.reserved >= g.cfg.MaxSocketsPerSession {
		g.mu.Unlock()
		httpx.WriteError(w, http.StatusTooManyRequests, "too_many_connections",
			"this sign-in already has "+strconv.Itoa(g.cfg.MaxSocketsPerSession)+" WebSockets open; close one (e.g. a tab) and ask for a new ticket")
		return
	}
	sc.reserved++
	g.wg.Add(1)
	g.mu.Unlock()

	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		g.log.Debug("websocket upgrade failed", zap.Error(err))
		g.release(grant.Session, nil)
		g.wg.Done()
		return
	}
	c := newConn(g, ws, grant.Stream)
	g.mu.Lock()
	switch {
	case g.closed:
		c.closeWith(closeInfo{code: CloseGoingAway, reason: reasonGoingAway, frame: true})
	case sc.closing != nil:
		c.closeWith(*sc.closing)
	default:
		g.conns[c] = struct{}{}
		sc.conns[c] = struct{}{}
	}
	g.mu.Unlock()
	// The connection is served on a goroutine of its own and the handler
	// returns: net/http then lets go of what it keeps per connection while
	// a handler runs (its 4 KiB bufio.Writer, the request, the handler's
	// stack), which a hijacked connection never uses again.
	go func() {
		defer g.wg.Done()
		defer g.release(grant.Session, nil)
		c.serve(rp)
		g.release(grant.Session, c)
	}()
}

// release forgets c (when not nil) and, once per handler, its session slot.
// It is called twice per handler: with c after serving, and with nil from
// the deferred call that frees the slot.
func (g *Gateway) release(session string, c *conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	sc := g.sessions[session]
	if c != nil {
		delete(g.conns, c)
		if sc != nil {
			delete(sc.conns, c)
		}
		return
	}
	if sc == nil {
		return
	}
	if sc.reserved--; sc.reserved <= 0 {
		delete(g.sessions, session)
	}
}

// CloseSession closes every connection of a relay session with code and
// reason (sign-out: CloseSignedOut and "signed_out"), delivering the
// messages already queued first. Connections of the session whose upgrade
// is in flight are closed as soon as they are registered. It never blocks
// on the connections.
func (g *Gateway) CloseSession(session string, code int, reason string) {
	ci := closeInfo{code: code, reason: reason, flush: true, frame: true}
	g.mu.Lock()
	defer g.mu.Unlock()
	sc := g.sessions[session]
	if sc == nil {
		return
	}
	sc.closing = &ci
	for c := range sc.conns {
		c.closeWith(ci)
	}
}

// Sessions returns the relay sessions (Grant.Session) with connections
// open or being opened here.
func (g *Gateway) Sessions() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.sessions))
	for s := range g.sessions {
		out = append(out, s)
	}
	return out
}

// SessionConns returns the number of connections open or being opened for
// a relay session.
func (g *Gateway) SessionConns(session string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if sc := g.sessions[session]; sc != nil {
		return sc.reserved
	}
	return 0
}

// Shutdown closes every connection with 1001 (going away: reconnect with
// backoff and resume), refuses new ones with 503, and waits for their
// goroutines, at most until ctx is done.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	for c := range g.conns {
		c.closeWith(closeInfo{code: CloseGoingAway, reason: reasonGoingAway, frame: true})
	}
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { // owned: ends when every connection's handler has returned
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gadget: shutdown: %w", ctx.Err())
	}
}

// originAllowed: no Origin (not a browser) is allowed; otherwise the
// relay's one origin policy (httpx.Origins) decides.
func (g *Gateway) originAllowed(origin string) bool {
	return origin == "" || g.origins.Allows(origin)
}

// parseResumePoint reads since and stream from the query.
func parseResumePoint(q url.Values) (resumePoint, error) {
	var rp resumePoint
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < -1 {
			return rp, errors.New("since must be an integer >= -1")
		}
		rp.set, rp.since = true, n
	}
	rp.stream = q.Get("stream")
	if len(rp.stream) > maxStreamLen {
		return rp, errors.New("stream is too long")
	}
	return rp, nil
}
