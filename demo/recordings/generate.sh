#!/usr/bin/env bash
# Regenerate the shipped recordings: one headless demo run per scenario at speed 1 (about
# 75 s each, segments-and-flags 110 s, run one after another).
# Usage: bash demo/recordings/generate.sh [SCENARIO...]
set -euo pipefail
cd "$(dirname "$0")/../.."
scenarios=("$@")
if ((${#scenarios[@]} == 0)); then
  scenarios=(healthy error-spike latency-regression flaky-metrics segments-and-flags slow-burn)
fi
bin="$(mktemp -d)/perch"
go build -o "$bin" ./cmd/perch
for s in "${scenarios[@]}"; do
  rm -f "demo/recordings/$s.jsonl"
  # Exit 1 (rolled back) is the expected end of some scenarios.
  "$bin" demo --headless --scenario "$s" --record "demo/recordings/$s.jsonl" >/dev/null || [ $? -eq 1 ]
  echo "demo/recordings/$s.jsonl: $(($(wc -l <"demo/recordings/$s.jsonl") - 1)) events"
done
rm -rf "$(dirname "$bin")"
