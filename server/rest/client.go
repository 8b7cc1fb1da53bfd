package rest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"finesse-relay/xmpp/finesse"
)

// Defaults for Config's zero values.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultMaxResponseSize = 2 << 20 // 2 MiB
	// DefaultRefusedHold is how long a refused Basic credential is held
	// back when the Credentials keep yielding it: Finesse's lockout lasts
	// 5 minutes.
	DefaultRefusedHold = 5 * time.Minute
)

// Side is one Finesse node.
type Side struct {
	// Name is "A" or "B".
	Name string
	// BaseURL is the node's HTTPS origin, e.g. https://finesse-a.example.com:8445.
	BaseURL string
}

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	// HTTPClient sends the requests; it carries the CA bundle and is shared
	// with other users (nil: http.DefaultClient). The Client never changes
	// it: it uses a copy whose redirect policy refuses every redirect and
	// that has no cookie jar, and it never sets InsecureSkipVerify itself.
	HTTPClient *http.Client
	// Timeout bounds each call, from sending to the end of the body (0:
	// DefaultTimeout).
	Timeout time.Duration
	// MaxResponseSize bounds a response body (0: DefaultMaxResponseSize).
	MaxResponseSize int64
	// RefusedHold is how long a Basic credential that Finesse refused is
	// not sent again while the Credentials keep yielding the same value (0:
	// DefaultRefusedHold).
	RefusedHold time.Duration
	// Side returns the side Do sends to; the session decides it (failover
	// lives there). Do fails with ErrInvalidRequest when it is nil.
	Side func() Side
	// Owner names the agent whose credentials the client sends (the
	// loginId), for those who hold the client: the proxy's OnAccepted.
	Owner string
	// Credentials give the Authorization header of each call (nil: no
	// Authorization header, for unauthenticated probes of SystemInfo).
	Credentials Credentials
	// OnStatus, if set, observes the result of every call: the status code
	// (0 when no answer was received) and the error Do returns, or for an
	// answer that is not an error, a nil error. The session watches
	// ErrUnreachable and 503 to start its failover checks. It runs on the
	// caller's goroutine and must not block.
	OnStatus func(side Side, status int, err error)
	// Metrics records calls (nil: none).
	Metrics *Metrics
	// Logger receives debug lines per call and warnings for refused
	// credentials (nil: zap.NewNop()). Credentials are never logged.
	Logger *zap.Logger
}

// Client is a Finesse REST client for one agent's credentials.
type Client struct {
	cfg Config
	hc  *http.Client
	log *zap.Logger

	mu        sync.Mutex
	refused   [sha256.Size]byte // hash of the Basic header Finesse refused
	refusedAt time.Time         // zero: none held
	now       func() time.Time
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponseSize <= 0 {
		cfg.MaxResponseSize = DefaultMaxResponseSize
	}
	if cfg.RefusedHold <= 0 {
		cfg.RefusedHold = DefaultRefusedHold
	}
	base := cfg.HTTPClient
	if base == nil {
		base = http.DefaultClient
	}
	hc := *base
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.Jar = nil // a shared jar would carry one agent's Finesse session cookie into another's calls
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Client{cfg: cfg, hc: &hc, log: log, now: time.Now}
}

// Request is one REST call.
type Request struct {
	// Method is the HTTP method (empty: GET).
	Method string
	// Path is the resource, relative to /finesse/api/ ("User/1001") or
	// absolute ("/finesse/api/User/1001"), in escaped form. Paths with
	// empty, "." or ".." segments, encoded slashes or backslashes, a query
	// or a fragment are refused with ErrInvalidRequest.
	Path string
	// Query is the query string.
	Query url.Values
	// Body is sent with Content-Type: application/xml when not empty.
	Body []byte
	// RequestID is sent as the requestId header (empty: a random one).
	// It must match [A-Za-z0-9._:-]{1,64}.
	RequestID string
	// Header holds extra request headers. Authorization, Cookie, Host,
	// hop-by-hop headers and the headers the client sets itself are
	// ignored.
	Header http.Header
}

