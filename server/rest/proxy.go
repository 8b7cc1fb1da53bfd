package rest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"finesse-relay/httpx"
	"finesse-relay/server/cred"
)

// DefaultMaxBodySize is the default ProxyConfig.MaxBodySize.
const DefaultMaxBodySize = 64 << 10 // 64 KiB

// ProxyPrefix is the path the proxy is mounted under.
const ProxyPrefix = "/api/finesse/"

// Proxy error codes: the "code" of the JSON error body the proxy writes for
// failures on the relay's side. Finesse's own answers (including its XML
// ApiErrors) are passed through unchanged instead.
const (
	CodeUnauthenticated        = "unauthenticated"            // 401: Resolve refused the caller
	CodeCredentialsRefused     = "credentials_refused"        // 401: Finesse already refused the session's Basic credential; not sent again
	CodeCredentialsUnavailable = "credentials_unavailable"    // 401: the session's credential is gone (sign in again); 503: it could not be renewed right now (retry)
	CodeNotAllowed             = "not_allowed"                // 404, 405, 400: method, path or query not on the allow-list
	CodeBadRequest             = "bad_request"                // 400: malformed requestId header
	CodeUnsupportedMediaType   = "unsupported_media_type"     // 415: a PUT/POST without Content-Type: application/xml
	CodeTooLarge               = "too_large"                  // 413: request body over MaxBodySize
	CodeFinesseUnreachable     = "finesse_unreachable"        // 502: no answer from Finesse (network, TLS)
	CodeFinesseRedirect        = "finesse_redirect"           // 502: Finesse redirected (wrong port configured)
	CodeFinesseTooLarge        = "finesse_response_too_large" // 502: Finesse's answer over the client's limit
	CodeTimeout                = "timeout"                    // 504: Finesse did not answer in time
	CodeInternal               = "internal"                   // 500: relay misconfiguration (no side, bad base URL)
)

// ProxyConfig configures the REST proxy.
type ProxyConfig struct {
	// Resolve authenticates the caller (the relay session's bearer token
	// or cookie) and returns the session's Client. An error, or a nil
	// Client, is answered 401 with the error's text as message.
	Resolve func(r *http.Request) (*Client, error)
	// MaxBodySize bounds request bodies (0: DefaultMaxBodySize).
	MaxBodySize int64
	// OnAccepted, if set, is called when Finesse answered 202 Accepted with
	// a requestId, before the answer is written to the browser: the outcome
	// will arrive as the notification carrying requestID. path is the
	// Finesse REST path (/finesse/api/…) and c the client Resolve gave
	// (its Owner is the agent). The session core uses it to reconcile
	// requests whose notification was lost during a reconnect or failover.
	// It must not block.
	OnAccepted func(c *Client, requestID string, path string)
	// Metrics counts proxy requests by outcome (nil: none).
	Metrics *Metrics
	// Logger receives debug lines per request and warnings for relay
	// misconfiguration (nil: zap.NewNop()). Headers are never logged.
	Logger *zap.Logger
}

// proxy is the handler NewProxy returns.
type proxy struct {
	cfg ProxyConfig
	log *zap.Logger
}

// NewProxy returns the browser-facing REST proxy, mounted under
// /api/finesse/ (requests for /api/finesse/User/1001 reach
// /finesse/api/User/1001 on the session's current side). See the package
// documentation and docs/rest.md for the allow-list and error codes.
func NewProxy(cfg ProxyConfig) http.Handler {
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &proxy{cfg: cfg, log: log}
}

