package alb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/perchhq/perch/internal/segment"
)

// segmentAPI is the part of the ELBv2 client segment rules need.
type segmentAPI interface {
	DescribeRules(context.Context, *elbv2.DescribeRulesInput, ...func(*elbv2.Options)) (*elbv2.DescribeRulesOutput, error)
	CreateRule(context.Context, *elbv2.CreateRuleInput, ...func(*elbv2.Options)) (*elbv2.CreateRuleOutput, error)
	DeleteRule(context.Context, *elbv2.DeleteRuleInput, ...func(*elbv2.Options)) (*elbv2.DeleteRuleOutput, error)
	DescribeTags(context.Context, *elbv2.DescribeTagsInput, ...func(*elbv2.Options)) (*elbv2.DescribeTagsOutput, error)
}

// Tags that mark a listener rule as one perch added for a segment: which segment, which rule
// (or listener, for its default action) it goes ahead of, and a digest of what perch created,
// so a rule that no longer matches what perch would create is replaced.
const (
	TagSegment = "perch:segment"
	TagAhead   = "perch:ahead-of"
	TagDigest  = "perch:digest"
)

// Limits of listener rule priorities, and how many ARNs DescribeTags takes at once.
const (
	maxPriority  = 50000
	tagsPerCall  = 20
	defaultAhead = maxPriority + 1 // where the default action stands, after every rule
)

// RouteSegments makes segs, and only them, perch's segment rules on the listener: for each
// segment a rule with the rollout rule's conditions and an http-header condition on the
// segment's header, forwarding to the canary target group alone, at the highest free priority
// ahead of the rollout's rule (or of the listener's default action), tagged as perch's. Rules
// perch added for segments no longer wanted are deleted; every other rule stays as it is.
// The ALB matches header values exactly, with * and ? as wildcards: a segment matching a
// regular expression or a cookie is refused.
func (r *Router) RouteSegments(ctx context.Context, segs []segment.Segment) error {
	api, ok := r.api.(segmentAPI)
	if !ok {
		return errors.New("alb: this client cannot create rules")
	}
	for _, s := range segs {
		if err := CheckSegment(s); err != nil {
			return err
		}
	}
	rules, err := r.listenerRules(ctx, api)
	if err != nil {
		return err
	}
	ahead, at, err := r.rolloutRule(rules)
	if err != nil {
		return err
	}
	ours, err := r.segmentRules(ctx, api, rules)
	if err != nil {
		return err
	}
	want := map[string]*elbv2.CreateRuleInput{}
	for _, s := range segs {
		in, err := r.newSegmentRule(ahead, s)
		if err != nil {
			return err
		}
		want[s.Name] = in
	}
	used := map[int]bool{}
	for _, ru := range rules {
		if p, err := strconv.Atoi(aws.ToString(ru.Priority)); err == nil {
			used[p] = true
		}
	}
	// Rules of segments no longer wanted, or no longer what perch would create, go first, so
	// their priorities are free again.
	for _, o := range ours {
		if in, ok := want[o.segment]; ok && tagValue(in.Tags, TagDigest) == o.digest {
			delete(want, o.segment)
			continue
		}
		if _, err := api.DeleteRule(ctx, &elbv2.DeleteRuleInput{RuleArn: aws.String(o.arn)}); err != nil {
			return r.explain("DeleteRule", "delete a segment rule of", err)
		}
		delete(used, o.priority)
	}
	next := at - 1
	for _, s := range segs {
		in, ok := want[s.Name]
		if !ok {
			continue
		}
		for next > 0 && used[next] {
			next--
		}
		if next < 1 {
			return fmt.Errorf("ALB %s: no free priority ahead of it for segment %s (free one below %s)", r.target(), s.Name, priorityWords(at))
		}
		in.Priority = aws.Int32(int32(next))
		if _, err := api.CreateRule(ctx, in); err != nil {
			return r.explain("CreateRule", "add a segment rule to", err)
		}
		used[next] = true
	}
	return nil
}

// RoutedSegments is the names of the segments perch routes on the listener ahead of the
// rollout's rule now, nearest the rule first.
func (r *Router) RoutedSegments(ctx context.Context) ([]string, error) {
	api, ok := r.api.(segmentAPI)
	if !ok {
		return nil, errors.New("alb: this client cannot read rules")
	}
	rules, err := r.listenerRules(ctx, api)
	if err != nil {
		return nil, err
	}
	ours, err := r.segmentRules(ctx, api, rules)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(ours, func(a, b segmentRule) int { return b.priority - a.priority })
	names := []string{}
	for _, o := range ours {
		names = append(names, o.segment)
	}
	return names, nil
}

// CheckSegment says why the ALB cannot route a segment, or nil.
func CheckSegment(s segment.Segment) error {
	if err := s.Err(); err != nil {
		return fmt.Errorf("alb: %w", err)
	}
	if s.Match.Header == nil || s.Match.Header.Regex != "" {
		return fmt.Errorf("alb: segment %s: an ALB rule matches a header's value (with * and ? as wildcards), not a regular expression or a cookie", s.Name)
	}
	return nil
}

func priorityWords(at int) string {
	if at == defaultAhead {
		return "the default action"
	}
	return "priority " + strconv.Itoa(at)
}

// ahead is the key perch's segment rules are tagged with: the rollout rule, or the listener
// for its default action.
func (r *Router) ahead() string {
	if r.cfg.RuleARN == "" {
		return r.cfg.ListenerARN
	}
	return r.cfg.RuleARN
}

