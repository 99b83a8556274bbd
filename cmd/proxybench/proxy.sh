#!/usr/bin/env bash
# Benchmark perch's proxy against nginx with split_clients on this machine: both split
# requests 50/50 between the same two Go backends on loopback, and wrk measures each (and
# the backend alone, for the latency a proxy adds). Installs nothing: it needs
#   apt-get install -y nginx wrk
# Usage: bash cmd/proxybench/proxy.sh [SECONDS per run, default 10] [ROUNDS, default 2]
# Each target runs saturated (THREADS wrk threads, CONNECTIONS connections: requests/s) and
# lightly loaded (1 thread, LIGHT connections, one request at a time by default: the latency a proxy adds).
# Environment: CONNECTIONS (default 64), THREADS (default 2), LIGHT (default 1), BASE_PORT (default 18080).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10}
rounds=${2:-2}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
light=${LIGHT:-1}
base=${BASE_PORT:-18080}
for tool in nginx wrk; do
  if ! command -v "$tool" >/dev/null; then
    echo "cmd/proxybench/proxy.sh needs $tool: apt-get install -y nginx wrk" >&2
    exit 2
  fi
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/proxybench" ./cmd/proxybench
perch_port=$base nginx_port=$((base + 10)) stable_port=$((base + 1)) canary_port=$((base + 2))
"$work/proxybench" backend -listen "127.0.0.1:$stable_port" & pids+=($!)
"$work/proxybench" backend -listen "127.0.0.1:$canary_port" & pids+=($!)
"$work/proxybench" proxy -listen "127.0.0.1:$perch_port" -weight 50 \
  -stable "http://127.0.0.1:$stable_port" -canary "http://127.0.0.1:$canary_port" & pids+=($!)

mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<CONF
user root;
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream stable { server 127.0.0.1:$stable_port; keepalive 256; }
  upstream canary { server 127.0.0.1:$canary_port; keepalive 256; }
  split_clients "\$request_id" \$backend { 50% stable; * canary; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://\$backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"

for port in $stable_port $canary_port $perch_port $nginx_port; do
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done

# run NAME PORT THREADS CONNECTIONS: one wrk run; prints "requests/s p99_ms p50_ms".
run() {
  local out
  out=$(wrk -t"$3" -c"$4" -d"${duration}s" --latency "http://127.0.0.1:$2/")
  echo "$out" >"$work/wrk-$1-c$4.txt"
  local rps
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  echo "$rps $(percentile 99% <<<"$out") $(percentile 50% <<<"$out")"
}

# percentile P: wrk's latency at P (as "99%"), in ms.
percentile() {
  awk -v p="$1" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}'
}

echo "# $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# saturated: wrk -t$threads -c$connections; light: wrk -t1 -c$light; ${duration}s each, $rounds rounds, medians"
for target in backend:$stable_port perch:$perch_port nginx:$nginx_port; do
  wrk -t1 -c8 -d1s "http://127.0.0.1:${target#*:}/" >/dev/null # warm connections and caches
done
declare -A rps p99 lp99 lp50
for round in $(seq "$rounds"); do
  for target in backend:$stable_port nginx:$nginx_port perch:$perch_port; do
    name=${target%%:*}
    read -r r p _ < <(run "$name" "${target#*:}" "$threads" "$connections")
    read -r _ lp l50 < <(run "$name" "${target#*:}" 1 "$light")
    echo "round $round  $name  saturated: $r req/s, p99 $p ms;  light: p50 $l50 ms, p99 $lp ms"
    rps[$name]="${rps[$name]:-} $r"
    p99[$name]="${p99[$name]:-} $p"
    lp99[$name]="${lp99[$name]:-} $lp"
    lp50[$name]="${lp50[$name]:-} $l50"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { median <<<"$1"; }
echo
awk -v b_rps="$(m "${rps[backend]}")" -v b_p99="$(m "${p99[backend]}")" -v b_l="$(m "${lp99[backend]}")" -v b_m="$(m "${lp50[backend]}")" \
  -v n_rps="$(m "${rps[nginx]}")" -v n_p99="$(m "${p99[nginx]}")" -v n_l="$(m "${lp99[nginx]}")" -v n_m="$(m "${lp50[nginx]}")" \
  -v p_rps="$(m "${rps[perch]}")" -v p_p99="$(m "${p99[perch]}")" -v p_l="$(m "${lp99[perch]}")" -v p_m="$(m "${lp50[perch]}")" \
  -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  print "| | requests/s (saturated) | p99 saturated | p50 light | p99 light | p99 light added over the backend |"
  print "|---|---:|---:|---:|---:|---:|"
  printf "| backend alone | %.0f | %.2f ms | %.2f ms | %.2f ms | |\n", b_rps, b_p99, b_m, b_l
  printf "| nginx split_clients | %.0f | %.2f ms | %.2f ms | %.2f ms | %+.2f ms |\n", n_rps, n_p99, n_m, n_l, n_l - b_l
  printf "| perch proxy | %.0f | %.2f ms | %.2f ms | %.2f ms | %+.2f ms |\n", p_rps, p_p99, p_m, p_l, p_l - b_l
  printf "\nperch/nginx requests/s: %.0f%%; light p99, perch - nginx: %+.2f ms; load average after: %s\n", 100 * p_rps / n_rps, p_l - n_l, load
}'
