package agent

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the session core's Prometheus metrics. A nil *Metrics is
// valid and records nothing.
type Metrics struct {
	sessions     *prometheus.GaugeVec
	reconnects   prometheus.Counter
	failovers    prometheus.Counter
	events       prometheus.Counter
	decodeErrors prometheus.Counter
}

// NewMetrics registers the metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "finesse_relay_sessions", Help: "Agent sessions by upstream state.",
		}, []string{"state"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_upstream_reconnects_total", Help: "Notification Service reconnections.",
		}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_failovers_total", Help: "Switches from one Finesse side to the other.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_events_relayed_total", Help: "Finesse notifications relayed to browsers.",
		}),
		decodeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_event_decode_errors_total", Help: "Notifications whose data could not be decoded (relayed raw).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.reconnects, m.failovers, m.events, m.decodeErrors)
	}
	return m
}

func (m *Metrics) sessionState(from, to string) {
	if m == nil || from == to {
		return
	}
	if from != "" {
		m.sessions.WithLabelValues(from).Dec()
	}
	if to != "" {
		m.sessions.WithLabelValues(to).Inc()
	}
}

func (m *Metrics) reconnect() {
	if m != nil {
		m.reconnects.Inc()
	}
}

func (m *Metrics) failover() {
	if m != nil {
		m.failovers.Inc()
	}
}

func (m *Metrics) event(decodeFailed bool) {
	if m == nil {
		return
	}
	m.events.Inc()
	if decodeFailed {
		m.decodeErrors.Inc()
	}
}
