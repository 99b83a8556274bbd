// Package cloudwatch answers perch's metric queries from Amazon CloudWatch with
// GetMetricData: a check's query is a metric (namespace, name, dimensions, statistic) or a
// metric-math expression, sampled once per analysis interval.
package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/perchhq/perch/internal/awsconf"
	"github.com/perchhq/perch/metrics"
)

// Config says which CloudWatch to ask.
type Config struct {
	Region  string // empty: the default chain's region (AWS_REGION, the profile's region)
	Profile string // AWS shared-config profile (--aws-profile); empty: the default chain
}

// API is the part of the CloudWatch client the source uses.
type API interface {
	GetMetricData(context.Context, *cw.GetMetricDataInput, ...func(*cw.Options)) (*cw.GetMetricDataOutput, error)
}

// Source answers metric queries from CloudWatch.
type Source struct {
	api    API
	region string
}

// New loads AWS credentials and settings the way the AWS CLI does (environment, shared
// config and credentials files with cfg.Profile, SSO, IMDS; AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_CLOUDWATCH) and makes a source. optFns adjust the client.
func New(ctx context.Context, cfg Config, optFns ...func(*cw.Options)) (*Source, error) {
	awsCfg, err := awsconf.Load(ctx, cfg.Region, cfg.Profile)
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		return nil, errors.New("no AWS region for CloudWatch: set metrics.cloudwatch.region, AWS_REGION, or a region in the AWS profile")
	}
	return &Source{api: cw.NewFromConfig(awsCfg, optFns...), region: awsCfg.Region}, nil
}

// queryID names perch's one query in a request; CloudWatch wants a lower-case first letter.
const queryID = "perch"

