package signin

import (
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"finesse-relay/server/cred"
	"finesse-relay/server/ids"
)

// Login is GET /login?return=/path: the SSO sign-in of the relay's pages.
// The OAuth state is random and bound to this browser by a signed HttpOnly
// cookie; nothing is stored until the callback.
func (s *Service) Login(w http.ResponseWriter, r *http.Request) {
	if s.cfg.IdS == nil {
		signInError(w, r, "SSO is not configured on this relay (IDS_URL). Sign in with your Finesse password.")
		return
	}
	returnTo := r.URL.Query().Get("return")
	if !ids.IsLocalPath(returnTo) {
		returnTo = "/"
	}
	authURL, err := s.cfg.IdS.BeginLogin(w, true, returnTo)
	if err != nil {
		signInError(w, r, "Could not start the SSO sign-in: "+err.Error())
		return
	}
	http.Redirect(w, r, authURL, http.StatusFound) // #nosec G710 -- authURL is the configured IDS_URL node's authorize endpoint; the request adds only the random state
}

// Callback is GET /idscallback: IdS returns the authorization code.
func (s *Service) Callback(w http.ResponseWriter, r *http.Request) {
	if s.cfg.IdS == nil {
		http.NotFound(w, r)
		return
	}
	code, returnTo, err := s.cfg.IdS.FinishLogin(r, w)
	if err != nil {
		s.log.Info("SSO callback refused", zap.Error(err))
		signInError(w, r, "The SSO sign-in did not complete ("+err.Error()+"). Please sign in again.")
		return
	}
	tok, err := s.cfg.IdS.Exchange(r.Context(), code)
	if err != nil {
		s.log.Warn("IdS code exchange failed", zap.Error(err))
		signInError(w, r, "The Identity Service did not accept the sign-in: "+err.Error())
		return
	}
	userID, err := s.tokenUser(r, tok.AccessToken)
	if err != nil {
		signInError(w, r, "The Identity Service token could not be read: "+err.Error())
		return
	}
	// Finesse decides: GET /User/{user_id} with the token must answer (the
	// IdS user_id may be the loginName; Finesse returns the loginId).
	p := presented{kind: cred.Token, ids: tok, source: s.cfg.IdS.TokenSource(tok)}
	user, err := s.join(r.Context(), userID, p, clientAddress(r), "sso")
	if err != nil {
		s.log.Warn("SSO sign-in not accepted by Finesse", zap.String("user", userID), zap.Error(err))
		signInError(w, r, "Finesse did not accept your SSO sign-in. Check that you are a Finesse agent.")
		return
	}
	t, _, err := s.createSession(r.Context(), user.LoginID)
	if err != nil {
		signInError(w, r, "The relay could not save your session (its store is unreachable); try again in a moment.")
		return
	}
	s.setSessionCookie(w, t)
	if !ids.IsLocalPath(returnTo) { // FinishLogin returns what BeginLogin checked, under the state cookie's HMAC; checked again here
		returnTo = "/"
	}
	http.Redirect(w, r, returnTo, http.StatusFound) // #nosec G710 -- returnTo is a local path (ids.IsLocalPath just above): no scheme, no host, no //
}

// tokenUser finds the IdS user_id of an access token: verified locally when
// IdS offers its public key, otherwise read from the token and left to
// Finesse to verify (it answers 401 for a forged token).
func (s *Service) tokenUser(r *http.Request, access string) (string, error) {
	claims, err := s.cfg.IdS.Verify(r.Context(), access)
	if errors.Is(err, ids.ErrNoPublicKey) {
		claims, err = ids.UnverifiedClaims(access)
	}
	if err != nil {
		return "", err
	}
	return claims.UserID, nil
}

// signInError sends the browser back to the sign-in page with a message
// (never a secret) that the page shows.
func signInError(w http.ResponseWriter, r *http.Request, msg string) {
	http.Redirect(w, r, "/?error="+url.QueryEscape(msg), http.StatusSeeOther)
}
