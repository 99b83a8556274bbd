package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/dynamic"

	"github.com/perchhq/perch/providers/alb/albtest"
	"github.com/perchhq/perch/providers/kube"
	"github.com/perchhq/perch/providers/kube/kubetest"
)

// perchRun runs the CLI in process with reg and returns its exit code and output.
func perchRun(t *testing.T, reg registry, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, registry: reg, getenv: func(string) string { return "" }}
	code = a.main(context.Background(), args)
	return code, out.String(), errOut.String()
}

// writeFile writes text to name in a fresh directory and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const albRollout = `name: checkout-api
traffic:
  alb:
    listenerArn: ` + albtest.Listener + `
    ruleArn: RULE
    stableTargetGroupArn: ` + albtest.Stable + `
    canaryTargetGroupArn: ` + albtest.Canary + `
metrics:
  cloudwatch: {region: us-east-1}
analysis: {interval: 1m, judge: threshold}
checks:
  - name: p99_latency
    canary:
      namespace: AWS/ApplicationELB
      metricName: TargetResponseTime
      dimensions: {TargetGroup: targetgroup/checkout-canary/1f2e3d4c5b6a7980}
      stat: p99
    baseline:
      namespace: AWS/ApplicationELB
      metricName: TargetResponseTime
      dimensions: {TargetGroup: targetgroup/checkout-stable/73e2d6bc24d8a067}
      stat: p99
    direction: lower_is_better
    maxDeviationPercent: 15
steps:
  - setWeight: 5
    analyze: 5m
