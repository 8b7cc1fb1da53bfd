package rest

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the REST client's and the proxy's Prometheus collectors. A
// nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec   // finesse_relay_rest_requests_total{method,status,side}
	duration *prometheus.HistogramVec // finesse_relay_rest_request_duration_seconds{method,side}
	proxied  *prometheus.CounterVec   // finesse_relay_rest_proxy_requests_total{code}
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). Registering twice on the same registry reuses the
// collectors already there, so several clients may share one registry.
//
//   - finesse_relay_rest_requests_total{method,status,side}: calls to
//     Finesse by HTTP method, answer (the status code, or "timeout",
//     "unreachable", "canceled", "refused" for a credential not sent again,
//     "credentials" when the Credentials failed) and side.
//   - finesse_relay_rest_request_duration_seconds{method,side}: time to the
//     full response body.
//   - finesse_relay_rest_proxy_requests_total{code}: proxy requests by
//     outcome: "forwarded" or the relay's error code (see docs/rest.md).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finesse_relay_rest_requests_total",
			Help: "Finesse REST calls by method, answer (status code or failure) and side.",
		}, []string{"method", "status", "side"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "finesse_relay_rest_request_duration_seconds",
			Help:    "Duration of Finesse REST calls, to the end of the response body.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"method", "side"}),
		proxied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finesse_relay_rest_proxy_requests_total",
			Help: "Browser requests to the Finesse REST proxy by outcome (forwarded, or the relay's error code).",
		}, []string{"code"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.duration = register(reg, m.duration)
		m.proxied = register(reg, m.proxied)
	}
	return m
}

// register registers c, or returns the equal collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: a different collector under our name
	}
	return c
}

// observe records one call.
func (m *Metrics) observe(method, status, side string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method, status, side).Inc()
	m.duration.WithLabelValues(method, side).Observe(d.Seconds())
}

// proxy records one proxy request.
func (m *Metrics) proxy(code string) {
	if m == nil {
		return
	}
	m.proxied.WithLabelValues(code).Inc()
}

// statusLabel is the status label of an HTTP answer.
func statusLabel(status int) string { return strconv.Itoa(status) }
