package check

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/verdict"
)

func TestReplicationLag(t *testing.T) {
	h := &hist{}
	h.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, 30)
	// Ten steady samples of 10..100 ms (five before the fault, five after), two huge ones inside it.
	for i := range 10 {
		sec := float64(i)
		if i >= 5 {
			sec = 30 + float64(i)
		}
		h.lag("eu-west", sec, int64(10*(i+1)))
	}
	h.lag("eu-west", 15, 5000)
	h.lag("us-east", 29.9, 9000)

	for _, tc := range []struct {
		budget   float64
		verdict  verdict.Verdict
		measured float64
	}{{100, verdict.Pass, 100}, {99, verdict.Fail, 100}} {
		t.Run(fmt.Sprint("budget ", tc.budget), func(t *testing.T) {
			r, ev := ReplicationLag(h.build(), budgets(BudgetReplicationLagP99, tc.budget))
			expectVerdict(t, r, tc.verdict, tc.measured)
			if ev.Steady != (LagStats{Samples: 10, P50: 50, P99: 100, Max: 100}) {
				t.Fatalf("steady %+v", ev.Steady)
			}
			if ev.All != (LagStats{Samples: 12, P50: 60, P99: 9000, Max: 9000}) {
				t.Fatalf("all %+v", ev.All)
			}
			if ev.ByNode["us-east-db-1"] != (LagStats{Samples: 1, P50: 9000, P99: 9000, Max: 9000}) || ev.ByNode["eu-west-db-1"].Samples != 11 {
				t.Fatalf("by node %+v", ev.ByNode)
			}
		})
	}
	t.Run("only during faults", func(t *testing.T) {
		h := &hist{}
		h.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, never)
		h.lag("eu-west", 15, 5000)
		r, _ := ReplicationLag(h.build(), budgets(BudgetReplicationLagP99, 100))
		if r.Verdict != verdict.Unknown || !strings.Contains(r.Detail, "no lag sample outside fault windows; all 1 samples p50 5000ms") {
			t.Fatalf("got %s %q", r.Verdict, r.Detail)
		}
	})
	t.Run("no samples", func(t *testing.T) {
		r, _ := ReplicationLag(nil, budgets(BudgetReplicationLagP99, 100))
		if r.Verdict != verdict.Unknown || r.Detail != "no replication-lag sample in the history" {
			t.Fatalf("got %s %q", r.Verdict, r.Detail)
		}
	})
}

func TestRunOrderAndEvidenceEncodes(t *testing.T) {
	ops := outageHistory().build()
	results := Run(ops, Config{Budgets: Budgets{BudgetLostAckedWrites: 0}})
	var names []string
	for _, r := range results {
		names = append(names, r.Name)
		// The invariants are judged against 0 without a budget; every other check only with one.
		judged := r.Name == NameLostWrites || r.Name == NameOnePrimaryPerEpoch || r.Name == NameLogMatching || r.Name == NameLostJobs
		if !judged && r.HasBudget {
			t.Fatalf("%s claims a budget", r.Name)
		}
		if r.Verdict != verdict.Unknown && !judged {
			t.Fatalf("%s judged without a budget: %s", r.Name, r.Verdict)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("%s evidence does not encode: %v", r.Name, err)
		}
	}
	want := "dns_failover write_unavailability lost_acked_writes rpo rpo_beyond_lag split_brain stale_reads replication_lag dns_failback linearizable one_primary_per_epoch log_matching " +
		"phantom_reads stale_beyond_ttl db_read_amplification cache_hit_ratio read_latency lost_jobs duplicate_jobs backlog_drain publish_latency"
	if strings.Join(names, " ") != want {
		t.Fatalf("order %v", names)
	}
	if results[2].Verdict != verdict.Fail {
		t.Fatalf("lost writes: %+v", results[2])
	}
}

func TestBudgetNames(t *testing.T) {
	got := strings.Join(BudgetNames(), " ")
	want := "backlog_drain_s cache_miss_pct db_reads_per_key_ttl dns_failback_early_s dns_failover_s duplicate_jobs " +
		"epochs_with_two_primaries log_mismatches lost_acked_writes lost_jobs nonlinearizable_keys phantom_s publish_p99_ms " +
		"read_p99_ms replication_lag_p99_ms rpo_beyond_lag_s rpo_s rto_s " +
		"split_brain_s stale_beyond_ttl_s stale_reads"
	if got != want {
		t.Fatalf("BudgetNames = %s", got)
	}
	if !IsBudgetName("rto_s") || IsBudgetName("rto") {
		t.Fatal("IsBudgetName")
	}
}
