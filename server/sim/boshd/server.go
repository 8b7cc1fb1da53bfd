package boshd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

var errProtocol = errors.New("boshd: protocol error")

// Defaults applied by New to zero Config fields.
const (
	DefaultWait        = 30 * time.Second
	DefaultInactivity  = 60 * time.Second
	DefaultHold        = 1
	DefaultMaxBodySize = 1 << 20 // 1 MiB
)

// Fixed limits of the connection manager.
const (
	// acceptTimeout bounds how long a session creation waits for Accept.
	acceptTimeout = 10 * time.Second
	// closeGrace is how long the XMPP server gets to close its side after the
	// client terminated the session, before the pipe is closed.
	closeGrace = 2 * time.Second
	// polling is the 'polling' attribute sent to clients (not enforced).
	polling = 1
	// queueFactor times MaxBodySize bounds each per-session queue.
	queueFactor = 4
)

// Config configures a Server. Only Domain is required.
type Config struct {
	// Domain is the XMPP domain served; session creation requests with
	// another 'to' are refused with host-unknown.
	Domain string
	// Wait is the longest time a request is held. Zero means 30 s; a client
	// asking for less gets less.
	Wait time.Duration
	// Inactivity is how long a session survives with no request in flight.
	// Zero means 60 s.
	Inactivity time.Duration
	// Hold is the most requests held at once. Zero means 1; a client asking
	// for less gets less.
	Hold int
	// Requests is the most requests a client may have in flight (the rid
	// window). Zero means hold+1; it is never less than hold+1.
	Requests int
	// MaxBodySize bounds each request body (larger: HTTP 413) and each
	// response payload. Zero means 1 MiB. Each session also buffers at most
	// 4 × MaxBodySize in each direction.
	MaxBodySize int64
	// Logger receives debug logs (never payloads, never sids). Nil means
	// zap.NewNop().
	Logger *zap.Logger
}

// Server is a BOSH (XEP-0124/0206) connection manager for the simulator. It
// is an http.Handler for /http-bind and a net.Listener: each BOSH session
// becomes one net.Conn, returned by Accept, that carries an ordinary XMPP
// client stream to the XMPP server. BOSH runs over HTTPS, so the XMPP server
// must treat that stream as already secure (mellium: xmpp.Secure).
type Server struct {
	cfg Config
	log *zap.Logger

	accept    chan *Conn
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // session goroutines

	mu       sync.Mutex
	sessions map[string]*session
}

var (
	_ net.Listener = (*Server)(nil)
	_ http.Handler = (*Server)(nil)
)

// New returns a Server with cfg's zero fields set to their defaults. It
// starts no goroutine; sessions start theirs.
func New(cfg Config) *Server {
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.Wait < time.Second {
		cfg.Wait = time.Second
	}
	if cfg.Inactivity <= 0 {
		cfg.Inactivity = DefaultInactivity
	}
	if cfg.Hold <= 0 {
		cfg.Hold = DefaultHold
	}
	if cfg.Requests < cfg.Hold+1 {
		cfg.Requests = cfg.Hold + 1
	}
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Server{
		cfg:      cfg,
		log:      cfg.Logger.Named("boshd"),
		accept:   make(chan *Conn),
		done:     make(chan struct{}),
		sessions: make(map[string]*session),
	}
}

// Accept waits for the next BOSH session and returns the server side of its
// XMPP stream. After Close it returns net.ErrClosed.
func (s *Server) Accept() (net.Conn, error) {
	select {
	case c := <-s.accept:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting sessions, terminates every session (held requests
// are answered with system-shutdown, the XMPP server's conns are closed) and
// waits for the sessions' goroutines. It does not stop the HTTP server.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		list := make([]*session, 0, len(s.sessions))
		for _, sess := range s.sessions {
			list = append(list, sess)
		}
		s.mu.Unlock()
		for _, sess := range list {
			sess.shutdown(conditionSystemShutdown)
		}
	})
	s.wg.Wait()
	return nil
}

// Addr returns the listener's address: network "bosh", the domain.
func (s *Server) Addr() net.Addr { return addr(s.cfg.Domain) }

// Sessions returns the number of live sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Terminal binding conditions used by the server.
const (
	conditionBadRequest             = "bad-request"
	conditionHostUnknown            = "host-unknown"
	conditionItemNotFound           = "item-not-found"
	conditionPolicyViolation        = "policy-violation"
	conditionRemoteConnectionFailed = "remote-connection-failed"
	conditionRemoteStreamError      = "remote-stream-error"
	conditionSystemShutdown         = "system-shutdown"
)

