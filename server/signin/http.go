package signin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"finesse-relay/httpx"
	"finesse-relay/server/agent"
	"finesse-relay/server/cred"
	"finesse-relay/server/store"
)

const (
	// SessionCookie carries the relay session token for the relay's own pages.
	SessionCookie = "relay_session"
	// CSRFHeader must accompany cookie-authenticated state-changing
	// requests: a cross-site form cannot set it, and a cross-origin script
	// needs a CORS preflight that only allowed origins pass.
	CSRFHeader = "X-Relay-Request"
)

// loginIDPattern is what a Finesse loginId or loginName may look like.
var loginIDPattern = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// sessionResponse is the body of a successful sign-in or ticket request.
// Session is omitted for the relay's own pages (they hold it as an HttpOnly
// cookie, which a script must never be able to read).
type sessionResponse struct {
	LoginID         string   `json:"loginId"`
	Roles           []string `json:"roles"`
	Session         string   `json:"session,omitempty"`
	Ticket          string   `json:"ticket"`
	TicketExpiresIn int      `json:"ticketExpiresIn"`
}

// API wraps the JSON API's handlers with CORS: exactly the allowed origins
// and the relay's own get Access-Control-Allow-Origin (preflights included);
// credentials (cookies) are never allowed cross-origin: gadgets
// authenticate with the bearer session token.
func (s *Service) API(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := r.Header.Get("Origin")
		if o != "" && s.originAllowed(o) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", o)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "requestId, Retry-After")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, requestId, "+CSRFHeader)
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		} else if r.Method == http.MethodOptions {
			httpx.WriteError(w, http.StatusForbidden, "origin_not_allowed", "origin not in allowedOrigins")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Preflight answers OPTIONS on the API (the CORS headers come from API).
func (s *Service) Preflight(http.ResponseWriter, *http.Request) {}

func (s *Service) originAllowed(o string) bool {
	return s.cfg.Own.Allows(o) || s.cfg.Origins.Allows(o)
}

// ownPage reports whether r comes from a page on the relay's own origin.
func (s *Service) ownPage(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	if s.cfg.Own.Allows(o) {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return httpx.NormalizeOrigin(o) == httpx.NormalizeOrigin(scheme+"://"+r.Host)
}

// Authenticate finds the caller's relay session from the Authorization
// bearer or the session cookie. Cookie-authenticated state-changing
// requests must carry the CSRF header and, with an Origin, an allowed one.
// bearer reports which of the two it was.
func (s *Service) Authenticate(r *http.Request) (rs Session, token string, bearer bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Session{}, "", true, fmt.Errorf("%w: Authorization must be \"Bearer <session>\"", ErrUnauthenticated)
		}
		tok = strings.TrimSpace(tok)
		rs, err := s.lookup(r.Context(), tok)
		return rs, tok, true, err
	}
	ck, cerr := r.Cookie(SessionCookie)
	if cerr != nil {
		return Session{}, "", false, fmt.Errorf("%w: not signed in", ErrUnauthenticated)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if r.Header.Get(CSRFHeader) == "" {
			return Session{}, "", false, fmt.Errorf("%w: cookie-authenticated %s needs the %s header", ErrUnauthenticated, r.Method, CSRFHeader)
		}
		if o := r.Header.Get("Origin"); o != "" && !s.originAllowed(o) {
			return Session{}, "", false, fmt.Errorf("%w: origin %s not allowed", ErrUnauthenticated, o)
		}
	}
	rs, err = s.lookup(r.Context(), ck.Value)
	return rs, ck.Value, false, err
}

// LoginIDOf returns the agent of the request's relay session (the REST
// proxy uses it to find the agent's upstream session).
func (s *Service) LoginIDOf(r *http.Request) (string, error) {
	rs, _, _, err := s.Authenticate(r)
	return rs.LoginID, err
}

