// Package cwtest is a fake Amazon CloudWatch endpoint for tests: an http.Handler that
// answers GetMetricData in the protocol the SDK speaks to CloudWatch by default, Smithy RPC
// v2 CBOR (POST /service/GraniteServiceVersion20100801/operation/GetMetricData, CBOR bodies,
// errors as {"__type", "message"} with the AWS Query error code in x-amzn-query-error).
package cwtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/perchhq/perch/metrics"
)

const operationPath = "/service/GraniteServiceVersion20100801/operation/GetMetricData"

// Point is one datapoint: the start of its period and the statistic's value over it.
type Point struct {
	Time  time.Time
	Value float64
}

// APIError is an error answer: HTTP status, the modelled error shape, and the AWS Query
// error code the service sends alongside for query-compatible clients.
type APIError struct {
	Status    int
	Type      string // "com.amazonaws.cloudwatch#InvalidParameterValueException", or "" for an unmodelled error
	QueryCode string // "InvalidParameterValue"
	Message   string
}

// Errors as CloudWatch sends them.
var (
	Throttled    = APIError{Status: 400, Type: "ThrottlingException", QueryCode: "Throttling", Message: "Rate exceeded"}
	AccessDenied = APIError{Status: 400, Type: "AccessDeniedException", QueryCode: "AccessDenied", Message: "User: arn:aws:sts::123456789012:assumed-role/deployer/ci is not authorized to perform: cloudwatch:GetMetricData because no identity-based policy allows the cloudwatch:GetMetricData action"}
)

// Query is one MetricDataQuery the fake received, decoded.
type Query struct {
	ID, Expression                 string
	Namespace, MetricName, Stat    string
	Unit                           string
	Dimensions                     map[string]string
	Period                         int64
	ReturnData                     bool
	StartTime, EndTime             time.Time
	ScanBy                         string
	NextToken                      string
	Region, AccessKey, ContentType string
}

// Fake is the CloudWatch endpoint. Its zero value is not usable; call New.
type Fake struct {
	mu       sync.Mutex
	series   map[string][][]Point // by query key; an expression may have several
	labels   map[string][]string
	failures []APIError
	requests []Query
	// PageSize is the most datapoints one answer carries before it sets NextToken.
	PageSize int
}

// New is a fake with no metrics.
func New() *Fake {
	return &Fake{series: map[string][][]Point{}, labels: map[string][]string{}, PageSize: 100800}
}

// AddMetric makes the metric answer with points (by their period's start).
func (f *Fake) AddMetric(m metrics.MetricStat, points ...Point) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dims := map[string]string{}
	for _, d := range m.Dimensions {
		dims[d.Name] = d.Value
	}
	key := metricKey(m.Namespace, m.MetricName, m.Stat, dims)
	f.series[key] = [][]Point{points}
	f.labels[key] = []string{m.MetricName}
}

// AddExpression makes the metric-math expression answer with one time series per labels
// entry.
func (f *Fake) AddExpression(expr string, labels []string, series ...[]Point) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.series["expr:"+expr] = series
	f.labels["expr:"+expr] = labels
}

// FailNext makes the next requests answer with errs, one each.
func (f *Fake) FailNext(errs ...APIError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, errs...)
}

// Requests is every query received, in order.
func (f *Fake) Requests() []Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Query(nil), f.requests...)
}

// Every is points every step from start (inclusive) to end (exclusive) with value(i).
func Every(start, end time.Time, step time.Duration, value func(i int) float64) []Point {
	var out []Point
	for i, t := 0, start; t.Before(end); i, t = i+1, t.Add(step) {
		out = append(out, Point{Time: t, Value: value(i)})
	}
	return out
}

func metricKey(ns, name, stat string, dims map[string]string) string {
	var parts []string
	for k, v := range dims {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return ns + "|" + name + "|" + stat + "|" + strings.Join(parts, ",")
}

var credential = regexp.MustCompile(`Credential=([^/]+)/\d{8}/([^/]+)/monitoring/aws4_request`)

// ServeHTTP answers one GetMetricData request.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != operationPath || r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
		writeError(w, APIError{Status: 404, Type: "UnknownOperationException", Message: fmt.Sprintf("%s %s is not GetMetricData over rpc-v2-cbor", r.Method, r.URL.Path)})
		return
	}
	v, err := cbor.Decode(body)
	in, ok := v.(cbor.Map)
	if err != nil || !ok {
		writeError(w, APIError{Status: 400, Type: "SerializationException", Message: fmt.Sprintf("not a CBOR map: %v", err)})
		return
	}
	q, err := decodeRequest(in)
	if err != nil {
		writeError(w, APIError{Status: 400, Type: "com.amazonaws.cloudwatch#InvalidParameterValueException", QueryCode: "InvalidParameterValue", Message: err.Error()})
		return
	}
	if m := credential.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		q.AccessKey, q.Region = m[1], m[2]
	}
	q.ContentType = r.Header.Get("Content-Type")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, q)
	if len(f.failures) > 0 {
		e := f.failures[0]
		f.failures = f.failures[1:]
		writeError(w, e)
		return
	}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.Write(cbor.Encode(f.answer(q)))
}

