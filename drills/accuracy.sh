#!/usr/bin/env bash
# Verdict accuracy: every built-in drill RUNS times on the correct design (a FAIL is a false
# alarm) and every known-bad variant RUNS times (a PASS is a miss), each run with its own seed, on
# each runtime in RUNTIMES; then a table of false fails and catches per drill and runtime. The
# variants are the README's known-bad settings. Bounded: RUNS x 25 runs per runtime, each tearing
# its cluster down (about 25 s each locally, 60 s on Docker).
#
#   drills/accuracy.sh                          # RUNS=20 RUNTIMES="local docker"
#   RUNS=3 RUNTIMES=local drills/accuracy.sh    # a quick sample
#   CASES='pause|flapping' drills/accuracy.sh   # only the cases whose name matches (grep -E)
#   FIRST_SEED=1006 RUNS=5 drills/accuracy.sh   # seeds 1006-1010: samples taken apart add up
#
# The report directory and log of every wrong run are kept under WRONG (default
# ./drill-accuracy-wrong) so that a false fail or a miss can be read afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
FIRST_SEED=${FIRST_SEED:-1001}
RUNTIMES=${RUNTIMES:-"local docker"}
CASES=${CASES:-.}
WRONG=${WRONG:-$PWD/drill-accuracy-wrong}
work=$(mktemp -d /tmp/drill-accuracy.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/drill" ./cmd/drill

# name | drill and arguments | the check that must fail in the known-bad variant ("" for a good run)
cases=(
	"region-outage|region-outage|"
	"primary-kill|primary-kill|"
	"wan-latency|wan-latency|"
	"region-partition|region-partition|"
	"primary-pause|primary-pause|"
	"flapping-partition|flapping-partition|"
	"failover-second-failure|failover-second-failure|"
	"cache-failover|cache-failover|"
	"cache-stampede|cache-stampede|"
	"worker-crash|worker-crash|"
	"queue-region-outage|queue-region-outage|"
	"queue-region-outage mirror|queue-region-outage --set queue_replication=mirror|"
	"job-burst|job-burst|"
	"region-outage bad|region-outage --budget lost_acked_writes=0|lost_acked_writes"
	"primary-kill bad|primary-kill --budget lost_acked_writes=0|lost_acked_writes"
	"wan-latency bad|wan-latency --set read_your_writes=off|stale_reads"
	"region-partition bad|region-partition --set fencing=none|split_brain"
	"primary-pause bad|primary-pause --set failover_after=30s|write_unavailability"
	"flapping-partition bad|flapping-partition --set fencing=none|split_brain"
	"failover-second-failure bad|failover-second-failure --set replication=async|lost_acked_writes"
	"cache-failover bad|cache-failover --set cache_invalidation=local|phantom_reads"
	"cache-stampede bad|cache-stampede --set cache_coalescing=off|db_read_amplification"
	"worker-crash bad|worker-crash --set queue_ack=before_work|lost_jobs"
	"queue-region-outage bad|queue-region-outage --set queue_storage=memory|lost_jobs"
	"job-burst bad|job-burst --set worker_concurrency=1|backlog_drain"
)

printf '%-30s %-7s %5s %9s %s\n' case runtime runs wrong "(false fails for good runs, misses for bad)"
for rt in $RUNTIMES; do
	for c in "${cases[@]}"; do
		IFS='|' read -r name args check <<<"$c"
		grep -Eq "$CASES" <<<"$name" || continue
		wrong=0
		for ((i = 1; i <= RUNS; i++)); do
			dir="$work/$rt-${name// /-}-$i"
			# shellcheck disable=SC2086 # args is a word list on purpose
			code=0
			"$work/drill" run $args --runtime "$rt" --seed "$((FIRST_SEED + i - 1))" --state-dir "$work/state" \
				--report-dir "$dir" >"$dir.log" 2>&1 || code=$?
			ok=1
			if [ -z "$check" ]; then
				[ "$code" -eq 0 ] || ok=0
			else
				verdict=$(tr -d ' \n' <"$dir/report.json" 2>/dev/null | grep -o "\"name\":\"$check\",\"verdict\":\"[a-z]*\"" | grep -o '[a-z]*"$' | tr -d '"' || true)
				{ [ "$code" -eq 1 ] && [ "$verdict" = fail ]; } || ok=0
			fi
			if [ "$ok" -eq 0 ]; then
				wrong=$((wrong + 1))
				mkdir -p "$WRONG" && cp -r "$dir" "$dir.log" "$WRONG/" 2>/dev/null || true
			fi
		done
		printf '%-30s %-7s %5d %9d\n' "$name" "$rt" "$RUNS" "$wrong"
	done
done
