// Package alb moves traffic between two target groups of an AWS Application Load Balancer
// listener rule (or of the listener's default action). It rewrites the forward action's two
// weights, and its stickiness only when the rollout file sets one: every other action,
// condition, transform and listener setting stays as it is.
package alb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/perchhq/perch/internal/awsconf"
	"github.com/perchhq/perch/providers/internal/split"
)

// Config names the listener, the rule and the two target groups.
type Config struct {
	Region               string // empty: the listener ARN's region
	ListenerARN          string
	RuleARN              string // empty: the listener's default action
	StableTargetGroupARN string
	CanaryTargetGroupARN string
	// Stickiness, when set, is written as the forward action's target-group stickiness;
	// zero keeps whatever the rule has.
	Stickiness time.Duration
	// Profile is the AWS shared-config profile (--aws-profile); empty uses the default chain.
	Profile string
}

// API is the part of the ELBv2 client the router uses.
type API interface {
	DescribeRules(context.Context, *elbv2.DescribeRulesInput, ...func(*elbv2.Options)) (*elbv2.DescribeRulesOutput, error)
	ModifyRule(context.Context, *elbv2.ModifyRuleInput, ...func(*elbv2.Options)) (*elbv2.ModifyRuleOutput, error)
	DescribeListeners(context.Context, *elbv2.DescribeListenersInput, ...func(*elbv2.Options)) (*elbv2.DescribeListenersOutput, error)
	ModifyListener(context.Context, *elbv2.ModifyListenerInput, ...func(*elbv2.Options)) (*elbv2.ModifyListenerOutput, error)
}

// Router sets and reads the canary weight of an ALB rule.
type Router struct {
	api API
	cfg Config
}

// New loads AWS credentials and settings the way the AWS CLI does (environment, shared
// config and credentials files with cfg.Profile, SSO, IMDS; AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2) and makes a router. optFns adjust the client.
func New(ctx context.Context, cfg Config, optFns ...func(*elbv2.Options)) (*Router, error) {
	if err := check(cfg); err != nil {
		return nil, err
	}
	awsCfg, err := awsconf.Load(ctx, regionOf(cfg), cfg.Profile)
	if err != nil {
		return nil, err
	}
	return &Router{api: elbv2.NewFromConfig(awsCfg, optFns...), cfg: cfg}, nil
}

func check(cfg Config) error {
	switch {
	case cfg.ListenerARN == "":
		return errors.New("alb: no listener ARN")
	case cfg.StableTargetGroupARN == "" || cfg.CanaryTargetGroupARN == "":
		return errors.New("alb: stable and canary target group ARNs are both needed")
	case cfg.StableTargetGroupARN == cfg.CanaryTargetGroupARN:
		return errors.New("alb: the canary target group is the stable one")
	case cfg.Stickiness < 0:
		return errors.New("alb: negative stickiness duration")
	}
	// A rule ARN is its listener's ARN with "listener-rule" for "listener" and one more part.
	if cfg.RuleARN != "" {
		listener := strings.Replace(cfg.ListenerARN, ":listener/", ":listener-rule/", 1) + "/"
		if !strings.HasPrefix(cfg.RuleARN, listener) {
			return fmt.Errorf("alb: rule %s is not a rule of listener %s", cfg.RuleARN, cfg.ListenerARN)
		}
	}
	return nil
}

// regionOf is the configured region, or the one in the listener ARN
// (arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:listener/…).
func regionOf(cfg Config) string {
	if cfg.Region != "" {
		return cfg.Region
	}
	if parts := strings.Split(cfg.ListenerARN, ":"); len(parts) > 3 {
		return parts[3]
	}
	return ""
}

// String says what the router points at, for perch traffic.
func (r *Router) String() string {
	return fmt.Sprintf("ALB %s (stable %s, canary %s)", r.target(), shortARN(r.cfg.StableTargetGroupARN), shortARN(r.cfg.CanaryTargetGroupARN))
}

