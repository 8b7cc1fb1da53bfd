package signin

import "github.com/prometheus/client_golang/prometheus"

// Credential failure kinds (label "kind" of
// finesse_relay_credential_failures_total).
const (
	failRefused     = "refused"       // Finesse refused a sign-in
	failThrottled   = "throttled"     // the relay answered 429 without asking Finesse
	failSignInAgain = "sign_in_again" // a session's credential could not be renewed
)

// Metrics are the sign-in layer's metrics.
type Metrics struct {
	failures  *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	signIns   *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg (nil: unregistered). Every label
// value exists from the start, so a counter shows in /metrics before its
// first increment.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finesse_relay_credential_failures_total",
			Help: "Credential failures by kind: refused (Finesse refused a sign-in), throttled (the relay answered 429 itself), sign_in_again (a session's credential could not be renewed).",
		}, []string{"kind"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finesse_relay_token_refreshes_total", Help: "IdS access-token refreshes by result (ok, failed).",
		}, []string{"result"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finesse_relay_sign_ins_total", Help: "Successful sign-ins by method (password, token, sso).",
		}, []string{"method"}),
	}
	for _, k := range []string{failRefused, failThrottled, failSignInAgain} {
		m.failures.WithLabelValues(k)
	}
	for _, k := range []string{"ok", "failed"} {
		m.refreshes.WithLabelValues(k)
	}
	for _, k := range []string{"password", "token", "sso"} {
		m.signIns.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.failures, m.refreshes, m.signIns)
	}
	return m
}

func (m *Metrics) failure(kind string) { m.failures.WithLabelValues(kind).Inc() }

func (m *Metrics) refresh(ok bool) {
	if ok {
		m.refreshes.WithLabelValues("ok").Inc()
	} else {
		m.refreshes.WithLabelValues("failed").Inc()
	}
}

func (m *Metrics) signIn(method string) { m.signIns.WithLabelValues(method).Inc() }