// Response is Finesse's answer.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header is the response header.
	Header http.Header
	// Body is the response body, at most Config.MaxResponseSize bytes.
	Body []byte
	// RequestID is the requestId Finesse echoed, else the one sent.
	RequestID string
	// Side is the side that answered.
	Side Side
}

// Do sends req to the current side (Config.Side). Any answer Finesse gives
// is returned as a Response, whatever its status; errors are failures to
// get an answer (ErrUnreachable, ErrRedirect, ErrResponseTooLarge,
// ErrCredentials, ErrCredentialRefused, ErrInvalidRequest, or the context's
// error when ctx was cancelled).
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	if c.cfg.Side == nil {
		return nil, fmt.Errorf("%w: no side configured", ErrInvalidRequest)
	}
	return c.DoAt(ctx, c.cfg.Side(), req)
}

// DoAt is Do on a given side (failover probes).
func (c *Client) DoAt(ctx context.Context, side Side, req Request) (*Response, error) {
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	start := time.Now()
	rsp, label, err := c.do(ctx, side, req)
	c.cfg.Metrics.observe(req.Method, label, side.Name, time.Since(start))
	status := 0
	if rsp != nil {
		status = rsp.Status
	}
	if c.cfg.OnStatus != nil {
		c.cfg.OnStatus(side, status, err)
	}
	if ce := c.log.Check(zap.DebugLevel, "finesse rest call"); ce != nil {
		ce.Write(zap.String("method", req.Method), zap.String("path", req.Path), zap.String("side", side.Name),
			zap.String("result", label), zap.Duration("took", time.Since(start)), zap.Error(err))
	}
	if err != nil {
		return nil, err
	}
	return rsp, nil
}

