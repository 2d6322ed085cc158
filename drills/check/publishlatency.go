package check

import "github.com/drillworks/drill/drills/history"

// NamePublishLatency names the check; BudgetPublishLatencyP99 is its budget.
const (
	NamePublishLatency = "publish_latency"
	// BudgetPublishLatencyP99: p99 latency of acknowledged job publishes, as clients saw it, in
	// milliseconds.
	BudgetPublishLatencyP99 = "publish_p99_ms"
)

func init() {
	registerJudge(113, NamePublishLatency, Metric{Name: BudgetPublishLatencyP99, Title: "p99 job publish latency seen by clients", Short: "publish p99", Unit: "ms"}, PublishLatency)
}

// PublishLatency is the latency of acknowledged job publishes (POST /jobs: DNS, the web tier and
// the queue's acknowledgement), p99 by nearest rank in milliseconds, judged against
// BudgetPublishLatencyP99: a burst must queue up, not slow the web tier down. Unknown without an
// acknowledged publish.
func PublishLatency(ops []history.Op, cfg Config) (Result, *ReadLatencyEvidence) {
	return latencyP99(ops, cfg, history.FEnqueue, NamePublishLatency, BudgetPublishLatencyP99, "publishes")
}
