package metrics_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"

	"github.com/perchhq/perch/metrics"
)

// fuzzInput turns bytes into a check's input: the first byte picks the kind, direction and
// tolerances, the rest are float32 values for the two sides in turn.
func fuzzInput(data []byte) metrics.Input {
	if len(data) == 0 {
		return metrics.Input{}
	}
	flags := data[0]
	data = data[1:]
	var vals []float64
	for len(data) >= 4 {
		vals = append(vals, float64(math.Float32frombits(binary.LittleEndian.Uint32(data))))
		data = data[4:]
	}
	in := metrics.Input{Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, Family: int(flags>>5) + 1}}
	if flags&1 != 0 {
		in.Direction = metrics.HigherIsBetter
	}
	if flags&2 != 0 {
		in.MaxDeviationPercent = pf(float64(flags>>2&7) * 10)
	}
	if flags&4 != 0 || in.MaxDeviationPercent == nil {
		in.MaxIncrease = pf(float64(flags>>3&3) * 0.01)
	}
	if flags&16 != 0 {
		n := len(vals) / 4
		in.Canary = metrics.Series{Events: vals[:n], Total: vals[n : 2*n]}
		in.Baseline = metrics.Series{Events: vals[2*n : 3*n], Total: vals[3*n : 4*n]}
		return in
	}
	n := len(vals) / 2
	in.Canary, in.Baseline = metrics.Series{Values: vals[:n]}, metrics.Series{Values: vals[n : 2*n]}
	return in
}

func FuzzJudges(f *testing.F) {
	seed := func(flags byte, v ...float32) []byte {
		b := []byte{flags}
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	f.Add(seed(2, 1, 2, 3, 4, 5, 6, 1, 1, 1, 1, 1, 1))
	f.Add(seed(18, 3, 4, 5, 6, 300, 300, 300, 300, 10, 10, 10, 10, 3000, 3000, 3000, 3000))
	f.Add(seed(23, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add(seed(7, float32(math.NaN()), float32(math.Inf(1)), -1, 0, 1e30, -1e30))
	judges := map[string]metrics.Judge{}
	for _, name := range metrics.Names() {
		judges[name] = mustJudge(f, name, nil)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(data)
		for name, j := range judges {
			r := j.Judge(in)
			switch r.Verdict {
			case metrics.Pass, metrics.Fail, metrics.Inconclusive:
			default:
				t.Fatalf("%s: verdict %q", name, r.Verdict)
			}
			if r.Reason == "" {
				t.Fatalf("%s: no reason", name)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("%s: result does not encode: %v", name, err)
			}
			if again := j.Judge(in); again.Reason != r.Reason {
				t.Fatalf("%s: not deterministic", name)
			}
		}
		// The sequential verdict on any prefix is the one a longer series keeps (or a later fail).
		seq := judges["sequential"]
		full := seq.Judge(in)
		if full.Verdict != metrics.Fail {
			return
		}
		k := *full.DecidedAt + 1
		short := metrics.Input{Criteria: in.Criteria, Canary: prefix(in.Canary, k), Baseline: prefix(in.Baseline, k)}
		if r := seq.Judge(short); r.Verdict != metrics.Fail || *r.DecidedAt != *full.DecidedAt {
			t.Fatalf("fail decided at %d, but the first %d intervals give %s", *full.DecidedAt, k, r.Verdict)
		}
	})
}
