package tui

import (
	"slices"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/internal/printable"
)

// printable is st with every text perch did not write itself made printable (reasons,
// errors, actor names, check names and verdict reasons, from alerts, providers, metrics
// sources, SSH keys or a hand-edited journal), so nothing the view draws can move the cursor,
// retitle or clear the terminal, write its clipboard or forge a line. States are shared with
// every other viewer, so what changes is copied; a clean state is returned as it is.
func (m *Model) printable(st engine.State) engine.State {
	st = printableState(st)
	st.Log = m.logFix.log(st.Log)
	return st
}

// logFixes makes event logs printable, looking at each event once: events never change once
// recorded, and every log a view gets is a window onto one sequence of them.
type logFixes struct {
	scanned int64                  // every event up to this Seq has been looked at
	fixed   map[int64]engine.Event // the printable copies of those that needed one, by Seq
}

func (f *logFixes) log(log []engine.Event) []engine.Event {
	if len(log) == 0 {
		return log
	}
	if newest := log[len(log)-1].Seq; newest < f.scanned { // a replay went back: look again
		f.scanned, f.fixed = 0, nil
	}
	for seq := range f.fixed {
		if seq < log[0].Seq {
			delete(f.fixed, seq) // out of the window; a replay going back looks again
		}
	}
	for _, ev := range log {
		if ev.Seq <= f.scanned {
			continue
		}
		if p, changed := printableEvent(ev); changed {
			if f.fixed == nil {
				f.fixed = map[int64]engine.Event{}
			}
			f.fixed[ev.Seq] = p
		}
		f.scanned = ev.Seq
	}
	if len(f.fixed) == 0 {
		return log
	}
	out := slices.Clone(log)
	for i, ev := range out {
		if p, ok := f.fixed[ev.Seq]; ok {
			out[i] = p
		}
	}
	return out
}

// printableState is st made printable but for its log (see Model.printable).
func printableState(st engine.State) engine.State {
	fix(&st.RouterError)
	fix(&st.PauseReason)
	fix(&st.Hold)
	fix(&st.HoldReason)
	fix(&st.EndReason)
	fix(&st.StopReason)
	fix(&st.SegmentError)
	st.Segments, _ = mapChanged(st.Segments, printableText)
	st.Flags, _ = mapChanged(st.Flags, printableFlag)
	st.PausedBy, _ = printableActor(st.PausedBy)
	st.EndedBy, _ = printableActor(st.EndedBy)
	st.Steps, _ = mapChanged(st.Steps, printableStep)
	st.Checks, _ = mapChanged(st.Checks, printableCheck)
	return st
}

func printableStep(s engine.StepState) (engine.StepState, bool) {
	changed := fix(&s.Reason)
	var byChanged bool
	s.By, byChanged = printableActor(s.By)
	return s, changed || byChanged
}

func printableCheck(c engine.CheckState) (engine.CheckState, bool) {
	changed := fix(&c.Name)
	changed = fix(&c.Unit) || changed
	changed = fix(&c.Judge) || changed
	changed = fix(&c.Criteria.Direction) || changed
	changed = fix(&c.Criteria.Unit) || changed
	changed = fix(&c.Would) || changed
	if c.Last != nil {
		if r, ok := printableResult(*c.Last); ok {
			c.Last, changed = ptr(r), true
		}
	}
	return c, changed
}

func printableEvent(ev engine.Event) (engine.Event, bool) {
	changed := fix(&ev.Reason)
	changed = fix(&ev.Error) || changed
	changed = fix(&ev.Command) || changed
	changed = fix(&ev.Hold) || changed
	changed = fix(&ev.Flag) || changed
	changed = fix(&ev.Check) || changed
	changed = fix(&ev.Would) || changed
	var actorChanged, checksChanged, segmentsChanged bool
	ev.Actor, actorChanged = printableActor(ev.Actor)
	ev.Checks, checksChanged = mapChanged(ev.Checks, printableResult)
	ev.Segments, segmentsChanged = mapChanged(ev.Segments, printableText)
	if ev.Hook != nil {
		h := *ev.Hook
		hookChanged := fix(&h.On)
		hookChanged = fix(&h.Kind) || hookChanged
		hookChanged = fix(&h.Outcome) || hookChanged
		hookChanged = fix(&h.Output) || hookChanged
		if hookChanged {
			ev.Hook, changed = &h, true
		}
	}
	return ev, changed || actorChanged || checksChanged || segmentsChanged
}

// printableText is s made printable, and whether that changed it: segment names a provider
// reported.
func printableText(s string) (string, bool) {
	changed := fix(&s)
	return s, changed
}

func printableFlag(f engine.FlagState) (engine.FlagState, bool) {
	changed := fix(&f.Name)
	changed = fix(&f.Error) || changed
	return f, changed
}

func printableResult(r engine.CheckResult) (engine.CheckResult, bool) {
	changed := fix(&r.Check)
	changed = fix(&r.SourceError) || changed
	changed = fix(&r.Verdict) || changed
	changed = fix(&r.Reason) || changed
	changed = fix(&r.Classification) || changed
	return r, changed
}

// printableActor is a, or a printable copy of it.
func printableActor(a *engine.Actor) (*engine.Actor, bool) {
	if a == nil {
		return nil, false
	}
	c := *a
	changed := fix(&c.Name)
	changed = fix(&c.Role) || changed
	changed = fix(&c.Source) || changed
	changed = fix(&c.Fingerprint) || changed
	if !changed {
		return a, false
	}
	return ptr(c), true
}

func ptr[T any](v T) *T { return &v }

// fix makes *s one printable line, reporting whether that changed it.
func fix[S ~string](s *S) bool {
	p := S(printable.Line(string(*s)))
	if p == *s {
		return false
	}
	*s = p
	return true
}

// mapChanged applies f to every element of list: list itself when f changed none, else a
// copy holding the changes (list may be shared and is never written to), and which it is.
func mapChanged[T any](list []T, f func(T) (T, bool)) ([]T, bool) {
	var out []T
	for i, v := range list {
		w, changed := f(v)
		if !changed {
			continue
		}
		if out == nil {
			out = slices.Clone(list)
		}
		out[i] = w
	}
	if out == nil {
		return list, false
	}
	return out, true
}
