package tui

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// bigState is a rollout with 12 checks, 600 looks into a long step, folded from events.
func bigState(tb testing.TB) (engine.State, time.Time) {
	var b strings.Builder
	b.WriteString(`name: big-api
traffic: {istio: {virtualService: big, stable: {host: big, subset: stable}, canary: {host: big, subset: canary}}}
metrics: {prometheus: {address: http://prometheus:9090}}
analysis: {interval: 30s, stabilization: 1m, judge: threshold}
checks:
`)
	for i := range 12 {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "  - {name: latency_%d, canary: 'l%d{version=\"canary\"}', baseline: 'l%d{version=\"stable\"}', direction: lower_is_better, maxDeviationPercent: 15, unit: s}\n", i, i, i)
		case 1:
			fmt.Fprintf(&b, "  - {name: errors_%d, direction: lower_is_better, maxIncrease: 0.005, critical: true, events: {canary: e%d, baseline: e%d}, total: {canary: t%d, baseline: t%d}}\n", i, i, i, i, i)
		default:
			fmt.Fprintf(&b, "  - {name: throughput_%d, canary: 'r%d{version=\"canary\"}', baseline: 'r%d{version=\"stable\"}', direction: higher_is_better, maxDeviationPercent: 20, unit: req/s}\n", i, i, i)
		}
	}
	b.WriteString("steps:\n  - {setWeight: 5, analyze: 6h}\n  - {setWeight: 50, analyze: 6h}\n")
	rollout, err := spec.Parse("big.yaml", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	s := newSimSpec(tb, rollout).start()
	s.lookN(600, healthy)
	return s.st, s.now.Add(10 * time.Second)
}

// BenchmarkView draws a whole frame (no reuse of the last one) with a true-colour profile, so
// styles cost what they cost in a real terminal. A frame reuses the check charts drawn for the
// same looks, as the clock's redraws do between looks; the new-look cases draw every chart
// afresh, as the first frame after a look does. At 240×60 the 12 checks are in two columns
// with a chart each.
func BenchmarkView(b *testing.B) {
	st, now := bigState(b)
	for _, c := range []struct {
		w, h    int
		newLook bool
	}{{120, 40, false}, {240, 60, false}, {240, 60, true}} {
		size := [2]int{c.w, c.h}
		name := fmt.Sprintf("%dx%d", size[0], size[1])
		if c.newLook {
			name += "/new-look"
		}
		b.Run(name, func(b *testing.B) {
			r := lipgloss.NewRenderer(io.Discard)
			r.SetColorProfile(termenv.TrueColor)
			m := New(Options{Snapshots: newFakeSnapshots(st), Commander: &fakeCommander{}, Renderer: r,
				Actor: engine.Actor{Name: "alice", Role: engine.RoleOperator}, Clock: func() time.Time { return now }, Location: time.UTC})
			m.Update(windowSize(size[0], size[1]))
			m.Update(snapshotMsg{st: st, ok: true})
			if got := len(m.st.Checks[0].History); got != 600 {
				b.Fatalf("history has %d points, want 600", got)
			}
			b.ReportAllocs()
			for b.Loop() {
				m.dirty = true
				if c.newLook {
					clear(m.charts)
				}
				_ = m.View()
			}
		})
	}
}

func windowSize(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }

// BenchmarkDetailView draws the detail view of a check of bigState at 240×60: its charts of
// the step fill the screen's width.
func BenchmarkDetailView(b *testing.B) {
	st, now := bigState(b)
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor)
	m := New(Options{Snapshots: newFakeSnapshots(st), Commander: &fakeCommander{}, Renderer: r,
		Actor: engine.Actor{Name: "alice", Role: engine.RoleOperator}, Clock: func() time.Time { return now }, Location: time.UTC})
	m.Update(windowSize(240, 60))
	m.Update(snapshotMsg{st: st, ok: true})
	m.openDetail()
	b.ReportAllocs()
	for b.Loop() {
		m.dirty = true
		clear(m.charts)
		_ = m.View()
	}
}
