package dnsgeo

import (
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus metrics. Query counters are resolved once, at New, so the
// query path only increments an atomic.
type metrics struct {
	queries     *prometheus.CounterVec
	transitions *prometheus.CounterVec
	invalid     prometheus.Counter
	// byRcode[rcode][region+1]: region -1 ("none") is column 0.
	byRcode map[int][]prometheus.Counter
}

// rcodesServed are the rcodes the handler can answer with.
var rcodesServed = [...]int{
	dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError,
	dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeBadVers,
}

// newMetrics registers the metrics on reg (a private registry when reg is nil).
func newMetrics(reg *prometheus.Registry, s *Server) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drill_dns_queries_total",
			Help: "DNS queries answered, by rcode and answering region (none when no region was chosen).",
		}, []string{"rcode", "region"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drill_dns_region_state_changes_total",
			Help: "Region health state changes seen by this instance, by region and new state (up, down, hold-down).",
		}, []string{"region", "state"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "drill_dns_invalid_messages_total",
			Help: "Messages that could not be parsed (answered FORMERR or dropped before the handler).",
		}),
		byRcode: make(map[int][]prometheus.Counter, len(rcodesServed)),
	}
	reg.MustRegister(m.queries, m.transitions, m.invalid)
	for _, rc := range rcodesServed {
		row := make([]prometheus.Counter, len(s.regions)+1)
		row[0] = m.queries.WithLabelValues(dns.RcodeToString[rc], "none")
		for i, r := range s.regions {
			if rc == dns.RcodeSuccess {
				row[i+1] = m.queries.WithLabelValues(dns.RcodeToString[rc], r)
			} else {
				row[i+1] = row[0] // only NOERROR answers come from a region
			}
		}
		m.byRcode[rc] = row
	}
	for i, r := range s.regions {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "drill_dns_region_last_change_timestamp_seconds",
			Help:        "When the region's health state last changed, as seen by this instance (Unix time; time() minus it is its age).",
			ConstLabels: prometheus.Labels{"region": r},
		}, func() float64 {
			return float64(s.view.Load().regions[i].since.UnixNano()) / 1e9
		}))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "drill_dns_region_admitted",
			Help:        "1 while the region is admitted to answers (up), 0 while down or in hold-down.",
			ConstLabels: prometheus.Labels{"region": r},
		}, func() float64 {
			if s.view.Load().regions[i].state == stateUp {
				return 1
			}
			return 0
		}))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "drill_dns_fail_static",
		Help: "1 while this instance sees no other alive member and serves its last known good view.",
	}, func() float64 {
		if s.view.Load().failStatic {
			return 1
		}
		return 0
	}))
	return m
}

// count records one answered query.
func (m *metrics) count(rcode, region int) {
	row, ok := m.byRcode[rcode]
	if !ok {
		m.queries.WithLabelValues(dns.RcodeToString[rcode], "none").Inc()
		return
	}
	if region+1 >= len(row) || region < -1 {
		region = -1
	}
	row[region+1].Inc()
}
