package idsd

import (
	"crypto/subtle"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"

	"go.uber.org/zap"
)

// oauthError is an RFC 6749 §5.2 error answer.
type oauthError struct {
	status      int
	code        string
	description string
}

// tokenResponse is the token endpoint's JSON answer.
type tokenResponse struct {
	AccessToken           string `json:"access_token"`
	RefreshToken          string `json:"refresh_token"`
	TokenType             string `json:"token_type"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
}

// handleToken is POST /ids/v1/oauth/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, oauthError{http.StatusMethodNotAllowed, "invalid_request", "use POST"})
		return
	}
	form, oe := readTokenForm(w, r)
	if oe != nil {
		writeOAuthError(w, *oe)
		return
	}
	clientID, basic, oe := s.authenticateClient(r, form)
	if oe != nil {
		if oe.status == http.StatusUnauthorized && basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="Cisco Identity Service"`)
		}
		writeOAuthError(w, *oe)
		return
	}
	var (
		resp tokenResponse
		err  *oauthError
	)
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		resp, err = s.grantCode(clientID, form)
	case "refresh_token":
		resp, err = s.grantRefresh(clientID, form)
	case "":
		err = &oauthError{http.StatusBadRequest, "invalid_request", "grant_type is missing"}
	default:
		err = &oauthError{http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"}
	}
	if err != nil {
		s.log.Debug("IdS token request refused", zap.String("client_id", clientID), zap.String("error", err.code), zap.String("reason", err.description))
		writeOAuthError(w, *err)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(resp) // #nosec G117 -- this is the simulated IdS token endpoint: answering the tokens is its job
}

// readTokenForm reads the x-www-form-urlencoded body (size-limited) and
// refuses repeated parameters (RFC 6749 §3.2).
func readTokenForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "the form could not be read"}
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, &oauthError{http.StatusBadRequest, "invalid_request", "parameter " + truncate(k, 40) + " is repeated"}
		}
		if len(v[0]) > maxParamLen {
			return nil, &oauthError{http.StatusBadRequest, "invalid_request", "parameter " + truncate(k, 40) + " is too long"}
		}
	}
	return r.PostForm, nil
}

// authenticateClient accepts HTTP Basic client_id:client_secret (each
// form-urlencoded, RFC 6749 §2.3.1; raw values are accepted too) or
// client_id/client_secret form fields, but not both at once.
func (s *Server) authenticateClient(r *http.Request, form url.Values) (clientID string, basic bool, oe *oauthError) {
	id, secret, basic := r.BasicAuth()
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	var ok bool
	if basic {
		if formSecret != "" {
			return "", true, &oauthError{http.StatusBadRequest, "invalid_request", "use one client authentication method, not Basic and client_secret together"}
		}
		ids := decodedOrRaw(id)
		if formID != "" && !slices.Contains(ids, formID) {
			return "", true, &oauthError{http.StatusBadRequest, "invalid_request", "client_id in the body differs from the Basic credentials"}
		}
		clientID, ok = s.checkClient(ids, decodedOrRaw(secret))
	} else {
		clientID, ok = s.checkClient([]string{formID}, []string{formSecret})
	}
	if !ok {
		return "", basic, &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication failed"}
	}
	return clientID, basic, nil
}

// decodedOrRaw returns a Basic credential form-decoded (as RFC 6749 §2.3.1
// and golang.org/x/oauth2 send it) and as sent.
func decodedOrRaw(v string) []string {
	if u, err := url.QueryUnescape(v); err == nil && u != v {
		return []string{u, v}
	}
	return []string{v}
}

// checkClient finds the registered client among ids whose secret is among
// secrets (constant-time comparison).
func (s *Server) checkClient(ids, secrets []string) (string, bool) {
	for _, id := range ids {
		c, ok := s.clients[id]
		if !ok {
			continue
		}
		for _, sec := range secrets {
			if subtle.ConstantTimeCompare([]byte(sec), []byte(c.Secret)) == 1 {
				return id, true
			}
		}
	}
	return "", false
}

