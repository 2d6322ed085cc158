#!/usr/bin/env bash
# Profiles the GeoDNS under dnsperf load and compares socket layouts in the same run.
#
# Each variant is a set of profserver flags (see profserver/main.go), optionally run by the
# profserver built from another git ref (BASE_REF, e.g. HEAD: the committed dnsgeo, for a
# before/after comparison of uncommitted changes); variants are run
# alternately for ROUNDS rounds of DURATION seconds, each with a CPU profile, and the script
# prints per variant the qps of every round, the median, and the server's CPU time per query
# (user+sys from getrusage: much less noisy than qps on a shared machine).
#
# Usage: dnsgeo/bench/profile.sh                 # default variants
#        VARIANTS="base|-sockets=1;two|-sockets=2" ROUNDS=3 dnsgeo/bench/profile.sh
#        BASE_REF=HEAD VARIANTS="before|-sockets=1|base;after|-sockets=1" dnsgeo/bench/profile.sh
# A variant is name|flags[|base]; "base" runs the profserver built from BASE_REF's dnsgeo.
# Env:   ROUNDS (3), DURATION seconds (8), CLIENTS (4), OUT dir for profiles (a temp dir),
#        ADDR (127.0.0.71), PORT (5300), SRC client address (127.10.1.5).
# Reads the profiles with: go tool pprof -top <OUT>/profserver <OUT>/<variant>-<round>.prof
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CLIENTS=${CLIENTS:-4}
ADDR=${ADDR:-127.0.0.71}
PORT=${PORT:-5300}
SRC=${SRC:-127.10.1.5}
ECS_OPT=8:00011800cb0071 # family 1, source /24, scope 0, 203.0.113.0
VARIANTS=${VARIANTS:-"batched|-sockets=1;miekg-no-oob|-sockets=1 -no-oob;two-sockets|-sockets=2"}
BASE_REF=${BASE_REF:-}

die() { echo "profile.sh: $*" >&2; exit 1; }
case "$ADDR $SRC" in 127.*" "127.*) ;; *) die "ADDR and SRC must be loopback (127/8)";; esac
command -v dnsperf >/dev/null || die "dnsperf missing (run run.sh once, or apt-get install dnsperf)"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/drill-profile.XXXXXX)}
mkdir -p "$OUT"
PID=""
cleanup() { if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

(cd "$REPO" && go build -o "$OUT/profserver" ./dnsgeo/bench/profserver) || die "build profserver"
if [[ -n $BASE_REF ]]; then
	# The committed tree of BASE_REF (read-only git use) with today's profserver source in it.
	rm -rf "$OUT/base-src" && mkdir -p "$OUT/base-src"
	(cd "$REPO" && git archive "$BASE_REF") | tar -x -C "$OUT/base-src" || die "git archive $BASE_REF"
	mkdir -p "$OUT/base-src/dnsgeo/bench" && cp -r "$REPO/dnsgeo/bench/profserver" "$OUT/base-src/dnsgeo/bench/"
	(cd "$OUT/base-src" && go build -o "$OUT/profserver-base" ./dnsgeo/bench/profserver) || die "build base profserver"
fi
printf 'app.drill.test A\n' >"$OUT/queries.txt"

IFS=';' read -r -a specs <<<"$VARIANTS"
names=()
for spec in "${specs[@]}"; do names+=("${spec%%|*}"); done
declare -A qps cpu

run_variant() { # name flags round [base]
	local name=$1 flags=$2 round=$3 log="$OUT/$1-$3.server.log" bin=$OUT/profserver
	if [[ ${4:-} == base ]]; then
		[[ -n $BASE_REF ]] || die "variant $name wants the base build: set BASE_REF"
		bin=$OUT/profserver-base
	fi
	# shellcheck disable=SC2086 # flags are word lists on purpose
	"$bin" -listen "$ADDR:$PORT" -cpuprofile "$OUT/$name-$round.prof" -duration $((DURATION + 60))s $flags >"$log" 2>&1 &
	PID=$!
	local ok=""
	for _ in $(seq 50); do # bounded readiness poll (≤ 5 s)
		if dig +time=1 +tries=1 -b "$SRC" @"$ADDR" -p "$PORT" app.drill.test A +short 2>/dev/null | grep -q 127.77.1.10; then ok=1; break; fi
		sleep 0.1
	done
	[[ -n $ok ]] || die "$name did not answer; log: $(cat "$log")"
	local res
	res=$(timeout $((DURATION + 30)) dnsperf -s "$ADDR" -p "$PORT" -a "$SRC" -d "$OUT/queries.txt" -c "$CLIENTS" -T 1 -l "$DURATION" -E "$ECS_OPT" 2>&1) || die "dnsperf failed: $res"
	kill -TERM "$PID"
	wait "$PID" || true
	PID=""
	qps[$name]+=" $(awk '/Queries per second/ {printf "%.0f", $4}' <<<"$res")"
	cpu[$name]+=" $(sed -n 's/.*cpu_us_per_query=\([0-9.]*\).*/\1/p' "$log")"
	echo "round $round $name: qps $(awk '/Queries per second/ {printf "%.0f", $4}' <<<"$res"), server: $(grep -o 'cpu_us_per_query.*' "$log")"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"} else if (NR%2) {print a[(NR+1)/2]} else {printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}}'; }

echo "profile.sh: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load $(cut -d' ' -f1-3 /proc/loadavg), out $OUT"
for ((round = 1; round <= ROUNDS; round++)); do
	for ((k = 0; k < ${#specs[@]}; k++)); do
		i=$(((k + round - 1) % ${#specs[@]})) # rotate the starting variant every round
		IFS='|' read -r _ flags base <<<"${specs[$i]}"
		run_variant "${names[$i]}" "$flags" "$round" "$base"
	done
done
echo
printf '%-14s %-28s %10s %16s\n' variant "qps per round" "median" "cpu µs/query"
for n in "${names[@]}"; do
	printf '%-14s %-28s %10s %16s\n' "$n" "${qps[$n]# }" "$(median <<<"${qps[$n]}")" "$(median <<<"${cpu[$n]}")"
done
echo "profiles: $OUT/<variant>-<round>.prof (binary $OUT/profserver)"
