package judgebench

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/perchhq/perch/metrics"
)

// The two checks every simulated rollout has by default, as a rollout file would write them.
var (
	errorTolerance   = 10.0 // percent: the canary may fail up to 1.1× as often
	latencyTolerance = 5.0  // percent: the canary's p95 may be up to 5% slower
)

// checkNames name the two checks, in the order inputs gives them.
var checkNames = [numChecks]string{"errors", "latency"}

// numChecks is how many checks a simulated rollout judges together (Criteria.Family).
const numChecks = 2

// Outcome is what one simulated rollout came to under one judge.
type Outcome struct {
	RolledBackAt int    // look (1-based) that rolled back, 0 if none
	Check        string // the check whose failure rolled back
	Promoted     bool   // every check's last verdict was pass
	SplitOff     bool   // a check's last verdict found the traffic split off (sequential only)
}

// play runs one rollout through judge the way the engine does: at look k (k = 1…Intervals) it
// judges every check on intervals [0, k) and rolls back on the first fail (failureLimit 0);
// after the last look it promotes if every check passes, and otherwise holds.
func play(judge metrics.Judge, s Scenario, r Rollout) Outcome {
	var last [numChecks]metrics.Verdict
	var off bool
	for k := 1; k <= s.Intervals; k++ {
		off = false
		for c, in := range s.Inputs(r, k) {
			res := judge.Judge(in)
			last[c] = res.Verdict
			if last[c] == metrics.Fail {
				return Outcome{RolledBackAt: k, Check: checkNames[c]}
			}
			_, split := res.Stats["splitOffAt"]
			off = off || split
		}
	}
	return Outcome{Promoted: last[0] == metrics.Pass && last[1] == metrics.Pass, SplitOff: off}
}

// playFinal comes to the same outcome as play for a judge whose verdicts are final — a fail
// keeps its decidedAt at every later look, and the last look's verdicts are those of the whole
// window — by judging each check once on the whole window.
func playFinal(judge metrics.Judge, s Scenario, r Rollout) Outcome {
	out := Outcome{Promoted: true}
	for c, in := range s.Inputs(r, s.Intervals) {
		res := judge.Judge(in)
		if res.Verdict == metrics.Fail && res.DecidedAt != nil {
			if at := *res.DecidedAt + 1; out.RolledBackAt == 0 || at < out.RolledBackAt {
				out.RolledBackAt, out.Check = at, checkNames[c]
			}
		}
		out.Promoted = out.Promoted && res.Verdict == metrics.Pass
		_, off := res.Stats["splitOffAt"]
		out.SplitOff = out.SplitOff || off
	}
	if out.RolledBackAt > 0 {
		out.Promoted = false
	}
	return out
}

// Inputs are the two checks' inputs at look k: the first k intervals, with the weight of each
// and, for the latency check, each side's requests (as the builtin source counts them).
func (s Scenario) Inputs(r Rollout, k int) [numChecks]metrics.Input {
	return [numChecks]metrics.Input{
		{Criteria: s.ErrorsCriteria(),
			Canary:   metrics.Series{Events: r.CanaryErrors[:k], Total: r.CanaryRequests[:k]},
			Baseline: metrics.Series{Events: r.StableErrors[:k], Total: r.StableRequests[:k]},
			Traffic:  &metrics.Traffic{Weights: r.Weights[:k]}},
		{Criteria: s.LatencyCriteria(),
			Canary:   metrics.Series{Values: r.CanaryLatency[:k]},
			Baseline: metrics.Series{Values: r.StableLatency[:k]},
			Traffic:  &metrics.Traffic{Weights: r.Weights[:k], Canary: r.CanaryRequests[:k], Baseline: r.StableRequests[:k]}},
	}
}

// Run plays runs rollouts of the scenario under the named judge (default options) on all
// cores and returns the outcomes in run order. The sequential judge, whose verdicts are final,
// is judged once per check on the whole window (playFinal); the others at every look.
func Run(judgeName string, s Scenario, runs int) ([]Outcome, error) {
	judge, err := metrics.New(judgeName, nil)
	if err != nil {
		return nil, fmt.Errorf("judge %s: %w", judgeName, err)
	}
	return RunJudge(judge, judgeName == "sequential", s, runs), nil
}

// RunJudge plays runs rollouts of the scenario under judge on all cores: judged once per check
// on the whole window when final says the judge's verdicts are final (as the sequential
// judge's are), at every look otherwise.
func RunJudge(judge metrics.Judge, final bool, s Scenario, runs int) []Outcome {
	playOne := play
	if final {
		playOne = playFinal
	}
	return parallel(runs, func(i int) Outcome { return playOne(judge, s, s.Simulate(i)) })
}

// RunOracle plays runs rollouts of the scenario under the oracle at the judge's default alpha.
func RunOracle(s Scenario, runs int) []Outcome {
	return parallel(runs, func(i int) Outcome {
		if at := s.Oracle(s.Simulate(i), defaultAlpha); at >= 0 {
			return Outcome{RolledBackAt: at + 1, Check: "oracle"}
		}
		return Outcome{}
	})
}

// defaultAlpha is the sequential judge's default false rollback rate per rollout.
const defaultAlpha = 0.01

// parallel computes f(0), …, f(runs-1) on all cores.
func parallel(runs int, f func(i int) Outcome) []Outcome {
	out := make([]Outcome, runs)
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				out[i] = f(i)
			}
		})
	}
	for i := range runs {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}
