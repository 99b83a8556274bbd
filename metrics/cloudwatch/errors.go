package cloudwatch

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/perchhq/perch/metrics"
)

// explain turns an SDK error into one line naming the query and what to check.
func (s *Source) explain(q metrics.Query, err error) error {
	var apiErr smithy.APIError
	var urlErr *url.Error
	switch {
	case errors.As(err, &urlErr):
		// The SDK's own text repeats the operation, attempt count and an empty request ID.
		return fmt.Errorf("CloudWatch in %s, %s: cannot reach the endpoint %s: %w", s.region, describe(q), endpointOf(urlErr.URL), urlErr.Err)
	case strings.Contains(err.Error(), "get credentials"):
		return fmt.Errorf("CloudWatch in %s, %s: no usable AWS credentials (set AWS_PROFILE or --aws-profile, run aws sso login, or export AWS_ACCESS_KEY_ID): %w", s.region, describe(q), withoutOperation(err))
	case !errors.As(err, &apiErr):
		return fmt.Errorf("CloudWatch in %s, %s: %w", s.region, describe(q), err)
	}
	switch code := apiErr.ErrorCode(); {
	case code == "AccessDenied" || code == "AccessDeniedException":
		return fmt.Errorf("not allowed to call cloudwatch:GetMetricData in %s (grant it to these AWS credentials): %w", s.region, apiErr)
	case code == "InvalidParameterValue" || code == "InvalidParameterValueException" ||
		code == "InvalidParameterCombination" || code == "InvalidParameterCombinationException" ||
		code == "MissingParameter" || code == "MissingRequiredParameterException" ||
		code == "ValidationError" || code == "ValidationException":
		return fmt.Errorf("CloudWatch refused the query %s: %w", describe(q), apiErr)
	case isThrottle(code):
		return fmt.Errorf("CloudWatch is still throttling GetMetricData after the SDK's retries (%s): %w", describe(q), apiErr)
	case code == "ExpiredToken" || code == "ExpiredTokenException" || code == "InvalidClientTokenId" ||
		code == "UnrecognizedClientException" || code == "SignatureDoesNotMatch":
		return fmt.Errorf("AWS rejected the credentials for CloudWatch (refresh them, e.g. aws sso login, or check --aws-profile): %w", apiErr)
	}
	return fmt.Errorf("CloudWatch in %s, %s: %w", s.region, describe(q), apiErr)
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
