#!/usr/bin/env bash
# Benchmark perch's proxy against nginx on this machine. Both split requests 90/10 between the
# same two backends on loopback; the backends are nginx answering `return 200`, which costs next
# to nothing, so the proxies are what differs (wrk, the backends and the proxy still share the
# machine's cores: saturated, they are the bottleneck, see providers/proxy/README.md). nginx routes with split_clients and keeps
# upstream connections alive; perch's proxy runs at weight 10 (cmd/proxybench). wrk measures
# each target saturated (requests/s, p99, and the CPU the target spent per request, which a
# neighbour's load on a shared machine barely changes; with the backends' and wrk's, it gives
# the requests/s the machine's cores allow) and one request at a time (-c1: the latency a proxy
# adds when nothing queues), perch and nginx back to back in every round, so a neighbour's load
# hits both alike. Each round also prints, per request, how long the target's and the backend's
# threads waited for a CPU and the target's read/write system calls. Installs nothing: it needs
#   apt-get install -y nginx-light wrk
# Usage: bash cmd/proxybench/proxy.sh [SECONDS per run, default 8] [ROUNDS, default 3]
# Environment: CONNECTIONS (saturated, default 32), THREADS (wrk threads, default 1),
# BASE_PORT (default 18080), PROFILE=FILE (write perch's CPU profile over the whole run),
# PROXYBENCH=FILE (a proxybench binary built elsewhere, to compare builds), TRACE=FILE (an
# execution trace of perch, TRACE_FOR long, default 1s, from 1 s into its first saturated run:
# go tool trace FILE), GOMAXPROCS (perch's; nginx's workers stay `auto`), ALT="ENV=VALUE..."
# (a second perch, "perch-alt", run in every round with that environment, ALT_PROXYBENCH=FILE
# its binary: two settings or builds compared under the same load).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-8}
rounds=${2:-3}
connections=${CONNECTIONS:-32}
threads=${THREADS:-1}
base=${BASE_PORT:-18080}
for tool in nginx wrk /usr/bin/time; do
  if ! command -v "$tool" >/dev/null; then
    echo "cmd/proxybench/proxy.sh needs $tool: apt-get install -y nginx-light wrk" >&2
    exit 2
  fi
done

