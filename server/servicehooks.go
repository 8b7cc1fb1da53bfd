package main

import (
	"context"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"finesse-relay/server/certwatch"
	"finesse-relay/server/sdnotify"
)

// runSupervised runs app like app.Run, plus what a service manager and an
// operator's monitoring need around it: systemd notifications (READY=1 once
// /readyz answers 200, WATCHDOG=1 while it does, STOPPING=1 when the
// graceful shutdown begins; nothing without NOTIFY_SOCKET) and the
// certificate-expiry gauge. The extra goroutines end before it returns.
func runSupervised(ctx context.Context, cfg *Config, app *App, log *zap.Logger, getenv func(string) string) error {
	sd, err := sdnotify.FromEnv(getenv, os.Getpid())
	if err != nil {
		return err
	}
	cw, err := certwatch.New(app.reg, certTargets(cfg), certwatch.Options{Log: log.Named("certwatch")})
	if err != nil {
		return err
	}
	warn := func(err error) {
		if err != nil {
			log.Warn("systemd notification failed", zap.Error(err))
		}
	}
	app.onReady = func() { warn(sd.Ready("serving on " + app.URL())) }
	app.onStopping = func() { warn(sd.Stopping("shutting down")) }

	extras, stopExtras := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = sd.RunWatchdog(extras, app.ready.ready.Load, warn) }()
	go func() { defer wg.Done(); _ = cw.Run(extras) }()
	err = app.Run(ctx)
	stopExtras()
	wg.Wait()
	return err
}

// certTargets lists the certificates whose expiry is exported: the serving
// certificate, both Finesse sides' REST endpoints and the IdS nodes (ids,
// then ids_2 for the subscriber).
func certTargets(cfg *Config) []certwatch.Target {
	ts := []certwatch.Target{{Name: "server", Cert: certwatch.LeafOf(cfg.Certificate)}}
	for _, s := range cfg.Sides {
		if s.Host != "" {
			ts = append(ts, certwatch.Target{Name: "finesse_" + strings.ToLower(s.Name), Addr: net.JoinHostPort(s.Host, strconv.Itoa(s.HTTPSPort))})
		}
	}
	for i, u := range cfg.IdSURLs {
		name := "ids"
		if i > 0 {
			name = "ids_" + strconv.Itoa(i+1)
		}
		if addr := tlsAddr(u); addr != "" {
			ts = append(ts, certwatch.Target{Name: name, Addr: addr})
		}
	}
	return ts
}

// tlsAddr is an https URL's host:port ("" for plain http).
func tlsAddr(u *url.URL) string {
	if u == nil || u.Scheme != "https" {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "443")
}
