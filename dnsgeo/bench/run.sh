#!/usr/bin/env bash
# GeoDNS speed benchmark: drill's GeoDNS against gdnsd (geoip plugin, nets map) and CoreDNS
# (view + template), same answers, same machine, loopback only, measured with dnsperf.
#
# What it does (idempotent; safe to re-run):
#   1. installs what is missing: dnsperf and gdnsd (apt-get), CoreDNS v1.15.0 (go install, cached
#      under ${XDG_CACHE_HOME:-~/.cache}/drill-bench; about three minutes the first time);
#   2. builds drill and writes every config into a temp dir;
#   3. starts the three servers on distinct 127.0.0.x addresses and checks with dig that each gives
#      the expected answers (aborts loudly otherwise);
#   4. runs dnsperf against them ALTERNATELY for $ROUNDS rounds of $DURATION s (the starting server
#      rotates each round) and prints per server the qps of each round, the median, dnsperf's
#      average latency and stddev, the server process's CPU time per answered query, and our
#      ratio to each peer next to the issue's targets;
#   5. measures latency under load: each server at the same fixed rate (LOAD_PCT % of our median
#      qps, or LAT_RATE), every query timed by dnsperf -v (written to a file), in each of
#      LAT_MODES for LAT_ROUNDS alternating rounds, and prints p50/p99/p99.9/max per run and the
#      medians. Modes (the same for every server, printed with the results):
#        shared  no pinning: servers and dnsperf share both CPUs;
#        pinned  the server (all threads, taskset -a -p) on SERVER_CPU, dnsperf on CLIENT_CPU.
# Everything it starts is stopped on exit.
#
# Routing equivalence: all three map 203.0.113.0/24 and 127.10.1.0/24 to us-east
# (127.77.1.10/11) and 198.51.100.0/24 and 127.10.2.0/24 to eu-west (127.77.2.10/11), TTL 5.
# dnsperf sends ECS 203.0.113.0/24 from 127.10.1.5. drill and gdnsd route by the ECS option;
# CoreDNS's view plugin only sees the packet's source address (client_ip()), which is why the
# queries come from an address inside a us-east client subnet: every server then answers us-east.
#
# Env: ROUNDS (3; 0 skips throughput, then set LAT_RATE), DURATION seconds per run (8), CLIENTS (4),
#      THREADS (1), LOAD_PCT (50), LAT_RATE (qps; overrides LOAD_PCT), LAT_SECONDS (5),
#      LAT_ROUNDS (1), LAT_MODES ("shared pinned"), SERVER_CPU (1), CLIENT_CPU (0), LAT_SETTLE
#      seconds after pinning (2), PORT (5300), GDNSD_UDP_THREADS (2), SKIP_COREDNS=1,
#      SKIP_GDNSD=1, OURS_ENV (environment for drill only, for experiments, e.g. GOGC=off; printed),
#      KEEP=1 (keep the temp dir), STRICT=1 (exit 1 when a target is missed).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-1}
LOAD_PCT=${LOAD_PCT:-50}
LAT_SECONDS=${LAT_SECONDS:-5}
LAT_ROUNDS=${LAT_ROUNDS:-1}
LAT_MODES=${LAT_MODES:-"shared pinned"}
LAT_SETTLE=${LAT_SETTLE:-2}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT=${PORT:-5300}
GDNSD_UDP_THREADS=${GDNSD_UDP_THREADS:-2}
COREDNS_VERSION=v1.15.0
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/drill-bench
SRC=127.10.1.5                # inside us-east's loopback client subnet (default topology)
SRC_EU=127.10.2.5             # inside eu-west's
ECS_OPT=8:00011800cb0071      # RFC 7871 option: family 1, source /24, scope 0, 203.0.113.0
US="127.77.1.10 127.77.1.11"  # us-east web nodes (default topology)
EU="127.77.2.10 127.77.2.11"  # eu-west web nodes
declare -A ADDR=([ours]=127.0.0.71 [gdnsd]=127.0.0.72 [coredns]=127.0.0.73)
SERVERS=(ours)
[[ ${SKIP_GDNSD:-} == 1 ]] || SERVERS+=(gdnsd)
[[ ${SKIP_COREDNS:-} == 1 ]] || SERVERS+=(coredns)

