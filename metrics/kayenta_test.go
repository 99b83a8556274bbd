package metrics

import (
	"math"
	"testing"
)

// kayentaCase is one Mann-Whitney case of Kayenta's ClassifierSuite (kayenta-judge), kept as
// data in testdata/kayenta/classifier.json: the classifier's parameters, the call's arguments
// and what Kayenta asserts.
type kayentaCase struct {
	Name                 string    `json:"name"`
	Experiment           []float64 `json:"experiment"`
	Control              []float64 `json:"control"`
	Tolerance            *float64  `json:"tolerance"`
	ConfLevel            *float64  `json:"confLevel"`
	EffectSizeThresholds []float64 `json:"effectSizeThresholds"`
	CriticalThresholds   []float64 `json:"criticalThresholds"`
	EffectSizeMeasure    string    `json:"effectSizeMeasure"`
	Direction            string    `json:"direction"`
	NaNStrategy          string    `json:"nanStrategy"`
	Critical             bool      `json:"critical"`
	Want                 string    `json:"want"`
	WantCritical         *bool     `json:"wantCritical"`
	WantDeviationNaN     bool      `json:"wantDeviationNaN"`
	WantDeviation        *float64  `json:"wantDeviation"`
	WantReason           bool      `json:"wantReason"`
}

// classifier builds the classifier the case constructs, with Kayenta's constructor defaults.
func (c kayentaCase) classifier() kayentaClassifier {
	k := kayentaClassifier{tolerance: 0.25, confLevel: 0.95, allowedDecrease: 1, allowedIncrease: 1,
		criticalDecrease: 1, criticalIncrease: 1, measure: measureMeanRatio}
	if c.Tolerance != nil {
		k.tolerance = *c.Tolerance
	}
	if c.ConfLevel != nil {
		k.confLevel = *c.ConfLevel
	}
	if c.EffectSizeThresholds != nil {
		k.allowedDecrease, k.allowedIncrease = c.EffectSizeThresholds[0], c.EffectSizeThresholds[1]
	}
	if c.CriticalThresholds != nil {
		k.criticalDecrease, k.criticalIncrease = c.CriticalThresholds[0], c.CriticalThresholds[1]
	}
	if c.EffectSizeMeasure != "" {
		k.measure = c.EffectSizeMeasure
	}
	return k
}

func TestKayentaClassifierSuite(t *testing.T) {
	cases := loadKayenta[kayentaCase](t, "classifier.json")
	if len(cases) != 34 {
		t.Fatalf("want Kayenta's 34 Mann-Whitney classifier cases, got %d", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			nan := c.NaNStrategy
			if nan == "" {
				nan = nanRemove
			}
			got := c.classifier().classify(c.Control, c.Experiment, c.Direction, nan, c.Critical, false)
			if c.Want != "" && got.label != c.Want {
				t.Errorf("classification %s, want %s (%s)", got.label, c.Want, got.describe(c.classifier()))
			}
			if c.WantCritical != nil && got.critical != *c.WantCritical {
				t.Errorf("critical %v, want %v", got.critical, *c.WantCritical)
			}
			if c.WantDeviationNaN && !math.IsNaN(got.deviation) {
				t.Errorf("deviation %v, want NaN", got.deviation)
			}
			if c.WantDeviation != nil && got.deviation != *c.WantDeviation {
				t.Errorf("deviation %v, want %v", got.deviation, *c.WantDeviation)
			}
			if c.WantReason && got.reason == "" {
				t.Error("want a reason")
			}
		})
	}
}
