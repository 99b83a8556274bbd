package judgebench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// z95 is the normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// Summary is one judge's figures on one scenario.
type Summary struct {
	Judge    string
	Scenario Scenario
	Runs     int
	// RolledBack counts rollbacks after the onset: detections when the scenario is harmful,
	// false rollbacks otherwise. Early counts rollbacks before a mid-run onset (false ones).
	RolledBack, Early, Promoted int
	// SplitOff counts runs held at the end because the traffic split was not what was set.
	SplitOff int
	// Minutes from onset to rollback of every run, +Inf for runs that never rolled back after
	// the onset, sorted.
	TTD []float64
}

// Summarize turns outcomes into a Summary.
func Summarize(judge string, s Scenario, out []Outcome) Summary {
	sum := Summary{Judge: judge, Scenario: s, Runs: len(out)}
	for _, o := range out {
		if o.SplitOff {
			sum.SplitOff++
		}
		switch {
		case o.RolledBackAt > s.Onset:
			sum.RolledBack++
			sum.TTD = append(sum.TTD, float64(o.RolledBackAt-s.Onset)*s.IntervalSeconds/60)
			continue
		case o.RolledBackAt > 0:
			sum.Early++
		case o.Promoted:
			sum.Promoted++
		}
		sum.TTD = append(sum.TTD, math.Inf(1))
	}
	sort.Float64s(sum.TTD)
	return sum
}

// Proportion is a rate with its 95% Wilson score interval.
type Proportion struct{ Rate, Low, High float64 }

// wilson is k out of n with its 95% Wilson score interval.
func wilson(k, n int) Proportion {
	if n == 0 {
		return Proportion{math.NaN(), 0, 1}
	}
	p, nf := float64(k)/float64(n), float64(n)
	d := 1 + z95*z95/nf
	c := (p + z95*z95/(2*nf)) / d
	h := z95 * math.Sqrt(p*(1-p)/nf+z95*z95/(4*nf*nf)) / d
	return Proportion{p, math.Max(0, c-h), math.Min(1, c+h)}
}

// Quantile is an order-statistic estimate of a quantile with its distribution-free 95% interval
// (the order statistics at ranks nq ∓ z·sqrt(nq(1−q)), +1 for the upper, rounded: the normal
// approximation to the binomial). Values may be +Inf: the quantile was not reached in the run.
type Quantile struct{ Value, Low, High float64 }

// quantileOf estimates the q-quantile of sorted values.
func quantileOf(sorted []float64, q float64) Quantile {
	n := len(sorted)
	if n == 0 {
		return Quantile{math.NaN(), math.NaN(), math.NaN()}
	}
	at := func(rank int) float64 { return sorted[min(max(rank, 1), n)-1] }
	nq := float64(n) * q
	spread := z95 * math.Sqrt(nq*(1-q))
	return Quantile{
		Value: at(int(math.Ceil(nq))),
		Low:   at(int(math.Round(nq - spread))),
		High:  at(int(math.Round(nq + 1 + spread))),
	}
}

