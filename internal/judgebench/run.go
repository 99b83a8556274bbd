package judgebench

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/perchhq/perch/metrics"
)

// The two checks every simulated rollout has, as a rollout file would write them.
var (
	errorTolerance   = 10.0 // percent: the canary may fail up to 1.1× as often
	latencyTolerance = 5.0  // percent: the canary's p95 may be up to 5% slower
)

// numChecks is how many checks a simulated rollout judges together (Criteria.Family).
const numChecks = 2

// Outcome is what one simulated rollout came to under one judge.
type Outcome struct {
	RolledBackAt int    // look (1-based) that rolled back, 0 if none
	Check        string // the check whose failure rolled back
	Promoted     bool   // every check's last verdict was pass
}

// play runs one rollout through judge the way the engine does: at look k (k = 1…Intervals) it
// judges every check on intervals [0, k) and rolls back on the first fail (failureLimit 0);
// after the last look it promotes if every check passes, and otherwise holds.
func play(judge metrics.Judge, s Scenario, r Rollout) Outcome {
	errorsCheck := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: &errorTolerance, Family: numChecks}
	latencyCheck := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: &latencyTolerance, Family: numChecks}
	var last [numChecks]metrics.Verdict
	for k := 1; k <= s.Intervals; k++ {
		inputs := [numChecks]metrics.Input{
			{Criteria: errorsCheck,
				Canary:   metrics.Series{Events: r.CanaryErrors[:k], Total: r.CanaryRequests[:k]},
				Baseline: metrics.Series{Events: r.StableErrors[:k], Total: r.StableRequests[:k]}},
			{Criteria: latencyCheck,
				Canary:   metrics.Series{Values: r.CanaryLatency[:k]},
				Baseline: metrics.Series{Values: r.StableLatency[:k]}},
		}
		for c, in := range inputs {
			last[c] = judge.Judge(in).Verdict
			if last[c] == metrics.Fail {
				return Outcome{RolledBackAt: k, Check: []string{"errors", "latency"}[c]}
			}
		}
	}
	return Outcome{Promoted: last[0] == metrics.Pass && last[1] == metrics.Pass}
}

// Run plays runs rollouts of the scenario under the named judge (default options) on all
// cores and returns the outcomes in run order.
func Run(judgeName string, s Scenario, runs int) ([]Outcome, error) {
	judge, err := metrics.New(judgeName, nil)
	if err != nil {
		return nil, fmt.Errorf("judge %s: %w", judgeName, err)
	}
	out := make([]Outcome, runs)
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				out[i] = play(judge, s, s.Simulate(i))
			}
		})
	}
	for i := range runs {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, nil
}
