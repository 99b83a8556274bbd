package albtest

import (
	"os"
	"path/filepath"
	"testing"
)

// Credentials the isolated environment signs with.
const (
	AccessKey = "AKIDPERCHTEST0000001"
	secretKey = "perch-test-secret-key-not-a-real-one"
)

// IsolateAWS gives the test an AWS environment of its own: static test credentials, no
// shared config or credentials files, no region, no endpoint override and no instance
// metadata, so the SDK's default chain finds only what the test sets.
func IsolateAWS(t testing.TB) {
	t.Helper()
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", "AWS_ENDPOINT_URL_CLOUDWATCH",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"} {
		t.Setenv(k, "")
		os.Unsetenv(k) // the SDK tells "set to empty" from "unset" for some of these
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
}
