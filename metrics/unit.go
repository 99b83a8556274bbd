package metrics

import (
	"fmt"
	"math"
	"strings"
)

// Unit is how a check's values are written: the unit its rollout file names ("s", "ms",
// "req/s", "%") and whether the values are rates of events out of a total. The judges'
// reasons, the TUI, the headless lines, perch status and notifications all write values
// through it, so one number reads the same everywhere: a rate whose unit is "%" as a
// percentage (0.0913 is "9.13%") and its changes in percentage points, seconds under one
// as milliseconds. A Unit with no name writes plain numbers.
type Unit struct {
	Name string
	Rate bool
}

// UnitOf is the unit a judge writes in's values with: Criteria.Unit, for the kind of series
// the input holds.
func UnitOf(in Input) Unit { return Unit{Name: in.Unit, Rate: in.Canary.IsCounts()} }

// Percent reports whether values are ratios written as percentages (a rate in "%").
func (u Unit) Percent() bool { return u.Rate && u.Name == "%" }

// points reports whether differences are in percentage points: of a rate written as a
// percentage, or of a metric that is a percentage already.
func (u Unit) points() bool { return u.Name == "%" }

// Value writes v in the unit: "9.13%", "231 ms", "1.2 s", "412 req/s"; "n/a" for NaN.
func (u Unit) Value(v float64) string {
	switch {
	case !finite(v):
		return FormatValue(v)
	case u.Percent():
		return FormatValue(v*100) + "%"
	case u.Name == "s" && math.Abs(v) < 1 && v != 0:
		return FormatValue(v*1000) + " ms"
	case u.Name == "" || u.Name == "%":
		return FormatValue(v) + u.Name
	}
	return FormatValue(v) + " " + u.Name
}

// Diff writes a signed difference of two values: "+6.2 ms", "+0.143pp", "-3 req/s".
func (u Unit) Diff(d float64) string {
	switch {
	case !finite(d):
		return FormatValue(d)
	case u.points():
		if u.Rate {
			d *= 100
		}
		return fmt.Sprintf("%+.3gpp", d)
	case u.Name == "":
		return fmt.Sprintf("%+.4g", d)
	}
	sign := "+"
	if d < 0 {
		sign = "-"
	}
	return sign + u.Value(math.Abs(d))
}

// Change writes the canary against the baseline as a relative change ("+3.3%"), or as a
// difference over a zero baseline ("+9.13pp over a zero baseline").
func (u Unit) Change(canary, baseline float64) string {
	d := relativeChange(canary, baseline)
	switch {
	case math.IsNaN(d):
		return "no change measurable"
	case math.IsInf(d, 0):
		return u.Diff(canary-baseline) + " over a zero baseline"
	}
	return fmt.Sprintf("%+.1f%%", d)
}

// Tolerance writes how much worse the canary may be: "+15%", "−20%" (higher is better),
// "+0.5pp" of a rate, "+15% and +20 ms"; "none" when no tolerance is set.
func (u Unit) Tolerance(c Criteria) string {
	sign := "+"
	if c.Direction == HigherIsBetter {
		sign = "−"
	}
	var parts []string
	if c.MaxDeviationPercent != nil {
		parts = append(parts, sign+FormatValue(*c.MaxDeviationPercent)+"%")
	}
	if c.MaxIncrease != nil {
		parts = append(parts, sign+strings.TrimLeft(u.Diff(*c.MaxIncrease), "+-"))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " and ")
}