// CreateSession is POST /api/v1/sessions: sign in with {"loginId",
// "password"} or {"loginId","authToken"}, or with an empty body and the
// session cookie (after /login) for a fresh ticket.
func (s *Service) CreateSession(w http.ResponseWriter, r *http.Request) {
	var body struct {
		LoginID   string `json:"loginId"`
		AuthToken string `json:"authToken"`
		Password  string `json:"password"`
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, "too_large", "sign-in body over 16 KiB")
		return
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		s.Ticket(w, r) // an SSO tab with its cookie: a fresh ticket
		return
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "bad_request", `body must be JSON {"loginId", "authToken"} or {"loginId", "password"}`)
		return
	}
	if !loginIDPattern.MatchString(body.LoginID) {
		httpx.WriteError(w, http.StatusBadRequest, "bad_request", "loginId missing or malformed")
		return
	}
	var p presented
	method := "password"
	switch {
	case body.AuthToken != "" && body.Password == "":
		p, method = presented{kind: cred.Token, secret: body.AuthToken}, "token"
	case body.Password != "" && body.AuthToken == "":
		p = presented{kind: cred.Password, secret: body.Password}
	default:
		httpx.WriteError(w, http.StatusBadRequest, "bad_request", "give exactly one of authToken (SSO) or password (non-SSO)")
		return
	}
	user, err := s.join(r.Context(), body.LoginID, p, clientAddress(r), method)
	if err != nil {
		s.writeError(w, body.LoginID, err)
		return
	}
	tok, rs, err := s.createSession(r.Context(), user.LoginID)
	if err != nil {
		s.writeError(w, body.LoginID, err)
		return
	}
	own := s.ownPage(r)
	if own || r.Header.Get("Origin") == "" {
		s.setSessionCookie(w, tok)
	}
	resp := sessionResponse{LoginID: user.LoginID, Roles: user.Roles}
	if !own {
		resp.Session = tok
	}
	s.writeTicket(w, r, rs, resp)
}

// Ticket is POST /api/v1/tickets: a fresh single-use WebSocket ticket. When
// the agent's upstream Session ended meanwhile (grace period, restart) it
// is started again with the agent's stored credential.
func (s *Service) Ticket(w http.ResponseWriter, r *http.Request) {
	rs, tok, bearer, err := s.Authenticate(r)
	if err != nil {
		s.writeError(w, "", err)
		return
	}
	user, err := s.rejoin(r.Context(), rs.LoginID)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			_ = s.endSession(r.Context(), rs)
		}
		s.writeError(w, rs.LoginID, err)
		return
	}
	resp := sessionResponse{LoginID: user.LoginID, Roles: user.Roles}
	if bearer {
		resp.Session = tok
	}
	s.writeTicket(w, r, rs, resp)
}

func (s *Service) writeTicket(w http.ResponseWriter, r *http.Request, rs Session, resp sessionResponse) {
	t, ttl, err := s.issueTicket(r.Context(), rs)
	if err != nil {
		s.writeError(w, rs.LoginID, err)
		return
	}
	resp.Ticket, resp.TicketExpiresIn = t, int(ttl/time.Second)
	httpx.WriteJSON(w, http.StatusCreated, resp)
}

