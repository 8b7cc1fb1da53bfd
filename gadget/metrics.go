package gadget

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gateway's Prometheus collectors. One Metrics value is
// shared by the Gateway and every Stream.
type Metrics struct {
	connections prometheus.Gauge
	messagesOut prometheus.Counter
	dropped     *prometheus.CounterVec
	resumes     *prometheus.CounterVec
	closes      *prometheus.CounterVec
	badMessages prometheus.Counter
	latency     prometheus.Histogram
}

// NewMetrics creates the collectors and registers them with reg:
//
//	finesse_relay_ws_connections                     gauge: open WebSocket connections
//	finesse_relay_ws_messages_out_total              frames written to browsers
//	finesse_relay_ws_dropped_connections_total{reason} connections the relay closed because of the client:
//	                                                 queue_overflow, heartbeat_timeout, policy_violation, too_large, write_error
//	finesse_relay_ws_resumes_total{result}           resume requests: replayed (from the ring) or state (fresh snapshot)
//	finesse_relay_ws_closes_total{code}              closed connections by close code (1006: no close frame)
//	finesse_relay_ws_bad_messages_total              refused inbound messages
//	finesse_relay_event_relay_latency_seconds        histogram: an event's arrival from upstream (the XMPP
//	                                                 message read) → its frame written to a browser's WebSocket,
//	                                                 one observation per event per connection
//
// A nil reg gives working, unregistered collectors. Collectors already
// registered with reg (a second NewMetrics on the same registry) are reused.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "finesse_relay_ws_connections", Help: "Open browser WebSocket connections.",
		}),
		messagesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_ws_messages_out_total", Help: "Frames written to browser WebSocket connections.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finesse_relay_ws_dropped_connections_total", Help: "Browser connections closed by the relay because of the client, by reason.",
		}, []string{"reason"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finesse_relay_ws_resumes_total", Help: "Resume requests, by result (replayed from the ring, or a fresh state snapshot).",
		}, []string{"result"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "finesse_relay_ws_closes_total", Help: "Closed browser connections, by WebSocket close code.",
		}, []string{"code"}),
		badMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_ws_bad_messages_total", Help: "Inbound browser messages refused (bad_request, unknown_type, forbidden, too_large, rate_limited).",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "finesse_relay_event_relay_latency_seconds",
			Help:    "Time from an event's arrival from the Notification Service to its frame written to a browser WebSocket (per event and connection).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	if reg != nil {
		m.connections = register(reg, m.connections)
		m.messagesOut = register(reg, m.messagesOut)
		m.dropped = register(reg, m.dropped)
		m.resumes = register(reg, m.resumes)
		m.closes = register(reg, m.closes)
		m.badMessages = register(reg, m.badMessages)
		m.latency = register(reg, m.latency)
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("gadget: registering metrics: " + err.Error())
	}
	return c
}

func (m *Metrics) resume(result string) { m.resumes.WithLabelValues(result).Inc() }

func (m *Metrics) closed(code int) { m.closes.WithLabelValues(strconv.Itoa(code)).Inc() }