// listenerRules is every rule of the listener, the default one included.
func (r *Router) listenerRules(ctx context.Context, api segmentAPI) ([]types.Rule, error) {
	var rules []types.Rule
	in := &elbv2.DescribeRulesInput{ListenerArn: aws.String(r.cfg.ListenerARN)}
	for {
		out, err := api.DescribeRules(ctx, in)
		if err != nil {
			return nil, r.explain("DescribeRules", "read", err)
		}
		rules = append(rules, out.Rules...)
		if aws.ToString(out.NextMarker) == "" {
			return rules, nil
		}
		in.Marker = out.NextMarker
	}
}

// rolloutRule is the rule perch moves traffic on, and its priority (defaultAhead for the
// default action).
func (r *Router) rolloutRule(rules []types.Rule) (types.Rule, int, error) {
	for _, ru := range rules {
		switch {
		case r.cfg.RuleARN == "" && aws.ToBool(ru.IsDefault):
			return ru, defaultAhead, nil
		case r.cfg.RuleARN != "" && aws.ToString(ru.RuleArn) == r.cfg.RuleARN:
			p, err := strconv.Atoi(aws.ToString(ru.Priority))
			if err != nil {
				return ru, defaultAhead, nil // the default rule named by its ARN
			}
			return ru, p, nil
		}
	}
	return types.Rule{}, 0, fmt.Errorf("ALB %s: not among the listener's rules", r.target())
}

// segmentRule is a rule perch added for a segment.
type segmentRule struct {
	arn, segment, digest string
	priority             int
}

// segmentRules finds the rules perch added ahead of the rollout's rule, by their tags.
func (r *Router) segmentRules(ctx context.Context, api segmentAPI, rules []types.Rule) ([]segmentRule, error) {
	priority := map[string]int{}
	var arns []string
	for _, ru := range rules {
		if !aws.ToBool(ru.IsDefault) {
			arn := aws.ToString(ru.RuleArn)
			arns = append(arns, arn)
			priority[arn], _ = strconv.Atoi(aws.ToString(ru.Priority))
		}
	}
	var found []segmentRule
	for batch := range slices.Chunk(arns, tagsPerCall) {
		out, err := api.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: batch})
		if err != nil {
			return nil, r.explain("DescribeTags", "read the rule tags of", err)
		}
		for _, d := range out.TagDescriptions {
			name, ahead := tagValue(d.Tags, TagSegment), tagValue(d.Tags, TagAhead)
			if name == "" || ahead != r.ahead() {
				continue
			}
			arn := aws.ToString(d.ResourceArn)
			found = append(found, segmentRule{arn: arn, segment: name, digest: tagValue(d.Tags, TagDigest), priority: priority[arn]})
		}
	}
	return found, nil
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// newSegmentRule is the rule to create for segment s ahead of the rollout rule (without its
// priority): the rule's conditions and the segment's header, the rule's actions with the
// forward sending to the canary alone.
func (r *Router) newSegmentRule(rollout types.Rule, s segment.Segment) (*elbv2.CreateRuleInput, error) {
	var conditions []types.RuleCondition
	for _, c := range rollout.Conditions {
		if aws.ToString(c.Field) == "http-header" && c.HttpHeaderConfig != nil && strings.EqualFold(aws.ToString(c.HttpHeaderConfig.HttpHeaderName), s.Match.Header.Name) {
			return nil, fmt.Errorf("ALB %s already matches header %s; segment %s cannot narrow it", r.target(), s.Match.Header.Name, s.Name)
		}
		// DescribeRules shows a host or path condition both ways; CreateRule takes one.
		if c.HostHeaderConfig != nil || c.PathPatternConfig != nil {
			c.Values = nil
		}
		conditions = append(conditions, c)
	}
	conditions = append(conditions, types.RuleCondition{Field: aws.String("http-header"),
		HttpHeaderConfig: &types.HttpHeaderConditionConfig{HttpHeaderName: aws.String(s.Match.Header.Name), Values: []string{s.Match.Header.Value}}})
	var actions []types.Action
	for _, a := range rollout.Actions {
		switch a.Type {
		case types.ActionTypeEnumAuthenticateOidc:
			return nil, fmt.Errorf("ALB %s authenticates with OIDC, whose client secret the ALB never shows: perch cannot copy it into a segment rule; route segments on a rule without it", r.target())
		case types.ActionTypeEnumForward:
			fc := &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{{TargetGroupArn: aws.String(r.cfg.CanaryTargetGroupARN), Weight: aws.Int32(1)}}}
			a = types.Action{Type: a.Type, Order: a.Order, ForwardConfig: fc}
		}
		actions = append(actions, a)
	}
	digest, err := json.Marshal(struct {
		Conditions []types.RuleCondition
		Actions    []types.Action
	}{conditions, actions})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(digest)
	return &elbv2.CreateRuleInput{
		ListenerArn: aws.String(r.cfg.ListenerARN),
		Conditions:  conditions,
		Actions:     actions,
		Tags: []types.Tag{
			{Key: aws.String(TagSegment), Value: aws.String(s.Name)},
			{Key: aws.String(TagAhead), Value: aws.String(r.ahead())},
			{Key: aws.String(TagDigest), Value: aws.String(hex.EncodeToString(sum[:16]))},
		},
	}, nil
}