// ServeHTTP forwards one allow-listed request.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var client *Client
	var err error
	if p.cfg.Resolve != nil {
		client, err = p.cfg.Resolve(r)
	}
	if err != nil || client == nil {
		msg := "sign in to the relay first"
		if err != nil {
			msg = err.Error()
		}
		p.fail(w, r, http.StatusUnauthorized, CodeUnauthenticated, msg)
		return
	}

	path, ok := proxyPath(r.URL)
	if !ok {
		p.fail(w, r, http.StatusNotFound, CodeNotAllowed, "path is not a Finesse resource the relay forwards")
		return
	}
	rt, allowed := match(r.Method, path)
	switch {
	case rt == nil:
		p.fail(w, r, http.StatusNotFound, CodeNotAllowed, "path is not a Finesse resource the relay forwards")
		return
	case !allowed:
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		p.fail(w, r, http.StatusMethodNotAllowed, CodeNotAllowed, r.Method+" is not allowed on this resource")
		return
	}
	query, err := rt.filterQuery(r.URL.RawQuery)
	if err != nil {
		p.fail(w, r, http.StatusBadRequest, CodeNotAllowed, err.Error())
		return
	}
	id := r.Header.Get("requestId")
	if id != "" && !ValidRequestID(id) {
		p.fail(w, r, http.StatusBadRequest, CodeBadRequest, "requestId header must match [A-Za-z0-9._:-]{1,64}")
		return
	}
	var body []byte
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !isXML(r.Header.Get("Content-Type")) {
			p.fail(w, r, http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "send Content-Type: application/xml")
			return
		}
		if body, ok = p.readBody(w, r); !ok {
			return
		}
	}

	req := Request{Method: r.Method, Path: path, Query: query, Body: body, RequestID: id}
	if v := r.Header.Values("Accept-Language"); len(v) > 0 {
		req.Header = http.Header{"Accept-Language": v}
	}
	rsp, err := client.Do(r.Context(), req)
	if err != nil {
		p.upstreamFailure(w, r, err)
		return
	}
	if rsp.Status == http.StatusAccepted && rsp.RequestID != "" && p.cfg.OnAccepted != nil {
		p.cfg.OnAccepted(client, rsp.RequestID, "/finesse/api/"+path)
	}
	h := w.Header()
	if ct := rsp.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	} else {
		h["Content-Type"] = nil // pass "none" through: no sniffing
	}
	h.Set("requestId", rsp.RequestID)
	secureHeaders(h)
	// Finesse's own HTML error pages must never render as a page of the
	// relay's origin.
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Content-Length", strconv.Itoa(len(rsp.Body)))
	w.WriteHeader(rsp.Status)
	if r.Method != http.MethodHead && len(rsp.Body) > 0 {
		_, _ = w.Write(rsp.Body)
	}
	p.cfg.Metrics.proxy("forwarded")
	if ce := p.log.Check(zap.DebugLevel, "proxied"); ce != nil {
		ce.Write(zap.String("method", r.Method), zap.String("path", path), zap.Int("status", rsp.Status),
			zap.String("requestId", rsp.RequestID), zap.String("side", rsp.Side.Name))
	}
}

// readBody reads a bounded request body; on failure it has answered.
func (p *proxy) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.ContentLength > p.cfg.MaxBodySize {
		p.fail(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body over %d bytes", p.cfg.MaxBodySize))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.cfg.MaxBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			p.fail(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body over %d bytes", p.cfg.MaxBodySize))
		} else {
			p.fail(w, r, http.StatusBadRequest, CodeBadRequest, "request body could not be read")
		}
		return nil, false
	}
	return body, true
}

// upstreamFailure answers a failed call to Finesse.
func (p *proxy) upstreamFailure(w http.ResponseWriter, r *http.Request, err error) {
	var status int
	var code, msg string
	switch {
	case errors.Is(err, ErrCredentialRefused):
		status, code, msg = http.StatusUnauthorized, CodeCredentialsRefused, "Finesse refused this user's credentials; sign in again"
	case errors.Is(err, ErrCredentials) && errors.Is(err, cred.ErrSignInAgain):
		status, code, msg = http.StatusUnauthorized, CodeCredentialsUnavailable, "the session's Finesse credentials are gone (IdS refused to renew them); sign in again"
	case errors.Is(err, ErrCredentials):
		// IdS unreachable during a refresh, say: transient, not a sign-out.
		w.Header().Set("Retry-After", "5")
		status, code, msg = http.StatusServiceUnavailable, CodeCredentialsUnavailable, "the session's Finesse token could not be renewed right now (is the Identity Service reachable?); retry in a few seconds"
	case errors.Is(err, context.DeadlineExceeded):
		status, code, msg = http.StatusGatewayTimeout, CodeTimeout, "Finesse did not answer in time"
	case errors.Is(err, ErrRedirect):
		status, code, msg = http.StatusBadGateway, CodeFinesseRedirect, "Finesse redirected the request; the relay's Finesse port is misconfigured"
		p.log.Warn("finesse redirected a proxied request", zap.Error(err))
	case errors.Is(err, ErrResponseTooLarge):
		status, code, msg = http.StatusBadGateway, CodeFinesseTooLarge, "Finesse's answer is larger than the relay accepts"
	case errors.Is(err, ErrInvalidRequest):
		status, code, msg = http.StatusInternalServerError, CodeInternal, "the relay cannot reach Finesse as configured"
		p.log.Warn("proxied request not sent", zap.Error(err))
	default: // ErrUnreachable, or the browser went away
		status, code, msg = http.StatusBadGateway, CodeFinesseUnreachable, "Finesse is unreachable"
	}
	p.fail(w, r, status, code, msg)
}

