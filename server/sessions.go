package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"finesse-relay/gadget"
	"finesse-relay/server/agent"
	"finesse-relay/server/ids"
	"finesse-relay/server/rest"
	"finesse-relay/xmpp/finesse"
)

const (
	// sessionCookie carries the relay session token for same-origin pages.
	sessionCookie = "relay_session"
	// csrfHeader must accompany cookie-authenticated state-changing requests:
	// a cross-site form cannot set it and a cross-origin script needs a CORS
	// preflight that only allowedOrigins pass.
	csrfHeader = "X-Relay-Request"
	// relaySessionTTL is the absolute lifetime of a relay session token.
	relaySessionTTL = 12 * time.Hour
	// maxSignInBody bounds sign-in request bodies.
	maxSignInBody = 16 << 10
)

// loginIDPattern is what a Finesse loginId or loginName may look like.
var loginIDPattern = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// relaySession is one browser sign-in. Its token is random, opaque, never an
// IdS token, and stored only as a SHA-256 hash.
type relaySession struct {
	id      string // opaque, random; names the session to gadget (tickets, sockets)
	loginID string
	expires time.Time
}

// relaySessions is the in-memory store of relay session tokens.
type relaySessions struct {
	mu     sync.Mutex
	byHash map[[32]byte]relaySession
	now    func() time.Time
}

func newRelaySessions() *relaySessions {
	return &relaySessions{byHash: make(map[[32]byte]relaySession), now: time.Now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (st *relaySessions) create(loginID string) (tok, id string) {
	tok, id = randomToken(), randomToken()
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	for h, s := range st.byHash { // lazy sweep keeps the map bounded by live sessions
		if now.After(s.expires) {
			delete(st.byHash, h)
		}
	}
	st.byHash[sha256.Sum256([]byte(tok))] = relaySession{id: id, loginID: loginID, expires: now.Add(relaySessionTTL)}
	return tok, id
}

func (st *relaySessions) lookup(tok string) (relaySession, bool) {
	if tok == "" {
		return relaySession{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byHash[sha256.Sum256([]byte(tok))]
	if !ok || st.now().After(s.expires) {
		return relaySession{}, false
	}
	return s, true
}

func (st *relaySessions) delete(tok string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.byHash, sha256.Sum256([]byte(tok)))
}

// credHolder is one agent's current upstream credential, shared by every
// sign-in of that agent; the newest verified credential wins.
type credHolder struct {
	mu      sync.Mutex
	c       signInCreds
	last    string        // the access token last handed out (refresh detection)
	refresh func(ok bool) // counts IdS refreshes and refresh failures; may be nil
}

func (h *credHolder) set(c signInCreds) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.c = c
}

func (h *credHolder) get() signInCreds {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.c
}

func (h *credHolder) secret(context.Context) (string, error) {
	c := h.get()
	switch {
	case !c.sso:
		return c.password, nil
	case c.source != nil:
		t, err := c.source.Token()
		if err != nil {
			h.countRefresh(false)
			if errors.Is(err, ids.ErrSignInAgain) {
				return "", fmt.Errorf("%w: %w", agent.ErrSignInAgain, err)
			}
			return "", err
		}
		h.mu.Lock()
		refreshed := h.last != "" && h.last != t.AccessToken
		h.last = t.AccessToken
		h.mu.Unlock()
		if refreshed {
			h.countRefresh(true)
		}
		return t.AccessToken, nil
	default:
		return c.token, nil
	}
}

func (h *credHolder) countRefresh(ok bool) {
	if h.refresh != nil {
		h.refresh(ok)
	}
}

// signInCreds are credentials presented at sign-in, not yet verified.
type signInCreds struct {
	sso      bool
	password string
	token    string
	source   oauth2.TokenSource
}

func (c signInCreds) agentCredentials(loginID string) agent.Credentials {
	h := &credHolder{}
	h.set(c)
	return agent.Credentials{LoginID: loginID, SSO: c.sso, Secret: h.secret}
}

// errInvalidCredentials means Finesse refused the credentials.
var errInvalidCredentials = errors.New("finesse refused the credentials")

// verify checks credentials against Finesse: GET /finesse/api/User/{id} with
// them must answer 200 and name the same user. It tries the sides in order
// when one is out of service or unreachable, and never retries a refused
// credential (Finesse locks an account after 5 failures).
func (a *App) verify(ctx context.Context, id string, c signInCreds) (*finesse.User, error) {
	var lastErr error
	for _, s := range a.cfg.Sides {
		rc := a.up.restCfg
		side := rest.Side{Name: s.Name, BaseURL: s.BaseURL()}
		rc.Side = func() rest.Side { return side }
		rc.Credentials = credentials{c.agentCredentials(id)}
		u, err := rest.New(rc).User(ctx, id)
		switch {
		case err == nil:
			if !strings.EqualFold(u.LoginID, id) && !strings.EqualFold(u.LoginName, id) {
				return nil, fmt.Errorf("%w: Finesse answered for user %q, not %q", errInvalidCredentials, u.LoginID, id)
			}
			return u, nil
		case errors.Is(err, rest.ErrUnauthorized), errors.Is(err, rest.ErrForbidden), errors.Is(err, rest.ErrNotFound):
			return nil, fmt.Errorf("%w: %w", errInvalidCredentials, err)
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = errors.New("no Finesse side configured (FINESSE_A_HOST)")
	}
	return nil, lastErr
}

// join verifies credentials, joins (or creates) the agent's Session and
// returns a fresh ticket for it.
func (a *App) join(ctx context.Context, id string, c signInCreds) (*agent.Session, error) {
	user, err := a.verify(ctx, id, c)
	if err != nil {
		return nil, err
	}
	a.credsMu.Lock()
	h := a.creds[user.LoginID]
	if h == nil {
		h = &credHolder{refresh: a.tokenRefreshes.count}
		a.creds[user.LoginID] = h
	}
	a.credsMu.Unlock()
	h.set(c)
	s, created, err := a.manager.Join(user, agent.Credentials{LoginID: user.LoginID, SSO: c.sso, Secret: h.secret})
	if err != nil {
		return nil, err
	}
	if created {
		a.log.Info("agent session started", zap.String("agent", user.LoginID), zap.Strings("roles", user.Roles))
	}
	return s, nil
}

// sessionResponse is the body of a successful sign-in.
type sessionResponse struct {
	LoginID         string   `json:"loginId"`
	Roles           []string `json:"roles"`
	Session         string   `json:"session"`
	Ticket          string   `json:"ticket"`
	TicketExpiresIn int      `json:"ticketExpiresIn"`
}

func (a *App) ticketFor(s *agent.Session, sessionID string) (string, int, error) {
	t, exp, err := a.tickets.Issue(s.Publisher().(*gadget.Stream), sessionID)
	return t, int(exp / time.Second), err
}

// writeTicketError answers a ticket that could not be issued.
func writeTicketError(w http.ResponseWriter, err error) {
	if errors.Is(err, gadget.ErrTooManyTickets) {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, "too_many_tickets", "this sign-in has too many unused WebSocket tickets; use one or wait for them to expire")
		return
	}
	writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the relay cannot issue tickets right now; retry shortly")
}

// handleCreateSession is POST /api/v1/sessions.
func (a *App) handleCreateSession(w http.ResponseWriter, r *http.Request) {
	var body struct {
		LoginID   string `json:"loginId"`
		AuthToken string `json:"authToken"`
		Password  string `json:"password"`
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSignInBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "sign-in body over 16 KiB")
		return
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		// An existing session cookie (SSO tab): a fresh ticket for it.
		a.handleTicket(w, r)
		return
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "body must be JSON {\"loginId\", \"authToken\"} or {\"loginId\", \"password\"}")
		return
	}
	if !loginIDPattern.MatchString(body.LoginID) {
		writeError(w, http.StatusBadRequest, "bad_request", "loginId missing or malformed")
		return
	}
	var c signInCreds
	switch {
	case body.AuthToken != "" && body.Password == "":
		c = signInCreds{sso: true, token: body.AuthToken}
	case body.Password != "" && body.AuthToken == "":
		c = signInCreds{password: body.Password}
	default:
		writeError(w, http.StatusBadRequest, "bad_request", "give exactly one of authToken (SSO) or password (non-SSO)")
		return
	}
	s, err := a.join(r.Context(), body.LoginID, c)
	if err != nil {
		a.writeJoinError(w, body.LoginID, err)
		return
	}
	a.startRelaySession(w, r, s)
}

