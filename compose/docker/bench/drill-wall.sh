#!/usr/bin/env bash
# Wall time of `drill run region-outage` on the local and the Docker runtime, alternating rounds in
# one run (the starting runtime rotates), with the drill's verdict and DNS failover per round, then
# the median per runtime and the Docker/local ratio. Bounded: ROUNDS rounds (default 3) of one run
# per runtime each; every run tears its cluster down. Needs a Docker engine for the docker rounds.
#
#   compose/docker/bench/drill-wall.sh            # ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROUNDS=${ROUNDS:-3}
work=$(mktemp -d /tmp/drill-wall.XXXXXX)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/drill" ./cmd/drill
# One run first so the Docker image exists: the rounds time a cached image (see
# BenchmarkUpToConverged for cold).
"$work/drill" image build >/dev/null

declare -A times
runtimes=(local docker)
printf '%-6s %-7s %8s %8s %12s\n' round runtime wall verdict dns_failover
for ((r = 1; r <= ROUNDS; r++)); do
	for ((i = 0; i < 2; i++)); do
		rt=${runtimes[$(((r + i) % 2))]}
		start=$(date +%s.%N)
		"$work/drill" run region-outage --runtime "$rt" --report-dir "$work/$rt-$r" >"$work/$rt-$r.log" 2>&1 || true
		end=$(date +%s.%N)
		wall=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')
		times[$rt]+="$wall "
		verdict=$(sed -n 's/.*"verdict": *"\([a-z]*\)".*/\1/p' "$work/$rt-$r/report.json" | head -1)
		dns=$(sed -n 's/.*"dns_failover_s": *\([0-9.]*\).*/\1/p' "$work/$rt-$r/report.json" | head -1)
		printf '%-6s %-7s %7ss %8s %11ss\n' "$r" "$rt" "$wall" "${verdict:-?}" "${dns:--}"
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ml=$(echo "${times[local]}" | median)
md=$(echo "${times[docker]}" | median)
echo "median wall: local ${ml}s, docker ${md}s, docker/local $(awk -v a="$md" -v b="$ml" 'BEGIN {printf "%.2f", a / b}')x"