// RefreshToken is PUT /api/v1/sessions/token: a gadget hands over the token
// Finesse refreshed. It is verified before it replaces the old one, and
// the upstream session is not dropped.
func (s *Service) RefreshToken(w http.ResponseWriter, r *http.Request) {
	rs, _, _, err := s.Authenticate(r)
	if err != nil {
		s.writeError(w, "", err)
		return
	}
	var body struct {
		AuthToken string `json:"authToken"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&body); err != nil || body.AuthToken == "" {
		httpx.WriteError(w, http.StatusBadRequest, "bad_request", `body must be JSON {"authToken": "..."}`)
		return
	}
	p := presented{kind: cred.Token, secret: body.AuthToken}
	t, err := s.reserve(r.Context(), rs.LoginID, clientAddress(r))
	if err != nil {
		s.writeError(w, rs.LoginID, err)
		return
	}
	defer t.done()
	user, err := s.verify(r.Context(), rs.LoginID, p)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			s.cfg.Metrics.failure(failRefused)
			t.refused(r.Context())
		}
		s.writeError(w, rs.LoginID, err)
		return
	}
	if _, err := s.creds.set(r.Context(), user.LoginID, p, user); err != nil {
		s.writeError(w, rs.LoginID, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// DeleteSession is DELETE /api/v1/sessions: this browser signs out of the
// relay. Its WebSockets are closed (4100); the agent's upstream session
// ends after the grace period once no browser of the agent is left, and
// the agent's credential is forgotten with its last relay session.
func (s *Service) DeleteSession(w http.ResponseWriter, r *http.Request) {
	rs, _, _, err := s.Authenticate(r)
	if err != nil {
		s.writeError(w, "", err)
		return
	}
	if err := s.endSession(r.Context(), rs); err != nil {
		s.writeError(w, rs.LoginID, err)
		return
	}
	s.clearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

// Logout is POST /logout: the relay's own page signs out and goes home.
func (s *Service) Logout(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && !s.originAllowed(o) {
		httpx.WriteError(w, http.StatusForbidden, "origin_not_allowed", "origin not allowed")
		return
	}
	if ck, err := r.Cookie(SessionCookie); err == nil {
		if rs, err := s.lookup(r.Context(), ck.Value); err == nil {
			_ = s.endSession(r.Context(), rs)
		}
	}
	s.clearSessionCookie(w)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// writeError maps the layer's errors to statuses and codes.
func (s *Service) writeError(w http.ResponseWriter, loginID string, err error) {
	var te *ThrottledError
	switch {
	case errors.As(err, &te):
		s.log.Info("sign-in throttled", zap.String("agent", loginID), zap.Duration("retryAfter", te.RetryAfter))
		w.Header().Set("Retry-After", strconv.Itoa(int((te.RetryAfter+time.Second-1)/time.Second)))
		httpx.WriteError(w, http.StatusTooManyRequests, "too_many_attempts",
			fmt.Sprintf("Too many refused sign-ins for this user; the relay stopped asking Finesse so the account is not locked. Try again in %v.", te.RetryAfter.Round(time.Second)))
	case errors.Is(err, ErrTooManyTickets):
		w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.TicketTTL/time.Second)))
		httpx.WriteError(w, http.StatusTooManyRequests, "too_many_tickets", err.Error())
	case errors.Is(err, ErrRefused):
		s.log.Info("sign-in refused by Finesse", zap.String("agent", loginID), zap.Error(err))
		httpx.WriteError(w, http.StatusUnauthorized, "invalid_credentials", "Finesse refused these credentials; check the loginId and password or sign in to Finesse again")
	case errors.Is(err, ErrUnauthenticated), errors.Is(err, cred.ErrSignInAgain):
		httpx.WriteError(w, http.StatusUnauthorized, "unauthenticated", strings.TrimPrefix(err.Error(), "signin: not signed in: "))
	case errors.Is(err, store.ErrUnavailable):
		s.log.Warn("store unavailable", zap.String("agent", loginID), zap.Error(err))
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, http.StatusServiceUnavailable, "store_unavailable", "the relay's session store is unreachable; open sessions keep working, new sign-ins will work again when it is back")
	case errors.Is(err, agent.ErrManagerStopped):
		httpx.WriteError(w, http.StatusServiceUnavailable, "shutting_down", "the relay is shutting down; retry in a moment")
	default:
		s.log.Warn("sign-in failed: Finesse unreachable", zap.String("agent", loginID), zap.Error(err))
		httpx.WriteError(w, http.StatusBadGateway, "finesse_unreachable", "no Finesse side answered; retry in a few seconds")
	}
}

func (s *Service) setSessionCookie(w http.ResponseWriter, tok string) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: tok, Path: "/", MaxAge: int(s.cfg.SessionTTL / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Service) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
}
