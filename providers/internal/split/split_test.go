package split_test

import (
	"strings"
	"testing"

	"github.com/perchhq/perch/providers/internal/split"
)

func TestPercent(t *testing.T) {
	tests := []struct {
		name           string
		canary, stable int64
		want           int
		wantErr        string
	}{
		{name: "exact", canary: 25, stable: 75, want: 25},
		{name: "relative weights", canary: 1, stable: 1, want: 50},
		{name: "rounds to nearest", canary: 1, stable: 2, want: 33},
		{name: "rounds half up", canary: 1, stable: 199, want: 1},
		{name: "all canary", canary: 3, stable: 0, want: 100},
		{name: "nowhere", wantErr: "both weights are 0"},
		{name: "negative", canary: -1, stable: 5, wantErr: "negative weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := split.Percent(tt.canary, tt.stable)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Percent(%d, %d) = %d, %v; want %d", tt.canary, tt.stable, got, err, tt.want)
			}
		})
	}
}
