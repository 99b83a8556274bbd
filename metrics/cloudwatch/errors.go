package cloudwatch

import (
	"fmt"

	"github.com/perchhq/perch/internal/awsconf"
	"github.com/perchhq/perch/metrics"
)

// explain turns an SDK error into one line naming the query and what to check.
func (s *Source) explain(q metrics.Query, err error) error {
	doing := fmt.Sprintf("CloudWatch in %s, %s", s.region, describe(q))
	refused := "CloudWatch refused the query " + describe(q)
	codes := map[string]string{}
	for _, code := range []string{"InvalidParameterValue", "InvalidParameterValueException", "InvalidParameterCombination",
		"InvalidParameterCombinationException", "MissingParameter", "MissingRequiredParameterException",
		"ValidationError", "ValidationException"} {
		codes[code] = refused
	}
	return awsconf.Explain(err, awsconf.Call{
		Doing:     doing,
		Endpoint:  "endpoint",
		Action:    "cloudwatch:GetMetricData in " + s.region,
		Throttled: fmt.Sprintf("CloudWatch is still throttling GetMetricData after the SDK's retries (%s)", describe(q)),
		Rejected:  fmt.Sprintf("AWS rejected the credentials for CloudWatch (%s)", awsconf.BadCredentials.Hint()),
		Codes:     codes,
		Otherwise: doing,
	})
}