die() { echo "run.sh: ERROR: $*" >&2; exit 1; }
log() { echo "run.sh: $*" >&2; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# --- 1. tools -------------------------------------------------------------------------------
apt_install() {
	local need=()
	for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
	((${#need[@]} == 0)) && return
	log "installing ${need[*]} (apt-get)"
	local sudo=""
	[[ $(id -u) == 0 ]] || sudo="sudo"
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}
pkgs=(dnsperf bind9-dnsutils)
[[ " ${SERVERS[*]} " == *" gdnsd "* ]] && pkgs+=(gdnsd)
command -v dig >/dev/null && pkgs=("${pkgs[@]/bind9-dnsutils/}")
apt_install ${pkgs[@]}
command -v dnsperf >/dev/null || die "dnsperf not installed"
GDNSD=$(command -v gdnsd || echo /usr/sbin/gdnsd)

COREDNS=$CACHE/bin/coredns
if [[ " ${SERVERS[*]} " == *" coredns "* ]]; then
	if ! [[ -x $COREDNS ]] || ! "$COREDNS" -version 2>/dev/null | grep -q "CoreDNS-${COREDNS_VERSION#v}"; then
		log "building CoreDNS $COREDNS_VERSION into $CACHE/bin (about three minutes the first time)"
		mkdir -p "$CACHE/bin"
		# Outside the repo, so drill's go.mod does not interfere with the install.
		(cd "$CACHE" && GOFLAGS= GOBIN="$CACHE/bin" timeout 1200 go install "github.com/coredns/coredns@$COREDNS_VERSION") ||
			die "go install coredns@$COREDNS_VERSION failed"
	fi
fi

# --- 2. build and configure ---------------------------------------------------------------------
WORK=$(mktemp -d /tmp/drill-dnsbench.XXXXXX)
declare -A PID=()
cleanup() {
	local p
	for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
	if [[ ${KEEP:-} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

log "building drill"
(cd "$REPO" && go build -o "$WORK/drill" ./cmd/drill) || die "go build ./cmd/drill failed"
printf 'app.drill.test A\n' >"$WORK/queries.txt"

mkdir -p "$WORK/gdnsd/zones"
cat >"$WORK/gdnsd/config" <<EOF
options => {
  listen => [ ${ADDR[gdnsd]}:$PORT ]
  udp_threads => $GDNSD_UDP_THREADS
  tcp_threads => 1
  run_dir => $WORK/gdnsd/run
  state_dir => $WORK/gdnsd/state
}
plugins => {
  geoip => {
    maps => {
      regions => {
        datacenters => [ us-east, eu-west ]
        nets => {
          203.0.113.0/24 => [ us-east, eu-west ]
          127.10.1.0/24 => [ us-east, eu-west ]
          198.51.100.0/24 => [ eu-west, us-east ]
          127.10.2.0/24 => [ eu-west, us-east ]
        }
      }
    }
    resources => {
      app => {
        map => regions
        dcmap => {
          us-east => [ ${US// /, } ]
          eu-west => [ ${EU// /, } ]
        }
      }
    }
  }
}
EOF
cat >"$WORK/gdnsd/zones/drill.test" <<'EOF'
@ 5 SOA ns-us-east-1 hostmaster 1 3600 600 86400 5
@ 5 NS ns-us-east-1
@ 5 NS ns-eu-west-1
ns-us-east-1 5 A 127.77.1.53
ns-eu-west-1 5 A 127.77.2.53
app 5 DYNA geoip!app
EOF

# CoreDNS: one server block per view (first match wins), the last one is the default.
coredns_block() { # view-name expr ip ip
	cat <<EOF
drill.test:$PORT {
  bind ${ADDR[coredns]}
$( [[ -n $2 ]] && printf '  view %s {\n    expr %s\n  }\n' "$1" "$2" )
  template IN A drill.test {
    match "^app\\.drill\\.test\\.\$"
    answer "{{ .Name }} 5 IN A $3"
    answer "{{ .Name }} 5 IN A $4"
  }
}
EOF
}
{
	coredns_block us-east "incidr(client_ip(), '203.0.113.0/24') || incidr(client_ip(), '127.10.1.0/24')" $US
	coredns_block eu-west "incidr(client_ip(), '198.51.100.0/24') || incidr(client_ip(), '127.10.2.0/24')" $EU
	coredns_block "" "" $US # clients in no known subnet: us-east, like drill's nearest-first default
} >"$WORK/Corefile"

# --- 3. start and verify ------------------------------------------------------------------------
start() { # name command...
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	PID[$name]=$!
}
ask() { # server source ecs → sorted A records
	dig +time=1 +tries=1 -b "$2" @"${ADDR[$1]}" -p "$PORT" app.drill.test A +subnet="$3" +short 2>/dev/null | sort | xargs
}
wait_ready() { # server
	local i
	for i in $(seq 100); do # bounded: 10 s
		kill -0 "${PID[$1]}" 2>/dev/null || die "$1 exited at start; log:"$'\n'"$(cat "$WORK/$1.log")"
		[[ -n $(ask "$1" "$SRC" 203.0.113.0/24) ]] && return
		sleep 0.1
	done
	die "$1 did not answer within 10 s; log:"$'\n'"$(cat "$WORK/$1.log")"
}
expect() { # server source ecs want what
	local got
	got=$(ask "$1" "$2" "$3")
	[[ $got == "$4" ]] || die "$1 answered [$got] for $5 (source $2, ECS $3), want [$4]"
}

for s in "${SERVERS[@]}"; do
	case $s in
	ours) start ours env ${OURS_ENV:-} "$WORK/drill" dns serve --listen "${ADDR[ours]}:$PORT" ;;
	gdnsd) start gdnsd "$GDNSD" -c "$WORK/gdnsd" start ;;
	coredns) start coredns "$COREDNS" -conf "$WORK/Corefile" ;;
	esac
done
for s in "${SERVERS[@]}"; do
	wait_ready "$s"
	expect "$s" "$SRC" 203.0.113.0/24 "$US" "a us-east client (the benchmark query)"
	expect "$s" "$SRC_EU" 198.51.100.0/24 "$EU" "an eu-west client"
	if [[ $s != coredns ]]; then # these two route by ECS, not by the source address
		expect "$s" "$SRC_EU" 203.0.113.0/24 "$US" "ECS us-east from an eu-west source"
	fi
	log "$s verified on ${ADDR[$s]}:$PORT"
done

# --- 4. throughput ---------------------------------------------------------------------------
perf() { # server extra-args... → dnsperf output (stdout and stderr)
	timeout $((DURATION + LAT_SECONDS + 30)) $CLIENT_PIN dnsperf -s "${ADDR[$1]}" -p "$PORT" -a "$SRC" -d "$WORK/queries.txt" \
		-c "$CLIENTS" -T "$THREADS" -E "$ECS_OPT" "${@:2}" 2>&1
}
field() { awk -v k="$1" 'index($0, k) { sub(/.*: */, ""); print $1; exit }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else printf "%.6g\n", (a[NR/2]+a[NR/2+1])/2}'; }
TICK=$(getconf CLK_TCK)
cpu_ticks() { # pid → user+system clock ticks of the whole process (all threads)
	# Fields after "pid (comm) ": state is the 1st, utime the 12th, stime the 13th.
	sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
CLIENT_PIN="" # set per latency mode

echo "== GeoDNS speed: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $(dnsperf -h 2>&1 | awk '/^Version/ {print "dnsperf " $2}'), $("$GDNSD" -h 2>&1 | awk '/version/ {print $1, $3; exit}'), CoreDNS ${COREDNS_VERSION#v}, drill $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== dnsperf -c $CLIENTS -T $THREADS -l $DURATION -E $ECS_OPT, from $SRC, query app.drill.test A; $ROUNDS alternating rounds, no CPU pinning"
echo "== server cpu = the server process's user+system time (/proc/<pid>/stat) per answered query"
[[ -z ${OURS_ENV:-} ]] || echo "== drill runs with the environment: $OURS_ENV"
declare -A QPS LAT SD LOST CPU
for ((round = 1; round <= ROUNDS; round++)); do
	for ((k = 0; k < ${#SERVERS[@]}; k++)); do
		s=${SERVERS[$(((k + round - 1) % ${#SERVERS[@]}))]}
		t0=$(cpu_ticks "${PID[$s]}")
		out=$(perf "$s" -l "$DURATION") || die "dnsperf against $s failed:"$'\n'"$out"
		t1=$(cpu_ticks "${PID[$s]}")
		q=$(field "Queries per second" <<<"$out")
		[[ -n $q ]] || die "no qps in dnsperf output for $s:"$'\n'"$out"
		noerr=$(grep -c 'NOERROR' <<<"$out" || true)
		((noerr > 0)) || die "$s: dnsperf saw no NOERROR answers:"$'\n'"$out"
		done_q=$(field "Queries completed" <<<"$out")
		cpu=$(awk -v t=$((t1 - t0)) -v hz="$TICK" -v n="$done_q" 'BEGIN {printf "%.2f", (n > 0) ? t / hz * 1e6 / n : 0}')
		QPS[$s]+=" $(printf '%.0f' "$q")"
		LAT[$s]+=" $(field "Average Latency (s)" <<<"$out")"
		SD[$s]+=" $(field "Latency StdDev (s)" <<<"$out")"
		LOST[$s]+=" $(field "Queries lost" <<<"$out")"
		CPU[$s]+=" $cpu"
		printf 'round %d %-8s %8.0f qps  avg %s s  sd %s s  lost %s  server cpu %s µs/query\n' "$round" "$s" "$q" \
			"$(field "Average Latency (s)" <<<"$out")" "$(field "Latency StdDev (s)" <<<"$out")" "$(field "Queries lost" <<<"$out")" "$cpu"
	done
done

declare -A MED
MISSED=0
check() { # label measured target ok(0/1)
	local v=met
	if [[ $4 != 1 ]]; then v=MISSED; MISSED=1; fi
	printf '%-44s %-12s target %-10s %s\n' "$1" "$2" "$3" "$v"
}
if ((ROUNDS > 0)); then
	echo
	printf '%-8s %-40s %9s %11s %10s %6s %14s\n' server "qps per round" median "avg lat ms" "lat sd ms" lost "cpu µs/query"
	for s in "${SERVERS[@]}"; do
		MED[$s]=$(median <<<"${QPS[$s]}")
		printf '%-8s %-40s %9.0f %11.3f %10.3f %6s %14s\n' "$s" "${QPS[$s]# }" "${MED[$s]}" \
			"$(median <<<"${LAT[$s]}" | awk '{print $1*1000}')" "$(median <<<"${SD[$s]}" | awk '{print $1*1000}')" \
			"$(median <<<"${LOST[$s]}")" "$(median <<<"${CPU[$s]}")"
	done
	echo
	for peer in gdnsd coredns; do
		[[ -n ${MED[$peer]:-} ]] || continue
		r=$(awk -v a="${MED[ours]}" -v b="${MED[$peer]}" 'BEGIN {printf "%.3f", a/b}')
		want=1
		[[ $peer == coredns ]] && want=2
		# Compared unrounded: 0.996 is a miss even if it prints close to 1.
		check "ratio ours/$peer (median qps)" "${r}x" "≥ ${want}x" "$(awk -v a="${MED[ours]}" -v b="${MED[$peer]}" -v w="$want" 'BEGIN {print (a >= w * b) ? 1 : 0}')"
	done
fi

# --- 5. latency under load ----------------------------------------------------------------------
# Every server gets the same rate and the same treatment in each mode:
#   shared: no pinning; the servers and dnsperf share both CPUs (what the throughput rounds do).
#   pinned: the server process (all its threads, via taskset -a -p) on CPU $SERVER_CPU and
#           dnsperf on CPU $CLIENT_CPU, so that the load generator and the server do not take
#           each other's CPU; the server is moved back to every CPU afterwards. Go servers re-read
#           their CPU set and run with GOMAXPROCS 1 while pinned; LAT_SETTLE seconds are waited
#           after pinning for that.
# dnsperf -v's per-query lines go to a file, not through the shell, so nothing else competes
# for the CPUs while they are timed.
if [[ -n ${LAT_RATE:-} ]]; then
	RATE=$LAT_RATE
else
	[[ -n ${MED[ours]:-} ]] || die "no throughput rounds: set LAT_RATE"
	RATE=$(awk -v m="${MED[ours]}" -v p="$LOAD_PCT" 'BEGIN {printf "%d", m * p / 100}')
fi
ALL_CPUS=0-$(($(nproc) - 1))
echo
echo "== latency at a fixed $RATE qps${LAT_RATE:+ (LAT_RATE)}${LAT_RATE:-" (${LOAD_PCT}% of our median)"}, ${LAT_SECONDS} s per run, every query timed (dnsperf -v to a file), $LAT_ROUNDS alternating round(s) per mode"
echo "== modes: $LAT_MODES (pinned = server on CPU $SERVER_CPU via taskset -a -p, dnsperf on CPU $CLIENT_CPU via taskset -c; same for every server)"
printf '%-7s %-5s %-8s %9s %8s %8s %8s %9s %8s %6s %9s\n' mode round server "sent qps" answers "p50 ms" "p99 ms" "p99.9 ms" "max ms" lost "cpu µs/q"
declare -A P50 P99 P999
lat_run() { # mode round server
	local mode=$1 round=$2 s=$3 f=$WORK/$3.$1.$2.out t0 t1 n bad cpu
	CLIENT_PIN=""
	if [[ $mode == pinned ]]; then
		taskset -a -p -c "$SERVER_CPU" "${PID[$s]}" >/dev/null || die "taskset $s"
		CLIENT_PIN="taskset -c $CLIENT_CPU"
		sleep "$LAT_SETTLE"
	fi
	t0=$(cpu_ticks "${PID[$s]}")
	perf "$s" -l "$LAT_SECONDS" -Q "$RATE" -v >"$f" || die "dnsperf -v against $s failed: $(tail -5 "$f")"
	t1=$(cpu_ticks "${PID[$s]}")
	if [[ $mode == pinned ]]; then
		taskset -a -p -c "$ALL_CPUS" "${PID[$s]}" >/dev/null || die "taskset $s"
	fi
	CLIENT_PIN=""
	awk '$1 == ">" {print $NF}' "$f" | sort -g >"$f.lat"
	n=$(wc -l <"$f.lat")
	((n > 0)) || die "$s: no timed answers"
	bad=$(awk '$1 == ">" && $2 != "NOERROR"' "$f" | wc -l)
	((bad == 0)) || die "$s: $bad answers were not NOERROR"
	pct() { # per-ten-thousand → nearest-rank percentile in ms
		local r=$(((n * $1 + 9999) / 10000))
		sed -n "${r}p" "$f.lat" | awk '{printf "%.3f", $1 * 1000}'
	}
	cpu=$(awk -v t=$((t1 - t0)) -v hz="$TICK" -v n="$n" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
	P50[$mode.$s]+=" $(pct 5000)"
	P99[$mode.$s]+=" $(pct 9900)"
	P999[$mode.$s]+=" $(pct 9990)"
	printf '%-7s %-5s %-8s %9.0f %8d %8s %8s %9s %8s %6s %9s\n' "$mode" "$round" "$s" "$(field "Queries per second" <"$f")" "$n" \
		"$(pct 5000)" "$(pct 9900)" "$(pct 9990)" "$(pct 10000)" "$(field "Queries lost" <"$f")" "$cpu"
}
for mode in $LAT_MODES; do
	for ((round = 1; round <= LAT_ROUNDS; round++)); do
		for ((k = 0; k < ${#SERVERS[@]}; k++)); do
			lat_run "$mode" "$round" "${SERVERS[$(((k + round - 1) % ${#SERVERS[@]}))]}"
		done
	done
done
echo
printf '%-7s %-8s %12s %12s %12s   (medians over rounds)\n' mode server "p50 ms" "p99 ms" "p99.9 ms"
for mode in $LAT_MODES; do
	for s in "${SERVERS[@]}"; do
		printf '%-7s %-8s %12s %12s %12s\n' "$mode" "$s" "$(median <<<"${P50[$mode.$s]}")" "$(median <<<"${P99[$mode.$s]}")" "$(median <<<"${P999[$mode.$s]}")"
	done
done
echo
for mode in $LAT_MODES; do
	p=$(median <<<"${P99[$mode.ours]}")
	check "p99 latency, ours, at $RATE qps, $mode" "$p ms" "< 1 ms" "$(awk -v p="$p" 'BEGIN {print (p < 1) ? 1 : 0}')"
done
if [[ $MISSED == 1 && ${STRICT:-} == 1 ]]; then exit 1; fi