// WriteTable writes the summaries as a Markdown table, grouped by scenario.
func WriteTable(w io.Writer, sums []Summary) error {
	var b strings.Builder
	b.WriteString("| Scenario | Truth | Judge | Rolled back (95% CI) | Promoted | Median TTD, min (95% CI) | p90 TTD, min (95% CI) |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	last := ""
	for _, s := range sums {
		name, truth := s.Scenario.Name, string(s.Scenario.Truth)
		if name == last {
			name, truth = "", ""
		}
		last = s.Scenario.Name
		rb := wilson(s.RolledBack, s.Runs)
		cell := fmt.Sprintf("%s (%s–%s)", pct(rb.Rate), pct(rb.Low), pct(rb.High))
		if s.Early > 0 {
			cell += fmt.Sprintf("; %s before onset", pct(float64(s.Early)/float64(s.Runs)))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", name, truth, s.Judge, cell,
			pct(float64(s.Promoted)/float64(s.Runs)), minutes(quantileOf(s.TTD, 0.5)), minutes(quantileOf(s.TTD, 0.9)))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(p float64) string {
	switch {
	case math.IsNaN(p):
		return "—"
	case p == 0 || p == 1 || p >= 0.1:
		return fmt.Sprintf("%.0f%%", p*100)
	}
	return fmt.Sprintf("%.1f%%", p*100)
}

func minutes(q Quantile) string {
	if math.IsInf(q.Value, 1) {
		return "—"
	}
	hi := fmt.Sprintf("%g", q.High)
	if math.IsInf(q.High, 1) {
		hi = "—"
	}
	return fmt.Sprintf("%g (%g–%s)", q.Value, q.Low, hi)
}

// target is one of the default judge's targets, checked against every judge's figures.
type target struct {
	Name     string
	Scenario string // the scenario it is measured on ("" for every A/A scenario)
	Check    func(Summary) (measured string, met bool)
}

// targets are what the default judge is designed to meet.
func targets() []target {
	return []target{
		{"A/A false rollback ≤ 1% per rollout (all checks, a look every interval)", "", func(s Summary) (string, bool) {
			p := wilson(s.RolledBack+s.Early, s.Runs)
			return fmt.Sprintf("%s (≤ %s)", pct(p.Rate), pct(p.High)), p.Rate <= 0.01
		}},
		{"errors ×2 at 10 rps canary caught ≥ 99%, median ≤ 10 min", "errors ×2, 1% weight", func(s Summary) (string, bool) {
			p, med := wilson(s.RolledBack, s.Runs), quantileOf(s.TTD, 0.5)
			return fmt.Sprintf("%s, median %s", pct(p.Rate), minutes(med)), p.Rate >= 0.99 && med.Value <= 10
		}},
		{"errors ×10 from mid-run caught, median ≤ 3 min after onset", "errors ×10 from minute 15, 1%", func(s Summary) (string, bool) {
			med := quantileOf(s.TTD, 0.5)
			return fmt.Sprintf("median %s; %s caught", minutes(med), pct(float64(s.RolledBack)/float64(s.Runs))), med.Value <= 3
		}},
		{"latency +10% caught ≥ 95%", "latency +10%, 5% weight", func(s Summary) (string, bool) {
			p := wilson(s.RolledBack, s.Runs)
			return fmt.Sprintf("%s (%s–%s)", pct(p.Rate), pct(p.Low), pct(p.High)), p.Rate >= 0.95
		}},
	}
}

// WriteTargets writes, for each target, every judge's figure and whether it meets it.
func WriteTargets(w io.Writer, sums []Summary, judges []string) error {
	var b strings.Builder
	b.WriteString("| Target |")
	for _, j := range judges {
		b.WriteString(" " + j + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(judges)) + "\n")
	for _, t := range targets() {
		b.WriteString("| " + t.Name + " |")
		for _, j := range judges {
			var cells []string
			allMet, any := true, false
			for _, s := range sums {
				if s.Judge != j || (t.Scenario == "" && !strings.HasPrefix(s.Scenario.Name, "A/A")) ||
					(t.Scenario != "" && s.Scenario.Name != t.Scenario) {
					continue
				}
				m, ok := t.Check(s)
				any = true
				allMet = allMet && ok
				if t.Scenario == "" {
					m = strings.TrimPrefix(s.Scenario.Name, "A/A ") + ": " + m
				}
				cells = append(cells, m)
			}
			verdict := "met"
			switch {
			case !any:
				verdict, cells = "not measured", nil
			case !allMet:
				verdict = "**not met**"
			}
			if len(cells) == 0 {
				fmt.Fprintf(&b, " %s |", verdict)
				continue
			}
			fmt.Fprintf(&b, " %s: %s |", verdict, strings.Join(cells, "; "))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Comparison is perch's default judge and the oracle on one scenario.
type Comparison struct {
	Perch, Oracle Summary
}

// caughtMedian is the median minutes from onset to rollback over the runs that rolled back
// after the onset (NaN when none did).
func caughtMedian(s Summary) float64 {
	var caught []float64
	for _, t := range s.TTD {
		if !math.IsInf(t, 1) {
			caught = append(caught, t)
		}
	}
	if len(caught) == 0 {
		return math.NaN()
	}
	return quantileOf(caught, 0.5).Value
}

// Goal is what the comparison asks of perch on a scenario: on a safe one, false rollbacks at
// most alpha; on a harmful one, a detection rate within 10 points of the oracle's and a median
// time to detection at most 1.5 times the oracle's.
func (c Comparison) Goal() (string, bool) {
	p, o := c.Perch, c.Oracle
	if p.Scenario.Truth != Harmful {
		rate := float64(p.RolledBack+p.Early) / float64(p.Runs)
		return fmt.Sprintf("false rollbacks ≤ %s", pct(defaultAlpha)), rate <= defaultAlpha
	}
	pr, or := float64(p.RolledBack)/float64(p.Runs), float64(o.RolledBack)/float64(o.Runs)
	pm, om := caughtMedian(p), caughtMedian(o)
	return "within 10 points, ≤ 1.5× median", pr >= or-0.1 && !(pm > 1.5*om) && !math.IsNaN(pm)
}

// WriteComparison writes perch beside the oracle as a Markdown table: how often each rolled
// back (false rollbacks on safe scenarios) and the median minutes from the onset to the
// rollback over the runs that rolled back.
func WriteComparison(w io.Writer, cs []Comparison) error {
	var b strings.Builder
	b.WriteString("| Scenario | Truth | perch rolled back (95% CI) | oracle | perch median, min | oracle median, min | ratio | perch promoted | held: split off | goal |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cs {
		p, o := c.Perch, c.Oracle
		rb := wilson(p.RolledBack+p.Early, p.Runs)
		if p.Scenario.Truth == Harmful {
			rb = wilson(p.RolledBack, p.Runs)
		}
		cell := fmt.Sprintf("%s (%s–%s)", pct(rb.Rate), pct(rb.Low), pct(rb.High))
		if p.Early > 0 && p.Scenario.Truth == Harmful {
			cell += fmt.Sprintf("; %s before onset", pct(float64(p.Early)/float64(p.Runs)))
		}
		oracle, om, ratio := "", "", ""
		pm := caughtMedian(p)
		if p.Scenario.Truth == Harmful {
			oracle = pct(float64(o.RolledBack) / float64(o.Runs))
			om = number(caughtMedian(o))
			if r := pm / caughtMedian(o); !math.IsNaN(r) {
				ratio = fmt.Sprintf("%.2g×", r)
			}
		}
		goal, met := c.Goal()
		verdict := "met"
		if !met {
			verdict = "**not met**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s: %s |\n", p.Scenario.Name, p.Scenario.Truth, cell, oracle,
			number(pm), om, ratio, pct(float64(p.Promoted)/float64(p.Runs)), pct(float64(p.SplitOff)/float64(p.Runs)), verdict, goal)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func number(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%g", v)
}
