package cloudwatch_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/cloudwatch"
	"github.com/perchhq/perch/metrics/cloudwatch/cwtest"
)

var latency = metrics.MetricStat{
	Namespace: "AWS/ApplicationELB", MetricName: "TargetResponseTime", Stat: "p99", Unit: "Seconds",
	Dimensions: []metrics.Dimension{
		{Name: "LoadBalancer", Value: "app/checkout/50dc6c495c0c9188"},
		{Name: "TargetGroup", Value: "targetgroup/checkout-canary/1f2e3d4c5b6a7980"},
	},
}

// t0 is a whole hour, so period boundaries are easy to read.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func quickRetries(o *cw.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
	})
}

func newSource(t *testing.T, fake *cwtest.Fake) *cloudwatch.Source {
	t.Helper()
	cwtest.IsolateAWS(t)
	ts := fake.Server(t)
	s, err := cloudwatch.New(context.Background(), cloudwatch.Config{Region: "eu-west-1"}, quickRetries,
		func(o *cw.Options) { o.BaseEndpoint = aws.String(ts.URL) })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMetricQueryPeriodsAndWindow(t *testing.T) {
	fake := cwtest.New()
	fake.AddMetric(latency, cwtest.Every(t0, t0.Add(time.Hour), time.Minute, func(i int) float64 { return float64(i) / 100 })...)
	s := newSource(t, fake)
	// The engine asks from the end of the first interval of its window to now.
	start, end := t0.Add(10*time.Minute+30*time.Second), t0.Add(15*time.Minute+20*time.Second)
	got, err := s.Samples(context.Background(), metrics.Query{Metric: &latency}, start, end, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Whole minutes that end inside [10:10:30, 10:15:20]: those starting 10:10 … 10:14, each
	// stamped with its end.
	want := []metrics.Sample{
		{Time: t0.Add(11 * time.Minute), Value: 0.10}, {Time: t0.Add(12 * time.Minute), Value: 0.11},
		{Time: t0.Add(13 * time.Minute), Value: 0.12}, {Time: t0.Add(14 * time.Minute), Value: 0.13},
		{Time: t0.Add(15 * time.Minute), Value: 0.14},
	}
	if !sameSamples(got, want) {
		t.Errorf("samples = %v\nwant %v", got, want)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	q := reqs[0]
	switch {
	case q.ID != "perch" || !q.ReturnData || q.Period != 60 || q.ScanBy != "TimestampAscending":
		t.Errorf("query id %q returnData %v period %d scanBy %q", q.ID, q.ReturnData, q.Period, q.ScanBy)
	case q.Namespace != "AWS/ApplicationELB" || q.MetricName != "TargetResponseTime" || q.Stat != "p99" || q.Unit != "Seconds":
		t.Errorf("metric %s %s %s %s", q.Namespace, q.MetricName, q.Stat, q.Unit)
	case q.Dimensions["LoadBalancer"] != "app/checkout/50dc6c495c0c9188" || q.Dimensions["TargetGroup"] != "targetgroup/checkout-canary/1f2e3d4c5b6a7980":
		t.Errorf("dimensions %v", q.Dimensions)
	case !q.StartTime.Equal(t0.Add(10*time.Minute)) || !q.EndTime.Equal(t0.Add(15*time.Minute)):
		t.Errorf("asked for %s to %s, want 10:10 to 10:15 (whole periods only)", q.StartTime, q.EndTime)
	case q.Region != "eu-west-1" || q.ContentType != "application/cbor":
		t.Errorf("region %q, content type %q", q.Region, q.ContentType)
	}
}

func sameSamples(a, b []metrics.Sample) bool {
	return slices.EqualFunc(a, b, func(x, y metrics.Sample) bool {
		return x.Time.Equal(y.Time) && x.Value > y.Value-1e-9 && x.Value < y.Value+1e-9
	})
}

func TestExpressionQuery(t *testing.T) {
	fake := cwtest.New()
	expr := `SUM(SEARCH('{AWS/ApplicationELB,TargetGroup} MetricName="HTTPCode_Target_5XX_Count" checkout-canary', 'Sum'))`
	fake.AddExpression(expr, []string{"5xx"}, cwtest.Every(t0, t0.Add(time.Hour), 30*time.Second, cwtest.Constant(3)))
	s := newSource(t, fake)
	got, err := s.Samples(context.Background(), metrics.Query{Expr: expr}, t0.Add(time.Minute), t0.Add(3*time.Minute), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Value != 3 || !got[0].Time.Equal(t0.Add(time.Minute)) || !got[4].Time.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("samples = %v, want 5 points of 3 from 10:01:00 to 10:03:00", got)
	}
	if q := fake.Requests()[0]; q.Expression != expr || q.Period != 30 || q.Namespace != "" {
		t.Errorf("sent expression %q period %d metric %q", q.Expression, q.Period, q.Namespace)
	}
}

func TestMissingDatapoints(t *testing.T) {
	fake := cwtest.New()
	// Only minutes 2 and 4 have datapoints (a metric that reports only when there is traffic).
	fake.AddMetric(latency, cwtest.Point{Time: t0.Add(2 * time.Minute), Value: 0.2}, cwtest.Point{Time: t0.Add(4 * time.Minute), Value: 0.4})
	s := newSource(t, fake)
	got, err := s.Samples(context.Background(), metrics.Query{Metric: &latency}, t0.Add(time.Minute), t0.Add(6*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Time.Equal(t0.Add(3*time.Minute)) || !got[1].Time.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("samples = %v, want the two minutes that have data", got)
	}
	other := latency
	other.MetricName = "RequestCount"
	if _, err := s.Samples(context.Background(), metrics.Query{Metric: &other}, t0.Add(time.Minute), t0.Add(6*time.Minute), time.Minute); !errors.Is(err, metrics.ErrNoData) {
		t.Errorf("a metric with no datapoints: err = %v, want ErrNoData", err)
	}
}

func TestPagesAreFollowed(t *testing.T) {
	fake := cwtest.New()
	fake.PageSize = 4
	fake.AddMetric(latency, cwtest.Every(t0, t0.Add(time.Hour), time.Minute, func(i int) float64 { return float64(i) })...)
	s := newSource(t, fake)
	got, err := s.Samples(context.Background(), metrics.Query{Metric: &latency}, t0.Add(time.Minute), t0.Add(11*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Sample times 10:01 … 10:11, both ends included as in a Prometheus range query.
	if len(got) != 11 || got[0].Value != 0 || got[10].Value != 10 {
		t.Errorf("samples = %v, want minutes 0..10", got)
	}
	reqs := fake.Requests()
	if len(reqs) != 3 || reqs[0].NextToken != "" || reqs[1].NextToken != "page-4" || reqs[2].NextToken != "page-8" {
		t.Errorf("%d requests with tokens %q", len(reqs), []string{reqs[0].NextToken, reqs[len(reqs)-1].NextToken})
	}
}

func TestErrorsReadLikeOperatorNotes(t *testing.T) {
	search := `SEARCH('{AWS/ApplicationELB,TargetGroup} MetricName="TargetResponseTime"', 'p99')`
	tests := []struct {
		name  string
		query metrics.Query
		step  time.Duration
		fail  []cwtest.APIError
		want  string
		calls int
	}{
		{name: "access denied", query: metrics.Query{Metric: &latency}, step: time.Minute, fail: []cwtest.APIError{cwtest.AccessDenied},
			want: "not allowed to call cloudwatch:GetMetricData in eu-west-1 (grant it to these AWS credentials): api error AccessDenied: User: arn:aws:sts::123456789012:assumed-role/deployer/ci is not authorized", calls: 1},
		{name: "invalid parameter", query: metrics.Query{Metric: &latency}, step: time.Minute,
			fail: []cwtest.APIError{{Status: 400, Type: "com.amazonaws.cloudwatch#InvalidParameterValueException", QueryCode: "InvalidParameterValue", Message: "The value p99.9.9 for parameter MetricDataQueries.member.1.MetricStat.Stat is not a valid statistic."}},
			want: "CloudWatch refused the query AWS/ApplicationELB TargetResponseTime p99 {LoadBalancer=app/checkout/50dc6c495c0c9188, TargetGroup=targetgroup/checkout-canary/1f2e3d4c5b6a7980}: InvalidParameterValue: The value p99.9.9", calls: 1},
		{name: "still throttled", query: metrics.Query{Metric: &latency}, step: time.Minute, fail: []cwtest.APIError{cwtest.Throttled, cwtest.Throttled, cwtest.Throttled},
			want: "CloudWatch is still throttling GetMetricData after the SDK's retries", calls: 3},
		{name: "several series", query: metrics.Query{Expr: search}, step: time.Minute,
			want: `returns 2 time series (checkout-canary, checkout-stable); perch compares one per side: aggregate them (e.g. SUM(...)) or narrow the query`, calls: 1},
		{name: "period CloudWatch does not take", query: metrics.Query{Metric: &latency}, step: 45 * time.Second,
			want: "CloudWatch cannot sample every 45s: make analysis.interval 1s, 5s, 10s, 20s, 30s or a whole number of minutes", calls: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := cwtest.New()
			points := cwtest.Every(t0, t0.Add(time.Hour), time.Minute, cwtest.Constant(1))
			fake.AddMetric(latency, points...)
			fake.AddExpression(search, []string{"checkout-canary", "checkout-stable"}, points, points)
			fake.FailNext(tt.fail...)
			s := newSource(t, fake)
			_, err := s.Samples(context.Background(), tt.query, t0.Add(time.Minute), t0.Add(10*time.Minute), tt.step)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v\nwant one line containing %q", err, tt.want)
			}
			if n := len(fake.Requests()); n != tt.calls {
				t.Errorf("%d requests, want %d", n, tt.calls)
			}
		})
	}
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	fake := cwtest.New()
	fake.AddMetric(latency, cwtest.Every(t0, t0.Add(time.Hour), time.Minute, cwtest.Constant(1))...)
	fake.FailNext(cwtest.Throttled, cwtest.Throttled)
	s := newSource(t, fake)
	got, err := s.Samples(context.Background(), metrics.Query{Metric: &latency}, t0.Add(time.Minute), t0.Add(5*time.Minute), time.Minute)
	if err != nil || len(got) != 5 {
		t.Fatalf("samples %v, err %v; want 5 samples after two throttled attempts", got, err)
	}
	if n := len(fake.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestNoWholePeriodYetIsNoData(t *testing.T) {
	fake := cwtest.New()
	s := newSource(t, fake)
	// No minute both starts after 10:00:10 (a step before the window's first sample) and ends by 10:01:50.
	_, err := s.Samples(context.Background(), metrics.Query{Metric: &latency}, t0.Add(70*time.Second), t0.Add(110*time.Second), time.Minute)
	if !errors.Is(err, metrics.ErrNoData) || len(fake.Requests()) != 0 {
		t.Errorf("err = %v after %d requests; want ErrNoData without asking", err, len(fake.Requests()))
	}
}

// TestEndpointAndRegionFromTheEnvironment points the SDK at the fake as an operator points
// it at a local stand-in: AWS_ENDPOINT_URL_CLOUDWATCH and AWS_REGION.
func TestEndpointAndRegionFromTheEnvironment(t *testing.T) {
	fake := cwtest.New()
	cwtest.IsolateAWS(t)
	ts := fake.Server(t)
	if _, err := cloudwatch.New(context.Background(), cloudwatch.Config{}); err == nil || !strings.Contains(err.Error(), "no AWS region for CloudWatch") {
		t.Errorf("without a region: %v", err)
	}
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH", ts.URL)
	t.Setenv("AWS_REGION", "ap-southeast-2")
	s, err := cloudwatch.New(context.Background(), cloudwatch.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Samples(context.Background(), metrics.Query{Metric: &latency}, t0.Add(time.Minute), t0.Add(5*time.Minute), time.Minute); !errors.Is(err, metrics.ErrNoData) {
		t.Fatalf("err = %v, want ErrNoData from the fake", err)
	}
	if q := fake.Requests(); len(q) != 1 || q[0].Region != "ap-southeast-2" {
		t.Errorf("requests %v, want one signed for ap-southeast-2", q)
	}
}