work=$(mktemp -d)
perch_pid= alt_pid=
cleanup() {
  [ -n "$perch_pid" ] && kill "$perch_pid" 2>/dev/null && wait "$perch_pid" 2>/dev/null || true
  [ -n "$alt_pid" ] && kill "$alt_pid" 2>/dev/null && wait "$alt_pid" 2>/dev/null || true
  for conf in backends proxy; do
    [ -f "$work/$conf.pid" ] && kill "$(cat "$work/$conf.pid")" 2>/dev/null || true
  done
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

perch_port=$base nginx_port=$((base + 10)) stable_port=$((base + 1)) canary_port=$((base + 2))
if [ -n "${PROXYBENCH:-}" ]; then cp "$PROXYBENCH" "$work/proxybench"; else go build -o "$work/proxybench" ./cmd/proxybench; fi
profile=()
[ -n "${PROFILE:-}" ] && profile=(-cpuprofile "$(realpath -m "$PROFILE")")
[ -n "${TRACE:-}" ] && profile+=(-trace "$(realpath -m "$TRACE")" -trace-for "${TRACE_FOR:-1s}")
"$work/proxybench" -listen "127.0.0.1:$perch_port" -weight 10 "${profile[@]}" \
  -stable "http://127.0.0.1:$stable_port" -canary "http://127.0.0.1:$canary_port" &
perch_pid=$!
alt_port=$((base + 20))
if [ -n "${ALT:-}" ]; then
  cp "${ALT_PROXYBENCH:-$work/proxybench}" "$work/proxybench-alt"
  # shellcheck disable=SC2086 # ALT: assignments, split
  env $ALT "$work/proxybench-alt" -listen "127.0.0.1:$alt_port" -weight 10 \
    -stable "http://127.0.0.1:$stable_port" -canary "http://127.0.0.1:$canary_port" &
  alt_pid=$!
fi

# nginx CONF BODY: start an nginx with its own prefix under $work.
nginx_start() {
  mkdir -p "$work/$1/logs"
  cat >"$work/$1.conf" <<CONF
user root;
pid $work/$1.pid;
error_log $work/$1/logs/error.log warn;
events { worker_connections 4096; }
$2
CONF
  nginx -p "$work/$1" -c "$work/$1.conf"
}
nginx_start backends "worker_processes 1;
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$stable_port; location / { return 200 \"stable\n\"; } }
  server { listen 127.0.0.1:$canary_port; location / { return 200 \"canary\n\"; } }
}"
nginx_start proxy "worker_processes auto;
http {
  access_log off;
  keepalive_requests 1000000;
  upstream stable { server 127.0.0.1:$stable_port; keepalive 256; keepalive_requests 1000000; }
  upstream canary { server 127.0.0.1:$canary_port; keepalive 256; keepalive_requests 1000000; }
  split_clients \"\$request_id\" \$backend { 10% canary; * stable; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://\$backend;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }
}"

for port in $stable_port $canary_port $perch_port $nginx_port ${alt_pid:+$alt_port}; do
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done

# ticks PID...: CPU time (user + system, in clock ticks) the processes have used.
ticks() {
  local total=0 pid f
  for pid in "$@"; do
    read -r -a f <"/proc/$pid/stat"
    total=$((total + f[13] + f[14]))
  done
  echo "$total"
}

# waited PID...: how long the processes' threads have waited for a CPU while runnable, in µs
# (the kernel's run delay, /proc/PID/task/TID/schedstat).
waited() {
  local pid
  for pid in "$@"; do cat /proc/"$pid"/task/*/schedstat 2>/dev/null; done | awk '{w += $2} END {printf "%d", w / 1000}'
}

# syscalls PID...: the read and write system calls the processes have made ("READS WRITES").
syscalls() {
  local pid
  for pid in "$@"; do cat /proc/"$pid"/io; done | awk '/^syscr/ {r += $2} /^syscw/ {w += $2} END {printf "%d %d", r, w}'
}

# run PORT CONNECTIONS PID...: one wrk run; prints "requests/s p50_ms p99_ms cpu_us cpu_all_us
# wait_us backend_wait_us": the CPU the processes PID... (the target) spent per request, and
# that plus the backends' and wrk's own (both barely change with what else runs on the
# machine, unlike the rest); then how long, per request, the target's threads and the
# backends' waited for a CPU while they had work: where a request queues when the cores are
# short; then the target's read and write system calls per request.
run() {
  local port=$1 conns=$2 out before after backends_before backends_after wait_before wait_after bwait_before bwait_after sys_before sys_after
  shift 2
  if [ -n "${TRACE:-}" ] && [ "$port" = "$perch_port" ] && [ "$conns" = "$connections" ] && [ ! -e "$work/traced" ]; then
    touch "$work/traced"
    (sleep 1; kill -USR1 "$perch_pid") &
  fi
  before=$(ticks "$@")
  backends_before=$(ticks "${backend_pids[@]}")
  wait_before=$(waited "$@")
  sys_before=$(syscalls "$@")
  bwait_before=$(waited "${backend_pids[@]}")
  out=$( { /usr/bin/time -f 'wrk-cpu %U %S' wrk -t"$([ "$conns" -lt "$threads" ] && echo "$conns" || echo "$threads")" \
    -c"$conns" -d"${duration}s" --latency "http://127.0.0.1:$port/"; } 2>&1)
  after=$(ticks "$@")
  backends_after=$(ticks "${backend_pids[@]}")
  wait_after=$(waited "$@")
  sys_after=$(syscalls "$@")
  bwait_after=$(waited "${backend_pids[@]}")
  echo "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out") $(percentile 50% <<<"$out") $(percentile 99% <<<"$out")" \
    "$(awk -v t=$((after - before)) -v b=$((backends_after - backends_before)) -v hz="$(getconf CLK_TCK)" \
      -v tw=$((wait_after - wait_before)) -v bw=$((bwait_after - bwait_before)) \
      -v r=$((${sys_after% *} - ${sys_before% *})) -v wr=$((${sys_after#* } - ${sys_before#* })) \
      '/requests in/ {n = $1} /^wrk-cpu/ {w = $2 + $3} END {printf "%.1f %.1f %.1f %.1f %.2f %.2f", t / hz * 1e6 / n, ((t + b) / hz + w) * 1e6 / n, tw / n, bw / n, r / n, wr / n}' <<<"$out")"
}

# percentile P: wrk's latency at P (as "99%"), in ms.
percentile() {
  awk -v p="$1" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}'
}

echo "# $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# saturated: wrk -t$threads -c$connections; one at a time: wrk -t1 -c1; ${duration}s each, $rounds rounds, medians"
for port in $stable_port $perch_port $nginx_port ${alt_pid:+$alt_port}; do
  wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$port/" >/dev/null # warm connections and caches
done
declare -A ports=([backend]=$stable_port [perch]=$perch_port [nginx]=$nginx_port [perch-alt]=$alt_port)
mapfile -t backend_pids < <(pgrep -P "$(cat "$work/backends.pid")")
declare -A pids=([backend]="${backend_pids[*]}" [perch]=$perch_pid [nginx]="$(pgrep -P "$(cat "$work/proxy.pid")" | xargs)" [perch-alt]=$alt_pid)
declare -A rps p99 lp50 lp99 cpu all twait bwait
record() { # NAME R P C A L50 L99
  rps[$1]="${rps[$1]:-} $2"; p99[$1]="${p99[$1]:-} $3"; cpu[$1]="${cpu[$1]:-} $4"; all[$1]="${all[$1]:-} $5"
  lp50[$1]="${lp50[$1]:-} $6"; lp99[$1]="${lp99[$1]:-} $7"; twait[$1]="${twait[$1]:-} $8"; bwait[$1]="${bwait[$1]:-} $9"
}
for round in $(seq "$rounds"); do
  # perch and nginx back to back, each first in every other round, so a neighbour's burst
  # tends to hit both; the backend alone, for reference, once.
  if ((round % 2)); then order=(nginx perch ${alt_pid:+perch-alt}); else order=(${alt_pid:+perch-alt} perch nginx); fi
  ((round == 1)) && order=(backend "${order[@]}")
  declare -A sat=()
  for name in "${order[@]}"; do
    # shellcheck disable=SC2086 # pids: one or more, split
    sat[$name]=$(run "${ports[$name]}" "$connections" ${pids[$name]})
  done
  for name in "${order[@]}"; do
    # shellcheck disable=SC2086
    read -r r _ p c a tw bw sr sw <<<"${sat[$name]}"
    read -r _ l50 l99 _ _ < <(run "${ports[$name]}" 1 ${pids[$name]})
    printf 'round %d  %-7s saturated: %8.0f req/s, p99 %6.2f ms, CPU/request %5.1f µs (%5.1f µs with backend and wrk), waiting for a CPU %5.1f µs/request (backend %5.1f), reads %.2f writes %.2f a request;  one at a time: p50 %.3f ms, p99 %.3f ms\n' \
      "$round" "$name" "$r" "$p" "$c" "$a" "$tw" "$bw" "$sr" "$sw" "$l50" "$l99"
    record "$name" "$r" "$p" "$c" "$a" "$l50" "$l99" "$tw" "$bw"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { median <<<"$1"; }
echo
row() { # NAME LABEL
  printf '| %s | %.0f | %.0f | %.2f ms | %.1f µs | %.1f µs / %.1f µs | %.3f ms | %.3f ms |\n' "$2" "$(m "${rps[$1]}")" \
    "$(awk -v a="$(m "${all[$1]}")" -v n="$(nproc)" 'BEGIN {print n * 1e6 / a}')" "$(m "${p99[$1]}")" "$(m "${cpu[$1]}")" \
    "$(m "${twait[$1]}")" "$(m "${bwait[$1]}")" "$(m "${lp50[$1]}")" "$(m "${lp99[$1]}")"
}
echo '| | requests/s (saturated) | requests/s the CPU allows | p99 saturated | CPU per request | waiting for a CPU per request (target / backend) | p50 one at a time | p99 one at a time |'
echo '|---|---:|---:|---:|---:|---:|---:|---:|'
row backend 'nginx `return 200` alone'
row nginx 'nginx split_clients'
row perch 'perch proxy'
if [ -n "$alt_pid" ]; then row perch-alt "perch proxy, $ALT"; fi
echo
# summary NAME: NAME against nginx; the p99 difference also as the median of each round's,
# which a neighbour's burst in one round moves less.
summary() {
  awk -v name="$1" -v p="$(m "${rps[$1]}")" -v n="$(m "${rps[nginx]}")" -v pa="$(m "${all[$1]}")" -v na="$(m "${all[nginx]}")" \
    -v pp="$(m "${p99[$1]}")" -v np="$(m "${p99[nginx]}")" -v pl="$(m "${lp99[$1]}")" -v nl="$(m "${lp99[nginx]}")" \
    -v dp="$(paste -d' ' <(tr ' ' '\n' <<<"${p99[$1]}" | grep .) <(tr ' ' '\n' <<<"${p99[nginx]}" | grep .) | awk '{print $1 - $2}' | median)" 'BEGIN {
    printf "%s/nginx requests/s: %.0f%% measured, %.0f%% the CPU allows; p99 %s - nginx: saturated %+.2f ms (median of the rounds: %+.2f ms), one at a time %+.3f ms\n", \
      name, 100 * p / n, 100 * na / pa, name, pp - np, dp, pl - nl
  }'
}
summary perch
if [ -n "$alt_pid" ]; then summary perch-alt; fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
