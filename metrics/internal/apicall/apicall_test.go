package apicall_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/metrics/internal/apicall"
	"github.com/perchhq/perch/metrics/internal/apicall/apitest"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		header, value string
		want          time.Duration
	}{
		{"Retry-After", "7", 7 * time.Second},
		{"Retry-After", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"Retry-After", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"Retry-After", "soon", 0},
		{"Retry-After", "99999999999999", 0},
		{"X-RateLimit-Reset", "12", 12 * time.Second},
	} {
		h := http.Header{}
		h.Set(tt.header, tt.value)
		if got := apicall.RetryAfter(h, now); got != tt.want {
			t.Errorf("%s: %s → %s, want %s", tt.header, tt.value, got, tt.want)
		}
	}
}

// TestMaxBytes: an answer of exactly the limit is read whole; one byte more fails, rather
// than being cut short.
func TestMaxBytes(t *testing.T) {
	for size, wantErr := range map[int]bool{100: false, 101: true} {
		body := strings.Repeat("x", size)
		limits := apicall.Limits{MaxBytes: 100, Transport: apitest.Transport(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, body)
		}))}
		resp, err := limits.Client().Get("http://metrics.example/")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case wantErr && !errors.Is(err, apicall.ErrTooLarge):
			t.Errorf("%d bytes: %v, want ErrTooLarge", size, err)
		case !wantErr && (err != nil || len(got) != size):
			t.Errorf("%d bytes: read %d, %v", size, len(got), err)
		}
	}
}

// TestRetryStopsAtTheDeadline: a rate limit asking for longer than the look has left fails at
// once, saying the next look asks again.
func TestRetryStopsAtTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	calls := 0
	err := apicall.Limits{}.Retry(ctx, func() error {
		calls++
		return &apicall.StatusError{API: "x", Status: http.StatusTooManyRequests, RetryAfter: 5 * time.Second}
	})
	if calls != 1 || err == nil || !strings.Contains(err.Error(), "the next look asks again") {
		t.Errorf("%d calls, %v: want one call and an error for this look", calls, err)
	}
}
