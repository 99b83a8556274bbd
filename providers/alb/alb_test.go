package alb_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/perchhq/perch/providers/alb"
	"github.com/perchhq/perch/providers/alb/albtest"
)

func ruleConfig() alb.Config {
	return alb.Config{
		ListenerARN: albtest.Listener, RuleARN: albtest.WeightedRule,
		StableTargetGroupARN: albtest.Stable, CanaryTargetGroupARN: albtest.Canary,
	}
}

// quickRetries is the SDK's standard retryer with its backoff shortened, so throttling
// tests retry exactly as in production without waiting seconds.
func quickRetries(o *elbv2.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
	})
}

// serve starts an httptest server for fake and a router pointed at it through BaseEndpoint.
func serve(t *testing.T, fake *albtest.Fake, cfg alb.Config) *alb.Router {
	t.Helper()
	albtest.IsolateAWS(t)
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	r, err := alb.New(context.Background(), cfg, quickRetries, func(o *elbv2.Options) { o.BaseEndpoint = aws.String(ts.URL) })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lastRequest(t *testing.T, fake *albtest.Fake, action string) albtest.Request {
	t.Helper()
	reqs := fake.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Action == action {
			return reqs[i]
		}
	}
	t.Fatalf("no %s request among %v", action, fake.Actions())
	return albtest.Request{}
}

func wantForm(t *testing.T, req albtest.Request, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := req.Form.Get(k); got != v {
			t.Errorf("%s form %s = %q, want %q", req.Action, k, got, v)
		}
	}
}

func TestSetWeightRewritesOnlyTheWeights(t *testing.T) {
	fake := albtest.New()
	r := serve(t, fake, ruleConfig())
	before := fake.Rule(albtest.WeightedRule)
	if err := r.SetWeight(context.Background(), 25); err != nil {
		t.Fatal(err)
	}
	after := fake.Rule(albtest.WeightedRule)
	if albtest.WithoutWeights(after) != albtest.WithoutWeights(before) {
		t.Errorf("the rule changed beyond its weights:\nbefore\n%s\nafter\n%s", before, after)
	}
	if w := fake.Weights(albtest.WeightedRule); w[albtest.Stable] != 75 || w[albtest.Canary] != 25 {
		t.Errorf("weights = %v, want stable 75, canary 25", w)
	}
	if got, err := r.Weight(context.Background()); err != nil || got != 25 {
		t.Errorf("Weight = %d, %v; want 25", got, err)
	}
	if a := fake.Actions(); !slices.Equal(a, []string{"DescribeRules", "ModifyRule", "DescribeRules"}) {
		t.Errorf("calls = %v", a)
	}
	mod := lastRequest(t, fake, "ModifyRule")
	wantForm(t, mod, map[string]string{
		"Version":                "2015-12-01",
		"RuleArn":                albtest.WeightedRule,
		"Actions.member.1.Type":  "authenticate-oidc",
		"Actions.member.1.Order": "1",
		"Actions.member.1.AuthenticateOidcConfig.Issuer":                             "https://login.example.com",
		"Actions.member.1.AuthenticateOidcConfig.ClientId":                           "checkout-alb",
		"Actions.member.1.AuthenticateOidcConfig.UseExistingClientSecret":            "true",
		"Actions.member.2.Type":                                                      "forward",
		"Actions.member.2.Order":                                                     "2",
		"Actions.member.2.ForwardConfig.TargetGroups.member.1.TargetGroupArn":        albtest.Stable,
		"Actions.member.2.ForwardConfig.TargetGroups.member.1.Weight":                "75",
		"Actions.member.2.ForwardConfig.TargetGroups.member.2.TargetGroupArn":        albtest.Canary,
		"Actions.member.2.ForwardConfig.TargetGroups.member.2.Weight":                "25",
		"Actions.member.2.ForwardConfig.TargetGroupStickinessConfig.Enabled":         "true",
		"Actions.member.2.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds": "300",
	})
	for k := range mod.Form {
		if strings.HasPrefix(k, "Conditions") || strings.HasPrefix(k, "Transforms") || strings.HasPrefix(k, "ResetTransforms") ||
			strings.HasSuffix(k, "OidcConfig.ClientSecret") || strings.HasPrefix(k, "Actions.member.2.TargetGroupArn") {
			t.Errorf("ModifyRule sent %s: conditions and transforms must be left as they are, no secret or bare target group sent", k)
		}
	}
	if mod.Region != "us-east-1" {
		t.Errorf("signed for region %q, want the listener ARN's us-east-1", mod.Region)
	}
}

