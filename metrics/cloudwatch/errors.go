package cloudwatch

import (
	"fmt"

	"github.com/perchhq/perch/internal/awsconf"
	"github.com/perchhq/perch/metrics"
)

// explain turns an SDK error into one line naming the query and what to check.
func (s *Source) explain(q metrics.Query, err error) error {
	p := awsconf.Classify(err)
	switch p.Kind {
	case awsconf.Unreachable:
		return fmt.Errorf("CloudWatch in %s, %s: cannot reach the endpoint %s: %w", s.region, describe(q), p.Endpoint, p.Err)
	case awsconf.NoCredentials:
		return fmt.Errorf("CloudWatch in %s, %s: no usable AWS credentials (%s): %w", s.region, describe(q), p.Hint(), p.Err)
	case awsconf.NotAPIError:
		return fmt.Errorf("CloudWatch in %s, %s: %w", s.region, describe(q), p.Err)
	case awsconf.Denied:
		return fmt.Errorf("not allowed to call cloudwatch:GetMetricData in %s (%s): %w", s.region, p.Hint(), p.Err)
	case awsconf.Throttled:
		return fmt.Errorf("CloudWatch is still throttling GetMetricData after the SDK's retries (%s): %w", describe(q), p.Err)
	case awsconf.BadCredentials:
		return fmt.Errorf("AWS rejected the credentials for CloudWatch (%s): %w", p.Hint(), p.Err)
	}
	switch p.Code {
	case "InvalidParameterValue", "InvalidParameterValueException", "InvalidParameterCombination",
		"InvalidParameterCombinationException", "MissingParameter", "MissingRequiredParameterException",
		"ValidationError", "ValidationException":
		return fmt.Errorf("CloudWatch refused the query %s: %w", describe(q), p.Err)
	}
	return fmt.Errorf("CloudWatch in %s, %s: %w", s.region, describe(q), p.Err)
}
