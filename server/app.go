package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"finesse-relay/gadget"
	"finesse-relay/server/agent"
	"finesse-relay/server/cluster"
	"finesse-relay/server/ids"
	"finesse-relay/server/signin"
	"finesse-relay/server/store"
)

// App is the relay: configuration, listeners and every component, wired.
// NewApp binds the listeners (so a taken port fails before anything runs);
// Run serves until its context ends and then shuts down gracefully.
type App struct {
	cfg     *Config
	log     *zap.Logger
	reg     *prometheus.Registry
	metrics *httpMetrics
	ready   readiness

	mux      *http.ServeMux
	main     net.Listener
	redirect net.Listener // nil unless server.http.port is set with TLS

	durable durable // sessions, tickets, throttles, sealed credentials
	health  *store.Health
	up      *upstream
	handles *handles
	ids     *ids.Client // nil when SSO is not configured
	manager *agent.Manager
	cluster *cluster.Cluster // ACTIVE_INSTANCES=many; nil otherwise
	signin  *signin.Service
	gateway *gadget.Gateway
	proxy   http.Handler
	pages   http.Handler

	metricsLn     net.Listener // METRICS_LISTEN; nil when /metrics is not on its own listener
	metricsMux    http.Handler // what metricsLn serves
	publicMetrics http.Handler // /metrics on the public port; nil when not served there

	onReady, onStopping func() // service-manager notifications (runSupervised); nil = none
}

// NewApp builds the relay from cfg and binds its listeners.
func NewApp(cfg *Config, log *zap.Logger) (*App, error) {
	reg, m := newRegistry()
	a := &App{cfg: cfg, log: log, reg: reg, metrics: m, mux: http.NewServeMux()}
	var err error
	if a.main = cfg.Listener; a.main == nil {
		if a.main, err = listen("server.port", cfg.ListenHost, cfg.HTTPSPort); err != nil {
			return nil, err
		}
	}
	if cfg.TLSEnabled && cfg.HTTPPort != 0 {
		if a.redirect, err = listen("server.http.port", cfg.ListenHost, cfg.HTTPPort); err != nil {
			a.main.Close() // #nosec G104 -- closing a listener on the error path; the error being returned matters more
			return nil, err
		}
	}
	if err := a.setupMetrics(); err != nil {
		a.closeListeners()
		return nil, err
	}
	if a.durable, err = openStore(cfg, log); err != nil {
		a.closeListeners()
		return nil, err
	}
	if err := a.wire(); err != nil {
		a.closeListeners()
		_ = a.durable.store.Close()
		return nil, err
	}
	a.routes()
	return a, nil
}

// routes registers every HTTP route of the relay, in one place.
func (a *App) routes() {
	// Operations.
	a.mux.HandleFunc("GET /testbackend", handleTestBackend)
	a.mux.HandleFunc("GET /healthz", handleHealthz)
	a.mux.Handle("GET /readyz", &a.ready)
	if a.publicMetrics != nil { // see setupMetrics: METRICS_LISTEN, METRICS_TOKEN_FILE
		a.mux.Handle("GET /metrics", a.publicMetrics)
	}
	// Sign-in, tickets, SSO (package signin).
	api := func(h http.HandlerFunc) http.Handler { return a.signin.API(h) }
	a.mux.Handle("POST /api/v1/sessions", api(a.signin.CreateSession))
	a.mux.Handle("PUT /api/v1/sessions/token", api(a.signin.RefreshToken))
	a.mux.Handle("DELETE /api/v1/sessions", api(a.signin.DeleteSession))
	a.mux.Handle("POST /api/v1/tickets", api(a.signin.Ticket))
	a.mux.Handle("OPTIONS /api/v1/", api(a.signin.Preflight))
	a.mux.HandleFunc("GET /login", a.signin.Login)
	a.mux.HandleFunc("GET /idscallback", a.signin.Callback)
	a.mux.HandleFunc("POST /logout", a.signin.Logout)
	// The Finesse REST proxy and the WebSocket.
	a.mux.Handle("/api/finesse/", a.signin.API(a.proxy))
	a.mux.Handle("GET /ws", a.gateway)
	// Pages and assets.
	for _, p := range []string{"GET /{$}", "GET /supervisor", "GET /static/", "GET /gadget/"} {
		a.mux.Handle(p, a.pages)
	}
}

func (a *App) closeListeners() {
	a.main.Close() // #nosec G104 -- closing a listener on the error path; the error being returned matters more
	if a.redirect != nil {
		a.redirect.Close() // #nosec G104 -- closing a listener on the error path; the error being returned matters more
	}
	if a.metricsLn != nil {
		a.metricsLn.Close() // #nosec G104 -- closing a listener on the error path; the error being returned matters more
	}
}

// Addr is the main listener's address.
func (a *App) Addr() net.Addr { return a.main.Addr() }

