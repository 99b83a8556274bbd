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
	p := awsconf.Classify(err)
	switch p.Kind {
	case awsconf.Unreachable:
		return fmt.Errorf("%s ALB %s: cannot reach the ELBv2 endpoint %s: %w", verb, r.target(), p.Endpoint, p.Err)
	case awsconf.NoCredentials:
		return fmt.Errorf("%s ALB %s: no usable AWS credentials (%s): %w", verb, r.target(), p.Hint(), p.Err)
	case awsconf.NotAPIError:
		return fmt.Errorf("%s ALB %s: %w", verb, r.target(), p.Err)
	case awsconf.Denied:
		return fmt.Errorf("not allowed to call elasticloadbalancing:%s on %s (%s): %w", op, r.target(), p.Hint(), p.Err)
	case awsconf.Throttled:
		return fmt.Errorf("the ALB API is still throttling %s after the SDK's retries (%s); %s: %w", op, r.target(), p.Hint(), p.Err)
	case awsconf.BadCredentials:
		return fmt.Errorf("AWS rejected the credentials (%s) for %s on %s: %w", p.Hint(), op, r.target(), p.Err)
	}
	switch p.Code {
	case "RuleNotFound":
		return fmt.Errorf("ALB rule %s not found in %s (check traffic.alb.ruleArn and region): %w", r.cfg.RuleARN, regionOf(r.cfg), p.Err)
	case "ListenerNotFound":
		return fmt.Errorf("ALB listener %s not found in %s (check traffic.alb.listenerArn and region): %w", r.cfg.ListenerARN, regionOf(r.cfg), p.Err)
	case "TargetGroupNotFound":
		return fmt.Errorf("ALB %s: a target group does not exist (check stableTargetGroupArn and canaryTargetGroupArn): %w", r.target(), p.Err)
	case "ValidationError", "InvalidConfigurationRequest", "OperationNotPermitted":
		return fmt.Errorf("the ALB refused to %s %s: %w", verb, r.target(), p.Err)
	}
	return fmt.Errorf("%s ALB %s: %s: %w", verb, r.target(), op, p.Err)
}