// do performs the call; label is the metrics status label.
func (c *Client) do(ctx context.Context, side Side, req Request) (rsp *Response, label string, err error) {
	target, err := requestURL(side, req.Path, req.Query)
	if err != nil {
		return nil, "invalid", err
	}
	if !validMethod(req.Method) {
		return nil, "invalid", fmt.Errorf("%w: method %q", ErrInvalidRequest, req.Method)
	}
	id := req.RequestID
	if id == "" {
		id = NewRequestID()
	} else if !ValidRequestID(id) {
		return nil, "invalid", fmt.Errorf("%w: requestId must match [A-Za-z0-9._:-]{1,64}", ErrInvalidRequest)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	auth, err := c.authorization(ctx)
	if err != nil {
		return nil, "credentials", err
	}
	if c.isRefused(auth) {
		return nil, "refused", ErrCredentialRefused
	}
	rsp, label, err = c.send(ctx, side, req, target, id, auth)
	if err != nil || rsp.Status != http.StatusUnauthorized {
		return rsp, label, err
	}
	// 401. Never send a refused Basic credential again; retry a Bearer
	// once, and only with a different token.
	switch scheme(auth) {
	case "basic":
		if authenticationFailure(rsp.Body) {
			c.refuse(auth)
			c.log.Warn("finesse refused the basic credential; it is not sent again until it changes",
				zap.String("side", side.Name), zap.Duration("hold", c.cfg.RefusedHold))
		}
	case "bearer":
		fresh, ferr := c.authorization(ctx)
		if ferr == nil && fresh != auth && scheme(fresh) == "bearer" {
			return c.send(ctx, side, req, target, id, fresh)
		}
	}
	return rsp, label, nil
}

// authorization asks the Credentials ("" without Credentials).
func (c *Client) authorization(ctx context.Context) (string, error) {
	if c.cfg.Credentials == nil {
		return "", nil
	}
	cr, err := c.cfg.Credentials.Credential(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	if cr.Secret == "" {
		return "", fmt.Errorf("%w: empty %s", ErrCredentials, cr.Kind)
	}
	a := cr.Authorization()
	if strings.ContainsAny(a, "\r\n") {
		return "", fmt.Errorf("%w: authorization value holds a line break", ErrCredentials)
	}
	return a, nil
}

// send makes one HTTP exchange and reads the body.
func (c *Client) send(ctx context.Context, side Side, req Request, target, id, auth string) (*Response, string, error) {
	var body io.Reader
	if len(req.Body) > 0 {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, target, body)
	if err != nil {
		return nil, "invalid", fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	copyHeaders(hr.Header, req.Header)
	hr.Header.Set("Accept", "application/xml")
	hr.Header.Set("User-Agent", "finesse-relay")
	if len(req.Body) > 0 {
		hr.Header.Set("Content-Type", "application/xml")
	}
	hr.Header["requestId"] = []string{id} // the spelling finesse.js uses
	if auth != "" {
		hr.Header.Set("Authorization", auth)
	}
	hrsp, err := c.hc.Do(hr)
	if err != nil {
		return nil, failureLabel(ctx, err), c.failure(ctx, side, err)
	}
	defer hrsp.Body.Close()
	if hrsp.StatusCode >= 300 && hrsp.StatusCode < 400 {
		_, _ = io.Copy(io.Discard, io.LimitReader(hrsp.Body, 64<<10))
		return nil, statusLabel(hrsp.StatusCode), redirectError(side, hrsp)
	}
	limit := c.cfg.MaxResponseSize
	if hrsp.ContentLength > limit {
		return nil, "too_large", fmt.Errorf("%w: %d bytes announced by side %s, limit %d", ErrResponseTooLarge, hrsp.ContentLength, side.Name, limit)
	}
	data, err := io.ReadAll(io.LimitReader(hrsp.Body, limit+1))
	if err != nil {
		return nil, failureLabel(ctx, err), c.failure(ctx, side, err)
	}
	if int64(len(data)) > limit {
		return nil, "too_large", fmt.Errorf("%w: more than %d bytes from side %s", ErrResponseTooLarge, limit, side.Name)
	}
	rid := hrsp.Header.Get("requestId")
	if rid == "" {
		rid = id
	}
	return &Response{Status: hrsp.StatusCode, Header: hrsp.Header, Body: data, RequestID: rid, Side: side},
		statusLabel(hrsp.StatusCode), nil
}

// failure classifies a transport error: the caller's cancellation, a
// timeout (ErrUnreachable and context.DeadlineExceeded) or another network
// failure (ErrUnreachable).
func (c *Client) failure(ctx context.Context, side Side, err error) error {
	switch failureLabel(ctx, err) {
	case "canceled":
		return fmt.Errorf("rest: call to side %s canceled: %w", side.Name, context.Canceled)
	case "timeout":
		return fmt.Errorf("%w: side %s did not answer in time (timeout %s): %w", ErrUnreachable, side.Name, c.cfg.Timeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("%w: side %s: %w", ErrUnreachable, side.Name, err)
}

// failureLabel names a transport error for metrics.
func failureLabel(ctx context.Context, err error) string {
	if errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled) {
		return "canceled"
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "unreachable"
}

// redirectError explains a redirect answer.
func redirectError(side Side, rsp *http.Response) error {
	port := "443"
	if u, err := url.Parse(side.BaseURL); err == nil {
		port = u.Port()
		if port == "" && u.Scheme == "http" {
			port = "80"
		} else if port == "" {
			port = "443"
		}
	}
	loc := rsp.Header.Get("Location")
	if lu, err := url.Parse(loc); err == nil {
		lu.RawQuery, lu.Fragment, lu.User = "", "", nil
		loc = lu.String()
	}
	return fmt.Errorf("%w: side %s (%s, configured port %s) answered %d with Location %q; the relay follows no redirects: point the side at the HTTPS port Finesse serves REST on (8445 since Finesse 12.5)",
		ErrRedirect, side.Name, side.BaseURL, port, rsp.StatusCode, loc)
}

// isRefused reports whether auth is a Basic value Finesse refused within
// RefusedHold.
func (c *Client) isRefused(auth string) bool {
	if scheme(auth) != "basic" {
		return false
	}
	h := sha256.Sum256([]byte(auth))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refusedAt.IsZero() || c.now().Sub(c.refusedAt) >= c.cfg.RefusedHold {
		return false
	}
	return h == c.refused
}

// refuse records auth as refused.
func (c *Client) refuse(auth string) {
	h := sha256.Sum256([]byte(auth))
	c.mu.Lock()
	c.refused, c.refusedAt = h, c.now()
	c.mu.Unlock()
}

// scheme returns the lower-case authorization scheme of a header value.
func scheme(auth string) string {
	s, _, _ := strings.Cut(auth, " ")
	return strings.ToLower(s)
}

// authenticationFailure reports whether a 401 body says the credential
// itself was refused (which counts towards Finesse's lockout), as opposed
// to "Invalid Authorization User Specified" (the credential is fine but
// may not act on that user). Bodies that are not an ApiErrors report (the
// container's HTML page, an empty body) count as refusals: when unsure,
// protect the account.
func authenticationFailure(body []byte) bool {
	errs, _ := parseErrorBody(body)
	for _, e := range errs {
		if strings.Contains(strings.ToLower(e.ErrorType+" "+e.ErrorMessage), "invalid authorization user") {
			return false
		}
	}
	return true
}

// requestURL builds the URL of a resource on side.
func requestURL(side Side, path string, query url.Values) (string, error) {
	base, err := url.Parse(side.BaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" ||
		base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		return "", fmt.Errorf("%w: side %q base URL %q is not an http(s) origin", ErrInvalidRequest, side.Name, side.BaseURL)
	}
	if strings.HasPrefix(path, "/") {
		rel, ok := strings.CutPrefix(path, finesse.APIPrefix)
		if !ok {
			return "", fmt.Errorf("%w: path %q is not under %s", ErrInvalidRequest, path, finesse.APIPrefix)
		}
		path = rel
	}
	if err := checkPath(path); err != nil {
		return "", err
	}
	s := strings.TrimSuffix(base.Scheme+"://"+base.Host+base.EscapedPath(), "/") + finesse.APIPrefix + path
	if len(query) > 0 {
		s += "?" + query.Encode()
	}
	return s, nil
}

// checkPath validates an escaped resource path relative to /finesse/api/.
func checkPath(p string) error {
	if p == "" || len(p) > 1024 {
		return fmt.Errorf("%w: empty or overlong path", ErrInvalidRequest)
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b <= ' ' || b >= 0x7f || b == '?' || b == '#' || b == '\\' {
			return fmt.Errorf("%w: path %q holds a forbidden character", ErrInvalidRequest, p)
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		un, err := url.PathUnescape(seg)
		if err != nil || seg == "" || un == "." || un == ".." || strings.ContainsAny(un, "/\\") || strings.ContainsFunc(un, isControl) {
			return fmt.Errorf("%w: path %q has an empty, dot or encoded-slash segment", ErrInvalidRequest, p)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// validMethod reports whether m is an HTTP token.
func validMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if b := m[i]; b < 'A' || b > 'Z' {
			return false
		}
	}
	return true
}

// skipHeaders are request headers Request.Header cannot set: credentials,
// hop-by-hop headers and the ones the client sets itself.
var skipHeaders = map[string]bool{
	"Authorization": true, "Cookie": true, "Host": true, "Proxy-Authorization": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
	"Accept": true, "Content-Type": true, "Requestid": true, "User-Agent": true,
}

// copyHeaders copies the allowed headers of src into dst, also leaving out
// the headers src's Connection header names.
func copyHeaders(dst, src http.Header) {
	if len(src) == 0 {
		return
	}
	named := map[string]bool{}
	for _, v := range src.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			named[http.CanonicalHeaderKey(strings.TrimSpace(f))] = true
		}
	}
	for k, vs := range src {
		ck := http.CanonicalHeaderKey(k)
		if skipHeaders[ck] || named[ck] {
			continue
		}
		for _, v := range vs {
			dst.Add(ck, v)
		}
	}
}

// Owner is the agent whose credentials the client sends (Config.Owner).
func (c *Client) Owner() string { return c.cfg.Owner }
