package db

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics are the node's Prometheus metrics, labelled with the node name so several nodes can
// share one registry.
type nodeMetrics struct {
	reg           *prometheus.Registry
	collectors    []prometheus.Collector
	writes        *prometheus.CounterVec
	discarded     prometheus.Counter
	leaseRenewals *prometheus.CounterVec
	walFsyncs     prometheus.Counter
}

func newNodeMetrics(reg *prometheus.Registry, n *Node) (*nodeMetrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	labels := prometheus.Labels{"node": n.cfg.Name}
	gauge := func(name, help string, value func(State) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return value(n.State()) })
	}
	boolean := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	m := &nodeMetrics{
		reg: reg,
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drill_db_writes_total",
			Help: "Writes by result (ok, not_primary, no_lease, semi_sync_timeout, unknown, closed, error).", ConstLabels: labels},
			[]string{"result"}),
		discarded: prometheus.NewCounter(prometheus.CounterOpts{Name: "drill_db_discarded_writes_total",
			Help: "Log entries dropped while truncating a divergent suffix.", ConstLabels: labels}),
		leaseRenewals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drill_db_lease_renewals_total",
			Help: "Lease rounds by result (granted = majority, denied = no majority).", ConstLabels: labels},
			[]string{"result"}),
		walFsyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "drill_db_wal_fsyncs_total",
			Help: "WAL fsyncs (one per group-commit batch or replicated batch).", ConstLabels: labels}),
	}
	// Every known result exists from the start at 0 (the Prometheus convention), so a rate or a
	// dashboard panel has a series before the first event of its kind.
	for _, r := range []string{"granted", "denied"} {
		m.leaseRenewals.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "not_primary", "no_lease", "semi_sync_timeout", "unknown", "closed", "error"} {
		m.writes.WithLabelValues(r)
	}
	m.collectors = []prometheus.Collector{
		m.writes, m.discarded, m.leaseRenewals, m.walFsyncs,
		gauge("drill_db_applied_lsn", "Last applied (durable) log sequence number.", func(s State) float64 { return float64(s.LSN) }),
		gauge("drill_db_epoch", "Epoch the node knows.", func(s State) float64 { return float64(s.Epoch) }),
		gauge("drill_db_is_primary", "1 if the node is the primary.", func(s State) float64 { return boolean(s.Primary) }),
		gauge("drill_db_has_lease", "1 if the primary holds a valid majority lease.", func(s State) float64 { return boolean(s.HasLease) }),
		gauge("drill_db_replication_lag_seconds", "Replica staleness bound in seconds (see State.LagMS).", func(s State) float64 { return float64(s.LagMS) / 1000 }),
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("register db metrics: %w", err)
		}
	}
	return m, nil
}

func (m *nodeMetrics) unregister() {
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
