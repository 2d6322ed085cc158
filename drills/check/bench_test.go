package check

import (
	"fmt"
	"testing"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/history"
)

// millionOps is a drill-shaped history of about 1,000,000 entries: 8 clients in two regions
// writing unique keys and reading them back, a region black-holed for a stretch with a failover,
// DNS probes and lag samples, and the final read of every key.
func millionOps() []history.Op {
	h := &hist{}
	const perProcess = 25_000 // write + read, invoke + completion: 4 entries each
	procs := []struct {
		p      int
		region string
	}{{1, "us-east"}, {2, "us-east"}, {3, "us-east"}, {4, "us-east"}, {5, "eu-west"}, {6, "eu-west"}, {7, "eu-west"}, {8, "eu-west"}}
	const step = 0.02
	outageFrom, outageTo := 150.0, 200.0
	for _, pr := range procs {
		for i := range perProcess {
			t := float64(i) * step
			key := fmt.Sprintf("%s-p%d-%d", pr.region, pr.p, i)
			db, epoch := "us-east-db-1", 1
			if t > outageFrom+5 {
				db, epoch = "eu-west-db-1", 2
			}
			if pr.region == "us-east" && t >= outageFrom && t < outageTo {
				h.write(pr.p, pr.region, key, t, history.TypeInfo, t+0.01, "", 0)
				continue
			}
			h.write(pr.p, pr.region, key, t, history.TypeOK, t+0.005, db, uint64(i+1))
			_ = epoch
			h.read(pr.p, pr.region, key, t+0.01, history.TypeOK, t+0.015, true, uint64(i+1), "v-"+key)
			h.final(key, "v-"+key, true, 600+float64(i)*1e-6)
		}
	}
	for i := range 5000 {
		t := float64(i) * 0.1
		for _, region := range []string{"us-east", "eu-west"} {
			to := region
			if region == "us-east" && t >= outageFrom+2 && t < outageTo+3 {
				to = "eu-west"
			}
			h.dns(100, region, t, to)
			h.lag(region, t, 5)
		}
	}
	h.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", outageFrom, outageTo)
	h.add(history.Op{Type: history.TypeEpoch, DBNode: "eu-west-db-1", Region: "eu-west", Epoch: 2}, outageFrom+5)
	return h.build()
}

// BenchmarkRunMillionOps judges a 1,000,000-entry history with every checker but linearizability
// (a search with its own time bound) — the target: at most 3 s on this 2-core machine. Run:
// go test -run '^$' -bench RunMillionOps ./drills/check/
func BenchmarkRunMillionOps(b *testing.B) {
	ops := millionOps()
	b.Logf("%d history entries", len(ops))
	cfg := Config{Budgets: Budgets{BudgetDNSFailover: 10, BudgetRTO: 10, BudgetLostAckedWrites: 0, BudgetRPO: 1,
		BudgetSplitBrain: 0, BudgetStaleReads: 0, BudgetReplicationLagP99: 1000, BudgetDNSFailbackEarly: 0}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, c := range Checkers() {
			if c.Name() == NameLinearizable {
				continue
			}
			if r := c.Check(ops, cfg); r.Name == "" {
				b.Fatal("no result")
			}
		}
	}
}