// Samples returns one value per step-long period of the window: the metric's statistic (or
// the expression's value) over that period, stamped with the period's end, as a Prometheus
// range query stamps each point with the end of what it measured. Only periods that lie
// inside (start-step, end] and have ended count. Periods without datapoints are left out;
// when none has any, the error is metrics.ErrNoData.
func (s *Source) Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	period, err := periodOf(step)
	if err != nil {
		return nil, err
	}
	from := ceil(start.Add(-step), step)
	to := end.Truncate(step)
	if !from.Before(to) {
		return nil, metrics.ErrNoData // no whole period in the window yet
	}
	query, err := dataQuery(q, period)
	if err != nil {
		return nil, err
	}
	in := &cw.GetMetricDataInput{
		MetricDataQueries: []types.MetricDataQuery{query},
		StartTime:         aws.Time(from), EndTime: aws.Time(to),
		ScanBy: types.ScanByTimestampAscending,
	}
	series, notes, err := s.fetch(ctx, q, in)
	if err != nil {
		return nil, err
	}
	if len(series) > 1 {
		return nil, fmt.Errorf("CloudWatch %s returns %d time series (%s); perch compares one per side: aggregate them (e.g. SUM(...)) or narrow the query",
			describe(q), len(series), strings.Join(slices.Sorted(maps.Keys(series)), ", "))
	}
	var out []metrics.Sample
	for _, points := range series {
		for ts, v := range points {
			if at := ts.Add(step); !at.After(end) && !at.Before(start) {
				out = append(out, metrics.Sample{Time: at, Value: v})
			}
		}
	}
	if len(out) == 0 {
		if len(notes) > 0 {
			return nil, fmt.Errorf("%w (CloudWatch: %s)", metrics.ErrNoData, strings.Join(notes, "; "))
		}
		return nil, metrics.ErrNoData
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// fetch runs the query through every page and returns its datapoints by series label, with
// the messages CloudWatch attached.
func (s *Source) fetch(ctx context.Context, q metrics.Query, in *cw.GetMetricDataInput) (map[string]map[time.Time]float64, []string, error) {
	series := map[string]map[time.Time]float64{} // an expression may return several
	var notes []string
	for {
		out, err := s.api.GetMetricData(ctx, in)
		if err != nil {
			return nil, nil, s.explain(q, err)
		}
		for _, m := range out.Messages {
			notes = append(notes, aws.ToString(m.Code)+": "+aws.ToString(m.Value))
		}
		for _, r := range out.MetricDataResults {
			if aws.ToString(r.Id) != queryID {
				continue
			}
			if err := resultError(r); err != nil {
				return nil, nil, fmt.Errorf("CloudWatch %s: %w", describe(q), err)
			}
			label := aws.ToString(r.Label)
			if series[label] == nil {
				series[label] = map[time.Time]float64{}
			}
			for i, ts := range r.Timestamps {
				if i < len(r.Values) {
					series[label][ts] = r.Values[i]
				}
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return series, notes, nil
		}
		in.NextToken = out.NextToken
	}
}

// periodOf is step as a CloudWatch period: 1, 5, 10, 20 or 30 seconds (high-resolution
// metrics) or a multiple of 60.
func periodOf(step time.Duration) (int32, error) {
	secs := int64(step / time.Second)
	if time.Duration(secs)*time.Second != step || secs <= 0 ||
		(secs%60 != 0 && !slices.Contains([]int64{1, 5, 10, 20, 30}, secs)) {
		return 0, fmt.Errorf("CloudWatch cannot sample every %s: make analysis.interval 1s, 5s, 10s, 20s, 30s or a whole number of minutes", step)
	}
	return int32(secs), nil
}

// ceil rounds t up to a multiple of d.
func ceil(t time.Time, d time.Duration) time.Time {
	if r := t.Truncate(d); r.Before(t) {
		return r.Add(d)
	}
	return t
}

func dataQuery(q metrics.Query, period int32) (types.MetricDataQuery, error) {
	dq := types.MetricDataQuery{Id: aws.String(queryID), ReturnData: aws.Bool(true)}
	switch {
	case q.Metric != nil:
		m := q.Metric
		stat := &types.MetricStat{
			Metric: &types.Metric{Namespace: aws.String(m.Namespace), MetricName: aws.String(m.MetricName)},
			Period: aws.Int32(period), Stat: aws.String(m.Stat),
		}
		for _, d := range m.Dimensions {
			stat.Metric.Dimensions = append(stat.Metric.Dimensions, types.Dimension{Name: aws.String(d.Name), Value: aws.String(d.Value)})
		}
		if m.Unit != "" {
			stat.Unit = types.StandardUnit(m.Unit)
		}
		dq.MetricStat = stat
	case q.Expr != "":
		dq.Expression, dq.Period = aws.String(q.Expr), aws.Int32(period)
	default:
		return dq, errors.New("CloudWatch: empty query")
	}
	return dq, nil
}

// resultError is the error a result's status reports, if any.
func resultError(r types.MetricDataResult) error {
	var msgs []string
	for _, m := range r.Messages {
		msgs = append(msgs, aws.ToString(m.Code)+": "+aws.ToString(m.Value))
	}
	detail := ""
	if len(msgs) > 0 {
		detail = " (" + strings.Join(msgs, "; ") + ")"
	}
	switch r.StatusCode {
	case types.StatusCodeForbidden:
		return fmt.Errorf("not allowed to read this metric%s", detail)
	case types.StatusCodeInternalError:
		return fmt.Errorf("CloudWatch failed to compute it%s", detail)
	}
	return nil
}

// describe is the query in a few words for messages: the expression, or
// "AWS/ApplicationELB TargetResponseTime p99 {LoadBalancer=app/checkout/…}".
func describe(q metrics.Query) string {
	if q.Metric == nil {
		return fmt.Sprintf("expression %q", q.Expr)
	}
	m := q.Metric
	s := m.Namespace + " " + m.MetricName + " " + m.Stat
	if len(m.Dimensions) > 0 {
		var dims []string
		for _, d := range m.Dimensions {
			dims = append(dims, d.Name+"="+d.Value)
		}
		s += " {" + strings.Join(dims, ", ") + "}"
	}
	return s
}
