package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"finesse-relay/gadget"
	"finesse-relay/httpx"
	"finesse-relay/server/agent"
	"finesse-relay/server/cluster"
	"finesse-relay/server/ids"
	"finesse-relay/server/rest"
	"finesse-relay/server/signin"
	"finesse-relay/server/store"
	"finesse-relay/web"
)

// upstreamTimeout bounds one Finesse or IdS HTTP call.
const upstreamTimeout = 10 * time.Second

// upstreamTLS is the TLS configuration towards Finesse and IdS: the CA
// bundle, TLS 1.2+, and the server name ("" = taken from the URL).
func upstreamTLS(cfg *Config, serverName string) *tls.Config {
	return &tls.Config{RootCAs: cfg.RootCAs, ServerName: serverName, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} // #nosec G402 -- opt-in, loudly warned
}

// newUpstreamHTTPClient is the one HTTP client for Finesse and IdS: the
// configured CA bundle, TLS 1.2+, no cross-host redirects.
func newUpstreamHTTPClient(cfg *Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = upstreamTLS(cfg, "")
	tr.MaxIdleConnsPerHost = 64
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: tr, Timeout: upstreamTimeout}
}

// wire builds every component of the relay and registers the routes.
func (a *App) wire() error {
	cfg := a.cfg
	httpClient := newUpstreamHTTPClient(cfg)
	a.handles = newHandles()
	health, err := store.NewHealth(a.durable.store, a.reg, store.HealthOptions{
		OnChange: func(up bool, err error) {
			if up {
				a.log.Info("store is back")
			} else {
				a.log.Warn("store unavailable: new sign-ins answer 503 store_unavailable, open WebSockets keep working", zap.Error(err))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("store health: %w", err)
	}
	a.health = health
	durable := health.Store() // every call counted in the store metrics
	a.up = &upstream{
		cfg: cfg, log: a.log.Named("xmpp"), handles: a.handles,
		tlsConfig: func(serverName string) *tls.Config { return upstreamTLS(cfg, serverName) },
		restCfg:   rest.Config{HTTPClient: httpClient, Timeout: upstreamTimeout, Metrics: rest.NewMetrics(a.reg), Logger: a.log.Named("rest")},
	}
	if len(cfg.IdSURLs) > 0 {
		nodes := make([]string, len(cfg.IdSURLs))
		for i, u := range cfg.IdSURLs {
			nodes[i] = u.String()
		}
		c, err := ids.New(ids.Config{
			Nodes: nodes, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			RedirectURL: cfg.RedirectURL.String(), HTTPClient: httpClient, Logger: a.log.Named("ids"),
			StateKey: a.durable.stateKey,
			UseOnce: func(ctx context.Context, key string, ttl time.Duration) (bool, error) {
				return durable.PutNew(ctx, key, nil, ttl)
			},
		})
		if err != nil {
			return fmt.Errorf("IdS client: %w", err)
		}
		a.ids = c
	}
	own := a.ownOrigins()
	wsMetrics := gadget.NewMetrics(a.reg)
	sides := make([]string, len(cfg.Sides))
	restSides := make([]rest.Side, len(cfg.Sides))
	for i, s := range cfg.Sides {
		sides[i] = s.Name
		restSides[i] = rest.Side{Name: s.Name, BaseURL: s.BaseURL()}
	}
	if len(sides) == 0 {
		sides = []string{"A"} // no Finesse configured: sign-ins fail with a clear error
	}
	var signIn *signin.Service
	streamCfg := gadget.StreamConfig{RingSize: cfg.RingSize, QueueSize: cfg.QueueSize, Metrics: wsMetrics, Logger: a.log.Named("ws")}
	var watched func(string) bool
	if cfg.ActiveMany {
		watched = func(loginID string) bool { return a.cluster.Watched(loginID) }
	}
	m, err := agent.NewManager(agent.Config{
		Sides:      sides,
		Dial:       a.up.dial,
		NewFinesse: a.up.newFinesse,
		NewPublisher: func(loginID string, onSubscribers func(int)) agent.Publisher {
			sc := streamCfg
			sc.OnSubscribers = onSubscribers
			sc.Logger = sc.Logger.WithLazy(zap.String("agent", loginID))
			var st *gadget.Stream
			continued := false
			if a.cluster != nil {
				st, continued = a.cluster.OwnerStream(loginID, sc)
			} else {
				st = gadget.NewStream(sc)
			}
			a.handles.setStream(loginID, st)
			return endedStream{Stream: st, h: a.handles, loginID: loginID, cl: a.cluster, continued: continued}
		},
		WatchedElsewhere:   watched,
		OnEnd:              func(loginID, reason string) { signIn.OnSessionEnd(loginID, reason) },
		Grace:              cfg.SessionGrace,
		ConnectConcurrency: cfg.UpstreamConnectConcurrency,
		Logger:             a.log,
		Metrics:            agent.NewMetrics(a.reg),
	})
	if err != nil {
		return err
	}
	a.manager = m
	var agents signin.Agents = localAgents{m}
	streamOf := a.handles.stream
	// Registered on every instance (zero on one), so dashboards and alerts
	// work the same whatever ACTIVE_INSTANCES is.
	clusterMetrics := cluster.NewMetrics(a.reg)
	if cfg.ActiveMany {
		// Several active instances: each agent is owned by one of them;
		// the others follow its stream for their tabs.
		a.cluster, err = cluster.New(cluster.Config{
			Store: durable, Instance: instanceID(cfg, a.main.Addr()), Manager: m, Stream: streamCfg,
			LeaseTTL: cfg.AgentLeaseTTL, StreamLen: cfg.RingSize, Logger: a.log, Metrics: clusterMetrics,
		})
		if err != nil {
			return err
		}
		agents = a.cluster
		streamOf = func(loginID string) (*gadget.Stream, bool) {
			if st, ok := a.handles.stream(loginID); ok {
				return st, true
			}
			return a.cluster.Replica(loginID)
		}
	}
	signIn, err = signin.New(signin.Config{
		Store: durable, Sealer: a.durable.keys, Agents: agents, Shared: cfg.ActiveMany, StreamOf: streamOf, IdS: a.ids,
		REST: a.up.restCfg, Sides: restSides,
		Origins: httpx.NewOrigins(cfg.AllowedOrigins...), Own: httpx.NewOrigins(own...),
		TicketTTL: cfg.TicketTTL, MaxTickets: cfg.MaxTicketsPerSession,
		MaxFailures: cfg.SignInMaxFailures, FailureWindow: cfg.SignInFailureWindow,
		OnSignOut: func(session string) { a.gateway.CloseSession(session, gadget.CloseSignedOut, "signed_out") },
		Metrics:   signin.NewMetrics(a.reg),
		Logger:    a.log.Named("signin"),
	})
	if err != nil {
		return err
	}
	a.signin = signIn
	a.gateway = gadget.NewGateway(gadget.GatewayConfig{
		AllowedOrigins:       append(own, cfg.AllowedOrigins...),
		Tickets:              signIn,
		MaxSocketsPerSession: cfg.MaxSocketsPerSession,
		QueueSize:            cfg.QueueSize,
		Metrics:              wsMetrics,
		Logger:               a.log.Named("ws"),
	})
	a.proxy = rest.NewProxy(rest.ProxyConfig{
		Resolve: func(r *http.Request) (*rest.Client, error) {
			loginID, err := signIn.LoginIDOf(r)
			if err != nil {
				return nil, err
			}
			if c, ok := a.handles.rest(loginID); ok {
				return c, nil
			}
			if a.cluster != nil && a.cluster.Running(r.Context(), loginID) {
				// Owned by another instance: the call goes out from here,
				// with the agent's stored credential, to the owner's side.
				return a.up.restClient(loginID, signIn.Source(loginID), func() string { return a.cluster.Side(loginID) }), nil
			}
			return nil, fmt.Errorf("no live session for %s; request a new ticket or sign in again", loginID)
		},
		// Requests Finesse accepted are tracked until their notification
		// arrives, so a reconnect or failover can reconcile them.
		OnAccepted: func(c *rest.Client, requestID, path string) {
			if s, ok := a.manager.Get(c.Owner()); ok {
				s.NoteRequest(requestID, path)
			}
		},
		Metrics: a.up.restCfg.Metrics,
		Logger:  a.log.Named("proxy"),
	})
	pages, err := web.Handler(web.Config{PublicURL: cfg.PublicURL.String(), Version: buildVersion(), AllowedOrigins: cfg.AllowedOrigins})
	if err != nil {
		return fmt.Errorf("web assets: %w", err)
	}
	a.pages = pages
	return nil
}
