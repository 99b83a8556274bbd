//go:build race

package metrics_test

// raceEnabled says the race detector is on: it makes the judges' arithmetic several times
// dearer, so the statistical tests draw fewer rollouts (statRuns); they test arithmetic, not
// concurrency.
const raceEnabled = true
