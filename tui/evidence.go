package tui

import (
	"fmt"
	"math"
	"time"

	"github.com/perchhq/perch/metrics"
)

// evidence is what a sequential judge's result says about where a check stands, in the terms
// an operator decides by: how much evidence of harm and of safety there is against how much
// each needs (in nats: the log of the e-value, ln(1/p)), and, where the judge estimates them,
// how long each would take at the current traffic and the smallest harm the data could show.
type evidence struct {
	harm, harmNeed float64
	safe, safeNeed float64
	hasSafe        bool
	// Looks to a decision at the current estimate and traffic (NaN: not estimated).
	toFail, toPass float64
	// detectable is the smallest harm the data so far would show, in the tolerance's terms
	// ("+23%", "+1.2pp"); empty when not estimated.
	detectable string
}

// readEvidence reads a result's evidence; ok is false for judges that give none (a p-value
// alone, as the Mann-Whitney judge's, is not evidence toward a threshold).
func readEvidence(r metrics.Result, u metrics.Unit) (evidence, bool) {
	alpha, okAlpha := r.Stats["alpha"]
	if r.PValue == nil || !okAlpha || !(alpha > 0) {
		return evidence{}, false
	}
	e := evidence{harm: nats(float64(*r.PValue)), harmNeed: nats(float64(alpha)), toFail: math.NaN(), toPass: math.NaN()}
	if pSafe, ok := r.Stats["pSafe"]; ok {
		if beta, ok := r.Stats["beta"]; ok && beta > 0 {
			e.safe, e.safeNeed, e.hasSafe = nats(float64(pSafe)), nats(float64(beta)), true
		}
	}
	if v, ok := r.Stats["intervalsToFail"]; ok && v.Valid() {
		e.toFail = float64(v)
	}
	if v, ok := r.Stats["intervalsToPass"]; ok && v.Valid() {
		e.toPass = float64(v)
	}
	if v, ok := r.Stats["detectablePercent"]; ok && v.Valid() {
		e.detectable = fmt.Sprintf("%+.3g%%", float64(v))
	} else if v, ok := r.Stats["detectableIncrease"]; ok && v.Valid() {
		e.detectable = u.Diff(float64(v))
	}
	return e, true
}

// nats is the evidence a p-value stands for: ln(1/p), 0 for p ≥ 1.
func nats(p float64) float64 {
	if !(p < 1) {
		return 0
	}
	if p <= 0 {
		return math.Inf(1)
	}
	return -math.Log(p)
}

// amount writes evidence "2.3", or "—" when it is infinite.
func amount(v float64) string {
	if math.IsInf(v, 0) {
		return "∞"
	}
	return fmt.Sprintf("%.1f", v)
}

// harmWords says how far the harm evidence is: "harm shown (5.1 of 4.6 needed)", "harm not
// yet certain: 2.0 of 4.6 needed".
func (e evidence) harmWords() string {
	if e.harm >= e.harmNeed {
		return fmt.Sprintf("harm shown (%s of %s needed)", amount(e.harm), amount(e.harmNeed))
	}
	if e.harm == 0 {
		return fmt.Sprintf("no evidence of harm yet: 0 of %s needed", amount(e.harmNeed))
	}
	return fmt.Sprintf("harm not yet certain: %s of %s needed", amount(e.harm), amount(e.harmNeed))
}

// safeWords says how far the safety evidence is.
func (e evidence) safeWords() string {
	switch {
	case !e.hasSafe:
		return ""
	case e.safe >= e.safeNeed:
		return fmt.Sprintf("shown within tolerance (%s of %s needed)", amount(e.safe), amount(e.safeNeed))
	}
	return fmt.Sprintf("safety not yet shown: %s of %s needed", amount(e.safe), amount(e.safeNeed))
}

// outlookWords says what is still missing in time, at the current traffic: "about 3 min more
// at this traffic to show it safe". interval is the time between looks.
func (e evidence) outlookWords(interval time.Duration) string {
	pass, fail := e.toPass, e.toFail
	switch {
	case finite(fail) && (!finite(pass) || fail <= pass) && fail > 0:
		return fmt.Sprintf("harm would be shown in about %s if it goes on like this", aboutDuration(fail, interval))
	case finite(pass) && pass > 0:
		return fmt.Sprintf("about %s more at this traffic to show it safe", aboutDuration(pass, interval))
	}
	return ""
}

// aboutDuration is looks × interval, rounded the way one would say it: "20s", "3 min", "1 h".
func aboutDuration(looks float64, interval time.Duration) string {
	d := time.Duration(looks * float64(interval))
	switch {
	case interval <= 0:
		return fmt.Sprintf("%.0f looks", looks)
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(math.Ceil(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(math.Round(d.Minutes())))
	}
	return fmt.Sprintf("%.1f h", d.Hours())
}

// progress is evidence as a share of what it needs, 0..1.
func progress(have, need float64) float64 {
	if need <= 0 {
		return 1
	}
	return max(0, min(have/need, 1))
}