func (r *Router) target() string {
	if r.cfg.RuleARN == "" {
		return "listener " + r.cfg.ListenerARN + " default action"
	}
	return "rule " + r.cfg.RuleARN
}

// shortARN is the resource part of an ARN ("targetgroup/checkout-stable/73e2d6bc24d8a067").
func shortARN(arn string) string {
	if parts := strings.SplitN(arn, ":", 6); len(parts) == 6 {
		return parts[5]
	}
	return arn
}

// SetWeight sends canaryPercent of the rule's traffic to the canary target group.
func (r *Router) SetWeight(ctx context.Context, canaryPercent int) error {
	if canaryPercent < 0 || canaryPercent > 100 {
		return fmt.Errorf("set ALB weight on %s: %d%% is outside 0..100", r.target(), canaryPercent)
	}
	actions, isDefault, err := r.actions(ctx)
	if err != nil {
		return err
	}
	i, err := r.forward(actions)
	if err != nil {
		return err
	}
	next, changed := r.rewrite(actions, i, canaryPercent)
	if !changed {
		return nil
	}
	// The default rule's actions are the listener's default actions: ModifyRule cannot
	// change them, ModifyListener can.
	if isDefault {
		_, err = r.api.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(r.cfg.ListenerARN), DefaultActions: next})
		return r.explain("ModifyListener", "change", err)
	}
	_, err = r.api.ModifyRule(ctx, &elbv2.ModifyRuleInput{RuleArn: aws.String(r.cfg.RuleARN), Actions: next})
	return r.explain("ModifyRule", "change", err)
}

// Weight reads the canary's share of the rule's traffic.
func (r *Router) Weight(ctx context.Context) (int, error) {
	actions, _, err := r.actions(ctx)
	if err != nil {
		return 0, err
	}
	i, err := r.forward(actions)
	if err != nil {
		return 0, err
	}
	stable, canary := r.weights(actions[i].ForwardConfig)
	p, err := split.Percent(canary, stable)
	if err != nil {
		return 0, fmt.Errorf("ALB %s: %w", r.target(), err)
	}
	return p, nil
}

// actions reads the rule's actions, or the listener's default actions; isDefault says the
// listener's default actions are the ones to change.
func (r *Router) actions(ctx context.Context) (actions []types.Action, isDefault bool, err error) {
	if r.cfg.RuleARN == "" {
		out, err := r.api.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{r.cfg.ListenerARN}})
		if err != nil {
			return nil, false, r.explain("DescribeListeners", "read", err)
		}
		if len(out.Listeners) != 1 {
			return nil, false, fmt.Errorf("ALB listener %s: DescribeListeners returned %d listeners", r.cfg.ListenerARN, len(out.Listeners))
		}
		return out.Listeners[0].DefaultActions, true, nil
	}
	out, err := r.api.DescribeRules(ctx, &elbv2.DescribeRulesInput{RuleArns: []string{r.cfg.RuleARN}})
	if err != nil {
		return nil, false, r.explain("DescribeRules", "read", err)
	}
	if len(out.Rules) != 1 {
		return nil, false, fmt.Errorf("ALB rule %s: DescribeRules returned %d rules", r.cfg.RuleARN, len(out.Rules))
	}
	return out.Rules[0].Actions, aws.ToBool(out.Rules[0].IsDefault), nil
}