// ServeHTTP handles one BOSH request (POST only).
//
// Answers: 200 with a <body/>; 200 with type='terminate' and a condition for
// an unknown sid (item-not-found), a wrong domain (host-unknown), an rid out
// of the window (item-not-found) or a shut-down server (system-shutdown);
// 400 with condition bad-request for a malformed body; 413 with
// policy-violation for a body larger than MaxBodySize; 405 for other methods.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "BOSH: POST only", http.StatusMethodNotAllowed)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodySize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.log.Debug("request body too large", zap.String("remote", r.RemoteAddr))
			writeBody(w, http.StatusRequestEntityTooLarge, terminateBody(conditionPolicyViolation, nil))
			return
		}
		return // the client went away
	}
	req, err := parseRequest(data)
	if err != nil {
		s.log.Debug("malformed request", zap.String("remote", r.RemoteAddr), zap.Error(err))
		writeBody(w, http.StatusBadRequest, terminateBody(conditionBadRequest, nil))
		return
	}
	select {
	case <-s.done:
		writeBody(w, http.StatusOK, terminateBody(conditionSystemShutdown, nil))
		return
	default:
	}
	if req.sid == "" {
		s.create(w, r, req)
		return
	}
	s.mu.Lock()
	sess := s.sessions[req.sid]
	s.mu.Unlock()
	if sess == nil {
		writeBody(w, http.StatusOK, terminateBody(conditionItemNotFound, nil))
		return
	}
	sess.handle(w, r, req)
}

// create handles a session creation request.
func (s *Server) create(w http.ResponseWriter, r *http.Request, req *request) {
	if req.to != s.cfg.Domain {
		writeBody(w, http.StatusOK, terminateBody(conditionHostUnknown, nil))
		return
	}
	if req.typ == "terminate" || req.restart {
		writeBody(w, http.StatusOK, terminateBody(conditionBadRequest, nil))
		return
	}
	hold := s.cfg.Hold
	if req.hasHold && req.hold < hold {
		hold = req.hold
	}
	wait := s.cfg.Wait
	if req.hasWait && req.wait < wait {
		wait = max(req.wait, time.Second)
	}
	lang := req.lang
	if lang == "" {
		lang = "en"
	}
	sess := newSession(s, newSID(), hold, max(s.cfg.Requests, hold+1), wait, lang, r.RemoteAddr, req.rid)

	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		writeBody(w, http.StatusOK, terminateBody(conditionSystemShutdown, nil))
		return
	default:
	}
	s.sessions[sess.sid] = sess
	s.wg.Add(2)
	s.mu.Unlock()
	go sess.readLoop()
	go sess.writeLoop()

	t := time.NewTimer(acceptTimeout)
	defer t.Stop()
	select {
	case s.accept <- sess.conn:
	case <-t.C:
		s.log.Warn("no Accept for a new BOSH session", zap.Duration("waited", acceptTimeout))
		sess.shutdown(conditionRemoteConnectionFailed)
		writeBody(w, http.StatusOK, terminateBody(conditionRemoteConnectionFailed, nil))
		return
	case <-s.done:
		writeBody(w, http.StatusOK, terminateBody(conditionSystemShutdown, nil))
		return
	case <-r.Context().Done():
		sess.shutdown("")
		return
	}
	s.log.Debug("session created", zap.String("remote", r.RemoteAddr), zap.Int("hold", hold), zap.Duration("wait", wait))
	sess.mu.Lock()
	p := sess.holdLocked(req.rid, true)
	sess.mu.Unlock()
	sess.await(w, r, p)
}

// remove forgets a session.
func (s *Server) remove(sid string) {
	s.mu.Lock()
	delete(s.sessions, sid)
	s.mu.Unlock()
}

func newSID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body) // #nosec G705 -- an XMPP/BOSH XML body served as text/xml to a BOSH client, not HTML
}

// Conn is the server side of one BOSH session's XMPP stream, as returned by
// Accept. Its RemoteAddr is the HTTP client's address at session creation.
type Conn struct {
	net.Conn
	sid    string
	remote addr
}

// RemoteAddr returns the address of the HTTP client that created the session.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr returns the connection manager's address (network "bosh").
func (c *Conn) LocalAddr() net.Addr { return addr("http-bind") }

// addr is a net.Addr of network "bosh".
type addr string

func (a addr) Network() string { return "bosh" }
func (a addr) String() string  { return string(a) }
