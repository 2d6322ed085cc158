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
#      average latency and stddev, and our ratio to each peer next to the issue's targets;
#   5. measures latency under load: each server at the same fixed rate (LOAD_PCT % of our median
#      qps), every query timed by dnsperf -v, and prints p50/p99/p99.9/max.
# Everything it starts is stopped on exit.
#
# Routing equivalence: all three map 203.0.113.0/24 and 127.10.1.0/24 to us-east
# (127.77.1.10/11) and 198.51.100.0/24 and 127.10.2.0/24 to eu-west (127.77.2.10/11), TTL 5.
# dnsperf sends ECS 203.0.113.0/24 from 127.10.1.5. drill and gdnsd route by the ECS option;
# CoreDNS's view plugin only sees the packet's source address (client_ip()), which is why the
# queries come from an address inside a us-east client subnet: every server then answers us-east.
#
# Env: ROUNDS (3), DURATION seconds per run (8), CLIENTS (4), THREADS (1), LOAD_PCT (50),
#      LAT_SECONDS (5), PORT (5300), GDNSD_UDP_THREADS (2), SKIP_COREDNS=1, SKIP_GDNSD=1,
#      KEEP=1 (keep the temp dir), STRICT=1 (exit 1 when a target is missed).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-1}
LOAD_PCT=${LOAD_PCT:-50}
LAT_SECONDS=${LAT_SECONDS:-5}
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
	ours) start ours "$WORK/drill" dns serve --listen "${ADDR[ours]}:$PORT" ;;
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
perf() { # server extra-args... → dnsperf output
	timeout $((DURATION + LAT_SECONDS + 30)) dnsperf -s "${ADDR[$1]}" -p "$PORT" -a "$SRC" -d "$WORK/queries.txt" \
		-c "$CLIENTS" -T "$THREADS" -E "$ECS_OPT" "${@:2}" 2>&1
}
field() { awk -v k="$1" 'index($0, k) { sub(/.*: */, ""); print $1; exit }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else printf "%.6g\n", (a[NR/2]+a[NR/2+1])/2}'; }

echo "== GeoDNS speed: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $(dnsperf -h 2>&1 | awk '/^Version/ {print "dnsperf " $2}'), $("$GDNSD" -h 2>&1 | awk '/version/ {print $1, $3; exit}'), CoreDNS ${COREDNS_VERSION#v}, drill $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== dnsperf -c $CLIENTS -T $THREADS -l $DURATION -E $ECS_OPT, from $SRC, query app.drill.test A; $ROUNDS alternating rounds"
declare -A QPS LAT SD LOST
for ((round = 1; round <= ROUNDS; round++)); do
	for ((k = 0; k < ${#SERVERS[@]}; k++)); do
		s=${SERVERS[$(((k + round - 1) % ${#SERVERS[@]}))]}
		out=$(perf "$s" -l "$DURATION") || die "dnsperf against $s failed:"$'\n'"$out"
		q=$(field "Queries per second" <<<"$out")
		[[ -n $q ]] || die "no qps in dnsperf output for $s:"$'\n'"$out"
		noerr=$(grep -c 'NOERROR' <<<"$out" || true)
		((noerr > 0)) || die "$s: dnsperf saw no NOERROR answers:"$'\n'"$out"
		QPS[$s]+=" $(printf '%.0f' "$q")"
		LAT[$s]+=" $(field "Average Latency (s)" <<<"$out")"
		SD[$s]+=" $(field "Latency StdDev (s)" <<<"$out")"
		LOST[$s]+=" $(field "Queries lost" <<<"$out")"
		printf 'round %d %-8s %8.0f qps  avg %s s  sd %s s  lost %s\n' "$round" "$s" "$q" \
			"$(field "Average Latency (s)" <<<"$out")" "$(field "Latency StdDev (s)" <<<"$out")" "$(field "Queries lost" <<<"$out")"
	done
done

declare -A MED
echo
printf '%-8s %-26s %9s %13s %13s %6s\n' server "qps per round" median "avg lat ms" "lat sd ms" lost
for s in "${SERVERS[@]}"; do
	MED[$s]=$(median <<<"${QPS[$s]}")
	printf '%-8s %-26s %9.0f %13.3f %13.3f %6s\n' "$s" "${QPS[$s]# }" "${MED[$s]}" \
		"$(median <<<"${LAT[$s]}" | awk '{print $1*1000}')" "$(median <<<"${SD[$s]}" | awk '{print $1*1000}')" "$(median <<<"${LOST[$s]}")"
done

MISSED=0
check() { # label measured target ok(0/1)
	local v=met
	if [[ $4 != 1 ]]; then v=MISSED; MISSED=1; fi
	printf '%-34s %-12s target %-10s %s\n' "$1" "$2" "$3" "$v"
}
echo
for peer in gdnsd coredns; do
	[[ -n ${MED[$peer]:-} ]] || continue
	r=$(awk -v a="${MED[ours]}" -v b="${MED[$peer]}" 'BEGIN {printf "%.3f", a/b}')
	want=1
	[[ $peer == coredns ]] && want=2
	# Compared unrounded: 0.996 is a miss even if it prints close to 1.
	check "ratio ours/$peer (median qps)" "${r}x" "≥ ${want}x" "$(awk -v a="${MED[ours]}" -v b="${MED[$peer]}" -v w="$want" 'BEGIN {print (a >= w * b) ? 1 : 0}')"
done

# --- 5. latency under load ----------------------------------------------------------------------
RATE=$(awk -v m="${MED[ours]}" -v p="$LOAD_PCT" 'BEGIN {printf "%d", m * p / 100}')
echo
echo "== latency at a fixed $RATE qps (${LOAD_PCT}% of our median), ${LAT_SECONDS} s each, every query timed (dnsperf -v)"
printf '%-8s %9s %8s %9s %9s %9s %9s %6s\n' server "sent qps" answers "p50 ms" "p99 ms" "p99.9 ms" "max ms" lost
declare -A P99
for s in "${SERVERS[@]}"; do
	out=$(perf "$s" -l "$LAT_SECONDS" -Q "$RATE" -v) || die "dnsperf -v against $s failed"
	awk '$1 == ">" {print $NF}' <<<"$out" | sort -g >"$WORK/$s.lat"
	n=$(wc -l <"$WORK/$s.lat")
	((n > 0)) || die "$s: no timed answers"
	bad=$(awk '$1 == ">" && $2 != "NOERROR"' <<<"$out" | wc -l)
	((bad == 0)) || die "$s: $bad answers were not NOERROR"
	pct() { # per-ten-thousand → nearest-rank percentile in ms
		local r=$(((n * $1 + 9999) / 10000))
		sed -n "${r}p" "$WORK/$s.lat" | awk '{printf "%.3f", $1 * 1000}'
	}
	P99[$s]=$(pct 9900)
	printf '%-8s %9.0f %8d %9s %9s %9s %9s %6s\n' "$s" "$(field "Queries per second" <<<"$out")" "$n" "$(pct 5000)" "${P99[$s]}" \
		"$(pct 9990)" "$(pct 10000)" "$(field "Queries lost" <<<"$out")"
done
echo
check "p99 latency, ours, at $RATE qps" "${P99[ours]} ms" "< 1 ms" "$(awk -v p="${P99[ours]}" 'BEGIN {print (p < 1) ? 1 : 0}')"
if [[ $MISSED == 1 && ${STRICT:-} == 1 ]]; then exit 1; fi
