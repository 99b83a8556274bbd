package proxy_test

import (
	"runtime/debug"
	"testing"

	"github.com/perchhq/perch/providers/proxy"
)

func TestTuneGCYieldsToGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	proxy.TuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != proxy.GCPercent {
		t.Errorf("without GOGC: GC percent %d, want %d", got, proxy.GCPercent)
	}
	proxy.TuneGC(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC=100: GC percent %d, want the operator's 100", got)
	}
}
