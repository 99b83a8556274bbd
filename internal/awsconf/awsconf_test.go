package awsconf_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/perchhq/perch/internal/awsconf"
)

func TestClassify(t *testing.T) {
	api := func(code string) error {
		return &smithy.OperationError{ServiceID: "X", OperationName: "Y", Err: &smithy.GenericAPIError{Code: code, Message: "m"}}
	}
	tests := []struct {
		name string
		err  error
		kind awsconf.Kind
		code string
	}{
		{"unreachable", &url.Error{Op: "Post", URL: "https://elasticloadbalancing.eu-west-1.amazonaws.com/?x=1", Err: errors.New("connection refused")}, awsconf.Unreachable, ""},
		{"no credentials", errors.New("operation error X: Y, get credentials: failed to refresh cached credentials"), awsconf.NoCredentials, ""},
		{"denied", api("AccessDenied"), awsconf.Denied, "AccessDenied"},
		{"expired", api("ExpiredToken"), awsconf.BadCredentials, "ExpiredToken"},
		{"throttled", api("Throttling"), awsconf.Throttled, "Throttling"},
		{"service error", api("RuleNotFound"), awsconf.Other, "RuleNotFound"},
		{"not an API error", errors.New("boom"), awsconf.NotAPIError, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := awsconf.Classify(tc.err)
			if p.Kind != tc.kind || p.Code != tc.code {
				t.Errorf("kind %d code %q, want %d %q", p.Kind, p.Code, tc.kind, tc.code)
			}
		})
	}
	if p := awsconf.Classify(&url.Error{URL: "https://h.example:8443/a?b", Err: errors.New("x")}); p.Endpoint != "https://h.example:8443" {
		t.Errorf("endpoint %q, want the scheme and host only", p.Endpoint)
	}
}

func TestExplain(t *testing.T) {
	api := func(code string) error {
		return &smithy.OperationError{ServiceID: "X", OperationName: "Y", Err: &smithy.GenericAPIError{Code: code, Message: "m"}}
	}
	call := awsconf.Call{
		Doing:     "read thing T",
		Endpoint:  "X endpoint",
		Action:    "x:Y on thing T",
		Throttled: "X is still throttling Y",
		Rejected:  "AWS rejected the credentials for X",
		Codes:     map[string]string{"ThingNotFound": "thing T not found"},
		Otherwise: "read thing T: Y",
	}
	tests := []struct {
		err  error
		want string
	}{
		{&url.Error{Op: "Post", URL: "https://x.example/?a=1", Err: errors.New("connection refused")}, "read thing T: cannot reach the X endpoint https://x.example: connection refused"},
		{errors.New("operation error X: Y, get credentials: none"), "read thing T: no usable AWS credentials (set AWS_PROFILE or --aws-profile, run aws sso login, or export AWS_ACCESS_KEY_ID): operation error X: Y, get credentials: none"},
		{errors.New("boom"), "read thing T: boom"},
		{api("AccessDenied"), "not allowed to call x:Y on thing T (grant it to these AWS credentials): api error AccessDenied: m"},
		{api("Throttling"), "X is still throttling Y: api error Throttling: m"},
		{api("ExpiredToken"), "AWS rejected the credentials for X: api error ExpiredToken: m"},
		{api("ThingNotFound"), "thing T not found: api error ThingNotFound: m"},
		{api("Odd"), "read thing T: Y: api error Odd: m"},
	}
	for _, tc := range tests {
		err := awsconf.Explain(tc.err, call)
		if err.Error() != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.err, err, tc.want)
		}
		if errors.Unwrap(err) == nil {
			t.Errorf("%v: the cause is not wrapped", tc.err)
		}
	}
}
