package proxy_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/providers/proxy"
)

var (
	employees = segment.Segment{Name: "employees", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-Employee", Value: "true"}}}
	beta      = segment.Segment{Name: "beta", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-User", Regex: "beta-[0-9]+"}}}
	eu        = segment.Segment{Name: "eu", Match: segment.Match{Cookie: &segment.CookieMatch{Name: "region", Value: "eu"}}}
)

// TestSegmentsGoWhollyToTheCanary: a request in a routed segment reaches the canary whatever
// the weight, before the split; the rest are split as before; an override still pins.
func TestSegmentsGoWhollyToTheCanary(t *testing.T) {
	f := start(t, proxy.Config{StickyHeader: "X-User", OverrideHeader: "X-Canary", OverrideToken: "s3cret"})
	ctx := context.Background()
	if err := f.proxy.RouteSegments(ctx, []segment.Segment{employees, beta, eu}); err != nil {
		t.Fatal(err)
	}
	if names, err := f.proxy.RoutedSegments(ctx); err != nil || !reflect.DeepEqual(names, []string{"employees", "beta", "eu"}) {
		t.Errorf("RoutedSegments = %q, %v", names, err)
	}
	for _, weight := range []int{0, 50} {
		f.setWeight(t, weight)
		for _, tc := range []struct {
			header http.Header
			want   string
		}{
			{http.Header{"X-Employee": {"true"}}, "canary"},
			{http.Header{"X-User": {"beta-7"}}, "canary"},
			{http.Header{"Cookie": {"session=1; region=eu"}}, "canary"},
			{http.Header{"X-Employee": {"true"}, "X-Canary": {"stable"}, "X-Perch-Token": {"s3cret"}}, "stable"},
		} {
			if _, body := f.get(t, "/", tc.header); body != tc.want {
				t.Errorf("at %d%% %v reached %s, want %s", weight, tc.header, body, tc.want)
			}
		}
	}
	f.setWeight(t, 0)
	for _, h := range []http.Header{{"X-Employee": {"false"}}, {"X-User": {"beta-7x"}}, {"Cookie": {"region=us"}}, {}} {
		if _, body := f.get(t, "/", h); body != "stable" {
			t.Errorf("at 0%% %v reached %s, want stable", h, body)
		}
	}
	// Removing the segments leaves the split alone.
	if err := f.proxy.RouteSegments(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, body := f.get(t, "/", http.Header{"X-Employee": {"true"}}); body != "stable" {
		t.Errorf("after removing the segments an employee reached %s at 0%%", body)
	}
	if names, _ := f.proxy.RoutedSegments(ctx); len(names) != 0 {
		t.Errorf("RoutedSegments after removal = %q", names)
	}
}

func TestRouteSegmentsRefusesBadOnes(t *testing.T) {
	p, err := proxy.New(proxy.Config{Stable: "http://127.0.0.1:1", Canary: "http://127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p.RouteSegments(ctx, []segment.Segment{employees})
	err = p.RouteSegments(ctx, []segment.Segment{{Name: "bad", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X", Regex: "("}}}})
	if err == nil || !strings.Contains(err.Error(), "match.header.regex") {
		t.Errorf("a bad regex: %v", err)
	}
	if names, _ := p.RoutedSegments(ctx); !reflect.DeepEqual(names, []string{"employees"}) {
		t.Errorf("a refused change replaced the segments: %q", names)
	}
}

// TestReconfiguredKeepsSegments: a reload of a long-lived proxy keeps routing its segments.
func TestReconfiguredKeepsSegments(t *testing.T) {
	cfg := proxy.Config{Stable: backend(t, "stable").URL, Canary: backend(t, "canary").URL}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.RouteSegments(context.Background(), []segment.Segment{employees})
	next, err := p.Reconfigured(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := next.RoutedSegments(context.Background()); !reflect.DeepEqual(names, []string{"employees"}) {
		t.Errorf("reconfigured proxy routes %q", names)
	}
}