// URL is the base URL to open in a browser.
func (a *App) URL() string {
	scheme := "http"
	if a.cfg.TLSEnabled {
		scheme = "https"
	}
	host := a.cfg.ListenHost
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	_, port, _ := net.SplitHostPort(a.main.Addr().String())
	return scheme + "://" + net.JoinHostPort(host, port)
}

// Run serves until ctx is done, then stops accepting, lets in-flight
// requests finish (bounded by SHUTDOWN_TIMEOUT) and returns.
func (a *App) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	// The session manager first: nothing may be accepted before it runs.
	if a.durable.shared && a.cluster == nil {
		// One active instance per shared store: a standby waits here.
		lh := &leaseHolder{st: a.durable.store, owner: instanceID(a.cfg, a.main.Addr()), log: a.log}
		if err := lh.acquire(ctx); err != nil {
			_ = a.durable.store.Close()
			return nil
		}
		g.Go(func() error { return lh.keep(ctx) })
	}
	if a.cluster != nil {
		// The cluster outlives the Manager: the Sessions' last messages are
		// appended and their leases released after the Manager has stopped.
		cctx, stopCluster := context.WithCancel(context.WithoutCancel(ctx))
		g.Go(func() error { return a.cluster.Run(cctx) })
		g.Go(func() error { defer stopCluster(); return a.manager.Run(ctx) })
		g.Go(func() error { return a.adopt(ctx) })
	} else {
		g.Go(func() error { return a.manager.Run(ctx) })
	}
	g.Go(func() error { return a.health.Run(ctx) })
	select {
	case <-a.manager.Running():
		// Agents whose sessions were live when the relay last stopped get
		// their upstream session back now, within Finesse's 60 s presence
		// window, before their browsers reconnect.
		if n, err := a.signin.Restore(ctx); err != nil {
			a.log.Warn("could not restore agent sessions", zap.Error(err))
		} else if n > 0 {
			a.log.Info("agent sessions restored from the store", zap.Int("sessions", n))
		}
	case <-ctx.Done():
	}
	handler := baseHeaders(a.metrics.instrument(a.mux), a.cfg.TLSEnabled)
	g.Go(func() error {
		return serve(ctx, newHTTPServer(handler, a.cfg.Certificate), a.main, a.cfg.ShutdownTimeout)
	})
	if a.redirect != nil {
		g.Go(func() error {
			return serve(ctx, newHTTPServer(redirectHandler(a.cfg.PublicURL), nil), a.redirect, a.cfg.ShutdownTimeout)
		})
	}
	if a.metricsLn != nil {
		g.Go(func() error {
			return serve(ctx, newHTTPServer(a.metricsMux, nil), a.metricsLn, a.cfg.ShutdownTimeout)
		})
	}
	a.ready.ready.Store(true)
	if a.onReady != nil {
		a.onReady()
	}
	a.log.Info("relay listening", append(a.cfg.logFields(), zap.String("url", a.URL()))...)
	for _, w := range a.cfg.Warnings {
		a.log.Warn(w)
	}
	g.Go(func() error {
		<-ctx.Done()
		a.ready.ready.Store(false)
		if a.onStopping != nil {
			a.onStopping()
		}
		a.log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		defer cancel()
		return a.gateway.Shutdown(sctx)
	})
	err := g.Wait()
	if cerr := a.durable.store.Close(); cerr != nil {
		a.log.Warn("closing the store", zap.Error(cerr))
	}
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}

// ownOrigins are the relay's own origins (its pages talk to it same-origin).
func (a *App) ownOrigins() []string {
	own := []string{a.cfg.PublicURL.Scheme + "://" + strings.ToLower(a.cfg.PublicURL.Host)}
	if u := a.URL(); u != own[0] {
		own = append(own, u)
	}
	return own
}

// adopt takes, five times per lease TTL, the agents whose owner stopped or died
// (their lease is free and their session was live), with the sealed
// credential, so that Finesse does not log them out (several active
// instances only).
func (a *App) adopt(ctx context.Context) error {
	lease := a.cfg.AgentLeaseTTL
	if lease <= 0 {
		lease = cluster.DefaultLeaseTTL
	}
	t := time.NewTicker(lease / 5)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := a.signin.Restore(ctx); err != nil {
			a.log.Warn("could not look for agents to adopt", zap.Error(err))
		} else if n > 0 {
			a.log.Info("adopted agent sessions whose instance is gone", zap.Int("sessions", n))
		}
		a.closeSignedOut(ctx)
	}
}

// closeSignedOut closes (4100) the WebSockets here of relay sessions that
// were signed out on another instance or expired: a sign-out closes the
// sockets of the instance that got it at once, and those of the others
// within one adoption round.
func (a *App) closeSignedOut(ctx context.Context) {
	for _, id := range a.gateway.Sessions() {
		live, err := a.signin.SessionLive(ctx, id)
		if err != nil {
			return // the store is away: check again next round
		}
		if !live {
			a.gateway.CloseSession(id, gadget.CloseSignedOut, "signed_out")
		}
	}
}
