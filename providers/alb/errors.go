package alb

import (
	"fmt"

	"github.com/perchhq/perch/internal/awsconf"
)

// explain turns an SDK error into one line naming the rule or listener and what to check.
// op is the API call ("ModifyRule"), verb what perch was doing ("read", "change").
func (r *Router) explain(op, verb string, err error) error {
	if err == nil {
		return nil
	}
	doing := fmt.Sprintf("%s ALB %s", verb, r.target())
	refused := fmt.Sprintf("the ALB refused to %s %s", verb, r.target())
	return awsconf.Explain(err, awsconf.Call{
		Doing:     doing,
		Endpoint:  "ELBv2 endpoint",
		Action:    fmt.Sprintf("elasticloadbalancing:%s on %s", op, r.target()),
		Throttled: fmt.Sprintf("the ALB API is still throttling %s after the SDK's retries (%s); %s", op, r.target(), awsconf.Throttled.Hint()),
		Rejected:  fmt.Sprintf("AWS rejected the credentials (%s) for %s on %s", awsconf.BadCredentials.Hint(), op, r.target()),
		Codes: map[string]string{
			"RuleNotFound":                fmt.Sprintf("ALB rule %s not found in %s (check traffic.alb.ruleArn and region)", r.cfg.RuleARN, regionOf(r.cfg)),
			"ListenerNotFound":            fmt.Sprintf("ALB listener %s not found in %s (check traffic.alb.listenerArn and region)", r.cfg.ListenerARN, regionOf(r.cfg)),
			"TargetGroupNotFound":         fmt.Sprintf("ALB %s: a target group does not exist (check stableTargetGroupArn and canaryTargetGroupArn)", r.target()),
			"ValidationError":             refused,
			"InvalidConfigurationRequest": refused,
			"OperationNotPermitted":       refused,
			"PriorityInUse":               fmt.Sprintf("ALB listener %s: the priority perch chose for a segment rule was taken meanwhile; perch tries again", r.cfg.ListenerARN),
			"TooManyRules":                fmt.Sprintf("ALB listener %s has as many rules as it may: a segment rule needs one more", r.cfg.ListenerARN),
		},
		Otherwise: doing + ": " + op,
	})
}
