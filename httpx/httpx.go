// Package httpx holds the relay's HTTP conventions that several packages
// share: one origin policy (CORS, CSRF and the WebSocket Origin check all ask
// it) and one JSON error shape. It imports nothing of the relay's.
package httpx

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Origins is an allow-list of browser origins, compared after
// normalization: lower case, no trailing slash, no default port
// ("HTTPS://Finesse.example:443/" equals "https://finesse.example").
// "*" allows every origin. The zero value allows none. An Origins is
// immutable after NewOrigins and safe for concurrent use.
type Origins struct {
	any bool
	set map[string]struct{}
}

// NewOrigins returns the policy allowing each of list ("*" allows any).
func NewOrigins(list ...string) Origins {
	o := Origins{set: make(map[string]struct{}, len(list))}
	for _, s := range list {
		if s == "*" {
			o.any = true
			continue
		}
		if n := NormalizeOrigin(s); n != "" {
			o.set[n] = struct{}{}
		}
	}
	return o
}

// Allows reports whether a browser's Origin header value is allowed. The
// origin "null" (sandboxed frames, file:) is allowed only by "*".
func (o Origins) Allows(origin string) bool {
	if o.any {
		return true
	}
	_, ok := o.set[NormalizeOrigin(origin)]
	return ok
}

// AllowsAny reports whether the policy is "*".
func (o Origins) AllowsAny() bool { return o.any }

// List returns the normalized origins (without "*"), in no order.
func (o Origins) List() []string {
	l := make([]string, 0, len(o.set))
	for k := range o.set {
		l = append(l, k)
	}
	return l
}

// NormalizeOrigin lowercases an origin and drops a trailing slash and a
// default port. A value that is not scheme://host[:port] comes back
// lower-cased and trimmed, so it can only equal another such value.
func NormalizeOrigin(s string) string {
	s = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "/"))
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return s
	}
	host := u.Host
	if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
		host = u.Hostname()
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return u.Scheme + "://" + host
}

// ErrorBody is the JSON shape of every relay error:
// {"error":{"code":"…","message":"…"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	// Code is a stable machine-readable code (snake_case).
	Code string `json:"code"`
	// Message says what happened and what to do, in words.
	Message string `json:"message"`
}

// WriteError writes {"error":{"code","message"}} with status.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, ErrorBody{ErrorDetail{Code: code, Message: msg}})
}

// WriteJSON writes v as JSON with status, never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
