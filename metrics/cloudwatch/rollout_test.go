package cloudwatch_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics/cloudwatch"
	"github.com/perchhq/perch/metrics/cloudwatch/cwtest"
	"github.com/perchhq/perch/metrics/internal/sourcetest"
)

const rollout = `name: checkout
traffic:
  proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}
metrics:
  cloudwatch: {region: us-east-1}
analysis: {interval: 1m, stabilization: 1m, judge: threshold}
checks:
  - name: p99_latency
    canary:
      namespace: AWS/ApplicationELB
      metricName: TargetResponseTime
      dimensions: {LoadBalancer: app/checkout/50dc6c495c0c9188, TargetGroup: targetgroup/checkout-canary/1f2e3d4c5b6a7980}
      stat: p99
    baseline:
      namespace: AWS/ApplicationELB
      metricName: TargetResponseTime
      dimensions: {LoadBalancer: app/checkout/50dc6c495c0c9188, TargetGroup: targetgroup/checkout-stable/73e2d6bc24d8a067}
      stat: p99
    direction: lower_is_better
    maxDeviationPercent: 20
steps:
  - setWeight: 10
    analyze: 5m
`

// TestEngineJudgesFromCloudWatch runs a rollout whose check reads CloudWatch, once with a
// canary as fast as stable (promoted) and once with one twice as slow (rolled back). The
// SDK reaches the fake through an in-memory transport so the bubble's virtual clock drives
// both the engine and the datapoints' timestamps.
func TestEngineJudgesFromCloudWatch(t *testing.T) {
	cwtest.IsolateAWS(t)
	for _, tt := range []struct {
		name         string
		canaryMillis float64
		want         engine.Outcome
	}{
		{name: "healthy canary", canaryMillis: 120, want: engine.OutcomePromoted},
		{name: "slow canary", canaryMillis: 240, want: engine.OutcomeRolledBack},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := sourcetest.Parse(t, rollout)
				fake := cwtest.New()
				now := time.Now().Truncate(time.Minute)
				fake.AddMetric(*r.Checks[0].Canary.Metric, cwtest.Every(now, now.Add(time.Hour), time.Minute, cwtest.Constant(tt.canaryMillis/1000))...)
				fake.AddMetric(*r.Checks[0].Baseline.Metric, cwtest.Every(now, now.Add(time.Hour), time.Minute, cwtest.Constant(0.120))...)
				src, err := cloudwatch.New(context.Background(), cloudwatch.Config{Region: r.Metrics.CloudWatch.Region}, func(o *cw.Options) {
					o.BaseEndpoint = aws.String("https://monitoring.us-east-1.amazonaws.com")
					o.HTTPClient = &http.Client{Transport: fake.Transport()}
				})
				if err != nil {
					t.Fatal(err)
				}
				sourcetest.Run(t, r, src, tt.want)
				for _, q := range fake.Requests() {
					if q.Period != 60 || q.Stat != "p99" || q.Region != "us-east-1" {
						t.Fatalf("query %+v: want period 60, p99, us-east-1", q)
					}
				}
				if len(fake.Requests()) < 6 {
					t.Errorf("only %d GetMetricData calls for a 5-minute analysis", len(fake.Requests()))
				}
			})
		})
	}
}

var _ engine.Source = (*cloudwatch.Source)(nil)