// grantCode redeems an authorization code. A code is consumed the first
// time its client presents it, whatever the outcome; presenting it again
// also revokes the tokens it produced (RFC 6749 §4.1.2).
func (s *Server) grantCode(clientID string, form url.Values) (tokenResponse, *oauthError) {
	code, redirectURI := form.Get("code"), form.Get("redirect_uri")
	if code == "" {
		return tokenResponse{}, &oauthError{http.StatusBadRequest, "invalid_request", "code is missing"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	g, ok := s.codes[code]
	switch {
	case !ok:
		return tokenResponse{}, invalidGrant("the authorization code is unknown or expired")
	case g.clientID != clientID:
		return tokenResponse{}, invalidGrant("the authorization code was issued to another client")
	case g.used:
		s.revokeFamilyLocked(code)
		return tokenResponse{}, invalidGrant("the authorization code was already used")
	}
	g.used = true
	switch {
	case !now.Before(g.expires):
		return tokenResponse{}, invalidGrant("the authorization code expired")
	case redirectURI != g.redirectURI:
		return tokenResponse{}, invalidGrant("redirect_uri differs from the one used at the authorization endpoint")
	}
	p, err := s.issueLocked(now, g.userID, clientID, code, now.Add(s.refreshTL))
	if err != nil {
		return tokenResponse{}, &oauthError{http.StatusInternalServerError, "server_error", "tokens could not be issued"}
	}
	return p.response(), nil
}

// grantRefresh rotates a refresh token: the presented one stops working and
// a new pair is issued that keeps the sign-in's absolute refresh expiry. An
// optional "token" field (the old access token, as the IdS SDK sends it) is
// accepted and ignored.
func (s *Server) grantRefresh(clientID string, form url.Values) (tokenResponse, *oauthError) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return tokenResponse{}, &oauthError{http.StatusBadRequest, "invalid_request", "refresh_token is missing"}
	}
	p, err := s.parse(rt)
	if err != nil || p.sub.Usage != usageRefresh {
		return tokenResponse{}, invalidGrant("the refresh token is not valid")
	}
	if p.sub.ClientID != clientID {
		return tokenResponse{}, invalidGrant("the refresh token was issued to another client")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	g, ok := s.refresh[p.jti]
	switch {
	case !ok:
		return tokenResponse{}, invalidGrant("the refresh token was revoked or already used")
	case !now.Before(g.expires):
		delete(s.refresh, p.jti)
		return tokenResponse{}, invalidGrant("the refresh token expired; sign in again")
	}
	delete(s.refresh, p.jti)
	np, err := s.issueLocked(now, g.userID, clientID, g.family, g.expires)
	if err != nil {
		return tokenResponse{}, &oauthError{http.StatusInternalServerError, "server_error", "tokens could not be issued"}
	}
	return np.response(), nil
}

func invalidGrant(desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_grant", desc}
}

func (p pair) response() tokenResponse {
	return tokenResponse{
		AccessToken: p.access, RefreshToken: p.refresh, TokenType: "Bearer",
		ExpiresIn: int64(p.accessTTL.Seconds()), RefreshTokenExpiresIn: int64(p.refreshExpires.Seconds()),
	}
}

func writeOAuthError(w http.ResponseWriter, e oauthError) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.description})
}

// handlePublicKey is GET /ids/v1/keys/token/public: the token-signing key
// as PEM "PUBLIC KEY" (PKIX), for clients that authenticate with Basic
// client credentials (reference A.7). ?download=true adds an attachment
// disposition.
func (s *Server) handlePublicKey(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		_, ok = s.checkClient(decodedOrRaw(id), decodedOrRaw(secret))
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="Cisco Identity Service"`)
		http.Error(w, "client credentials required", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.URL.Query().Get("download") == "true" {
		w.Header().Set("Content-Disposition", `attachment; filename="ids_public_key.pem"`)
	}
	_, _ = w.Write(s.pubPEM)
}
