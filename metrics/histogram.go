package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Histogram is a histogram query's answer: for each step of the window, the requests of the
// interval before it at most each of Bounds (cumulative, as Prometheus' le buckets).
type Histogram struct {
	// Bounds ascend and the last is +Inf, so a point's last count is all its requests.
	Bounds Bounds           `json:"bounds"`
	Points []HistogramPoint `json:"points"`
}

// HistogramPoint is one interval's counts, stamped with the interval's end as a Sample is.
// Counts has one count per bound, or is empty when the interval has no data.
type HistogramPoint struct {
	Time   time.Time `json:"time"`
	Counts []float64 `json:"counts"`
}

// Bounds are a histogram's bucket bounds. JSON has no infinity, so they are written as numbers
// and +Inf as the string "+Inf" (Prometheus' le label); reading also takes "Inf" and "inf".
type Bounds []float64

// MarshalJSON writes the bounds, ±Inf as "+Inf" and "-Inf".
func (b Bounds) MarshalJSON() ([]byte, error) {
	if b == nil {
		return []byte("null"), nil
	}
	out := []byte{'['}
	for i, v := range b {
		if i > 0 {
			out = append(out, ',')
		}
		switch {
		case math.IsInf(v, 1):
			out = append(out, `"+Inf"`...)
		case math.IsInf(v, -1):
			out = append(out, `"-Inf"`...)
		case math.IsNaN(v):
			return nil, fmt.Errorf("bound %d is NaN", i)
		default:
			out = strconv.AppendFloat(out, v, 'g', -1, 64)
		}
	}
	return append(out, ']'), nil
}

// UnmarshalJSON reads numbers, and "+Inf" for the last bound.
func (b *Bounds) UnmarshalJSON(data []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw == nil {
		*b = nil
		return nil
	}
	out := make(Bounds, len(raw))
	for i, r := range raw {
		var s string
		if json.Unmarshal(r, &s) == nil {
			v, err := ParseBound(s)
			if err != nil {
				return err
			}
			out[i] = v
			continue
		}
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return fmt.Errorf("bound %d: want a number or \"+Inf\", got %s", i, r)
		}
	}
	*b = out
	return nil
}

// ParseBound reads a bucket bound as Prometheus' le label writes it ("0.25", "+Inf").
func ParseBound(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) {
		return 0, fmt.Errorf("bucket bound %q is not a number (want e.g. 0.25 or +Inf)", s)
	}
	return v, nil
}
