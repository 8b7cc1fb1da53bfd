package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"finesse-relay/gadget"
	"finesse-relay/server/agent"
	"finesse-relay/server/ids"
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

	up             *upstream
	ids            *ids.Client // nil when SSO is not configured
	manager        *agent.Manager
	tickets        *gadget.Tickets
	gateway        *gadget.Gateway
	proxy          http.Handler
	relay          *relaySessions
	tokenRefreshes refreshMetrics
	credsMu        sync.Mutex
	creds          map[string]*credHolder // loginId → the agent's newest verified credential

	onReady, onStopping func() // service-manager notifications (runSupervised); nil = none
}

// NewApp builds the relay from cfg and binds its listeners.
func NewApp(cfg *Config, log *zap.Logger) (*App, error) {
	reg, m := newRegistry()
	a := &App{cfg: cfg, log: log, reg: reg, metrics: m, mux: http.NewServeMux(),
		relay: newRelaySessions(), creds: make(map[string]*credHolder), tokenRefreshes: newRefreshMetrics(reg)}
	var err error
	if a.main = cfg.Listener; a.main == nil {
		if a.main, err = listen("server.port", cfg.ListenHost, cfg.HTTPSPort); err != nil {
			return nil, err
		}
	}
	if cfg.TLSEnabled && cfg.HTTPPort != 0 {
		if a.redirect, err = listen("server.http.port", cfg.ListenHost, cfg.HTTPPort); err != nil {
			a.main.Close()
			return nil, err
		}
	}
	a.routes()
	if err := a.wire(); err != nil {
		a.closeListeners()
		return nil, err
	}
	return a, nil
}

// routes registers every HTTP route.
func (a *App) routes() {
	a.mux.HandleFunc("GET /testbackend", handleTestBackend)
	a.mux.HandleFunc("GET /healthz", handleHealthz)
	a.mux.Handle("GET /readyz", &a.ready)
	a.mux.Handle("GET /metrics", metricsHandler(a.reg))
}

func (a *App) closeListeners() {
	a.main.Close()
	if a.redirect != nil {
		a.redirect.Close()
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
	g.Go(func() error { return a.manager.Run(ctx) })
	select {
	case <-a.manager.Running():
	case <-ctx.Done():
	}
	handler := a.metrics.instrument(a.mux)
	g.Go(func() error {
		return serve(ctx, newHTTPServer(handler, a.cfg.Certificate), a.main, a.cfg.ShutdownTimeout)
	})
	if a.redirect != nil {
		g.Go(func() error {
			return serve(ctx, newHTTPServer(redirectHandler(a.cfg.HTTPSPort), nil), a.redirect, a.cfg.ShutdownTimeout)
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
	if err := g.Wait(); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}
