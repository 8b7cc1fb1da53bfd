package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"

	"go.uber.org/zap"

	"finesse-relay/server/agent"
	"finesse-relay/server/cred"
	"finesse-relay/server/rest"
	"finesse-relay/xmpp"
	"finesse-relay/xmpp/finesse"
)

// upstream builds the agent core's dependencies from the configuration:
// XMPP dialing per side and per-session REST views.
type upstream struct {
	cfg       *Config
	tlsConfig func(serverName string) *tls.Config
	restCfg   rest.Config // shared parts: HTTP client, timeout, metrics, logger
	handles   *handles
	log       *zap.Logger
}

func (u *upstream) side(name string) (SideConfig, bool) {
	for _, s := range u.cfg.Sides {
		if s.Name == name {
			return s, true
		}
	}
	return SideConfig{}, false
}

func (u *upstream) restSide(name string) rest.Side {
	s, _ := u.side(name)
	return rest.Side{Name: name, BaseURL: s.BaseURL()}
}

// xmppAddress is where a side's Notification Service listens for transport t.
func xmppAddress(s SideConfig, t string) string {
	hp := net.JoinHostPort(s.XMPPHost, strconv.Itoa(s.XMPPPort))
	switch t {
	case "websocket", "auto":
		return (&url.URL{Scheme: "wss", Host: hp, Path: "/ws/"}).String()
	case "bosh":
		return (&url.URL{Scheme: "https", Host: hp, Path: "/http-bind"}).String()
	default:
		return hp
	}
}

var transports = map[string]xmpp.Transport{
	"websocket": xmpp.TransportWebSocket, "auto": xmpp.TransportWebSocket,
	"tls": xmpp.TransportTLS, "tcp": xmpp.TransportTCP, "bosh": xmpp.TransportBOSH,
}

// dial opens an agent's Notification Service session (agent.DialFunc).
func (u *upstream) dial(ctx context.Context, req agent.DialRequest) (agent.Notifier, error) {
	s, ok := u.side(req.Side)
	if !ok {
		return nil, fmt.Errorf("unknown side %q", req.Side)
	}
	domain := req.Domain
	if s.XMPPDomain != "" {
		domain = s.XMPPDomain
	}
	pubsub := req.PubSubDomain
	if s.XMPPDomain != "" || pubsub == "" {
		pubsub = "pubsub." + domain
	}
	c, err := xmpp.Dial(ctx, xmpp.Config{
		Transport:         transports[s.XMPPTransport],
		Address:           xmppAddress(s, s.XMPPTransport),
		Domain:            domain,
		PubSubDomain:      pubsub,
		TLSConfig:         u.tlsConfig(s.XMPPHost),
		Username:          req.Username,
		Password:          req.Password,
		Resource:          u.cfg.XMPPResource,
		PingInterval:      u.cfg.PingInterval,
		OnUpdate:          req.OnUpdate,
		OnServicePresence: req.OnServicePresence,
		Logger:            u.log,
	})
	if err != nil {
		return nil, mapXMPPError(err)
	}
	return notifier{c}, nil
}

// mapXMPPError translates the XMPP client's reasons into the agent core's.
func mapXMPPError(err error) error {
	switch {
	case errors.Is(err, xmpp.ErrAuth):
		return fmt.Errorf("%w: %w", agent.ErrUpstreamAuth, err)
	case errors.Is(err, xmpp.ErrConflict):
		return fmt.Errorf("%w: %w", agent.ErrUpstreamConflict, err)
	}
	return err
}

// notifier adapts *xmpp.Client to agent.Notifier.
type notifier struct{ c *xmpp.Client }

func (n notifier) Run(ctx context.Context) error { return mapXMPPError(n.c.Run(ctx)) }
func (n notifier) Subscribe(ctx context.Context, node string) error {
	return n.c.Subscribe(ctx, node)
}
func (n notifier) Unsubscribe(ctx context.Context, node string) error {
	return n.c.Unsubscribe(ctx, node)
}
func (n notifier) PruneSubscriptions(ctx context.Context, keep []string) (int, error) {
	return n.c.PruneSubscriptions(ctx, keep)
}
func (n notifier) Close() error { return n.c.Close() }

// finesseView adapts a session's *rest.Client to agent.Finesse.
type finesseView struct {
	c  *rest.Client
	up *upstream
}

// newFinesse is the agent core's NewFinesse: one REST client per agent with
// the agent's credential source, always sent to the session's current
// side. The client is also kept in the handles so the REST proxy sends the
// browser's calls through it.
func (u *upstream) newFinesse(loginID string, creds cred.Source, side func() string) agent.Finesse {
	c := u.restClient(loginID, creds, side)
	u.handles.setREST(loginID, c)
	return finesseView{c: c, up: u}
}

// restClient is the agent's REST client: creds asked at every call, the
// side side() names ("" or unknown: the first).
func (u *upstream) restClient(loginID string, creds cred.Source, side func() string) *rest.Client {
	cfg := u.restCfg
	cfg.Side = func() rest.Side {
		name := side()
		if _, ok := u.side(name); !ok && len(u.cfg.Sides) > 0 {
			name = u.cfg.Sides[0].Name
		}
		return u.restSide(name)
	}
	cfg.Credentials = creds
	cfg.Owner = loginID
	return rest.New(cfg)
}

func (f finesseView) SystemInfo(ctx context.Context, side string) (*finesse.SystemInfo, error) {
	return f.c.SystemInfoAt(ctx, f.up.restSide(side))
}
func (f finesseView) User(ctx context.Context, id string) (*finesse.User, error) {
	return f.c.User(ctx, id)
}
func (f finesseView) Dialogs(ctx context.Context, loginID string) ([]finesse.Dialog, error) {
	return f.c.Dialogs(ctx, loginID)
}
func (f finesseView) Team(ctx context.Context, id string) (*finesse.Team, error) {
	return f.c.Team(ctx, id)
}
func (f finesseView) Queue(ctx context.Context, id string) (*finesse.Queue, error) {
	return f.c.Queue(ctx, id)
}
func (f finesseView) UserQueues(ctx context.Context, loginID string) ([]finesse.Queue, error) {
	return f.c.UserQueues(ctx, loginID)
}
func (f finesseView) MediaList(ctx context.Context, loginID string) ([]finesse.Media, error) {
	return f.c.MediaList(ctx, loginID)
}
func (f finesseView) MRDDialogs(ctx context.Context, loginID, mrdID string) ([]finesse.Dialog, error) {
	return f.c.MRDDialogs(ctx, loginID, mrdID)
}