func (a *App) startRelaySession(w http.ResponseWriter, r *http.Request, s *agent.Session) {
	tok, id := a.relay.create(s.LoginID())
	if a.sameOrigin(r) {
		a.setSessionCookie(w, tok)
	}
	ticket, exp, err := a.ticketFor(s, id)
	if err != nil {
		writeTicketError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, sessionResponse{
		LoginID: s.LoginID(), Roles: s.Roles(), Session: tok, Ticket: ticket, TicketExpiresIn: exp,
	})
}

func (a *App) writeJoinError(w http.ResponseWriter, loginID string, err error) {
	switch {
	case errors.Is(err, errInvalidCredentials):
		a.log.Info("sign-in refused by Finesse", zap.String("agent", loginID), zap.Error(err))
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "Finesse refused these credentials; check the loginId and password or sign in to Finesse again")
	case errors.Is(err, agent.ErrManagerStopped):
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the relay is shutting down; retry in a moment")
	default:
		a.log.Warn("sign-in failed: Finesse unreachable", zap.String("agent", loginID), zap.Error(err))
		writeError(w, http.StatusBadGateway, "finesse_unreachable", "no Finesse side answered; retry in a few seconds")
	}
}

// authenticate finds the caller's relay session from the Authorization
// bearer or the session cookie. Cookie-authenticated state-changing
// requests must carry the CSRF header and an allowed Origin.
func (a *App) authenticate(r *http.Request) (relaySession, string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return relaySession{}, "", errors.New("Authorization must be \"Bearer <session>\"")
		}
		s, ok := a.relay.lookup(strings.TrimSpace(tok))
		if !ok {
			return relaySession{}, "", errors.New("unknown or expired relay session; sign in again")
		}
		return s, tok, nil
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return relaySession{}, "", errors.New("not signed in")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if r.Header.Get(csrfHeader) == "" {
			return relaySession{}, "", fmt.Errorf("cookie-authenticated %s needs the %s header", r.Method, csrfHeader)
		}
		if o := r.Header.Get("Origin"); o != "" && !a.originAllowed(o) {
			return relaySession{}, "", fmt.Errorf("origin %s not allowed", o)
		}
	}
	s, ok := a.relay.lookup(ck.Value)
	if !ok {
		return relaySession{}, "", errors.New("unknown or expired relay session; sign in again")
	}
	return s, ck.Value, nil
}