// answer is the GetMetricData output for q: the datapoints of [StartTime, EndTime) on the
// period grid, a page at a time.
func (f *Fake) answer(q Query) cbor.Map {
	key := "expr:" + q.Expression
	if q.Expression == "" {
		key = metricKey(q.Namespace, q.MetricName, q.Stat, q.Dimensions)
	}
	skip := 0
	fmt.Sscanf(q.NextToken, "page-%d", &skip)
	var results cbor.List
	sent, more := 0, false
	for i, series := range f.series[key] {
		var ts, vals cbor.List
		for _, p := range series {
			if p.Time.Before(q.StartTime) || !p.Time.Before(q.EndTime) || p.Time.Unix()%q.Period != 0 {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			if sent == f.PageSize {
				more = true
				break
			}
			ts = append(ts, &cbor.Tag{ID: 1, Value: cbor.Float64(float64(p.Time.UnixMilli()) / 1e3)})
			vals = append(vals, cbor.Float64(p.Value))
			sent++
		}
		status := "Complete"
		if more {
			status = "PartialData"
		}
		results = append(results, cbor.Map{
			"Id": cbor.String(q.ID), "Label": cbor.String(f.labels[key][i]),
			"Timestamps": ts, "Values": vals, "StatusCode": cbor.String(status),
		})
		if more {
			break
		}
	}
	if len(results) == 0 { // CloudWatch answers an unknown metric with an empty result
		results = cbor.List{cbor.Map{"Id": cbor.String(q.ID), "Label": cbor.String(q.MetricName),
			"Timestamps": cbor.List{}, "Values": cbor.List{}, "StatusCode": cbor.String("Complete")}}
	}
	out := cbor.Map{"MetricDataResults": results, "Messages": cbor.List{}}
	if more {
		done := 0
		fmt.Sscanf(q.NextToken, "page-%d", &done)
		out["NextToken"] = cbor.String(fmt.Sprintf("page-%d", done+sent))
	}
	return out
}

func writeError(w http.ResponseWriter, e APIError) {
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if e.QueryCode != "" {
		w.Header().Set("X-Amzn-Query-Error", e.QueryCode+";Sender")
	}
	w.WriteHeader(e.Status)
	w.Write(cbor.Encode(cbor.Map{"__type": cbor.String(e.Type), "message": cbor.String(e.Message)}))
}

func decodeRequest(in cbor.Map) (Query, error) {
	var q Query
	queries, _ := in["MetricDataQueries"].(cbor.List)
	if len(queries) != 1 {
		return q, fmt.Errorf("the fake takes exactly one MetricDataQuery, got %d", len(queries))
	}
	mq, _ := queries[0].(cbor.Map)
	q.ID = str(mq["Id"])
	q.Expression = str(mq["Expression"])
	q.ReturnData = mq["ReturnData"] == cbor.Bool(true)
	q.Period, _ = cbor.AsInt64(mq["Period"])
	if ms, ok := mq["MetricStat"].(cbor.Map); ok {
		metric, _ := ms["Metric"].(cbor.Map)
		q.Namespace, q.MetricName = str(metric["Namespace"]), str(metric["MetricName"])
		q.Dimensions = map[string]string{}
		dims, _ := metric["Dimensions"].(cbor.List)
		for _, d := range dims {
			dm, _ := d.(cbor.Map)
			q.Dimensions[str(dm["Name"])] = str(dm["Value"])
		}
		q.Stat, q.Unit = str(ms["Stat"]), str(ms["Unit"])
		q.Period, _ = cbor.AsInt64(ms["Period"])
	}
	var err error
	if q.StartTime, err = cbor.AsTime(in["StartTime"]); err != nil {
		return q, fmt.Errorf("StartTime: %v", err)
	}
	if q.EndTime, err = cbor.AsTime(in["EndTime"]); err != nil {
		return q, fmt.Errorf("EndTime: %v", err)
	}
	q.ScanBy, q.NextToken = str(in["ScanBy"]), str(in["NextToken"])
	switch {
	case q.ID == "" || !regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`).MatchString(q.ID):
		return q, fmt.Errorf("the value %q for parameter MetricDataQueries.member.1.Id is invalid", q.ID)
	case q.Period <= 0 || (q.Period%60 != 0 && q.Period != 1 && q.Period != 5 && q.Period != 10 && q.Period != 20 && q.Period != 30):
		return q, fmt.Errorf("the parameter MetricDataQueries.member.1.Period must be 1, 5, 10, 20, 30, or a multiple of 60")
	case !q.StartTime.Before(q.EndTime):
		return q, fmt.Errorf("the parameter StartTime must be less than the parameter EndTime")
	case (q.Expression == "") == (q.Namespace == ""):
		return q, fmt.Errorf("exactly one of Expression and MetricStat must be given")
	}
	return q, nil
}

func str(v cbor.Value) string {
	s, _ := v.(cbor.String)
	return string(s)
}

// Server starts the fake on a loopback httptest server, closed when the test ends.
func (f *Fake) Server(t testing.TB) *httptest.Server {
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return ts
}

// Transport answers requests by calling the fake directly, with no network: for tests that
// run the SDK inside a testing/synctest bubble.
func (f *Fake) Transport() http.RoundTripper { return handlerTransport{f} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// IsolateAWS gives the test an AWS environment of its own: static test credentials, no
// shared files, no region, no endpoint override, no instance metadata.
func IsolateAWS(t testing.TB) {
	t.Helper()
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDPERCHTEST0000002")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "perch-test-secret-key-not-a-real-one")
}

// Constant is value(i) = v, for Every.
func Constant(v float64) func(int) float64 { return func(int) float64 { return v } }
