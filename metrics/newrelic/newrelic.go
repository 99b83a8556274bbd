// Package newrelic answers perch's metric queries with NRQL, run through New Relic's NerdGraph
// (GraphQL) API: a check's query is a NRQL SELECT of one value, which perch asks for as a
// TIMESERIES of the analysis interval over the window.
//
// References: https://docs.newrelic.com/docs/apis/nerdgraph/examples/nerdgraph-nrql-tutorial/
// (the request and its results), https://docs.newrelic.com/docs/apis/nerdgraph/get-started/introduction-new-relic-nerdgraph/
// (endpoints, the API-Key header), https://docs.newrelic.com/docs/nrql/nrql-syntax-clauses-functions/
// (SINCE and UNTIL with epoch milliseconds, TIMESERIES and its 366-bucket limit).
package newrelic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/internal/apicall"
	"github.com/perchhq/perch/metrics/internal/window"
)

// The NerdGraph endpoints of New Relic's two regions.
const (
	USEndpoint = "https://api.newrelic.com"
	EUEndpoint = "https://api.eu.newrelic.com"
)

// maxBuckets is the most buckets one NRQL TIMESERIES query returns; a longer window is asked
// in parts.
const maxBuckets = 366

// Config says which account to ask and how.
type Config struct {
	AccountID int
	// APIKey is a user key (NRAK-…), sent as the API-Key header.
	APIKey string
	// Region is "US" or "EU" (empty: US); it picks the endpoint.
	Region string
	// Address replaces the region's endpoint (scheme://host, perhaps with a path prefix):
	// a proxy, or a test server. /graphql is appended.
	Address string
	Limits  apicall.Limits
}

// Source runs NRQL queries in one account. It is safe for concurrent use.
type Source struct {
	account  int
	key      string
	endpoint string
	client   *http.Client
	limits   apicall.Limits
}

// New checks cfg and makes a source; it does not call New Relic.
func New(cfg Config) (*Source, error) {
	if cfg.AccountID <= 0 {
		return nil, fmt.Errorf("New Relic account id %d: want a positive number", cfg.AccountID)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("New Relic: no API key")
	}
	base := cfg.Address
	switch {
	case base != "":
	case strings.EqualFold(cfg.Region, "EU"):
		base = EUEndpoint
	case cfg.Region == "" || strings.EqualFold(cfg.Region, "US"):
		base = USEndpoint
	default:
		return nil, fmt.Errorf("New Relic region %q: want US or EU", cfg.Region)
	}
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("New Relic address %q: want https://HOST", base)
	}
	return &Source{account: cfg.AccountID, key: cfg.APIKey, endpoint: strings.TrimRight(base, "/") + "/graphql",
		client: cfg.Limits.Client(), limits: cfg.Limits}, nil
}

// String names the account and endpoint, for perch traffic and validate --check-access.
func (s *Source) String() string {
	return fmt.Sprintf("New Relic account %d at %s", s.account, s.endpoint)
}

// clauses finds the clauses perch adds itself, outside quoted strings.
var clauses = regexp.MustCompile(`(?i)\b(SINCE|UNTIL|TIMESERIES|COMPARE\s+WITH)\b`)

// quoted matches NRQL's quoted strings and backquoted names.
var quoted = regexp.MustCompile("'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")

// CheckQuery says what is wrong with a check's NRQL, or "" when nothing is: perch adds SINCE,
// UNTIL and TIMESERIES itself, so the query may not have them.
func CheckQuery(nrql string) string {
	if m := clauses.FindString(quoted.ReplaceAllString(nrql, "''")); m != "" {
		return fmt.Sprintf("the query has %s: perch adds SINCE, UNTIL and TIMESERIES itself to ask for the analysis window", strings.ToUpper(m))
	}
	if strings.TrimSpace(nrql) == "" {
		return "empty NRQL query"
	}
	return ""
}

