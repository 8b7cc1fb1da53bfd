package idsd

import (
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// maxListedUsers caps the visible user table on the sign-in page (the
// datalist still offers every user).
const maxListedUsers = 40

// authRequest is a validated authorization request.
type authRequest struct {
	ClientID, RedirectURI, State, ResponseType string
}

// handleAuthorize serves the sign-in page (GET) and its form (POST).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	var params url.Values
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		params = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			s.errorPage(w, http.StatusBadRequest, "The sign-in form could not be read.")
			return
		}
		params = r.PostForm
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	req, ok := s.checkAuthRequest(w, params)
	if !ok {
		return
	}
	if req.ResponseType != "code" {
		// The redirect URI is registered, so errors go back to the client
		// (RFC 6749 §4.1.2.1).
		redirectWith(w, r, req.RedirectURI, url.Values{
			"error":             {"unsupported_response_type"},
			"error_description": {"only response_type=code is supported"},
		}, req.State)
		return
	}
	if r.Method != http.MethodPost {
		s.signInPage(w, http.StatusOK, req, "", "")
		return
	}
	username := strings.TrimSpace(params.Get("username"))
	u, known := s.user(username)
	if !known || subtle.ConstantTimeCompare([]byte(params.Get("password")), []byte(u.Password)) != 1 {
		s.log.Debug("IdS sign-in refused", zap.String("user", truncate(username, 64)))
		s.signInPage(w, http.StatusOK, req, username, "Unknown user or wrong password.")
		return
	}
	code, err := randomHex(32)
	if err != nil {
		s.errorPage(w, http.StatusInternalServerError, "The sign-in could not be completed.")
		return
	}
	s.mu.Lock()
	now := s.now()
	s.sweepLocked(now)
	s.codes[code] = &codeGrant{userID: u.ID, clientID: req.ClientID, redirectURI: req.RedirectURI, expires: now.Add(s.codeTTL)}
	s.mu.Unlock()
	s.log.Debug("IdS sign-in", zap.String("user", u.ID), zap.String("client_id", req.ClientID))
	redirectWith(w, r, req.RedirectURI, url.Values{"code": {code}}, req.State)
}

// checkAuthRequest validates client_id and redirect_uri. On failure it
// writes a 400 page and never redirects (RFC 6749 §4.1.2.1).
func (s *Server) checkAuthRequest(w http.ResponseWriter, p url.Values) (authRequest, bool) {
	for _, k := range []string{"client_id", "redirect_uri", "state", "response_type"} {
		if len(p[k]) > 1 || len(p.Get(k)) > maxParamLen {
			s.errorPage(w, http.StatusBadRequest, "The request repeats or oversizes the parameter "+k+".")
			return authRequest{}, false
		}
	}
	req := authRequest{
		ClientID: p.Get("client_id"), RedirectURI: p.Get("redirect_uri"),
		State: p.Get("state"), ResponseType: p.Get("response_type"),
	}
	c, ok := s.clients[req.ClientID]
	if !ok {
		s.errorPage(w, http.StatusBadRequest, "Unknown client_id. The application is not registered with this Identity Service.")
		return authRequest{}, false
	}
	if req.RedirectURI == "" && len(c.RedirectURIs) == 1 && checkRegisteredURI(c.RedirectURIs[0]) == nil {
		if _, pat := parsePattern(c.RedirectURIs[0]); !pat {
			req.RedirectURI = c.RedirectURIs[0]
		}
	}
	if req.RedirectURI == "" || !redirectAllowed(c, req.RedirectURI) {
		s.errorPage(w, http.StatusBadRequest, "The redirect_uri is missing or not registered for this client.")
		return authRequest{}, false
	}
	return req, true
}

// redirectWith sends the browser to base with params and state added to its
// query (state echoed verbatim).
func redirectWith(w http.ResponseWriter, r *http.Request, base string, params url.Values, state string) {
	u, err := url.Parse(base)
	if err != nil { // registered URIs were checked; unreachable
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// pageData feeds the sign-in and error pages.
type pageData struct {
	Req      authRequest
	Username string
	Error    string
	Users    []User
	More     int
	All      []User
}

func (s *Server) signInPage(w http.ResponseWriter, status int, req authRequest, username, msg string) {
	d := pageData{Req: req, Username: username, Error: msg, All: s.order, Users: s.order}
	if len(d.Users) > maxListedUsers {
		d.More = len(d.Users) - maxListedUsers
		d.Users = d.Users[:maxListedUsers]
	}
	s.render(w, status, "signin", d)
}

func (s *Server) errorPage(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, "error", pageData{Error: msg})
}

func (s *Server) render(w http.ResponseWriter, status int, name string, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		s.log.Warn("IdS page render failed", zap.Error(err))
	}
}

var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cisco Identity Service (simulated)</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f3f5f7;color:#1b1f23;margin:0}
main{max-width:26rem;margin:3rem auto;background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);padding:2rem}
h1{font-size:1.25rem;margin:0 0 .25rem}p.sub{color:#57606a;margin:0 0 1.5rem;font-size:.9rem}
label{display:block;font-size:.85rem;margin:.75rem 0 .25rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #c4c9cf;border-radius:4px;font-size:1rem}
button{margin-top:1.25rem;width:100%;padding:.6rem;border:0;border-radius:4px;background:#0b6fb8;color:#fff;font-size:1rem;cursor:pointer}
.err{background:#fde8e8;color:#8a1f1f;border-radius:4px;padding:.6rem;margin:0 0 1rem;font-size:.9rem}
details{margin-top:1.5rem;font-size:.85rem}table{border-collapse:collapse;width:100%}td{padding:.2rem .4rem;border-bottom:1px solid #eee}
</style></head><body><main>{{end}}
{{define "signin"}}{{template "head"}}
<h1>Cisco Identity Service (simulated)</h1>
<p class="sub">Sign in to continue to the application.</p>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/ids/v1/oauth/authorize" autocomplete="off">
<input type="hidden" name="response_type" value="{{.Req.ResponseType}}">
<input type="hidden" name="client_id" value="{{.Req.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.Req.RedirectURI}}">
{{if .Req.State}}<input type="hidden" name="state" value="{{.Req.State}}">{{end}}
<label for="username">Username</label>
<input type="text" id="username" name="username" list="users" value="{{.Username}}" required autofocus>
<datalist id="users">{{range .All}}<option value="{{.ID}}">{{.Name}}</option>{{end}}</datalist>
<label for="password">Password</label>
<input type="password" id="password" name="password" required>
<button type="submit">Sign in</button>
</form>
{{if .Users}}<details open><summary>Demo users</summary><table>
{{range .Users}}<tr><td>{{.ID}}</td><td>{{.Name}}</td></tr>{{end}}
{{if .More}}<tr><td colspan="2">… and {{.More}} more (type to search)</td></tr>{{end}}
</table></details>{{end}}
</main></body></html>{{end}}
{{define "error"}}{{template "head"}}
<h1>Cisco Identity Service (simulated)</h1>
<p class="err" role="alert">{{.Error}}</p>
<p class="sub">The sign-in request was refused. Check the application's IdS client registration.</p>
</main></body></html>{{end}}
`))
