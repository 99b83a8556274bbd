package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/prometheus"
)

// buckets is a query_range answer with one series per le label, in the order given: each
// "le=points" with points as [unix seconds, "value"] pairs.
func buckets(warnings string, series ...string) string {
	var results []string
	for _, s := range series {
		le, points, _ := strings.Cut(s, "=")
		label := fmt.Sprintf(`"le":%q`, le)
		if le == "" {
			label = `"pod":"p0"`
		}
		results = append(results, fmt.Sprintf(`{"metric":{%s},"values":[%s]}`, label, points))
	}
	w := ""
	if warnings != "" {
		w = fmt.Sprintf(`,"warnings":[%q]`, warnings)
	}
	return fmt.Sprintf(`{"status":"success","data":{"resultType":"matrix","result":[%s]}%s}`, strings.Join(results, ","), w)
}

func TestHistogramAnswers(t *testing.T) {
	const expr = `sum by (le) (increase(latency_bucket[30s]))`
	inf := math.Inf(1)
	tests := []struct {
		name   string
		body   string
		bounds metrics.Bounds
		counts [][]float64 // per point; nil: a point without data
		errIs  error
		errMsg string
	}{
		{"sorted by le, +Inf last, rounded", buckets("",
			`+Inf=[1700000000,"10.2"],[1700000030,"4"],[1700000060,"7"]`,
			`0.1=[1700000000,"2.07"],[1700000030,"0"],[1700000060,"1"]`,
			`0.5=[1700000000,"8"],[1700000030,"3.6"],[1700000060,"7"]`),
			metrics.Bounds{0.1, 0.5, inf}, [][]float64{{2, 8, 10}, {0, 4, 4}, {1, 7, 7}}, nil, ""},
		{"a step some buckets lack", buckets("",
			`0.1=[1700000000,"1"],[1700000030,"1"]`,
			`+Inf=[1700000000,"2"]`),
			nil, nil, nil, `1 of its 2 buckets have no value: the series are not one histogram's buckets`},
		{"counts that shrink with le", buckets("",
			`0.1=[1700000000,"5"]`, `0.25=[1700000000,"3"]`, `+Inf=[1700000000,"6"]`),
			nil, nil, nil, `le=0.1 counts 5 but le=0.25 3: a histogram's buckets count every request at most their bound`},
		{"no +Inf bucket", buckets("", `0.1=[1700000000,"5"]`, `0.25=[1700000000,"6"]`),
			nil, nil, nil, `returned no le="+Inf" bucket (bounds [0.1 0.25])`},
		{"an le twice", buckets("", `0.1=[1700000000,"5"]`, `0.1=[1700000000,"6"]`, `+Inf=[1700000000,"6"]`),
			nil, nil, nil, `returned several series for le="0.1"`},
		{"no le label", buckets("", `=[1700000000,"5"]`),
			nil, nil, nil, `returned series {pod="p0"} without an le label`},
		{"an le that is no number", buckets("", `fast=[1700000000,"5"]`, `+Inf=[1700000000,"6"]`),
			nil, nil, nil, `bucket bound "fast" is not a number`},
		{"an le of NaN", buckets("", `NaN=[1700000000,"5"]`, `+Inf=[1700000000,"6"]`),
			nil, nil, nil, `bucket bound "NaN" is not a number`},
		{"no series", buckets(""), nil, nil, metrics.ErrNoData, "no data"},
		{"warnings", buckets("store down", `+Inf=[1700000000,"6"]`), nil, nil, nil, "prometheus warned the answer may be partial: store down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := fakeAPI(t, http.StatusOK, tt.body)
			h, err := src.Histogram(context.Background(), metrics.Query{Expr: expr}, t0, t0.Add(time.Minute), 30*time.Second)
			if tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Fatalf("error %v, want %v", err, tt.errIs)
			}
			if tt.errMsg != "" && tt.bounds == nil {
				if err == nil || !strings.Contains(err.Error(), tt.errMsg) || !strings.Contains(err.Error(), expr) {
					t.Fatalf("error %v, want it to name the query and say %q", err, tt.errMsg)
				}
				return
			}
			if tt.bounds == nil {
				t.Fatalf("a case needs bounds or an error")
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(h.Bounds, tt.bounds) || len(h.Points) != len(tt.counts) {
				t.Fatalf("got %+v, want bounds %v and %d points", h, tt.bounds, len(tt.counts))
			}
			for i, p := range h.Points {
				if want := t0.Add(time.Duration(i) * 30 * time.Second); !p.Time.Equal(want) || !slices.Equal(p.Counts, tt.counts[i]) {
					t.Errorf("point %d: %s %v, want %s %v", i, p.Time, p.Counts, want, tt.counts[i])
				}
			}
		})
	}
	t.Run("a whole step missing", func(t *testing.T) {
		src := fakeAPI(t, http.StatusOK, buckets("", `0.1=[1700000000,"1"],[1700000060,"1"]`, `+Inf=[1700000000,"2"],[1700000060,"3"]`))
		h, err := src.Histogram(context.Background(), metrics.Query{Expr: expr}, t0, t0.Add(time.Minute), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Points) != 3 || h.Points[1].Counts != nil || !slices.Equal(h.Points[2].Counts, []float64{1, 3}) {
			t.Errorf("got %+v: want the middle point without counts", h.Points)
		}
	})
	t.Run("warnings are an error", func(t *testing.T) {
		src := fakeAPI(t, http.StatusOK, buckets("partial", `+Inf=[1700000000,"6"]`))
		_, err := src.Histogram(context.Background(), metrics.Query{Expr: expr}, t0, t0, time.Second)
		var w *prometheus.WarningsError
		if !errors.As(err, &w) {
			t.Fatalf("want a *WarningsError, got %v", err)
		}
	})
}
