package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"finesse-relay/httpx"
)

// Server timeouts. WebSocket connections are hijacked and set their own
// deadlines; these bound ordinary requests.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// listen binds addr, naming the config key in the error when the port is
// taken or not allowed, so the operator knows what to change.
func listen(key, host string, port int) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			return nil, cfgErr(key, "port %d on %q is already in use: stop the other program or choose another port", port, host)
		case errors.Is(err, syscall.EACCES):
			return nil, cfgErr(key, "not allowed to listen on port %d: use a port above 1023 or grant CAP_NET_BIND_SERVICE", port)
		default:
			return nil, cfgErr(key, "cannot listen on %s: %v", addr, err)
		}
	}
	return ln, nil
}

// newHTTPServer returns a server with every timeout set.
func newHTTPServer(h http.Handler, tlsCert *tls.Certificate) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	if tlsCert != nil {
		srv.TLSConfig = serverTLS(tlsCert)
	}
	return srv
}

// serverTLS is the TLS configuration of the relay's listener: TLS 1.2 or
// 1.3, and for TLS 1.2 only forward-secret AEAD suites (ECDHE with AES-GCM
// or ChaCha20-Poly1305; no CBC, no RSA key exchange). TLS 1.3's suites are
// all AEAD and not configurable.
func serverTLS(cert *tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{*cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// hstsValue is the Strict-Transport-Security header sent over TLS.
const hstsValue = "max-age=31536000"

// baseHeaders sets the headers every answer of the public port carries:
// X-Content-Type-Options, and Strict-Transport-Security when the relay
// serves TLS. Handlers may add their own (pages: CSP, Referrer-Policy).
func baseHeaders(next http.Handler, tlsOn bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if tlsOn {
			h.Set("Strict-Transport-Security", hstsValue)
		}
		next.ServeHTTP(w, r)
	})
}

// serve runs srv on ln until ctx is done, then shuts it down gracefully:
// in-flight requests finish within timeout.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		var err error
		if srv.TLSConfig != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// redirectHandler sends plain HTTP requests to the relay's public HTTPS
// URL. The target's scheme and host come from the configuration
// (PUBLIC_URL, else derived from REDIRECT_URI or the listen address), never
// from the request's Host header, which anyone can set.
func redirectHandler(public *url.URL) http.Handler {
	base := "https://" + public.Host
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		target := r.URL.RequestURI()
		if !strings.HasPrefix(target, "/") { // "*" or an opaque target ("GET http:x"), which no browser sends: appended to base it would change the host
			target = "/"
		}
		http.Redirect(w, r, base+target, http.StatusPermanentRedirect) // #nosec G710 -- scheme and host are the configured public URL's, never the request's; the request adds only a path starting with /
	})
}

// httpMetrics are the relay's HTTP request metrics.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newRegistry returns a Prometheus registry with Go runtime, process and
// HTTP metrics.
func newRegistry() (*prometheus.Registry, *httpMetrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finesse_relay_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "finesse_relay_http_request_duration_seconds", Help: "HTTP request duration by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return reg, m
}

// instrument records every request under its ServeMux pattern (never the
// raw path, which would carry ids and explode cardinality).
func (m *httpMetrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// minMetricsToken is the shortest bearer token METRICS_TOKEN_FILE may hold.
const minMetricsToken = 16

// setupMetrics decides where GET /metrics is served:
//   - METRICS_LISTEN set: on that separate listener only (bind it here, so
//     a taken port fails before anything runs); the public port answers 404;
//   - else METRICS_TOKEN_FILE set: on the public port, to requests with
//     Authorization: Bearer <the file's token>;
//   - else: on the public port only when it listens on a loopback address
//     (the demo, a local reverse proxy); otherwise not at all, with a
//     warning at start naming both keys.
//
// With both keys set the separate listener requires the token too.
// PPROF=true adds Go's profiles under /debug/pprof/ to the separate
// listener only (LoadConfig refuses PPROF without METRICS_LISTEN).
func (a *App) setupMetrics() error {
	cfg := a.cfg
	h := metricsHandler(a.reg)
	bearer := false
	var bearerToken []byte // METRICS_TOKEN_FILE's token, nil without it
	if cfg.MetricsTokenFile != "" {
		b, err := os.ReadFile(cfg.MetricsTokenFile)
		if err != nil {
			return cfgErr("METRICS_TOKEN_FILE", "cannot read %s: %v", cfg.MetricsTokenFile, err)
		}
		tok := bytes.TrimSpace(b)
		if len(tok) < minMetricsToken {
			return cfgErr("METRICS_TOKEN_FILE", "%s holds %d characters; put a random token of at least %d in it (e.g. openssl rand -hex 32)", cfg.MetricsTokenFile, len(tok), minMetricsToken)
		}
		h, bearer = requireBearer(h, tok), true
		bearerToken = tok
	}
	switch {
	case cfg.MetricsListen != "":
		host, portStr, err := net.SplitHostPort(cfg.MetricsListen)
		port, perr := strconv.Atoi(portStr)
		if err != nil || perr != nil || port < 0 || port > 65535 {
			return cfgErr("METRICS_LISTEN", "%q is not host:port (e.g. 127.0.0.1:9125)", cfg.MetricsListen)
		}
		if a.metricsLn, err = listen("METRICS_LISTEN", host, port); err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", h)
		if cfg.PProf {
			pprofRoutes(mux, bearerToken)
		}
		a.metricsMux = mux
	case bearer, isLoopback(a.main.Addr()):
		a.publicMetrics = h
	default:
		cfg.Warnings = append(cfg.Warnings, "/metrics is not served: the public port listens beyond loopback and neither METRICS_LISTEN (a separate address, e.g. 127.0.0.1:9125) nor METRICS_TOKEN_FILE (a bearer token) is set.")
	}
	return nil
}

// pprofRoutes registers net/http/pprof's handlers under /debug/pprof/ on
// mux (the METRICS_LISTEN mux only: see setupMetrics), behind the
// METRICS_TOKEN_FILE token when there is one. The package's init also
// registers them on http.DefaultServeMux, which the relay never serves.
// cmdline is left out: --set may carry a secret on the command line.
func pprofRoutes(mux *http.ServeMux, token []byte) {
	wrap := func(h http.Handler) http.Handler {
		if token != nil {
			return requireBearer(h, token)
		}
		return h
	}
	mux.Handle("GET /debug/pprof/", wrap(http.HandlerFunc(pprof.Index))) // heap, goroutine, allocs, block, mutex, threadcreate
	mux.Handle("GET /debug/pprof/profile", wrap(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/symbol", wrap(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("POST /debug/pprof/symbol", wrap(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("GET /debug/pprof/trace", wrap(http.HandlerFunc(pprof.Trace)))
}

// requireBearer answers 401 unless the request carries
// Authorization: Bearer <token> (compared in constant time).
func requireBearer(next http.Handler, token []byte) http.Handler {
	want := sha256.Sum256(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			httpx.WriteError(w, http.StatusUnauthorized, "unauthenticated", "/metrics needs Authorization: Bearer <the token of METRICS_TOKEN_FILE>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLoopback reports whether addr is a loopback TCP address.
func isLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// statusRecorder remembers the status code; it keeps Hijack and Flush
// working for WebSocket upgrades and streaming.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("server: response writer cannot hijack")
	}
	r.status = http.StatusSwitchingProtocols
	return h.Hijack()
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
