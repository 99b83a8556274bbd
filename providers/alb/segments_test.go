package alb_test

import (
	"context"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/providers/alb"
	"github.com/perchhq/perch/providers/alb/albtest"
)

var (
	employees = segment.Segment{Name: "employees", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-Employee", Value: "true"}}}
	beta      = segment.Segment{Name: "beta", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-Beta", Value: "b-*"}}}
)

// serveBoth is serve, and a plain ELBv2 client of the same fake for the test's own changes.
func serveBoth(t *testing.T, fake *albtest.Fake, cfg alb.Config) (*alb.Router, *elbv2.Client) {
	t.Helper()
	albtest.IsolateAWS(t)
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	endpoint := func(o *elbv2.Options) { o.BaseEndpoint = aws.String(ts.URL) }
	r, err := alb.New(context.Background(), cfg, quickRetries, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	awsCfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	return r, elbv2.NewFromConfig(awsCfg, endpoint)
}

var digestTag = regexp.MustCompile(`^[0-9a-f]{32}$`)

// wantCreate checks a CreateRule request whole: every form field, the digest tag's value
// only by its shape.
func wantCreate(t *testing.T, req albtest.Request, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for k, v := range req.Form {
		got[k] = v[0]
	}
	for k, v := range got {
		if strings.HasPrefix(k, "Tags.") && strings.HasSuffix(k, ".Value") && got[strings.TrimSuffix(k, "Value")+"Key"] == alb.TagDigest {
			if !digestTag.MatchString(v) {
				t.Errorf("digest tag %q", v)
			}
			got[k] = "DIGEST"
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("CreateRule %s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("CreateRule sent %s = %q, not wanted", k, got[k])
		}
	}
}

func TestASegmentRuleAheadOfTheDefaultAction(t *testing.T) {
	fake := albtest.New()
	cfg := ruleConfig()
	cfg.RuleARN = ""
	r, _ := serveBoth(t, fake, cfg)
	ctx := context.Background()
	before := map[string]string{}
	for _, arn := range fake.RuleARNs() {
		before[arn] = fake.Rule(arn)
	}
	listener := fake.Listener(albtest.Listener)
	if err := r.RouteSegments(ctx, []segment.Segment{employees}); err != nil {
		t.Fatal(err)
	}
	wantCreate(t, lastRequest(t, fake, "CreateRule"), map[string]string{
		"Action": "CreateRule", "Version": "2015-12-01", "ListenerArn": albtest.Listener, "Priority": "50000",
		"Conditions.member.1.Field":                                           "http-header",
		"Conditions.member.1.HttpHeaderConfig.HttpHeaderName":                 "X-Employee",
		"Conditions.member.1.HttpHeaderConfig.Values.member.1":                "true",
		"Actions.member.1.Type":                                               "forward",
		"Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn": albtest.Canary,
		"Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight":         "1",
		"Tags.member.1.Key":                                                   alb.TagSegment, "Tags.member.1.Value": "employees",
		"Tags.member.2.Key": alb.TagAhead, "Tags.member.2.Value": albtest.Listener,
		"Tags.member.3.Key": alb.TagDigest, "Tags.member.3.Value": "DIGEST",
	})
	arns := fake.RuleARNs()
	created := arns[len(arns)-1]
	want := `member
  Actions
    member
      ForwardConfig
        TargetGroups
          member
            TargetGroupArn = "` + albtest.Canary + `"
            Weight = "1"
      TargetGroupArn = "` + albtest.Canary + `"
      Type = "forward"
  Conditions
    member
      Field = "http-header"
      HttpHeaderConfig
        HttpHeaderName = "X-Employee"
        Values
          member = "true"
  IsDefault = "false"
  Priority = "50000"
  RuleArn = "` + created + `"
`
	if got := fake.Rule(created); got != want {
		t.Errorf("the segment rule:\n%s\nwant\n%s", got, want)
	}
	for arn, was := range before {
		if fake.Rule(arn) != was {
			t.Errorf("rule %s changed", arn)
		}
	}
	if fake.Listener(albtest.Listener) != listener {
		t.Error("the listener changed")
	}
	if names, err := r.RoutedSegments(ctx); err != nil || !slices.Equal(names, []string{"employees"}) {
		t.Errorf("RoutedSegments = %q, %v", names, err)
	}
	// The same again changes nothing; none removes perch's rule and only it.
	n := len(fake.Requests())
	if err := r.RouteSegments(ctx, []segment.Segment{employees}); err != nil {
		t.Fatal(err)
	}
	if got := fake.Actions()[n:]; !slices.Equal(got, []string{"DescribeRules", "DescribeTags"}) {
		t.Errorf("routing the same segment again called %v", got)
	}
	if err := r.RouteSegments(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := fake.RuleARNs(); len(got) != len(before) {
		t.Errorf("after removal the listener has rules %v", got)
	}
	if names, _ := r.RoutedSegments(ctx); len(names) != 0 {
		t.Errorf("RoutedSegments after removal = %q", names)
	}
}

// TestSegmentRulesGoAheadOfTheRolloutRule: a rule's segment rules take its conditions and
// actions, at the free priorities nearest above it; a rule someone else holds is skipped,
// and a change of the rollout rule's conditions replaces them.
func TestSegmentRulesGoAheadOfTheRolloutRule(t *testing.T) {
	fake := albtest.New()
	r, client := serveBoth(t, fake, ruleConfig())
	ctx := context.Background()
	// The fixture's rule authenticates with OIDC, which a segment rule cannot copy.
	if err := r.RouteSegments(ctx, []segment.Segment{employees}); err == nil || !strings.Contains(err.Error(), "authenticates with OIDC") {
		t.Fatalf("an OIDC rule: %v", err)
	}
	forward := types.Action{Type: types.ActionTypeEnumForward, Order: aws.Int32(1), ForwardConfig: &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{
		{TargetGroupArn: aws.String(albtest.Stable), Weight: aws.Int32(90)}, {TargetGroupArn: aws.String(albtest.Canary), Weight: aws.Int32(10)}}}}
	if _, err := client.ModifyRule(ctx, &elbv2.ModifyRuleInput{RuleArn: aws.String(albtest.WeightedRule), Actions: []types.Action{forward}}); err != nil {
		t.Fatal(err)
	}
	someoneElses, err := client.CreateRule(ctx, &elbv2.CreateRuleInput{ListenerArn: aws.String(albtest.Listener), Priority: aws.Int32(9),
		Conditions: []types.RuleCondition{{Field: aws.String("path-pattern"), PathPatternConfig: &types.PathPatternConditionConfig{Values: []string{"/health"}}}},
		Actions:    []types.Action{{Type: types.ActionTypeEnumFixedResponse, FixedResponseConfig: &types.FixedResponseActionConfig{StatusCode: aws.String("200")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RouteSegments(ctx, []segment.Segment{employees, beta}); err != nil {
		t.Fatal(err)
	}
	conditions := func(header, value string) map[string]string {
		return map[string]string{
			"Conditions.member.1.Field": "host-header", "Conditions.member.1.HostHeaderConfig.Values.member.1": "checkout.example.com",
			"Conditions.member.2.Field": "path-pattern", "Conditions.member.2.PathPatternConfig.Values.member.1": "/api/*",
			"Conditions.member.2.PathPatternConfig.Values.member.2": "/checkout",
			"Conditions.member.3.Field":                             "http-header", "Conditions.member.3.HttpHeaderConfig.HttpHeaderName": "X-Tenant",
			"Conditions.member.3.HttpHeaderConfig.Values.member.1": "acme", "Conditions.member.3.HttpHeaderConfig.Values.member.2": "globex",
			"Conditions.member.4.Field": "http-header", "Conditions.member.4.HttpHeaderConfig.HttpHeaderName": header,
			"Conditions.member.4.HttpHeaderConfig.Values.member.1": value,
		}
	}
	var creates []albtest.Request
	for _, req := range fake.Requests() {
		if req.Action == "CreateRule" && req.Form.Get("Priority") != "9" {
			creates = append(creates, req)
		}
	}
	if len(creates) != 2 {
		t.Fatalf("%d segment rules created, want 2", len(creates))
	}
	for i, want := range []struct {
		seg, priority, header, value string
	}{{"employees", "8", "X-Employee", "true"}, {"beta", "7", "X-Beta", "b-*"}} {
		form := conditions(want.header, want.value)
		for k, v := range map[string]string{
			"Action": "CreateRule", "Version": "2015-12-01", "ListenerArn": albtest.Listener, "Priority": want.priority,
			"Actions.member.1.Type": "forward", "Actions.member.1.Order": "1",
			"Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn": albtest.Canary,
			"Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight":         "1",
			"Tags.member.1.Key": alb.TagSegment, "Tags.member.1.Value": want.seg,
			"Tags.member.2.Key": alb.TagAhead, "Tags.member.2.Value": albtest.WeightedRule,
			"Tags.member.3.Key": alb.TagDigest, "Tags.member.3.Value": "DIGEST",
		} {
			form[k] = v
		}
		wantCreate(t, creates[i], form)
	}
	if names, err := r.RoutedSegments(ctx); err != nil || !slices.Equal(names, []string{"employees", "beta"}) {
		t.Errorf("RoutedSegments = %q, %v", names, err)
	}
	if fake.Rule(aws.ToString(someoneElses.Rules[0].RuleArn)) == "" {
		t.Error("someone else's rule went")
	}
	// The rollout rule's conditions change: perch's rules are replaced to follow them.
	if _, err := client.ModifyRule(ctx, &elbv2.ModifyRuleInput{RuleArn: aws.String(albtest.WeightedRule), Conditions: []types.RuleCondition{
		{Field: aws.String("path-pattern"), PathPatternConfig: &types.PathPatternConditionConfig{Values: []string{"/v2/*"}}}}}); err != nil {
		t.Fatal(err)
	}
	n := len(fake.Requests())
	if err := r.RouteSegments(ctx, []segment.Segment{employees, beta}); err != nil {
		t.Fatal(err)
	}
	if got := fake.Actions()[n:]; !slices.Equal(got, []string{"DescribeRules", "DescribeTags", "DeleteRule", "DeleteRule", "CreateRule", "CreateRule"}) {
		t.Errorf("following the rule's new conditions called %v", got)
	}
	if got := lastRequest(t, fake, "CreateRule").Form.Get("Conditions.member.1.PathPatternConfig.Values.member.1"); got != "/v2/*" {
		t.Errorf("the new segment rule's path is %q", got)
	}
}

func TestSegmentRulesRefuse(t *testing.T) {
	fake := albtest.New()
	cfg := ruleConfig()
	cfg.RuleARN = ""
	r, client := serveBoth(t, fake, cfg)
	ctx := context.Background()
	for _, s := range []segment.Segment{
		{Name: "beta", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-Beta", Regex: "b-[0-9]+"}}},
		{Name: "eu", Match: segment.Match{Cookie: &segment.CookieMatch{Name: "region", Value: "eu"}}},
	} {
		if err := r.RouteSegments(ctx, []segment.Segment{s}); err == nil || !strings.Contains(err.Error(), "not a regular expression or a cookie") {
			t.Errorf("segment %s: %v", s.Name, err)
		}
	}
	// Every priority taken: none is free ahead of a rule at priority 10.
	ruled, _ := serveBoth(t, fake, ruleConfig())
	for p := int32(1); p < 10; p++ {
		if _, err := client.CreateRule(ctx, &elbv2.CreateRuleInput{ListenerArn: aws.String(albtest.Listener), Priority: aws.Int32(p),
			Conditions: []types.RuleCondition{{Field: aws.String("path-pattern"), PathPatternConfig: &types.PathPatternConditionConfig{Values: []string{"/p"}}}},
			Actions:    []types.Action{{Type: types.ActionTypeEnumFixedResponse, FixedResponseConfig: &types.FixedResponseActionConfig{StatusCode: aws.String("200")}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.ModifyRule(ctx, &elbv2.ModifyRuleInput{RuleArn: aws.String(albtest.WeightedRule), Actions: []types.Action{{Type: types.ActionTypeEnumForward,
		ForwardConfig: &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{{TargetGroupArn: aws.String(albtest.Stable), Weight: aws.Int32(1)}, {TargetGroupArn: aws.String(albtest.Canary), Weight: aws.Int32(0)}}}}}}); err != nil {
		t.Fatal(err)
	}
	err := ruled.RouteSegments(ctx, []segment.Segment{employees})
	if err == nil || !strings.Contains(err.Error(), "no free priority ahead of it for segment employees (free one below priority 10)") {
		t.Errorf("no free priority: %v", err)
	}
}