// handleTicket is POST /api/v1/tickets: a fresh single-use WebSocket ticket.
// When the agent's Session ended meanwhile (grace period), it is started
// again with the agent's last verified credentials.
func (a *App) handleTicket(w http.ResponseWriter, r *http.Request) {
	rs, tok, err := a.authenticate(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "unauthenticated", err.Error())
		return
	}
	s, ok := a.manager.Get(rs.loginID)
	if !ok {
		a.credsMu.Lock()
		h := a.creds[rs.loginID]
		a.credsMu.Unlock()
		if h == nil {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "session ended; sign in again")
			return
		}
		if s, err = a.join(r.Context(), rs.loginID, h.get()); err != nil {
			if errors.Is(err, errInvalidCredentials) {
				a.relay.delete(tok)
			}
			a.writeJoinError(w, rs.loginID, err)
			return
		}
	}
	ticket, exp, err := a.ticketFor(s, rs.id)
	if err != nil {
		writeTicketError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, sessionResponse{LoginID: s.LoginID(), Roles: s.Roles(), Session: tok, Ticket: ticket, TicketExpiresIn: exp})
}

// handleRefreshToken is PUT /api/v1/sessions/token: a gadget hands over the
// token Finesse refreshed; it is verified before it replaces the old one,
// and the upstream session is not dropped.
func (a *App) handleRefreshToken(w http.ResponseWriter, r *http.Request) {
	rs, _, err := a.authenticate(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "unauthenticated", err.Error())
		return
	}
	var body struct {
		AuthToken string `json:"authToken"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSignInBody)).Decode(&body); err != nil || body.AuthToken == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "body must be JSON {\"authToken\": \"...\"}")
		return
	}
	c := signInCreds{sso: true, token: body.AuthToken}
	if _, err := a.verify(r.Context(), rs.loginID, c); err != nil {
		a.writeJoinError(w, rs.loginID, err)
		return
	}
	a.credsMu.Lock()
	h := a.creds[rs.loginID]
	a.credsMu.Unlock()
	if h != nil {
		h.set(c)
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleDeleteSession is DELETE /api/v1/sessions: this browser signs out of
// the relay; the upstream session ends after the grace period once no
// browser of the agent is left.
func (a *App) handleDeleteSession(w http.ResponseWriter, r *http.Request) {
	_, tok, err := a.authenticate(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "unauthenticated", err.Error())
		return
	}
	a.signOut(tok)
	a.clearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

// signOut ends a relay session: its token, its unused tickets, and its
// WebSockets (closed 4100 signed_out after what is queued).
func (a *App) signOut(tok string) {
	rs, ok := a.relay.lookup(tok)
	a.relay.delete(tok)
	if ok {
		a.tickets.Revoke(rs.id)
		a.gateway.CloseSession(rs.id, gadget.CloseSignedOut, "signed_out")
	}
}

func (a *App) setSessionCookie(w http.ResponseWriter, tok string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: tok, Path: "/", MaxAge: int(relaySessionTTL / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
}

func (a *App) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
}

// ownOrigins are the relay's own origins (its pages talk to it same-origin).
func (a *App) ownOrigins() []string {
	own := []string{a.cfg.PublicURL.Scheme + "://" + strings.ToLower(a.cfg.PublicURL.Host)}
	if u := a.URL(); u != own[0] {
		own = append(own, u)
	}
	return own
}

func (a *App) originAllowed(o string) bool {
	o = strings.ToLower(strings.TrimSuffix(o, "/"))
	for _, x := range append(a.ownOrigins(), a.cfg.AllowedOrigins...) {
		if x == "*" || x == o {
			return true
		}
	}
	return false
}

// sameOrigin reports whether r comes from one of the relay's own pages.
func (a *App) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	o = strings.ToLower(o)
	for _, x := range a.ownOrigins() {
		if x == o {
			return true
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return o == scheme+"://"+strings.ToLower(r.Host)
}

// cors answers CORS for the API: exactly the configured allowedOrigins (and
// the relay's own), preflight included. Credentials (cookies) are never
// allowed cross-origin: gadgets authenticate with the bearer session token.
func (a *App) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := r.Header.Get("Origin")
		if o != "" && a.originAllowed(o) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", o)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "requestId")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, requestId, "+csrfHeader)
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		} else if r.Method == http.MethodOptions {
			writeError(w, http.StatusForbidden, "origin_not_allowed", "origin not in allowedOrigins")
			return
		}
		next.ServeHTTP(w, r)
	})
}
