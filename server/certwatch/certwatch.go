// Package certwatch exports certificate expiry as a Prometheus gauge,
// finesse_relay_certificate_expiry_timestamp_seconds{cert=...}: the relay's
// own serving certificate (read from memory) and the certificates the Finesse
// and IdS servers present (probed with a TLS handshake, periodically), so an
// alert can fire two weeks before any of them lapses.
package certwatch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// MetricName is the gauge's name.
const MetricName = "finesse_relay_certificate_expiry_timestamp_seconds"

// Target is one certificate to watch: a static one (Cert) or a TLS endpoint
// (Addr) whose leaf certificate is read on every probe.
type Target struct {
	// Name is the cert label: server, finesse_a, finesse_b, ids.
	Name string
	// Cert is a certificate held in memory (the serving certificate).
	Cert *x509.Certificate
	// Addr is host:port of a TLS endpoint (when Cert is nil).
	Addr string
	// ServerName is the SNI sent to Addr (default: Addr's host).
	ServerName string
}

// Options tunes a Watcher; the zero value is usable.
type Options struct {
	// Interval between probes (default 1 h).
	Interval time.Duration
	// Timeout of one probe (default 10 s).
	Timeout time.Duration
	// Log receives probe failures (default: none).
	Log *zap.Logger
	// Dial opens the TCP connection (default: a net.Dialer); tests and
	// proxies may replace it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Watcher probes its targets and keeps the gauge current. Its goroutine is
// Run's caller's; nothing runs before Run.
type Watcher struct {
	targets []Target
	opts    Options
	expiry  *prometheus.GaugeVec
}

// New registers the gauge on reg and returns a Watcher for targets. Targets
// with neither Cert nor Addr are ignored (e.g. no TLS configured), so callers
// can list every possible certificate. A Target's name must be unique.
func New(reg prometheus.Registerer, targets []Target, opts Options) (*Watcher, error) {
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Dial == nil {
		opts.Dial = (&net.Dialer{}).DialContext
	}
	w := &Watcher{opts: opts, expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricName,
		Help: "NotAfter of a certificate as a Unix time: the relay's serving certificate (server) and those Finesse (finesse_a, finesse_b) and IdS (ids) present.",
	}, []string{"cert"})}
	seen := map[string]bool{}
	for _, t := range targets {
		if t.Cert == nil && t.Addr == "" {
			continue
		}
		if t.Name == "" || seen[t.Name] {
			return nil, fmt.Errorf("certwatch: target name %q is empty or repeated", t.Name)
		}
		seen[t.Name] = true
		w.targets = append(w.targets, t)
	}
	if err := reg.Register(w.expiry); err != nil {
		return nil, fmt.Errorf("certwatch: register %s: %w", MetricName, err)
	}
	return w, nil
}

// Run probes every target at once and then every Interval until ctx ends;
// it returns nil then. A failing probe is logged and keeps the last known
// value (an unreachable Finesse is the reconnect alerts' business).
func (w *Watcher) Run(ctx context.Context) error {
	if len(w.targets) == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		w.ProbeAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ProbeAll refreshes every target once, one after the other.
func (w *Watcher) ProbeAll(ctx context.Context) {
	for _, t := range w.targets {
		if ctx.Err() != nil {
			return
		}
		notAfter, err := w.probe(ctx, t)
		if err != nil {
			w.opts.Log.Warn("certificate probe failed", zap.String("cert", t.Name), zap.String("addr", t.Addr), zap.Error(err))
			continue
		}
		w.expiry.WithLabelValues(t.Name).Set(float64(notAfter.Unix()))
	}
}

func (w *Watcher) probe(ctx context.Context, t Target) (time.Time, error) {
	if t.Cert != nil {
		return t.Cert.NotAfter, nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	raw, err := w.opts.Dial(ctx, "tcp", t.Addr)
	if err != nil {
		return time.Time{}, fmt.Errorf("certwatch: connect to %s (%s): %w", t.Addr, t.Name, err)
	}
	defer raw.Close()
	sni := t.ServerName
	if sni == "" {
		sni, _, _ = net.SplitHostPort(t.Addr)
	}
	// Only the presented certificate's NotAfter is read and no data is sent,
	// so verification is skipped here on purpose: an expired or otherwise
	// invalid certificate must still be measured (the relay's real
	// connections verify as configured).
	c := tls.Client(raw, &tls.Config{ServerName: sni, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) // #nosec G402 -- reads NotAfter only, see above
	if err := c.HandshakeContext(ctx); err != nil {
		return time.Time{}, fmt.Errorf("certwatch: TLS handshake with %s (%s): %w", t.Addr, t.Name, err)
	}
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return time.Time{}, errors.New("certwatch: " + t.Addr + " presented no certificate")
	}
	return certs[0].NotAfter, nil
}

// LeafOf returns the parsed leaf of a tls.Certificate (nil when c is nil or
// holds nothing parseable), for the static "server" target.
func LeafOf(c *tls.Certificate) *x509.Certificate {
	if c == nil {
		return nil
	}
	if c.Leaf != nil {
		return c.Leaf
	}
	if len(c.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}
