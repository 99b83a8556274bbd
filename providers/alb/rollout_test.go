package alb_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/perchhq/perch/providers/alb"
	"github.com/perchhq/perch/providers/alb/albtest"
	"github.com/perchhq/perch/providers/internal/rollouttest"
)

// TestEngineRollsOutThroughAnALBRule runs a whole rollout through the real SDK client, with
// its default retryer, against the fake. The SDK reaches the fake through an in-memory
// transport rather than a socket, so the test can run in a synctest bubble: the rollout's
// minutes of analysis and the retryer's backoff after throttling pass in virtual time.
func TestEngineRollsOutThroughAnALBRule(t *testing.T) {
	albtest.IsolateAWS(t)
	synctest.Test(t, func(t *testing.T) {
		fake := albtest.New()
		before := fake.Rule(albtest.WeightedRule)
		fake.FailNext("ModifyRule", albtest.Throttled) // the first change is throttled once
		spec := rollouttest.Spec(t, `  alb:
    listenerArn: `+albtest.Listener+`
    ruleArn: `+albtest.WeightedRule+`
    stableTargetGroupArn: `+albtest.Stable+`
    canaryTargetGroupArn: `+albtest.Canary)
		a := spec.Traffic.ALB
		r, err := alb.New(context.Background(), alb.Config{
			Region: a.Region, ListenerARN: a.ListenerARN, RuleARN: a.RuleARN,
			StableTargetGroupARN: a.StableTargetGroupARN, CanaryTargetGroupARN: a.CanaryTargetGroupARN,
		}, func(o *elbv2.Options) {
			o.BaseEndpoint = aws.String("https://elasticloadbalancing.us-east-1.amazonaws.com")
			o.HTTPClient = &http.Client{Transport: fake.Transport()}
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := rollouttest.Promote(t, spec, r); !slices.Equal(got, []int{10, 50, 100}) {
			t.Errorf("confirmed weights = %v, want [10 50 100]", got)
		}
		if w := fake.Weights(albtest.WeightedRule); w[albtest.Stable] != 0 || w[albtest.Canary] != 100 {
			t.Errorf("after promotion the rule's weights are %v", w)
		}
		if albtest.WithoutWeights(fake.Rule(albtest.WeightedRule)) != albtest.WithoutWeights(before) {
			t.Error("after promotion the rule differs from the fixture by more than the weights")
		}
		modifies := 0
		for _, a := range fake.Actions() {
			if a == "ModifyRule" {
				modifies++
			}
		}
		if modifies != 4 {
			t.Errorf("%d ModifyRule calls, want 4 (one throttled and retried, then one per weight)", modifies)
		}
	})
}
