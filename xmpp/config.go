package xmpp

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"finesse-relay/xmpp/finesse"
)

// Transport selects how the client reaches the Notification Service.
type Transport string

// The transports. Finesse serves 5222 (often disabled), 5223, WebSocket on
// 8445 (7443 before 12.6) and BOSH on 7443/8445.
const (
	// TransportTCP is XMPP over TCP with STARTTLS (Finesse port 5222).
	// STARTTLS is always negotiated, even when the server does not offer
	// it, so that credentials never travel in clear.
	TransportTCP Transport = "tcp"
	// TransportTLS is XMPP over direct ("legacy") TLS (Finesse port 5223).
	TransportTLS Transport = "tls"
	// TransportWebSocket is XMPP over WebSocket, RFC 7395
	// (wss://host:8445/ws).
	TransportWebSocket Transport = "websocket"
	// TransportBOSH is XMPP over BOSH, XEP-0124/XEP-0206
	// (https://host:7443/http-bind).
	TransportBOSH Transport = "bosh"
)

// Defaults applied by Dial to zero Config fields.
const (
	DefaultPingInterval  = 10 * time.Second
	DefaultPingMisses    = 2
	DefaultMaxStanzaSize = 1 << 20
	DefaultMaxDepth      = 64
	DefaultServiceUser   = "finesse"
	DefaultWriteTimeout  = 10 * time.Second
	DefaultCloseTimeout  = 3 * time.Second
	DefaultDialTimeout   = 30 * time.Second
	// ReservedResource is the resource the Finesse desktop uses. Dial
	// refuses it (in any letter case).
	ReservedResource = "desktop"
)

// Config configures one Notification Service session. Zero values mean the
// documented defaults.
type Config struct {
	// Transport is tcp, tls, websocket or bosh. Required.
	Transport Transport
	// Address is "host:port" for tcp and tls, a URL for websocket
	// ("wss://host:8445/ws"; "/ws" and "/ws/" both work, an empty path
	// means "/ws") and for bosh ("https://host:7443/http-bind").
	Address string
	// Domain is the XMPP domain (SystemInfo xmppDomain): the JID domain and
	// the stream's 'to'. Required.
	Domain string
	// PubSubDomain is the pubsub service (SystemInfo xmppPubSubDomain).
	// Default "pubsub." + Domain.
	PubSubDomain string
	// TLSConfig holds RootCAs and ServerName (the Finesse FQDN). Nil means
	// the system roots; an empty ServerName is taken from Address's host.
	// It is cloned, never modified.
	TLSConfig *tls.Config
	// Username is the agent's loginId. Required.
	Username string
	// Password is the agent's password (non-SSO) or IdS access token (SSO).
	// Required. It is sent only with SASL PLAIN over a secure link and is
	// never logged.
	Password string
	// Resource is the resource to bind, e.g. "relay-1". Required; must not
	// be "desktop" (any letter case), which the Finesse desktop owns.
	Resource string
	// PingInterval is how long the session may be silent before a
	// XEP-0199 ping to Domain; each ping waits PingInterval/PingMisses for
	// its answer, so a dead link is found within 2 × PingInterval. Default
	// 10 s.
	PingInterval time.Duration
	// PingMisses is how many pings in a row may go unanswered before Run
	// declares the link dead (ErrPingTimeout). Default 2.
	PingMisses int
	// MaxStanzaSize bounds every top-level element the server sends, in
	// bytes; a bigger one ends the session with ReasonLimit. Default 1 MiB.
	MaxStanzaSize int64
	// MaxDepth bounds element nesting; deeper input ends the session with
	// ReasonLimit. Default 64.
	MaxDepth int
	// ServiceUser is the localpart of the Finesse service user whose
	// presence is tracked (finesse@Domain). Default "finesse".
	ServiceUser string
	// WriteTimeout bounds every write to the connection. Default 10 s.
	WriteTimeout time.Duration
	// CloseTimeout bounds Close (unsubscribe, unavailable presence, end of
	// stream). Default 3 s.
	CloseTimeout time.Duration
	// DialTimeout bounds Dial in addition to its context. Default 30 s.
	DialTimeout time.Duration
	// AllowInsecure lets Dial use plain ws:// or http:// (BOSH) URLs whose
	// host is a loopback address. It exists for tests against a local peer
	// and must never be set in production: the password then travels
	// unencrypted. Non-loopback plain URLs are refused regardless.
	AllowInsecure bool
	// OnUpdate is called for every decoded pubsub event, in the order the
	// events arrive, on the goroutine that reads the stream. It MUST NOT
	// block and must not call the Client's methods synchronously: while it
	// runs no other stanza is read, ping answers included. Hand the Update
	// to a buffered channel or queue. May be nil.
	OnUpdate func(finesse.Update)
	// OnServicePresence is called when the availability of the Finesse
	// service user (ServiceUser@Domain, any resource) changes, and the first
	// time it is learnt. Same rules as OnUpdate. May be nil.
	OnServicePresence func(available bool)
	// Logger receives debug and warning logs; nil means no logging. Secrets
	// are never logged.
	Logger *zap.Logger
}

