package proxyd

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/providers/proxy/admin"
)

// TestStoredSegmentsRoute: segments set through the admin API send their requests to the
// canary at any weight, survive a restart and a reload, and go when cleared.
func TestStoredSegmentsRoute(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file())
	ctx := context.Background()
	c := w.client(d, "")
	employees := segment.Segment{Name: "employees", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-Employee", Value: "true"}}}
	eu := segment.Segment{Name: "eu", Match: segment.Match{Cookie: &segment.CookieMatch{Name: "region", Value: "eu"}}}
	if err := c.RouteSegments(ctx, []segment.Segment{employees, eu}); err != nil {
		t.Fatal(err)
	}
	if names, err := c.RoutedSegments(ctx); err != nil || !reflect.DeepEqual(names, []string{"employees", "eu"}) {
		t.Errorf("RoutedSegments = %q, %v", names, err)
	}
	check := func(d *Daemon, when string) {
		t.Helper()
		for _, tc := range []struct {
			header map[string]string
			want   string
		}{
			{map[string]string{"X-Employee": "true"}, "canary"},
			{map[string]string{"Cookie": "region=eu"}, "canary"},
			{map[string]string{"X-Employee": "no"}, "stable"},
			{nil, "stable"},
		} {
			if _, body := get(t, d, tc.header); body != tc.want {
				t.Errorf("%s, at 0%%: %v reached %s, want %s", when, tc.header, body, tc.want)
			}
		}
	}
	check(d, "set")
	stop(d)
	d = w.start(w.file())
	check(d, "restarted")
	if err := d.Reload(w.config(w.file("timeouts: {idle: 30s}"))); err != nil {
		t.Fatal(err)
	}
	check(d, "reloaded")
	c = w.client(d, "")
	if err := c.RouteSegments(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, d, map[string]string{"X-Employee": "true"}); body != "stable" {
		t.Errorf("cleared: an employee reached %s", body)
	}
}

func TestSegmentsMustRoute(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file())
	c := w.client(d, "")
	for match, want := range map[string]string{
		`{"header": {"name": "X-A"}}`:                       "segments[0].match.header: give value (exact) or regex",
		`{"header": {"name": "X-A", "regex": "("}}`:         "segments[0].match.header.regex: error parsing regexp",
		`{"region": "eu"}`:                                  `segments[0].match: json: unknown field "region"`,
		`{"cookie": {"name": "a", "value": "x y"}}`:         "segments[0].match.cookie.value",
		`{"header": {"name": "X-A", "value": "1"}, "x": 1}`: `unknown field "x"`,
	} {
		_, err := c.SetSegments(context.Background(), []admin.Segment{{Name: "a", Match: []byte(match)}})
		if err == nil || !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), want) {
			t.Errorf("match %s: %v, want a 400 saying %q", match, err, want)
		}
	}
}