// fail writes a relay-side error as JSON.
func (p *proxy) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	p.cfg.Metrics.proxy(code)
	if ce := p.log.Check(zap.DebugLevel, "proxy refused"); ce != nil {
		ce.Write(zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", status), zap.String("code", code))
	}
	httpx.WriteError(w, status, code, msg)
}

// secureHeaders sets the headers every proxy answer carries.
func secureHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// isXML reports whether a Content-Type is application/xml.
func isXML(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/xml"
}

// proxyPath returns the resource path under ProxyPrefix, or false when the
// request path carries percent-encoding (no allowed id needs it, and it is
// how encoded slashes and dots hide).
func proxyPath(u *url.URL) (string, bool) {
	p := u.EscapedPath()
	if strings.Contains(p, "%") || strings.Contains(u.Path, "%") {
		return "", false
	}
	if rest, ok := strings.CutPrefix(p, ProxyPrefix); ok {
		return rest, true
	}
	// Mounted with http.StripPrefix("/api/finesse", ...).
	return strings.TrimPrefix(p, "/"), true
}

// route is one allow-listed resource.
type route struct {
	segments []string                     // literal segments; "{id}" matches an id
	methods  []string                     // allowed methods
	query    map[string]func(string) bool // allowed query parameters and their validators
}

// routes is the allow-list. Keep docs/rest.md in step.
var routes = []route{
	{segments: []string{"SystemInfo"}, methods: []string{http.MethodGet}},
	{segments: []string{"User", "{id}"}, methods: []string{http.MethodGet, http.MethodPut}},
	{segments: []string{"User", "{id}", "Dialogs"}, methods: []string{http.MethodGet, http.MethodPost}},
	{segments: []string{"User", "{id}", "Dialogs", "Media"}, methods: []string{http.MethodGet}},
	{segments: []string{"Dialog", "{id}"}, methods: []string{http.MethodGet, http.MethodPut}},
	{segments: []string{"User", "{id}", "ReasonCodes"}, methods: []string{http.MethodGet}, query: map[string]func(string) bool{"category": upperToken}},
	{segments: []string{"User", "{id}", "ReasonCode", "{id}"}, methods: []string{http.MethodGet}},
	{segments: []string{"ReasonCodes"}, methods: []string{http.MethodGet}, query: map[string]func(string) bool{"category": upperToken}},
	{segments: []string{"User", "{id}", "WrapUpReasons"}, methods: []string{http.MethodGet}},
	{segments: []string{"User", "{id}", "MediaPropertiesLayouts"}, methods: []string{http.MethodGet}},
	{segments: []string{"Team", "{id}"}, methods: []string{http.MethodGet}},
	{segments: []string{"Queue", "{id}"}, methods: []string{http.MethodGet}},
	{segments: []string{"User", "{id}", "Queues"}, methods: []string{http.MethodGet}},
	{segments: []string{"User", "{id}", "Media", "{id}"}, methods: []string{http.MethodGet, http.MethodPut}},
}

// match finds the route of path; allowed says whether method is allowed
// on it. A nil route means the path is not on the allow-list.
func match(method, path string) (rt *route, allowed bool) {
	segs := strings.Split(path, "/")
	for i := range routes {
		if !routes[i].matches(segs) {
			continue
		}
		for _, m := range routes[i].methods {
			if m == method {
				return &routes[i], true
			}
		}
		return &routes[i], false
	}
	return nil, false
}

// matches reports whether segs fit the route's segments.
func (rt *route) matches(segs []string) bool {
	if len(segs) != len(rt.segments) {
		return false
	}
	for i, s := range rt.segments {
		if s == "{id}" {
			if !ValidProxyID(segs[i]) {
				return false
			}
		} else if segs[i] != s {
			return false
		}
	}
	return true
}

// filterQuery checks a raw query against the route's allowed parameters.
func (rt *route) filterQuery(raw string) (url.Values, error) {
	if raw == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, errors.New("malformed query string")
	}
	for k, vs := range q {
		valid, ok := rt.query[k]
		if !ok {
			return nil, fmt.Errorf("query parameter %q is not allowed on this resource", k)
		}
		if len(vs) != 1 || !valid(vs[0]) {
			return nil, fmt.Errorf("query parameter %q must appear once with a valid value", k)
		}
	}
	return q, nil
}

// ValidProxyID reports whether a path id is acceptable to the proxy: 1 to
// 64 characters from [A-Za-z0-9._@-], not containing "..".
func ValidProxyID(id string) bool {
	if id == "" || len(id) > 64 || id == "." || strings.Contains(id, "..") {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '.', b == '_', b == '@', b == '-':
		default:
			return false
		}
	}
	return true
}
