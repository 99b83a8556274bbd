package cloudwatch

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/perchhq/perch/metrics"
)

// explain turns an SDK error into one line naming the query and what to check.
func (s *Source) explain(q metrics.Query, err error) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
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

func isThrottle(code string) bool {
	_, ok := retry.DefaultThrottleErrorCodes[code]
	return ok
}
