//go:build race

package main

// raceEnabled says the race detector is on: it makes every request through the demo's stack
// several times dearer, so tests that measure latencies skip and run without it (.ci/run).
const raceEnabled = true
