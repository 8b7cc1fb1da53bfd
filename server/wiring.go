package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"finesse-relay/gadget"
	"finesse-relay/server/agent"
	"finesse-relay/server/ids"
	"finesse-relay/server/rest"
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
	a.up = &upstream{
		cfg: cfg, log: a.log.Named("xmpp"),
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
		})
		if err != nil {
			return fmt.Errorf("IdS client: %w", err)
		}
		a.ids = c
	}
	wsMetrics := gadget.NewMetrics(a.reg)
	a.tickets = gadget.NewTickets(gadget.TicketsConfig{TTL: cfg.TicketTTL, MaxPerSession: cfg.MaxTicketsPerSession})
	a.gateway = gadget.NewGateway(gadget.GatewayConfig{
		AllowedOrigins:       append(a.ownOrigins(), cfg.AllowedOrigins...),
		Tickets:              a.tickets,
		MaxSocketsPerSession: cfg.MaxSocketsPerSession,
		QueueSize:            cfg.QueueSize,
		Metrics:              wsMetrics,
		Logger:               a.log.Named("ws"),
	})
	sides := make([]string, len(cfg.Sides))
	for i, s := range cfg.Sides {
		sides[i] = s.Name
	}
	if len(sides) == 0 {
		sides = []string{"A"} // no Finesse configured: sign-ins fail with a clear error
	}
	m, err := agent.NewManager(agent.Config{
		Sides:      sides,
		Dial:       a.up.dial,
		NewFinesse: a.up.newFinesse,
		NewPublisher: func(loginID string, onSubscribers func(int)) agent.Publisher {
			return gadget.NewStream(gadget.StreamConfig{
				RingSize: cfg.RingSize, QueueSize: cfg.QueueSize, OnSubscribers: onSubscribers,
				Metrics: wsMetrics, Logger: a.log.Named("ws").With(zap.String("agent", loginID)),
			})
		},
		Grace:   cfg.SessionGrace,
		Logger:  a.log,
		Metrics: agent.NewMetrics(a.reg),
	})
	if err != nil {
		return err
	}
	a.manager = m
	a.proxy = rest.NewProxy(rest.ProxyConfig{
		Resolve: func(r *http.Request) (*rest.Client, error) {
			rs, _, err := a.authenticate(r)
			if err != nil {
				return nil, err
			}
			s, ok := a.manager.Get(rs.loginID)
			if !ok {
				return nil, fmt.Errorf("no live session for %s; request a new ticket or sign in again", rs.loginID)
			}
			return s.Finesse().(finesseView).c, nil
		},
		// Requests Finesse accepted are tracked until their notification
		// arrives, so a reconnect or failover can reconcile them.
		OnAccepted: func(r *http.Request, requestID, path string) {
			if rs, _, err := a.authenticate(r); err == nil {
				if s, ok := a.manager.Get(rs.loginID); ok {
					s.NoteRequest(requestID, path)
				}
			}
		},
		Metrics: a.up.restCfg.Metrics,
		Logger:  a.log.Named("proxy"),
	})
	pages, err := web.Handler(web.Config{PublicURL: cfg.PublicURL.String(), Version: buildVersion(), AllowedOrigins: cfg.AllowedOrigins})
	if err != nil {
		return fmt.Errorf("web assets: %w", err)
	}
	a.relayRoutes()
	for _, p := range []string{"GET /{$}", "GET /supervisor", "GET /static/", "GET /gadget/"} {
		a.mux.Handle(p, pages)
	}
	return nil
}

// relayRoutes registers the browser-facing routes.
func (a *App) relayRoutes() {
	api := func(h http.HandlerFunc) http.Handler { return a.cors(h) }
	a.mux.Handle("POST /api/v1/sessions", api(a.handleCreateSession))
	a.mux.Handle("PUT /api/v1/sessions/token", api(a.handleRefreshToken))
	a.mux.Handle("DELETE /api/v1/sessions", api(a.handleDeleteSession))
	a.mux.Handle("POST /api/v1/tickets", api(a.handleTicket))
	a.mux.Handle("OPTIONS /api/v1/", api(func(http.ResponseWriter, *http.Request) {}))
	a.mux.Handle("/api/finesse/", a.cors(a.proxy))
	a.mux.Handle("GET /ws", a.gateway)
	a.mux.HandleFunc("GET /login", a.handleLogin)
	a.mux.HandleFunc("GET /idscallback", a.handleCallback)
	a.mux.HandleFunc("POST /logout", a.handleLogout)
}