// forward finds the forward action and checks it sends to exactly the two target groups.
func (r *Router) forward(actions []types.Action) (int, error) {
	at := -1
	for i, a := range actions {
		if a.Type != types.ActionTypeEnumForward {
			continue
		}
		if at >= 0 {
			return 0, fmt.Errorf("ALB %s has more than one forward action", r.target())
		}
		at = i
	}
	if at < 0 {
		var kinds []string
		for _, a := range actions {
			kinds = append(kinds, string(a.Type))
		}
		return 0, fmt.Errorf("ALB %s does not forward (its actions: %s); perch needs a forward action to %s and %s",
			r.target(), strings.Join(kinds, ", "), shortARN(r.cfg.StableTargetGroupARN), shortARN(r.cfg.CanaryTargetGroupARN))
	}
	var groups []string
	var stable, canary bool
	if fc := actions[at].ForwardConfig; fc != nil {
		for _, tg := range fc.TargetGroups {
			arn := aws.ToString(tg.TargetGroupArn)
			groups = append(groups, shortARN(arn))
			stable = stable || arn == r.cfg.StableTargetGroupARN
			canary = canary || arn == r.cfg.CanaryTargetGroupARN
		}
	} else if arn := aws.ToString(actions[at].TargetGroupArn); arn != "" {
		groups = append(groups, shortARN(arn))
	}
	if len(groups) != 2 || !stable || !canary {
		return 0, fmt.Errorf("ALB %s forwards to %s; perch moves traffic between exactly %s and %s (add the missing target group with weight 0, or fix traffic.alb)",
			r.target(), strings.Join(groups, ", "), shortARN(r.cfg.StableTargetGroupARN), shortARN(r.cfg.CanaryTargetGroupARN))
	}
	return at, nil
}

// weights are the stable and canary weights of a forward config (an absent weight is 1, as
// the ALB reports a group it was given without one).
func (r *Router) weights(fc *types.ForwardActionConfig) (stable, canary int64) {
	for _, tg := range fc.TargetGroups {
		w := int64(aws.ToInt32(tg.Weight))
		if tg.Weight == nil {
			w = 1
		}
		switch aws.ToString(tg.TargetGroupArn) {
		case r.cfg.StableTargetGroupARN:
			stable = w
		case r.cfg.CanaryTargetGroupARN:
			canary = w
		}
	}
	return stable, canary
}

// rewrite is actions with the forward action at i sending canaryPercent to the canary, and
// whether that differs from what the rule has. The other actions are passed back as read:
// ModifyRule replaces the whole list, so leaving one out would delete it.
func (r *Router) rewrite(actions []types.Action, i, canaryPercent int) ([]types.Action, bool) {
	next := make([]types.Action, len(actions))
	copy(next, actions)
	for j := range next {
		// DescribeRules never returns an OIDC client secret; without this flag the ALB would
		// demand one.
		if oidc := next[j].AuthenticateOidcConfig; oidc != nil {
			c := *oidc
			c.ClientSecret, c.UseExistingClientSecret = nil, aws.Bool(true)
			next[j].AuthenticateOidcConfig = &c
		}
	}
	old := actions[i].ForwardConfig
	fc := types.ForwardActionConfig{TargetGroupStickinessConfig: old.TargetGroupStickinessConfig}
	for _, tg := range old.TargetGroups { // keep the rule's order of groups
		w := int32(100 - canaryPercent)
		if aws.ToString(tg.TargetGroupArn) == r.cfg.CanaryTargetGroupARN {
			w = int32(canaryPercent)
		}
		fc.TargetGroups = append(fc.TargetGroups, types.TargetGroupTuple{TargetGroupArn: tg.TargetGroupArn, Weight: aws.Int32(w)})
	}
	stickinessChanged := false
	if r.cfg.Stickiness > 0 {
		want := &types.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(int32(r.cfg.Stickiness / time.Second))}
		old := fc.TargetGroupStickinessConfig
		stickinessChanged = old == nil || !aws.ToBool(old.Enabled) || aws.ToInt32(old.DurationSeconds) != *want.DurationSeconds
		fc.TargetGroupStickinessConfig = want
	}
	stable, canary := r.weights(old)
	changed := stickinessChanged || stable != int64(100-canaryPercent) || canary != int64(canaryPercent)
	next[i].ForwardConfig = &fc
	next[i].TargetGroupArn = nil // with two groups the ALB takes them from ForwardConfig only
	return next, changed
}
