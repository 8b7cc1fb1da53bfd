package bosh

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
)

// Defaults applied by Dial to zero Config fields.
const (
	DefaultHold          = 1
	DefaultWait          = 30 * time.Second
	DefaultMaxBodySize   = 1 << 20 // 1 MiB
	DefaultMaxReadBuffer = 4 << 20 // 4 MiB
	DefaultCloseTimeout  = 2 * time.Second
)

// Config configures Dial. Only URL and Domain are required.
type Config struct {
	// URL of the connection manager, e.g. https://finesse.example.com:7443/http-bind.
	// A plain http URL is accepted only for a loopback host (tests, simulator).
	URL string

	// Domain is the XMPP domain, the 'to' of the session.
	Domain string

	// TLSConfig (RootCAs, ServerName, …) is used to build the HTTP client when
	// HTTPClient is nil. Nil means the system roots.
	TLSConfig *tls.Config

	// HTTPClient, if set, sends every request; its Timeout should be zero or
	// longer than Wait (each request already carries its own deadline of
	// wait + 10 s). Nil means a client built from TLSConfig with connect and
	// TLS handshake timeouts of 10 s, no redirects, and its idle connections
	// closed by Close.
	HTTPClient *http.Client

	// Hold is the number of requests the server may keep waiting (long-polls
	// kept outstanding). Zero means 1. The server's answer wins if lower.
	Hold int

	// Wait is the longest time the server may hold a request. Zero means 30 s.
	// The server's answer wins if lower.
	Wait time.Duration

	// Requests caps the requests in flight at once. Zero means what the
	// server answers (normally hold+1); a lower value here wins.
	Requests int

	// MaxBodySize bounds every response body and the payload of every
	// request. Zero means 1 MiB.
	MaxBodySize int64

	// MaxReadBuffer bounds the received data not yet read by the caller; while
	// more is buffered no new long-poll is sent. Zero means 4 MiB.
	MaxReadBuffer int

	// CloseTimeout bounds how long Close waits for the server to answer the
	// terminate request. Zero means 2 s.
	CloseTimeout time.Duration

	// Lang is the xml:lang of the session. Empty means "en".
	Lang string

	// Logger receives debug logs (never payloads, never the sid). Nil means
	// zap.NewNop().
	Logger *zap.Logger
}

// normalized returns a copy of c with defaults applied, or an error wrapping
// ErrConfig.
func (c Config) normalized() (Config, error) {
	if c.Domain == "" {
		return c, fmt.Errorf("%w: empty domain", ErrConfig)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c, fmt.Errorf("%w: url: %w", ErrConfig, err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return c, fmt.Errorf("%w: plain http allowed only to a loopback host, got %q", ErrConfig, u.Host)
		}
	default:
		return c, fmt.Errorf("%w: url scheme must be https, got %q", ErrConfig, u.Scheme)
	}
	if u.Host == "" {
		return c, fmt.Errorf("%w: url has no host", ErrConfig)
	}
	if c.Hold <= 0 {
		c.Hold = DefaultHold
	}
	if c.Wait <= 0 {
		c.Wait = DefaultWait
	}
	c.Wait = c.Wait.Truncate(time.Second)
	if c.Wait < time.Second {
		c.Wait = time.Second
	}
	if c.Requests < 0 {
		c.Requests = 0
	}
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = DefaultMaxBodySize
	}
	if c.MaxReadBuffer <= 0 {
		c.MaxReadBuffer = DefaultMaxReadBuffer
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.Lang == "" {
		c.Lang = "en"
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newHTTPClient builds the default client of Config.HTTPClient.
func newHTTPClient(tlsConfig *tls.Config, maxConns int) (*http.Client, *http.Transport) {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSClientConfig:       tlsConfig.Clone(),
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   maxConns,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, tr
}
