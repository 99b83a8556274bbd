#!/usr/bin/env bash
# Measure how reliably the demo scenarios end as designed: run each scenario RUNS times
# headless, JOBS at once, and print per scenario the outcomes, the exit codes, the median and
# worst duration, where the rollbacks happened and how long the rollout held. Runs go without a
# control socket, which concurrent runs of one scenario would otherwise share.
# Usage: bash demo/measure.sh [-n RUNS] [-j JOBS] [-s SPEED] [-r] [SCENARIO...]
#   -r builds with -race, as CI runs the scenario test.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20 jobs=1 speed=1 race=()
while getopts "n:j:s:r" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    j) jobs=$OPTARG ;;
    s) speed=$OPTARG ;;
    r) race=(-race) ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
scenarios=("$@")
if ((${#scenarios[@]} == 0)); then
  scenarios=(healthy error-spike latency-regression flaky-metrics slow-burn)
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
go build "${race[@]}" -o "$dir/perch" ./cmd/perch
echo "speed $speed, $runs runs per scenario, $jobs at once${race:+, -race}; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before"
for s in "${scenarios[@]}"; do
  for i in $(seq "$runs"); do echo "$s $i"; done
done | xargs -P "$jobs" -L 1 bash -c '
  s=$0 i=$1 out="'"$dir"'/$0-$1"
  start=$(date +%s.%N)
  code=0
  "'"$dir"'/perch" demo --headless -o json --socket none --scenario "$s" --speed '"$speed"' --record "$out.jsonl" >"$out.events" 2>"$out.err" || code=$?
  echo "$code $(echo "$(date +%s.%N) - $start" | bc)" >"$out.result"
'
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after"
python3 - "$dir" "${scenarios[@]}" <<'PY'
import json, os, statistics, sys
from collections import Counter
d, scenarios = sys.argv[1], sys.argv[2:]
print(f"{'scenario':20} {'runs':>4}  {'outcomes':24} {'exit':10} {'median s':>8} {'max s':>6}  {'rolled back at step':20} {'looks there (median/max)':24} held (median/max s)")
for s in scenarios:
    outcomes, codes, secs, steps, held, looks = Counter(), Counter(), [], Counter(), [], []
    n = 0
    for f in sorted(os.listdir(d)):
        if not (f.startswith(s + "-") and f.endswith(".result")) or not f[len(s) + 1:-7].isdigit():
            continue
        n += 1
        code, sec = open(os.path.join(d, f)).read().split()
        codes[code] += 1
        secs.append(float(sec))
        evs = [json.loads(l) for l in open(os.path.join(d, f[:-7] + ".events"))]
        last = evs[-1]["type"] if evs else "none"
        outcomes[last] += 1
        for e in evs:
            if e["type"] == "rollback_started":
                steps[str(e.get("step", 0) + 1)] += 1
                looks.append(sum(1 for x in evs if x["type"] == "analysis" and x.get("step", 0) == e.get("step", 0)))
        # time spent holding: from each held to the next resumed/step_passed/rollback
        total, since = 0.0, None
        from datetime import datetime
        t = lambda e: datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
        for e in evs:
            if e["type"] == "held" and since is None:
                since = t(e)
            elif since is not None and e["type"] in ("resumed", "step_passed", "rollback_started", "promote_started"):
                total += t(e) - since
                since = None
        held.append(total)
    if n == 0:
        continue
    print(f"{s:20} {n:>4}  {', '.join(f'{k} {v}' for k, v in outcomes.items()):24} {', '.join(f'{k}:{v}' for k, v in codes.items()):10} "
          f"{statistics.median(secs):>8.1f} {max(secs):>6.1f}  {', '.join(f'{k}:{v}' for k, v in sorted(steps.items())) or '-':20} "
          f"{(f'{statistics.median(looks):g}/{max(looks)}' if looks else '-'):24} "
          f"{statistics.median(held):.1f}/{max(held):.1f}")
PY
