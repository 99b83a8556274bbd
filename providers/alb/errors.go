package alb

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// explain turns an SDK error into one line naming the rule or listener and what to check.
// op is the API call ("ModifyRule"), verb what perch was doing ("read", "change").
func (r *Router) explain(op, verb string, err error) error {
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	var urlErr *url.Error
	switch {
	case errors.As(err, &urlErr):
		// The SDK's own text repeats the operation, attempt count and an empty request ID.
		return fmt.Errorf("%s ALB %s: cannot reach the ELBv2 endpoint %s: %w", verb, r.target(), endpointOf(urlErr.URL), urlErr.Err)
	case strings.Contains(err.Error(), "get credentials"):
		return fmt.Errorf("%s ALB %s: no usable AWS credentials (set AWS_PROFILE or --aws-profile, run aws sso login, or export AWS_ACCESS_KEY_ID): %w", verb, r.target(), withoutOperation(err))
	case !errors.As(err, &apiErr):
		return fmt.Errorf("%s ALB %s: %w", verb, r.target(), err)
	}
	code := apiErr.ErrorCode()
	switch {
	case code == "RuleNotFound":
		return fmt.Errorf("ALB rule %s not found in %s (check traffic.alb.ruleArn and region): %w", r.cfg.RuleARN, regionOf(r.cfg), apiErr)
	case code == "ListenerNotFound":
		return fmt.Errorf("ALB listener %s not found in %s (check traffic.alb.listenerArn and region): %w", r.cfg.ListenerARN, regionOf(r.cfg), apiErr)
	case code == "TargetGroupNotFound":
		return fmt.Errorf("ALB %s: a target group does not exist (check stableTargetGroupArn and canaryTargetGroupArn): %w", r.target(), apiErr)
	case code == "AccessDenied" || code == "AccessDeniedException" || code == "UnauthorizedOperation":
		return fmt.Errorf("not allowed to call elasticloadbalancing:%s on %s (grant it to these AWS credentials): %w", op, r.target(), apiErr)
	case code == "ValidationError" || code == "InvalidConfigurationRequest" || code == "OperationNotPermitted":
		return fmt.Errorf("the ALB refused to %s %s: %w", verb, r.target(), apiErr)
	case isThrottle(code):
		return fmt.Errorf("the ALB API is still throttling %s after the SDK's retries (%s); try again shortly: %w", op, r.target(), apiErr)
	case code == "ExpiredToken" || code == "ExpiredTokenException" || code == "InvalidClientTokenId" ||
		code == "UnrecognizedClientException" || code == "SignatureDoesNotMatch":
		return fmt.Errorf("AWS rejected the credentials (refresh them, e.g. aws sso login, or check --aws-profile) for %s on %s: %w", op, r.target(), apiErr)
	}
	return fmt.Errorf("%s ALB %s: %s: %w", verb, r.target(), op, apiErr)
}

// endpointOf is the scheme and host of a request URL.
func endpointOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return raw
}

func isThrottle(code string) bool {
	_, ok := retry.DefaultThrottleErrorCodes[code]
	return ok
}

// withoutOperation drops the SDK's "operation error SERVICE: OPERATION," prefix, which the
// message perch writes around it already says.
func withoutOperation(err error) error {
	var op *smithy.OperationError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