func TestDefaultActionIsChangedWithModifyListener(t *testing.T) {
	fake := albtest.New()
	cfg := ruleConfig()
	cfg.RuleARN = ""
	r := serve(t, fake, cfg)
	before := fake.Listener(albtest.Listener)
	if err := r.SetWeight(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Weight(context.Background()); err != nil || got != 5 {
		t.Errorf("Weight = %d, %v; want 5", got, err)
	}
	if a := fake.Actions(); !slices.Equal(a, []string{"DescribeListeners", "ModifyListener", "DescribeListeners"}) {
		t.Errorf("calls = %v", a)
	}
	if after := fake.Listener(albtest.Listener); albtest.WithoutWeights(after) != albtest.WithoutWeights(before) {
		t.Errorf("the listener changed beyond its weights:\nbefore\n%s\nafter\n%s", before, after)
	}
	mod := lastRequest(t, fake, "ModifyListener")
	wantForm(t, mod, map[string]string{
		"ListenerArn": albtest.Listener,
		"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight": "95",
		"DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.Weight": "5",
	})
	for _, k := range []string{"Port", "Protocol", "SslPolicy", "Certificates.member.1.CertificateArn"} {
		if mod.Form.Has(k) {
			t.Errorf("ModifyListener sent %s; only the default actions may change", k)
		}
	}
	if fake.Rule(albtest.WeightedRule) != albtest.New().Rule(albtest.WeightedRule) {
		t.Error("changing the default action changed a rule")
	}
}

func TestTheDefaultRuleIsChangedThroughItsListener(t *testing.T) {
	fake := albtest.New()
	cfg := ruleConfig()
	cfg.RuleARN = albtest.DefaultRule
	r := serve(t, fake, cfg)
	if err := r.SetWeight(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Weight(context.Background()); err != nil || got != 20 {
		t.Errorf("Weight = %d, %v; want 20", got, err)
	}
	if a := fake.Actions(); !slices.Equal(a, []string{"DescribeRules", "ModifyListener", "DescribeRules"}) {
		t.Errorf("calls = %v, want the default rule's actions changed with ModifyListener", a)
	}
	if w := fake.Weights(albtest.Listener); w[albtest.Canary] != 20 {
		t.Errorf("listener weights = %v", w)
	}
}

func TestSettingTheCurrentWeightWritesNothing(t *testing.T) {
	fake := albtest.New()
	r := serve(t, fake, ruleConfig())
	if err := r.SetWeight(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if a := fake.Actions(); !slices.Equal(a, []string{"DescribeRules"}) {
		t.Errorf("calls = %v, want only DescribeRules", a)
	}
}

func TestStickinessFromTheRolloutFile(t *testing.T) {
	fake := albtest.New()
	cfg := ruleConfig()
	cfg.Stickiness = 10 * time.Minute
	r := serve(t, fake, cfg)
	if err := r.SetWeight(context.Background(), 0); err != nil { // weights as they are; stickiness differs
		t.Fatal(err)
	}
	wantForm(t, lastRequest(t, fake, "ModifyRule"), map[string]string{
		"Actions.member.2.ForwardConfig.TargetGroupStickinessConfig.Enabled":         "true",
		"Actions.member.2.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds": "600",
	})
	if !strings.Contains(fake.Rule(albtest.WeightedRule), `DurationSeconds = "600"`) {
		t.Error("the rule does not hold the new stickiness")
	}
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	fake := albtest.New()
	r := serve(t, fake, ruleConfig())
	fake.FailNext("DescribeRules", albtest.Throttled)
	fake.FailNext("ModifyRule", albtest.Throttled, albtest.Throttled)
	if err := r.SetWeight(context.Background(), 10); err != nil {
		t.Fatalf("SetWeight with two throttled attempts: %v", err)
	}
	want := []string{"DescribeRules", "DescribeRules", "ModifyRule", "ModifyRule", "ModifyRule"}
	if a := fake.Actions(); !slices.Equal(a, want) {
		t.Errorf("calls = %v, want %v", a, want)
	}
	if w := fake.Weights(albtest.WeightedRule); w[albtest.Canary] != 10 {
		t.Errorf("weights = %v", w)
	}
}

func TestErrorsReadLikeOperatorNotes(t *testing.T) {
	tests := []struct {
		name   string
		config func(*alb.Config)
		fail   map[string][]albtest.APIError
		want   string
	}{
		{name: "access denied", fail: map[string][]albtest.APIError{"ModifyRule": {albtest.AccessDenied}},
			want: "not allowed to call elasticloadbalancing:ModifyRule on rule " + albtest.WeightedRule + " (grant it to these AWS credentials): api error AccessDenied: User: arn:aws:sts::123456789012:assumed-role/deployer/ci is not authorized"},
		{name: "access denied exception", fail: map[string][]albtest.APIError{"DescribeRules": {{Status: 400, Code: "AccessDeniedException", Message: "You do not have sufficient access to perform this action."}}},
			want: "not allowed to call elasticloadbalancing:DescribeRules on rule " + albtest.WeightedRule},
		{name: "rule not found", config: func(c *alb.Config) { c.RuleARN = albtest.MissingRule },
			want: "ALB rule " + albtest.MissingRule + " not found in us-east-1 (check traffic.alb.ruleArn and region): RuleNotFound: One or more rules not found"},
		{name: "listener not found", config: func(c *alb.Config) {
			c.ListenerARN = strings.Replace(albtest.Listener, "f2f7dc8efc522ab2", "0000000000000000", 1)
			c.RuleARN = ""
		}, want: "ALB listener arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/checkout/50dc6c495c0c9188/0000000000000000 not found in us-east-1"},
		{name: "three target groups", config: func(c *alb.Config) { c.RuleARN = albtest.ThreeGroupRule },
			want: "ALB rule " + albtest.ThreeGroupRule + " forwards to targetgroup/checkout-stable/73e2d6bc24d8a067, targetgroup/checkout-canary/1f2e3d4c5b6a7980, targetgroup/checkout-shadow/aa11bb22cc33dd44; perch moves traffic between exactly targetgroup/checkout-stable/73e2d6bc24d8a067 and targetgroup/checkout-canary/1f2e3d4c5b6a7980"},
		{name: "stable alone", config: func(c *alb.Config) { c.RuleARN = albtest.StableOnlyRule },
			want: "forwards to targetgroup/checkout-stable/73e2d6bc24d8a067; perch moves traffic between exactly targetgroup/checkout-stable/73e2d6bc24d8a067 and targetgroup/checkout-canary/1f2e3d4c5b6a7980 (add the missing target group with weight 0, or fix traffic.alb)"},
		{name: "no forward action", config: func(c *alb.Config) { c.RuleARN = albtest.FixedRule },
			want: "ALB rule " + albtest.FixedRule + " does not forward (its actions: fixed-response)"},
		{name: "still throttled", fail: map[string][]albtest.APIError{"DescribeRules": {albtest.Throttled, albtest.Throttled, albtest.Throttled}},
			want: "the ALB API is still throttling DescribeRules after the SDK's retries (rule " + albtest.WeightedRule + "); try again shortly"},
		{name: "validation error", fail: map[string][]albtest.APIError{"ModifyRule": {{Status: 400, Code: "ValidationError", Message: "Priority '10' is currently in use"}}},
			want: "the ALB refused to change rule " + albtest.WeightedRule + ": api error ValidationError: Priority '10' is currently in use"},
		{name: "expired credentials", fail: map[string][]albtest.APIError{"DescribeRules": {{Status: 403, Code: "ExpiredToken", Message: "The security token included in the request is expired"}}},
			want: "AWS rejected the credentials (refresh them, e.g. aws sso login, or check --aws-profile) for DescribeRules on rule " + albtest.WeightedRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := albtest.New()
			cfg := ruleConfig()
			if tt.config != nil {
				tt.config(&cfg)
			}
			r := serve(t, fake, cfg)
			for action, errs := range tt.fail {
				fake.FailNext(action, errs...)
			}
			before := fake.Rule(albtest.WeightedRule)
			err := r.SetWeight(context.Background(), 10)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if fake.Rule(albtest.WeightedRule) != before {
				t.Error("a failed SetWeight changed the rule")
			}
		})
	}
}

func TestConfigMistakesAreCaughtBeforeAnyCall(t *testing.T) {
	tests := []struct {
		name   string
		config func(*alb.Config)
		want   string
	}{
		{name: "rule of another listener", config: func(c *alb.Config) {
			c.RuleARN = strings.Replace(albtest.WeightedRule, "f2f7dc8efc522ab2", "aaaaaaaaaaaaaaaa", 1)
		}, want: "is not a rule of listener " + albtest.Listener},
		{name: "same target group", config: func(c *alb.Config) { c.CanaryTargetGroupARN = albtest.Stable },
			want: "the canary target group is the stable one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ruleConfig()
			tt.config(&cfg)
			if _, err := alb.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestEndpointAndProfileFromTheEnvironment points the SDK at the fake the way an operator
// would point it at LocalStack: AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2, credentials
// from a named profile.
func TestEndpointAndProfileFromTheEnvironment(t *testing.T) {
	fake := albtest.New()
	albtest.IsolateAWS(t)
	ts := httptest.NewServer(fake)
	defer ts.Close()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("AWS_CONFIG_FILE", write("config", "[profile deployer]\nregion = eu-west-1\n"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", write("credentials", "[deployer]\naws_access_key_id = AKIDDEPLOYER00000001\naws_secret_access_key = deployer-secret\n"))
	t.Setenv("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", ts.URL)
	cfg := ruleConfig()
	cfg.Profile = "deployer"
	r, err := alb.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Weight(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := lastRequest(t, fake, "DescribeRules")
	if req.AccessKey != "AKIDDEPLOYER00000001" || req.Region != "us-east-1" {
		t.Errorf("signed with key %q for region %q; want the profile's key, and the region of the listener ARN", req.AccessKey, req.Region)
	}
}

func TestUnreachableEndpointAndMissingCredentials(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		albtest.IsolateAWS(t)
		ts := httptest.NewServer(albtest.New())
		url := ts.URL
		ts.Close() // nothing listens there any more
		r, err := alb.New(context.Background(), ruleConfig(), quickRetries, func(o *elbv2.Options) { o.BaseEndpoint = aws.String(url) })
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Weight(context.Background())
		want := "read ALB rule " + albtest.WeightedRule + ": cannot reach the ELBv2 endpoint " + url + ": dial tcp"
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "operation error") {
			t.Errorf("err = %v\nwant %q without the SDK's operation preamble", err, want)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		fake := albtest.New()
		albtest.IsolateAWS(t)
		os.Unsetenv("AWS_ACCESS_KEY_ID")
		os.Unsetenv("AWS_SECRET_ACCESS_KEY")
		ts := httptest.NewServer(fake)
		defer ts.Close()
		r, err := alb.New(context.Background(), ruleConfig(), func(o *elbv2.Options) { o.BaseEndpoint = aws.String(ts.URL) })
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Weight(context.Background())
		if err == nil || !strings.Contains(err.Error(), "no usable AWS credentials (set AWS_PROFILE or --aws-profile, run aws sso login, or export AWS_ACCESS_KEY_ID)") {
			t.Errorf("err = %v", err)
		}
		if n := len(fake.Requests()); n != 0 {
			t.Errorf("%d unsigned requests reached the endpoint", n)
		}
	})
}