// Samples runs q.Expr over the step-long buckets that end inside [start, end] and returns one
// sample per bucket that has a value, stamped with the bucket's end (as a Prometheus range
// query stamps each point with the end of what it measured). A bucket whose value is null
// (an average of nothing) is left out; when none has a value the error is metrics.ErrNoData.
// The query must select one value: a FACET, or several values, is an error.
func (s *Source) Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	switch {
	case q.Metric != nil:
		return nil, fmt.Errorf("%s: the newRelic source answers NRQL, not CloudWatch metrics", q)
	case CheckQuery(q.Expr) != "":
		return nil, fmt.Errorf("NRQL %q: %s", q.Expr, CheckQuery(q.Expr))
	case step < time.Second || step%time.Second != 0:
		return nil, fmt.Errorf("NRQL %q: TIMESERIES buckets are whole seconds; analysis.interval is %s", q.Expr, step)
	}
	from, to, ok := window.Buckets(start, end, step)
	if !ok {
		return nil, fmt.Errorf("NRQL %q: %w (no whole interval in the window yet)", q.Expr, metrics.ErrNoData)
	}
	var out []metrics.Sample
	for part := from; part.Before(to); part = part.Add(maxBuckets * step) {
		until := part.Add(maxBuckets * step)
		if until.After(to) {
			until = to
		}
		samples, err := s.run(ctx, q.Expr, part, until, step)
		if err != nil {
			return nil, err
		}
		out = append(out, samples...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("NRQL %q: %w between %s and %s", q.Expr, metrics.ErrNoData, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return out, nil
}

// graphQL is NerdGraph's query for one NRQL query's results. The NRQL and the account go as
// variables, so nothing in them is read as GraphQL.
const graphQL = `query($accountId: Int!, $nrql: Nrql!) { actor { account(id: $accountId) { nrql(query: $nrql, timeout: %d) { results } } } }`

// request is a GraphQL request body.
type request struct {
	Query     string         `json:"query"`
	Variables map[string]any `json:"variables"`
}

// answer is NerdGraph's answer to graphQL.
type answer struct {
	Data *struct {
		Actor *struct {
			Account *struct {
				NRQL *struct {
					Results []map[string]json.RawMessage `json:"results"`
				} `json:"nrql"`
			} `json:"account"`
		} `json:"actor"`
	} `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// run asks for the buckets between from and to.
func (s *Source) run(ctx context.Context, expr string, from, to time.Time, step time.Duration) ([]metrics.Sample, error) {
	nrql := fmt.Sprintf("%s SINCE %d UNTIL %d TIMESERIES %d SECONDS", strings.TrimSpace(expr), from.UnixMilli(), to.UnixMilli(), int64(step/time.Second))
	body, err := json.Marshal(request{
		Query:     fmt.Sprintf(graphQL, timeoutSeconds(ctx)),
		Variables: map[string]any{"accountId": s.account, "nrql": nrql},
	})
	if err != nil {
		return nil, err
	}
	var data []byte
	err = s.limits.Retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("API-Key", s.key)
		data, err = apicall.Do(s.client, req, "New Relic", errorMessages)
		return err
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return nil, fmt.Errorf("NRQL %q: %w", expr, err)
	}
	var a answer
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("NRQL %q: New Relic's answer is not NerdGraph's JSON: %v", expr, err)
	}
	if msg := errorMessages(data); msg != "" {
		return nil, fmt.Errorf("NRQL %q: New Relic: %s", expr, msg)
	}
	if a.Data == nil || a.Data.Actor == nil || a.Data.Actor.Account == nil || a.Data.Actor.Account.NRQL == nil {
		return nil, fmt.Errorf("NRQL %q: New Relic answered no results for account %d", expr, s.account)
	}
	return samples(expr, a.Data.Actor.Account.NRQL.Results, from, to)
}

// errorMessages reads a GraphQL answer's errors into one printable line, or "".
func errorMessages(body []byte) string {
	var a answer
	if json.Unmarshal(body, &a) != nil || len(a.Errors) == 0 {
		return ""
	}
	var msgs []string
	for i, e := range a.Errors {
		if i == 3 {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(a.Errors)-i))
			break
		}
		msgs = append(msgs, e.Message)
	}
	msg := printable.Line(strings.Join(msgs, "; "))
	if r := []rune(msg); len(r) > 300 {
		msg = string(r[:300]) + "…"
	}
	return msg
}

// timeoutSeconds is how long NerdGraph may run the query: what is left of ctx, from 1 to
// the 120 seconds NerdGraph allows, and 30 without a deadline.
func timeoutSeconds(ctx context.Context) int {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 30
	}
	return int(min(max(time.Until(deadline)/time.Second, 1), 120))
}

// samples reads TIMESERIES rows: beginTimeSeconds, endTimeSeconds and one value, which may
// be a number, null, or (for percentile) an object holding one number.
func samples(expr string, rows []map[string]json.RawMessage, from, to time.Time) ([]metrics.Sample, error) {
	var out []metrics.Sample
	for _, row := range rows {
		if _, ok := row["facet"]; ok {
			return nil, fmt.Errorf("NRQL %q has a FACET: perch compares one value per side; narrow it with WHERE instead", expr)
		}
		var endSecs float64
		if err := json.Unmarshal(row["endTimeSeconds"], &endSecs); err != nil || row["endTimeSeconds"] == nil {
			return nil, fmt.Errorf("NRQL %q: a result has no endTimeSeconds: is it a TIMESERIES answer?", expr)
		}
		var names []string
		for k := range row {
			if k != "beginTimeSeconds" && k != "endTimeSeconds" {
				names = append(names, k)
			}
		}
		if len(names) != 1 {
			sort.Strings(names)
			return nil, fmt.Errorf("NRQL %q selects %d values (%s): select one", expr, len(names), printable.Line(strings.Join(names, ", ")))
		}
		v, ok, err := value(row[names[0]])
		if err != nil {
			return nil, fmt.Errorf("NRQL %q: %s: %v", expr, printable.Line(names[0]), err)
		}
		at := time.Unix(0, int64(endSecs*float64(time.Second))).UTC()
		if !ok || at.After(to) || !at.After(from) {
			continue
		}
		out = append(out, metrics.Sample{Time: at, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// value reads a result's value: a number, null (no value), or an object with one number in it
// (percentile(x, 99) answers {"99": 0.5}).
func value(raw json.RawMessage) (float64, bool, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, false, err
	}
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, inner := range m {
			v = inner
		}
	}
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false, nil
		}
		return x, true, nil
	}
	return 0, false, fmt.Errorf("want a number, got %s", printable.Line(string(raw)))
}
