// Package awsconf is what perch's AWS clients (the ALB provider, the CloudWatch source) share:
// configuration loaded the way the AWS CLI loads it, and SDK errors sorted into the few kinds
// an operator acts on, each worded as one line with what to check.
package awsconf

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"
)

// Load reads AWS settings and credentials from the default chain (environment, shared config
// and credentials files, SSO, IMDS; AWS_ENDPOINT_URL and the service-specific endpoint
// variables), with region and profile overriding it when set.
func Load(ctx context.Context, region, profile string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	return cfg, nil
}

// Kind is what went wrong, as far as the operator is concerned.
type Kind int

// The kinds of failure shared by every AWS API perch calls.
const (
	Other          Kind = iota // an API error for the caller to word (Problem.Code says which)
	Unreachable                // the endpoint could not be reached (Problem.Endpoint)
	NoCredentials              // the default chain found no credentials
	BadCredentials             // AWS rejected the credentials: expired or invalid
	Denied                     // IAM does not allow the call
	Throttled                  // still throttled after the SDK's retries
	NotAPIError                // not an AWS API error at all
)

// Problem is an SDK error sorted for an operator.
type Problem struct {
	Kind     Kind
	Code     string // the API error code, for Other
	Endpoint string // scheme and host, for Unreachable
	// Err is the cause, without the SDK's "operation error SERVICE: OPERATION" preamble,
	// which the message perch writes around it says already.
	Err error
}

// Hint is what to check, for the kinds that have one.
func (k Kind) Hint() string {
	switch k {
	case NoCredentials:
		return "set AWS_PROFILE or --aws-profile, run aws sso login, or export AWS_ACCESS_KEY_ID"
	case BadCredentials:
		return "refresh them, e.g. aws sso login, or check --aws-profile"
	case Denied:
		return "grant it to these AWS credentials"
	case Throttled:
		return "try again shortly"
	}
	return ""
}

// Classify sorts err.
func Classify(err error) Problem {
	var urlErr *url.Error
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &urlErr):
		return Problem{Kind: Unreachable, Endpoint: endpointOf(urlErr.URL), Err: urlErr.Err}
	case strings.Contains(err.Error(), "get credentials"):
		return Problem{Kind: NoCredentials, Err: withoutOperation(err)}
	case !errors.As(err, &apiErr):
		return Problem{Kind: NotAPIError, Err: err}
	}
	code := apiErr.ErrorCode()
	p := Problem{Kind: Other, Code: code, Err: apiErr}
	switch {
	case code == "AccessDenied" || code == "AccessDeniedException" || code == "UnauthorizedOperation":
		p.Kind = Denied
	case code == "ExpiredToken" || code == "ExpiredTokenException" || code == "InvalidClientTokenId" ||
		code == "UnrecognizedClientException" || code == "SignatureDoesNotMatch":
		p.Kind = BadCredentials
	case isThrottle(code):
		p.Kind = Throttled
	}
	return p
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

func withoutOperation(err error) error {
	var op *smithy.OperationError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
