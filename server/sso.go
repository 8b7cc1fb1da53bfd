package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"finesse-relay/server/ids"
)

// handleLogin is GET /login: the SSO sign-in of the agent tab. The OAuth
// state is random and bound to this browser by an HttpOnly cookie.
func (a *App) handleLogin(w http.ResponseWriter, r *http.Request) {
	if a.ids == nil {
		a.signInError(w, r, "SSO is not configured on this relay (IDS_URL). Sign in with your Finesse password.")
		return
	}
	returnTo := r.URL.Query().Get("return")
	if u, err := url.Parse(returnTo); err != nil || returnTo == "" || u.IsAbs() || u.Host != "" || !strings.HasPrefix(returnTo, "/") || strings.HasPrefix(returnTo, "//") {
		returnTo = "/"
	}
	authURL, err := a.ids.BeginLogin(w, true, returnTo)
	if err != nil {
		a.signInError(w, r, "Could not start the SSO sign-in: "+err.Error())
		return
	}
	http.Redirect(w, r, authURL, http.StatusFound) // #nosec G710 -- authURL is the configured IdS authorize URL built by ids.BeginLogin
}

// handleCallback is GET /idscallback: IdS returns the authorization code.
func (a *App) handleCallback(w http.ResponseWriter, r *http.Request) {
	if a.ids == nil {
		http.NotFound(w, r)
		return
	}
	code, returnTo, err := a.ids.FinishLogin(r, w)
	if err != nil {
		a.log.Info("SSO callback refused", zap.Error(err))
		a.signInError(w, r, "The SSO sign-in did not complete ("+err.Error()+"). Please sign in again.")
		return
	}
	tok, err := a.ids.Exchange(r.Context(), code)
	if err != nil {
		a.log.Warn("IdS code exchange failed", zap.Error(err))
		a.signInError(w, r, "The Identity Service did not accept the sign-in: "+err.Error())
		return
	}
	userID, err := a.tokenUser(r, tok.AccessToken)
	if err != nil {
		a.signInError(w, r, "The Identity Service token could not be read: "+err.Error())
		return
	}
	// Finesse decides: GET /User/{user_id} with the token must answer (the
	// IdS user_id may be the loginName; Finesse returns the loginId).
	s, err := a.join(r.Context(), userID, signInCreds{sso: true, source: a.ids.TokenSource(tok)})
	if err != nil {
		a.log.Warn("SSO sign-in not accepted by Finesse", zap.String("user", userID), zap.Error(err))
		a.signInError(w, r, "Finesse did not accept your SSO sign-in. Check that you are a Finesse agent.")
		return
	}
	a.setSessionCookie(w, a.relay.create(s.LoginID()))
	http.Redirect(w, r, returnTo, http.StatusFound) // #nosec G710 -- returnTo passed ids.IsLocalPath in FinishLogin (a local path only)
}

// tokenUser finds the IdS user_id of an access token: verified locally when
// IdS offers its public key, otherwise read from the token and left to
// Finesse to verify (it answers 401 for a forged token).
func (a *App) tokenUser(r *http.Request, access string) (string, error) {
	claims, err := a.ids.Verify(r.Context(), access)
	if err == nil {
		return claims.UserID, nil
	}
	if !errors.Is(err, ids.ErrNoPublicKey) {
		return "", err
	}
	return unverifiedUserID(access)
}

// signInError sends the browser back to the sign-in page with a message
// (never a secret) that the page shows.
func (a *App) signInError(w http.ResponseWriter, r *http.Request, msg string) {
	http.Redirect(w, r, "/?error="+url.QueryEscape(msg), http.StatusSeeOther)
}

// unverifiedUserID reads user_id from an IdS JWT without checking it.
func unverifiedUserID(jwt string) (string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", errors.New("JWT payload is not base64url")
	}
	var claims struct {
		Sub    string `json:"sub"`
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", errors.New("JWT payload is not JSON")
	}
	if claims.UserID != "" {
		return claims.UserID, nil
	}
	var sub struct {
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(claims.Sub), &sub); err != nil || sub.UserID == "" {
		return "", errors.New("JWT names no user_id")
	}
	return sub.UserID, nil
}

// handleLogout is POST /logout: the tab signs out of the relay.
func (a *App) handleLogout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if o := r.Header.Get("Origin"); o != "" && !a.originAllowed(o) {
			writeError(w, http.StatusForbidden, "origin_not_allowed", "origin not allowed")
			return
		}
		a.relay.delete(ck.Value)
	}
	a.clearSessionCookie(w)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
