package cluster

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Cluster's Prometheus metrics.
type Metrics struct {
	owned         prometheus.Gauge
	replicas      prometheus.Gauge
	queued        prometheus.Gauge
	adopted       prometheus.Counter
	lost          prometheus.Counter
	appended      prometheus.Counter
	dropped       prometheus.Counter
	followed      prometheus.Counter
	gaps          prometheus.Counter
	appendSeconds prometheus.Histogram
}

// NewMetrics registers the metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "finesse_relay_cluster_agents_owned", Help: "Agents whose lease this instance holds (their upstream session runs here).",
		}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "finesse_relay_cluster_agents_followed", Help: "Agents owned by another instance whose stream this instance follows for its tabs.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "finesse_relay_cluster_append_queue", Help: "Messages waiting to be appended to the shared store.",
		}),
		adopted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_cluster_leases_taken_total", Help: "Agent leases this instance took (new sign-ins and agents adopted from another instance).",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_cluster_leases_lost_total", Help: "Agent leases another instance took while this one still ran the session.",
		}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_cluster_appended_total", Help: "Messages appended to the agents' shared streams.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_cluster_append_dropped_total", Help: "Messages not shared with the other instances (queue full or store failure); their tabs got a snapshot instead.",
		}),
		followed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_cluster_messages_followed_total", Help: "Messages of other instances' agents applied to this instance's replicas.",
		}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "finesse_relay_cluster_replica_gaps_total", Help: "Replicas rebuilt because messages were missing from an agent's stream (their tabs reconnected and got a snapshot).",
		}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "finesse_relay_cluster_append_seconds", Help: "Time to append one message to the shared store.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.owned, m.replicas, m.queued, m.adopted, m.lost, m.appended, m.dropped, m.followed, m.gaps, m.appendSeconds)
	}
	return m
}
