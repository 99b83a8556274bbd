#!/usr/bin/env bash
# Benchmark perch's proxy against nginx on this machine. Both split requests 90/10 between the
# same two backends on loopback; the backends are nginx answering `return 200`, which costs next
# to nothing, so the proxies are the only bottleneck. nginx routes with split_clients and keeps
# upstream connections alive; perch's proxy runs at weight 10 (cmd/proxybench). wrk measures
# each target saturated (requests/s, p99, and the CPU the target spent per request, which a
# neighbour's load on a shared machine barely changes) and one request at a time (-c1: the
# latency a proxy adds when nothing queues), perch and nginx alternating within every round, so
# a neighbour's load hits both alike. Installs nothing: it needs
#   apt-get install -y nginx-light wrk
# Usage: bash cmd/proxybench/proxy.sh [SECONDS per run, default 8] [ROUNDS, default 3]
# Environment: CONNECTIONS (saturated, default 32), THREADS (wrk threads, default 1),
# BASE_PORT (default 18080), PROFILE=FILE (write perch's CPU profile over the whole run),
# PROXYBENCH=FILE (a proxybench binary built elsewhere, to compare builds).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-8}
rounds=${2:-3}
connections=${CONNECTIONS:-32}
threads=${THREADS:-1}
base=${BASE_PORT:-18080}
for tool in nginx wrk; do
  if ! command -v "$tool" >/dev/null; then
    echo "cmd/proxybench/proxy.sh needs $tool: apt-get install -y nginx-light wrk" >&2
    exit 2
  fi
done

work=$(mktemp -d)
perch_pid=
cleanup() {
  [ -n "$perch_pid" ] && kill "$perch_pid" 2>/dev/null && wait "$perch_pid" 2>/dev/null || true
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
"$work/proxybench" -listen "127.0.0.1:$perch_port" -weight 10 "${profile[@]}" \
  -stable "http://127.0.0.1:$stable_port" -canary "http://127.0.0.1:$canary_port" &
perch_pid=$!

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

for port in $stable_port $canary_port $perch_port $nginx_port; do
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

# run PORT CONNECTIONS PID...: one wrk run; prints "requests/s p50_ms p99_ms cpu_us_per_request"
# (the CPU the processes PID... spent per request: the target's own cost, whatever else runs).
run() {
  local port=$1 conns=$2 out before after
  shift 2
  before=$(ticks "$@")
  out=$(wrk -t"$([ "$conns" -lt "$threads" ] && echo "$conns" || echo "$threads")" -c"$conns" -d"${duration}s" --latency "http://127.0.0.1:$port/")
  after=$(ticks "$@")
  echo "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out") $(percentile 50% <<<"$out") $(percentile 99% <<<"$out")" \
    "$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" '/requests in/ {printf "%.1f", t / hz * 1e6 / $1}' <<<"$out")"
}

# percentile P: wrk's latency at P (as "99%"), in ms.
percentile() {
  awk -v p="$1" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}'
}

echo "# $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# saturated: wrk -t$threads -c$connections; one at a time: wrk -t1 -c1; ${duration}s each, $rounds rounds, medians"
for port in $stable_port $perch_port $nginx_port; do
  wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$port/" >/dev/null # warm connections and caches
done
targets=(backend:$stable_port perch:$perch_port nginx:$nginx_port)
declare -A pids=([backend]="$(pgrep -P "$(cat "$work/backends.pid")" | xargs)" [perch]=$perch_pid
  [nginx]="$(pgrep -P "$(cat "$work/proxy.pid")" | xargs)")
declare -A rps p99 lp50 lp99 cpu
for round in $(seq "$rounds"); do
  # Alternate which proxy goes first, so neither always runs after the other.
  if ((round % 2)); then order=(nginx perch); else order=(perch nginx); fi
  for name in backend "${order[@]}"; do
    for t in "${targets[@]}"; do [ "${t%%:*}" = "$name" ] && port=${t#*:}; done
    # shellcheck disable=SC2086 # pids: one or more, split
    read -r r _ p c < <(run "$port" "$connections" ${pids[$name]})
    read -r _ l50 l99 _ < <(run "$port" 1 ${pids[$name]})
    printf 'round %d  %-7s saturated: %8.0f req/s, p99 %6.2f ms, %5.1f µs CPU/request;  one at a time: p50 %.3f ms, p99 %.3f ms\n' \
      "$round" "$name" "$r" "$p" "$c" "$l50" "$l99"
    rps[$name]="${rps[$name]:-} $r"
    cpu[$name]="${cpu[$name]:-} $c"
    p99[$name]="${p99[$name]:-} $p"
    lp50[$name]="${lp50[$name]:-} $l50"
    lp99[$name]="${lp99[$name]:-} $l99"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { median <<<"$1"; }
echo
awk -v b_rps="$(m "${rps[backend]}")" -v b_p99="$(m "${p99[backend]}")" -v b_l50="$(m "${lp50[backend]}")" -v b_l99="$(m "${lp99[backend]}")" -v b_cpu="$(m "${cpu[backend]}")" \
  -v n_rps="$(m "${rps[nginx]}")" -v n_p99="$(m "${p99[nginx]}")" -v n_l50="$(m "${lp50[nginx]}")" -v n_l99="$(m "${lp99[nginx]}")" -v n_cpu="$(m "${cpu[nginx]}")" \
  -v p_rps="$(m "${rps[perch]}")" -v p_p99="$(m "${p99[perch]}")" -v p_l50="$(m "${lp50[perch]}")" -v p_l99="$(m "${lp99[perch]}")" -v p_cpu="$(m "${cpu[perch]}")" \
  -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  print "| | requests/s (saturated) | p99 saturated | CPU per request | p50 one at a time | p99 one at a time |"
  print "|---|---:|---:|---:|---:|---:|"
  printf "| nginx `return 200` alone | %.0f | %.2f ms | %.1f µs | %.3f ms | %.3f ms |\n", b_rps, b_p99, b_cpu, b_l50, b_l99
  printf "| nginx split_clients | %.0f | %.2f ms | %.1f µs | %.3f ms | %.3f ms |\n", n_rps, n_p99, n_cpu, n_l50, n_l99
  printf "| perch proxy | %.0f | %.2f ms | %.1f µs | %.3f ms | %.3f ms |\n", p_rps, p_p99, p_cpu, p_l50, p_l99
  printf "\nperch/nginx requests/s: %.0f%%; p99 perch - nginx: saturated %+.2f ms, one at a time %+.3f ms; load average after: %s\n", \
    100 * p_rps / n_rps, p_p99 - n_p99, p_l99 - n_l99, load
}'
