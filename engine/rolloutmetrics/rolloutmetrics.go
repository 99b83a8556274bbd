// Package rolloutmetrics exports a rollout as Prometheus series, read from the engine's newest
// snapshot at scrape time. The series' names and labels are a public contract: dashboards and
// alerts are written against them, so they never change. Every series carries the rollout's
// name in its rollout label, so the rollouts of a fleet share one registry (NewSet).
package rolloutmetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// Snapshots is the part of the engine the series are read from: *engine.Engine, or anything
// else that holds a rollout's state.
type Snapshots interface {
	Snapshot() engine.State
}

// Collector exports the rollout as the engine sees it. Register it with a prometheus.Registry.
type Collector struct{ eng Snapshots }

// New returns the collector of eng's rollout.
func New(eng Snapshots) *Collector { return &Collector{eng: eng} }

var (
	rolloutLabels    = []string{"rollout"}
	descCanaryWeight = prometheus.NewDesc("perch_rollout_canary_weight_percent",
		"Canary weight the traffic provider last confirmed (absent before the first).", rolloutLabels, nil)
	descTargetWeight = prometheus.NewDesc("perch_rollout_target_weight_percent",
		"Canary weight the current step, rollback or promotion wants.", rolloutLabels, nil)
	descStep = prometheus.NewDesc("perch_rollout_step",
		"Current step of the rollout, counting from 1.", rolloutLabels, nil)
	descSteps = prometheus.NewDesc("perch_rollout_steps",
		"Number of steps in the rollout.", rolloutLabels, nil)
	descAttempt = prometheus.NewDesc("perch_rollout_attempt",
		"1 for the first run of the rollout, +1 per retry after a rollback.", rolloutLabels, nil)
	descPhase = prometheus.NewDesc("perch_rollout_phase",
		"1 for the phase the rollout is in, 0 for the others.", []string{"rollout", "phase"}, nil)
	descEvents = prometheus.NewDesc("perch_rollout_events_total",
		"Events the engine has recorded.", rolloutLabels, nil)
	descVerdict = prometheus.NewDesc("perch_rollout_check_verdict",
		"1 for a check's verdict at the newest look of the current step, 0 for the other verdicts (absent before a look).",
		[]string{"rollout", "check", "verdict"}, nil)
	descFailures = prometheus.NewDesc("perch_rollout_check_failures",
		"Failing looks of a check in the current step.", []string{"rollout", "check"}, nil)
)

// phases and verdicts hold every value, so each has its series (0 or 1) from the first scrape.
//
//exhaustive:enforce
var (
	phases = map[engine.Phase]struct{}{engine.PhasePending: {}, engine.PhaseRunning: {}, engine.PhasePaused: {},
		engine.PhaseHolding: {}, engine.PhaseRollingBack: {}, engine.PhaseRolledBack: {}, engine.PhasePromoting: {},
		engine.PhasePromoted: {}}
	verdicts = map[metrics.Verdict]struct{}{metrics.Pass: {}, metrics.Fail: {}, metrics.Inconclusive: {}}
)

// Describe sends every description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { describe(ch) }

func describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCanaryWeight, descTargetWeight, descStep, descSteps, descAttempt, descPhase, descEvents, descVerdict, descFailures} {
		ch <- d
	}
}

// Collect reads the engine's newest snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	collect(ch, c.eng.Snapshot())
}

// Set exports many rollouts (a fleet's) on one registry, each under its own rollout label.
type Set struct{ list func() []engine.State }

// NewSet returns the collector of the rollouts list returns at each scrape; a state without a
// Spec (a rollout that never started) has no series. The names must differ.
func NewSet(list func() []engine.State) *Set { return &Set{list: list} }

// Describe sends every description: the same as one rollout's.
func (c *Set) Describe(ch chan<- *prometheus.Desc) { describe(ch) }

// Collect reads each rollout's newest state.
func (c *Set) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.list() {
		if s.Spec != nil {
			collect(ch, s)
		}
	}
}

// collect sends the series of the rollout in state s.
func collect(ch chan<- prometheus.Metric, s engine.State) {
	name := s.Spec.Name
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{name}, labels...)...)
	}
	if s.Weight >= 0 {
		gauge(descCanaryWeight, float64(s.Weight))
	}
	if s.Target >= 0 {
		gauge(descTargetWeight, float64(s.Target))
	}
	gauge(descStep, float64(s.Step+1))
	gauge(descSteps, float64(len(s.Steps)))
	gauge(descAttempt, float64(s.Attempt))
	for p := range phases {
		gauge(descPhase, boolValue(s.Phase == p), string(p))
	}
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(s.Seq), name)
	for _, chk := range s.Checks {
		gauge(descFailures, float64(chk.Failures), chk.Name)
		if chk.Last == nil {
			continue
		}
		for v := range verdicts {
			gauge(descVerdict, boolValue(chk.Last.Verdict == v), chk.Name, string(v))
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
