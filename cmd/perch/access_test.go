package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/cloudwatch/cwtest"
	"github.com/perchhq/perch/providers/alb/albtest"
)

// cloudwatchFake serves CloudWatch with data for the stable target group only, and points
// the SDK at it through AWS_ENDPOINT_URL_CLOUDWATCH.
func cloudwatchFake(t *testing.T) *cwtest.Fake {
	fake := cwtest.New()
	now := time.Now().Truncate(time.Minute)
	fake.AddMetric(metrics.MetricStat{Namespace: "AWS/ApplicationELB", MetricName: "TargetResponseTime", Stat: "p99",
		Dimensions: []metrics.Dimension{{Name: "TargetGroup", Value: "targetgroup/checkout-stable/73e2d6bc24d8a067"}}},
		cwtest.Every(now.Add(-time.Hour), now.Add(time.Hour), time.Minute, cwtest.Constant(0.25))...)
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH", fake.Server(t).URL)
	return fake
}

func TestCheckAccessWithALBAndCloudWatch(t *testing.T) {
	file := albFile(t, albtest.New(), albtest.WeightedRule)
	cloudwatchFake(t)
	code, out, errOut := perchRun(t, defaultRegistry(), "validate", file, "--check-access")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	want := []string{
		"checkout-api: ok — alb traffic, cloudwatch metrics, 1 check(s), 1 step(s): 5% for 5m → promote",
		"traffic: ALB rule " + albtest.WeightedRule + " (stable targetgroup/checkout-stable/73e2d6bc24d8a067, canary targetgroup/checkout-canary/1f2e3d4c5b6a7980): reachable, canary at 0%",
		file + ":14:7: checks[0].canary: check p99_latency canary: no data over the last 10m (expected while the canary takes no traffic; otherwise check the query)",
		"check p99_latency baseline: 10 sample(s) over the last 10m, latest 0.25",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
}

func TestCheckAccessReportsProblemsWithTheirLines(t *testing.T) {
	file := albFile(t, albtest.New(), albtest.ThreeGroupRule)
	cw := cloudwatchFake(t)
	cw.FailNext(cwtest.AccessDenied, cwtest.AccessDenied)
	code, out, errOut := perchRun(t, defaultRegistry(), "validate", file, "--check-access")
	if code != exitRuntime {
		t.Errorf("exit %d, want %d", code, exitRuntime)
	}
	for _, want := range []string{
		file + ":4:5: traffic.alb: ALB rule " + albtest.ThreeGroupRule + " forwards to targetgroup/checkout-stable/73e2d6bc24d8a067, targetgroup/checkout-canary/1f2e3d4c5b6a7980, targetgroup/checkout-shadow/aa11bb22cc33dd44; perch moves traffic between exactly",
		file + ":14:7: checks[0].canary: check p99_latency canary: not allowed to call cloudwatch:GetMetricData in us-east-1",
		file + ":19:7: checks[0].baseline: check p99_latency baseline: not allowed to call cloudwatch:GetMetricData in us-east-1",
		"perch: 3 problem(s) reaching what " + file + " names",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(out, "reachable") {
		t.Errorf("stdout calls the provider reachable:\n%s", out)
	}
}

// memProvider is a router and a source in memory: the kind another helper's provider
// (the proxy, Prometheus) plugs into the registry.
type memProvider struct {
	mu     sync.Mutex
	weight int
	asked  []string
}

func (m *memProvider) SetWeight(_ context.Context, w int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.weight = w
	return nil
}

func (m *memProvider) Weight(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.weight, nil
}

// Samples has data for requests only; errors have never been counted.
func (m *memProvider) Samples(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	m.mu.Lock()
	m.asked = append(m.asked, q.Expr)
	m.mu.Unlock()
	if strings.Contains(q.Expr, "errors") {
		return nil, metrics.ErrNoData
	}
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: 120})
	}
	return out, nil
}

func TestCheckAccessUsesWhateverTheRegistryHolds(t *testing.T) {
	m := &memProvider{weight: 5}
	reg := defaultRegistry()
	reg.routers["proxy"] = func(context.Context, *spec.Rollout, connectFlags) (engine.Router, error) { return m, nil }
	reg.sources["prometheus"] = func(context.Context, *spec.Rollout, engine.Router, connectFlags) (engine.Source, error) {
		return m, nil
	}
	file := writeFile(t, "web.yaml", `name: web
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {interval: 30s, judge: threshold}
checks:
  - name: errors
    direction: lower_is_better
    maxIncrease: 0.01
    events: {canary: canary_errors, baseline: stable_errors}
    total: {canary: canary_requests, baseline: stable_requests}
steps: [{setWeight: 10, analyze: 1m}]
`)
	code, out, errOut := perchRun(t, reg, "validate", file, "--check-access")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"traffic: proxy traffic: reachable, canary at 5%",
		file + ":9:22: checks[0].events.canary: check errors events.canary: no data over the last 5m (fine for an error count that has not counted yet; otherwise check the query)",
		file + ":9:47: checks[0].events.baseline: check errors events.baseline: no data over the last 5m",
		"check errors total.canary: 11 sample(s) over the last 5m, latest 120",
		"check errors total.baseline: 11 sample(s) over the last 5m, latest 120",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if len(m.asked) != 4 {
		t.Errorf("queries run: %v, want the 4 of the check once each", m.asked)
	}
}

func TestValidateWithoutCheckAccessReachesNothing(t *testing.T) {
	reg := defaultRegistry()
	reg.routers["alb"] = func(context.Context, *spec.Rollout, connectFlags) (engine.Router, error) {
		t.Error("validate connected to the provider without --check-access")
		return nil, nil
	}
	file := writeFile(t, "rollout.yaml", strings.Replace(albRollout, "RULE", albtest.WeightedRule, 1))
	if code, out, errOut := perchRun(t, reg, "validate", file); code != exitOK || strings.Contains(out, "traffic:") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestCheckAccessSaysEachPositionOnce: a source whose factory already names the position of
// its problem (an unset secret) is reported at that position, once.
func TestCheckAccessSaysEachPositionOnce(t *testing.T) {
	t.Setenv("DD_API_KEY", "")
	t.Setenv("DD_APP_KEY", "app")
	file := "../../engine/spec/testdata/checkout-datadog.yaml"
	_, _, errOut := perchRun(t, defaultRegistry(), "validate", file, "--check-access")
	want := file + ":6:41: metrics.datadog.apiKey: environment variable DD_API_KEY is not set"
	if !strings.Contains(errOut, want) || strings.Count(errOut, file+":6:") != 1 {
		t.Errorf("stderr should say %q once:\n%s", want, errOut)
	}
}