// maxNodeLen bounds node names passed to Subscribe and Unsubscribe.
const maxNodeLen = 1024

// normalize returns cfg with defaults applied, or an error wrapping
// ErrConfig or ErrInsecure.
func (cfg Config) normalize() (Config, error) {
	bad := func(format string, a ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
	}
	switch {
	case cfg.Domain == "":
		return bad("Domain is required")
	case cfg.Username == "":
		return bad("Username is required")
	case cfg.Password == "":
		return bad("Password is required")
	case cfg.Resource == "":
		return bad("Resource is required")
	case strings.EqualFold(cfg.Resource, ReservedResource):
		return bad("Resource %q is reserved for the Finesse desktop", cfg.Resource)
	case cfg.Address == "":
		return bad("Address is required")
	case cfg.PingInterval < 0, cfg.PingMisses < 0, cfg.MaxStanzaSize < 0, cfg.MaxDepth < 0,
		cfg.WriteTimeout < 0, cfg.CloseTimeout < 0, cfg.DialTimeout < 0:
		return bad("negative duration or limit")
	}
	if cfg.PubSubDomain == "" {
		cfg.PubSubDomain = "pubsub." + cfg.Domain
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PingMisses == 0 {
		cfg.PingMisses = DefaultPingMisses
	}
	if cfg.MaxStanzaSize == 0 {
		cfg.MaxStanzaSize = DefaultMaxStanzaSize
	}
	if cfg.MaxDepth == 0 {
		cfg.MaxDepth = DefaultMaxDepth
	}
	if cfg.ServiceUser == "" {
		cfg.ServiceUser = DefaultServiceUser
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}

	var host string
	switch cfg.Transport {
	case TransportTCP, TransportTLS:
		h, _, err := net.SplitHostPort(cfg.Address)
		if err != nil {
			return bad("Address %q: want host:port: %v", cfg.Address, err)
		}
		host = h
	case TransportWebSocket, TransportBOSH:
		u, err := url.Parse(cfg.Address)
		if err != nil || u.Host == "" {
			return bad("Address %q: want a URL", cfg.Address)
		}
		secure, plain := "wss", "ws"
		if cfg.Transport == TransportBOSH {
			secure, plain = "https", "http"
		}
		switch u.Scheme {
		case secure:
		case plain:
			if !cfg.AllowInsecure || !isLoopback(u.Hostname()) {
				return Config{}, fmt.Errorf("%w: %s URL %q (use %s://; plain %s:// is allowed only on loopback with AllowInsecure, for tests)",
					ErrInsecure, cfg.Transport, cfg.Address, secure, plain)
			}
		default:
			return bad("Address %q: scheme must be %s", cfg.Address, secure)
		}
		if cfg.Transport == TransportWebSocket && (u.Path == "" || u.Path == "/") {
			u.Path = "/ws"
			cfg.Address = u.String()
		}
		host = u.Hostname()
	case "":
		return bad("Transport is required")
	default:
		return bad("unknown Transport %q", cfg.Transport)
	}

	var tc *tls.Config
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	cfg.TLSConfig = tc
	return cfg, nil
}

// isLoopback reports whether host is "localhost" or a loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