`

// albFile is the ALB rollout for rule, with the SDK pointed at fake through
// AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2, as an operator would point it at a stand-in.
func albFile(t *testing.T, fake *albtest.Fake, rule string) string {
	t.Helper()
	albtest.IsolateAWS(t)
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	t.Setenv("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", ts.URL)
	return writeFile(t, "rollout.yaml", strings.Replace(albRollout, "RULE", rule, 1))
}

func TestTrafficReadsAndSetsAnALBRule(t *testing.T) {
	fake := albtest.New()
	file := albFile(t, fake, albtest.WeightedRule)

	code, out, errOut := perchRun(t, defaultRegistry(), "traffic", file)
	if code != exitOK || !strings.Contains(out, "checkout-api: ALB rule "+albtest.WeightedRule+" (stable targetgroup/checkout-stable/73e2d6bc24d8a067, canary targetgroup/checkout-canary/1f2e3d4c5b6a7980)\ncanary 0%, stable 100%\n") {
		t.Fatalf("read: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, errOut = perchRun(t, defaultRegistry(), "traffic", file, "--set", "30")
	if code != exitOK || !strings.HasSuffix(out, "canary 30%, stable 70% (was 0%)\n") {
		t.Fatalf("set: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if w := fake.Weights(albtest.WeightedRule); w[albtest.Stable] != 70 || w[albtest.Canary] != 30 {
		t.Errorf("the rule's weights are %v", w)
	}
	if code, out, _ = perchRun(t, defaultRegistry(), "traffic", file); !strings.HasSuffix(out, "canary 30%, stable 70%\n") {
		t.Errorf("read after set: exit %d, %q", code, out)
	}
}

func TestTrafficRefusals(t *testing.T) {
	tests := []struct {
		name    string
		rule    string
		args    []string
		code    int
		wantErr string
		calls   int // requests the fake should have seen
	}{
		{name: "weight above 100", rule: albtest.WeightedRule, args: []string{"--set", "101"}, code: exitBadInput,
			wantErr: "perch: --set 101: want a canary weight from 0 to 100\n"},
		{name: "weight not a number", rule: albtest.WeightedRule, args: []string{"--set", "half"}, code: exitBadInput,
			wantErr: `invalid argument "half" for "--set" flag`},
		{name: "three target groups", rule: albtest.ThreeGroupRule, args: []string{"--set", "10"}, code: exitRuntime,
			wantErr: "perch: set the canary to 10%: ALB rule " + albtest.ThreeGroupRule + " forwards to targetgroup/checkout-stable/73e2d6bc24d8a067, targetgroup/checkout-canary/1f2e3d4c5b6a7980, targetgroup/checkout-shadow/aa11bb22cc33dd44; perch moves traffic between exactly", calls: 2},
		{name: "missing rule", rule: albtest.MissingRule, code: exitRuntime,
			wantErr: "perch: read the canary weight: ALB rule " + albtest.MissingRule + " not found in us-east-1", calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := albtest.New()
			file := albFile(t, fake, tt.rule)
			code, _, errOut := perchRun(t, defaultRegistry(), append([]string{"traffic", file}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q\nwant exit %d and %q", code, errOut, tt.code, tt.wantErr)
			}
			if n := len(fake.Requests()); n != tt.calls {
				t.Errorf("%d calls to the provider, want %d: %v", n, tt.calls, fake.Actions())
			}
			if fake.Rule(albtest.WeightedRule) != albtest.New().Rule(albtest.WeightedRule) {
				t.Error("a refused command changed the rule")
			}
		})
	}
}

// kubeRegistry is the default registry with the Kubernetes providers reaching client.
func kubeRegistry(client dynamic.Interface) registry {
	reg := defaultRegistry()
	connect := func(connectFlags) (*kube.Cluster, error) {
		return &kube.Cluster{Client: client, Namespace: "shop", Where: "context test"}, nil
	}
	reg.routers["istio"] = istioRouter(connect)
	reg.routers["gatewayAPI"] = gatewayAPIRouter(connect)
	return reg
}

func TestTrafficThroughKubernetesProviders(t *testing.T) {
	tests := []struct {
		name, fixture, traffic, describe string
	}{
		{name: "istio", fixture: "../../providers/istio/testdata/checkout.yaml", traffic: `
  istio:
    virtualService: checkout
    route: primary
    stable: {host: checkout.shop.svc.cluster.local, subset: stable}
    canary: {host: checkout.shop.svc.cluster.local, subset: canary}`,
			describe: `web: Istio virtualservice shop/checkout, http route "primary" (stable checkout.shop.svc.cluster.local/stable, canary checkout.shop.svc.cluster.local/canary) in context test`},
		{name: "gateway API", fixture: "../../providers/gatewayapi/testdata/checkout.yaml", traffic: `
  gatewayAPI: {httpRoute: checkout, stableBackend: checkout-stable, canaryBackend: checkout-canary}`,
			describe: "web: Gateway API httproute shop/checkout (stable backend checkout-stable, canary backend checkout-canary) in context test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := kubetest.NewClient(kubetest.Load(t, tt.fixture))
			reg := kubeRegistry(client)
			file := writeFile(t, "rollout.yaml", "name: web\ntraffic:"+tt.traffic+`
metrics: {prometheus: {address: "http://127.0.0.1:9"}}
analysis: {judge: threshold}
steps: [{setWeight: 5}]
`)
			code, out, errOut := perchRun(t, reg, "traffic", file, "--set", "5")
			if code != exitOK || out != tt.describe+"\ncanary 5%, stable 95% (was 0%)\n" {
				t.Fatalf("set: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			code, out, _ = perchRun(t, reg, "traffic", file)
			if code != exitOK || out != tt.describe+"\ncanary 5%, stable 95%\n" {
				t.Errorf("read: exit %d, stdout:\n%s", code, out)
			}
		})
	}
}

func TestTrafficOnAProxyRolloutPointsAtTheRunningPerch(t *testing.T) {
	c := newCLI(t, &memBackend{})
	if code := c.run(t.Context(), "traffic", "DIR/web.yaml", "--set", "0"); code != exitBadInput || !strings.Contains(c.stderr.String(), "perch status") {
		t.Errorf("exit %d, stderr %q: want exit 2 pointing at perch status", code, c.stderr.String())
	}
}
