package xmppd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
	"mellium.im/xmpp/jid"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultPingTimeout      = 60 * time.Second
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultMaxStanzaSize    = 64 << 10
	DefaultQueueSize        = 256
	DefaultMaxConnections   = 10000
	DefaultMaxSubscriptions = 256
	// DefaultServiceResource is the resource of the Finesse server user whose
	// presence SetServiceAvailable sends (finesse@<Domain>/server).
	DefaultServiceResource = "server"
)

// maxDepth bounds the element nesting of one client stanza. The deepest
// stanza a Finesse client sends (a pubsub IQ) is three levels deep.
const maxDepth = 16

// Config configures a Server. Zero fields take the defaults documented on
// each field.
type Config struct {
	// Domain is the XMPP domain (SystemInfo's xmppDomain), e.g.
	// "finesse-a.demo.local". Required. Users are <loginId>@Domain.
	Domain string
	// PubSubDomain is the pubsub service address events come from and
	// subscription IQs go to. Empty means "pubsub." + Domain.
	PubSubDomain string
	// TLSConfig holds the server certificate for STARTTLS and direct TLS.
	// Required by ModeSTARTTLS and ModeTLS; WebSocket and ModeSecure
	// connections arrive already secured and do not use it.
	TLSConfig *tls.Config

	// Authenticate checks SASL PLAIN credentials: username is the loginId
	// exactly as the client sent it, password the user's password or an
	// IdS access token. Return nil to accept. nil refuses every login.
	// It is called on the connection's goroutine during the handshake,
	// with a context that ends at HandshakeTimeout.
	Authenticate func(ctx context.Context, username, password string) error
	// AuthorizeSubscribe says whether username (a JID localpart) may
	// subscribe to node, a Finesse node that is not one of the user's
	// default nodes (e.g. a supervisor subscribing to Team/{id}/Users).
	// Return nil to allow, an error wrapping ErrItemNotFound for a node that
	// does not exist, any other error to refuse (forbidden). nil allows
	// only nodes under the user's own /finesse/api/User/{id}.
	AuthorizeSubscribe func(username, node string) error
	// OnPresence is called when a user's availability changes: available
	// is true when the user's first session sends available presence, false
	// when the last one goes away (unavailable presence, stream closed,
	// connection dropped or replaced). Calls are serialized and in the
	// order the changes happened. It is never called from Publish; it may
	// block briefly, and must not call Close.
	OnPresence func(username string, available bool)

	// PingTimeout drops a connection that sent nothing (no stanza, no
	// whitespace) for this long. Zero means DefaultPingTimeout.
	PingTimeout time.Duration
	// HandshakeTimeout bounds the time from accept to a bound resource
	// (TLS, SASL, bind). Zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each write to a client. A client that does not
	// read for this long is dropped. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxStanzaSize is the largest client stanza in bytes; a larger one ends
	// the stream with a policy-violation stream error. It also bounds the
	// whole handshake. Zero means DefaultMaxStanzaSize (64 KiB).
	MaxStanzaSize int64
	// QueueSize is the number of outbound stanzas queued per connection. A
	// connection whose queue is full when a stanza is added is dropped with
	// a resource-constraint stream error. Zero means DefaultQueueSize.
	QueueSize int
	// MaxConnections bounds concurrent client connections over all
	// listeners and the WebSocket handler; further connections are closed
	// at once (WebSocket: 503). Zero means DefaultMaxConnections.
	MaxConnections int
	// MaxSubscriptions bounds the explicit subscriptions stored per bare
	// JID; one more is refused with policy-violation. Zero means
	// DefaultMaxSubscriptions.
	MaxSubscriptions int

	// Headline adds type='headline' to event messages, as Prosody does.
	// Finesse (Openfire) may omit the type, so the default is to omit it.
	Headline bool
	// ServiceResource is the resource of finesse@Domain in the presence
	// SetServiceAvailable sends. Empty means DefaultServiceResource.
	ServiceResource string
	// CheckOrigin vets the Origin header of WebSocket upgrades. nil accepts
	// every origin: the simulator's clients are the relay and test tools,
	// not browsers holding ambient credentials.
	CheckOrigin func(r *http.Request) bool

	// Logger receives connection-level logs (never passwords or tokens).
	// nil means zap.NewNop().
	Logger *zap.Logger
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.PubSubDomain == "" && cfg.Domain != "" {
		cfg.PubSubDomain = "pubsub." + cfg.Domain
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxStanzaSize <= 0 {
		cfg.MaxStanzaSize = DefaultMaxStanzaSize
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if cfg.ServiceResource == "" {
		cfg.ServiceResource = DefaultServiceResource
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg
}

// addresses holds the parsed, canonical JIDs of a valid Config.
type addresses struct {
	domain  jid.JID // Domain
	pubsub  jid.JID // PubSubDomain
	service jid.JID // finesse@Domain/ServiceResource
}

// validate parses the addresses of a defaulted Config.
func (cfg Config) validate() (addresses, error) {
	var a addresses
	if cfg.Domain == "" {
		return a, fmt.Errorf("%w: Domain is empty", ErrConfig)
	}
	var err error
	if a.domain, err = jid.New("", cfg.Domain, ""); err != nil {
		return a, fmt.Errorf("%w: Domain %q: %w", ErrConfig, cfg.Domain, err)
	}
	if a.pubsub, err = jid.New("", cfg.PubSubDomain, ""); err != nil {
		return a, fmt.Errorf("%w: PubSubDomain %q: %w", ErrConfig, cfg.PubSubDomain, err)
	}
	if a.pubsub.Equal(a.domain) {
		return a, fmt.Errorf("%w: PubSubDomain equals Domain", ErrConfig)
	}
	if a.service, err = jid.New("finesse", cfg.Domain, cfg.ServiceResource); err != nil {
		return a, fmt.Errorf("%w: ServiceResource %q: %w", ErrConfig, cfg.ServiceResource, err)
	}
	return a, nil
}

// ListenMode says how Serve treats the connections it accepts.
type ListenMode int

// The listen modes.
const (
	// ModeSTARTTLS is XMPP over TCP (port 5222): the client must negotiate
	// STARTTLS before SASL (c2s_require_encryption).
	ModeSTARTTLS ListenMode = iota + 1
	// ModeTLS is legacy direct TLS (port 5223). The listener may be plain
	// TCP (Serve runs the TLS handshake with Config.TLSConfig) or a
	// tls.NewListener (its *tls.Conn connections are used as they are).
	ModeTLS
	// ModeSecure is for connections that are already secure streams, such
	// as the BOSH sessions boshd.Server hands out: no TLS is negotiated and
	// SASL is offered at once.
	ModeSecure
)

// String returns the mode's name.
func (m ListenMode) String() string {
	switch m {
	case ModeSTARTTLS:
		return "starttls"
	case ModeTLS:
		return "tls"
	case ModeSecure:
		return "secure"
	case modeWebSocket:
		return "websocket"
	}
	return fmt.Sprintf("ListenMode(%d)", int(m))
}

// modeWebSocket marks connections of the WebSocket handler (not for Serve).
const modeWebSocket ListenMode = 100
