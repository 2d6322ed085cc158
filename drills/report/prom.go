package report

import (
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/drillworks/drill/drills/verdict"
)

// FileProm is a run's results in the Prometheus text format, for the node exporter's textfile
// collector (copy or link it into its directory) or any scraper of files.
const FileProm = "metrics.prom"

// WriteProm writes a report's results as Prometheus metrics: the run's verdict and time, and per
// check its verdict and what it measured, labelled with the drill (and runtime).
func WriteProm(w io.Writer, r *Report) error {
	reg := prometheus.NewRegistry()
	labels := []string{"drill", "runtime"}
	run := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drill_run_verdict",
		Help: "1 for the run's verdict (pass, fail, error, aborted), 0 for the others."}, append(labels, "verdict"))
	ended := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drill_run_end_timestamp_seconds",
		Help: "When the run ended (Unix time)."}, labels)
	took := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drill_run_duration_seconds",
		Help: "How long the run took."}, labels)
	passed := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drill_check_passed",
		Help: "1 if the check passed, 0 if it failed (checks not judged are left out)."}, append(labels, "check"))
	measured := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drill_check_measured",
		Help: "What the check measured, in its unit."}, append(labels, "check", "unit"))
	reg.MustRegister(run, ended, took, passed, measured)
	for _, v := range []verdict.Verdict{verdict.Pass, verdict.Fail, verdict.Error, verdict.Aborted} {
		val := 0.0
		if r.Verdict == v {
			val = 1
		}
		run.WithLabelValues(r.Drill, r.Runtime, string(v)).Set(val)
	}
	ended.WithLabelValues(r.Drill, r.Runtime).Set(float64(r.End.UnixNano()) / 1e9)
	took.WithLabelValues(r.Drill, r.Runtime).Set(r.End.Sub(r.Start).Seconds())
	for _, c := range r.Checks {
		switch c.Verdict {
		case verdict.Pass:
			passed.WithLabelValues(r.Drill, r.Runtime, c.Name).Set(1)
		case verdict.Fail:
			passed.WithLabelValues(r.Drill, r.Runtime, c.Name).Set(0)
		}
		if c.Measured != nil {
			measured.WithLabelValues(r.Drill, r.Runtime, c.Name, c.Unit).Set(*c.Measured)
		}
	}
	return WriteGathered(w, reg)
}

// WriteGathered writes what g gathers in the Prometheus text format.
func WriteGathered(w io.Writer, g prometheus.Gatherer) error {
	families, err := g.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return nil
}
