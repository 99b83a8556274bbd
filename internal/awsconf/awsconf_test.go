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
