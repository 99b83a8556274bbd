// Package schedule is a rollout's release windows: the days and hours, in a time zone, when
// its steps may advance, and the freeze periods when they may not. It is pure: Allowed says
// whether an instant is inside a window and when that next changes, reading no clock.
//
// Windows are wall-clock times in the zone: "09:00-16:00" opens whenever the clocks there
// show 09:00, summer or winter. On the night clocks go forward, a window whose hours fall in
// the skipped hour is shorter (or does not open at all); on the night they go back, the
// repeated hour is inside a window once for each time it is lived. A window whose end is
// before its start ("22:00-02:00") crosses midnight and belongs to the day it opens.
package schedule

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the tz database, so every zone loads the same wherever perch runs
)

// Config is a schedule as a rollout file writes it.
type Config struct {
	// Timezone is an IANA zone name ("Europe/Berlin", "UTC").
	Timezone string `yaml:"timezone" json:"timezone"`
	// Advance lists the release windows; none: every time outside a freeze.
	Advance []Window `yaml:"advance" json:"advance,omitempty"`
	// Freeze lists periods with no advancing at all, windows or not.
	Freeze []Freeze `yaml:"freeze" json:"freeze,omitempty"`
}

// Window is days and hours when steps may advance.
type Window struct {
	// Days: "Mon-Thu", "Mon,Wed,Fri", "Fri-Mon" (wrapping the weekend), full names too; empty:
	// every day.
	Days string `yaml:"days" json:"days,omitempty"`
	// Hours: "09:00-16:00"; "22:00-02:00" crosses midnight; empty: all day.
	Hours string `yaml:"hours" json:"hours,omitempty"`
}

// Freeze is a period with no advancing: From (inclusive) to To (exclusive), each an RFC 3339
// time or a date (midnight in the schedule's zone).
type Freeze struct {
	From string `yaml:"from" json:"from"`
	To   string `yaml:"to" json:"to"`
}

// Schedule is a checked Config, ready to answer Allowed.
type Schedule struct {
	zone    string
	loc     *time.Location
	windows []window
	freezes []period
}

type window struct {
	days       [7]bool // by time.Weekday: the days the window opens
	start, end int     // seconds after midnight; end <= start crosses midnight
}

type period struct{ from, to time.Time }

// Problem is one thing wrong with a Config: the field (as "advance[1].hours", relative to
// the schedule) and what is wrong with it.
type Problem struct {
	Field string
	Msg   string
}

// Problems is every problem New found.
type Problems []Problem

func (p Problems) Error() string {
	parts := make([]string, len(p))
	for i, x := range p {
		parts[i] = x.Msg
		if x.Field != "" {
			parts[i] = x.Field + ": " + x.Msg
		}
	}
	return strings.Join(parts, "; ")
}

// New checks c and makes its schedule; the error is Problems.
func New(c Config) (*Schedule, error) {
	var probs Problems
	bad := func(field, format string, args ...any) {
		probs = append(probs, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	s := &Schedule{zone: c.Timezone}
	switch loc, err := time.LoadLocation(c.Timezone); {
	case c.Timezone == "":
		bad("timezone", "missing: name the zone the windows are in (Europe/Berlin, America/New_York, UTC)")
	case err != nil || strings.EqualFold(c.Timezone, "local"):
		bad("timezone", "%q is not a time zone of the tz database (Europe/Berlin, America/New_York, UTC)", c.Timezone)
	default:
		s.loc = loc
	}
	if len(c.Advance) == 0 && len(c.Freeze) == 0 {
		bad("", "give advance windows, freeze periods or both")
	}
	for i, w := range c.Advance {
		p := fmt.Sprintf("advance[%d]", i)
		days, err := parseDays(w.Days)
		if err != nil {
			bad(p+".days", "%v", err)
		}
		start, end, err := parseHours(w.Hours)
		if err != nil {
			bad(p+".hours", "%v", err)
		}
		s.windows = append(s.windows, window{days: days, start: start, end: end})
	}
	for i, f := range c.Freeze {
		p := fmt.Sprintf("freeze[%d]", i)
		from, err1 := parseInstant(f.From, s.loc)
		to, err2 := parseInstant(f.To, s.loc)
		if err1 != nil {
			bad(p+".from", "%v", err1)
		}
		if err2 != nil {
			bad(p+".to", "%v", err2)
		}
		if err1 == nil && err2 == nil && !to.After(from) {
			bad(p+".to", "%s is not after from (%s)", f.To, f.From)
		}
		s.freezes = append(s.freezes, period{from, to})
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return s, nil
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// parseDays reads "Mon-Thu", "Mon,Wed,Fri", "Fri-Mon"; empty is every day.
func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	if strings.TrimSpace(s) == "" {
		return [7]bool{true, true, true, true, true, true, true}, nil
	}
	day := func(name string) (time.Weekday, error) {
		d, ok := dayNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return 0, fmt.Errorf("%q is not a day: use Mon, Tue, Wed, Thu, Fri, Sat, Sun, as \"Mon-Thu\" or \"Mon,Wed,Fri\"", strings.TrimSpace(name))
		}
		return d, nil
	}
	for _, item := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(item, "-")
		a, err := day(from)
		if err != nil {
			return days, err
		}
		b := a
		if isRange {
			if b, err = day(to); err != nil {
				return days, err
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

// parseHours reads "HH:MM-HH:MM" into seconds after midnight; empty is all day.
func parseHours(s string) (start, end int, err error) {
	if strings.TrimSpace(s) == "" {
		return 0, 24 * 3600, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want HH:MM-HH:MM, as \"09:00-16:00\"", s)
	}
	if start, err = clock(a, false); err == nil {
		end, err = clock(b, true)
	}
	switch {
	case err != nil:
		return 0, 0, fmt.Errorf("%q: %v", s, err)
	case start == end:
		return 0, 0, fmt.Errorf("%q opens and closes at the same time; for all day leave hours out", s)
	}
	return start, end, nil
}

// clock reads "HH:MM" as seconds after midnight; "24:00" only as an end.
func clock(s string, isEnd bool) (int, error) {
	s = strings.TrimSpace(s)
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	switch {
	case !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59:
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	case hh == 24 && mm == 0 && isEnd:
	case hh > 23:
		return 0, fmt.Errorf("%q is not a time of day (00:00 to 23:59, or 24:00 to end at midnight)", s)
	}
	return hh*3600 + mm*60, nil
}

// parseInstant reads an RFC 3339 time, or a date as midnight in loc.
func parseInstant(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if loc != nil {
		if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-12-20T00:00:00Z) or a date (2026-12-20)", s)
}

// Zone is the schedule's time zone name.
func (s *Schedule) Zone() string { return s.zone }

// Allowed reports whether a step may advance at t. next is when that changes: when the
// window closes (or a freeze begins) if allowed, when one next opens if not (zero if none
// does within two years). reason says why not, with the next window in the schedule's zone
// ("outside release window; next window Mon 09:00 Europe/Berlin"), or until when it is
// allowed.
func (s *Schedule) Allowed(t time.Time) (ok bool, next time.Time, reason string) {
	ok = s.open(t)
	next = s.nextChange(t, ok)
	switch {
	case ok && next.IsZero():
		reason = "inside release window"
	case ok:
		reason = "inside release window until " + s.When(t, next)
	default:
		reason = "outside release window"
		f, frozen := s.frozen(t)
		if frozen {
			reason = fmt.Sprintf("release freeze until %s", s.When(t, f.to))
		}
		switch {
		case next.IsZero():
			reason += "; no window opens in the next two years"
		case !frozen || !next.Equal(f.to):
			reason += "; next window " + s.When(t, next)
		}
	}
	return ok, next, reason
}

// When is at in the schedule's zone, as a person reads it seen from now: "Mon 09:00
// Europe/Berlin" within the coming week, "Mon 4 Jan 09:00 Europe/Berlin" beyond (with the
// seconds when a freeze ends on one).
func (s *Schedule) When(now, at time.Time) string {
	layout := "Mon 15:04"
	if at.Sub(now) >= 6*24*time.Hour {
		layout = "Mon 2 Jan 15:04"
	}
	if at.Second() != 0 {
		layout += ":05"
	}
	return at.In(s.loc).Format(layout) + " " + s.zone
}

// open reports whether t is inside a window and outside every freeze.
func (s *Schedule) open(t time.Time) bool {
	if _, frozen := s.frozen(t); frozen {
		return false
	}
	if len(s.windows) == 0 {
		return true
	}
	lt := t.In(s.loc)
	day := lt.Weekday()
	prev := (day + 6) % 7
	sec := lt.Hour()*3600 + lt.Minute()*60 + lt.Second()
	for _, w := range s.windows {
		if w.end > w.start {
			if w.days[day] && sec >= w.start && sec < w.end {
				return true
			}
			continue
		}
		if w.days[day] && sec >= w.start || w.days[prev] && sec < w.end {
			return true
		}
	}
	return false
}

func (s *Schedule) frozen(t time.Time) (period, bool) {
	for _, f := range s.freezes {
		if !t.Before(f.from) && t.Before(f.to) {
			return f, true
		}
	}
	return period{}, false
}

// Bounds of the search for the next change: a week at a time, for up to two years.
const (
	searchChunk   = 8 * 24 * time.Hour
	searchHorizon = 2 * 366 * 24 * time.Hour
)

// nextChange is the first instant after t at which open differs from was, or zero. open
// changes only where the wall clock reaches a window's start or end, where the zone's
// offset changes (the clocks jump over or back across a boundary) and at freeze bounds; those
// instants are the candidates, looked at in order.
func (s *Schedule) nextChange(t time.Time, was bool) time.Time {
	for lo := t; lo.Sub(t) < searchHorizon; lo = lo.Add(searchChunk) {
		hi := lo.Add(searchChunk)
		for _, c := range s.candidates(lo, hi) {
			if s.open(c) != was {
				return c
			}
		}
	}
	return time.Time{}
}

// candidates are the instants in (lo, hi] where open may change, in order.
func (s *Schedule) candidates(lo, hi time.Time) []time.Time {
	var out []time.Time
	add := func(c time.Time) {
		if c.After(lo) && !c.After(hi) {
			out = append(out, c)
		}
	}
	for _, f := range s.freezes {
		add(f.from)
		add(f.to)
	}
	for z := lo; ; {
		_, end := z.In(s.loc).ZoneBounds()
		if end.IsZero() || end.After(hi) {
			break
		}
		add(end)
		z = end
	}
	first := lo.In(s.loc)
	y, m, d := first.Date()
	for day := time.Date(y, m, d-1, 12, 0, 0, 0, time.UTC); !day.After(hi.Add(48 * time.Hour)); day = day.AddDate(0, 0, 1) {
		for _, w := range s.windows {
			if !w.days[day.Weekday()] {
				continue
			}
			for _, c := range s.instantsAt(day, w.start) {
				add(c)
			}
			endDay := day
			if w.end <= w.start {
				endDay = day.AddDate(0, 0, 1)
			}
			for _, c := range s.instantsAt(endDay, w.end) {
				add(c)
			}
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return slices.CompactFunc(out, func(a, b time.Time) bool { return a.Equal(b) })
}

// instantsAt are the instants whose wall clock in the zone reads sec after midnight on the
// date of day: none in a gap the clocks jump over, two in an hour they repeat.
func (s *Schedule) instantsAt(day time.Time, sec int) []time.Time {
	y, m, d := day.Date()
	wall := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
	offsets := map[int]bool{}
	for _, probe := range []time.Duration{-30 * time.Hour, 0, 30 * time.Hour} {
		_, off := wall.Add(probe).In(s.loc).Zone()
		offsets[off] = true
	}
	var out []time.Time
	for off := range offsets {
		u := wall.Add(-time.Duration(off) * time.Second)
		lt := u.In(s.loc)
		ly, lm, ld := lt.Date()
		wy, wm, wd := wall.Date()
		if ly == wy && lm == wm && ld == wd && lt.Hour() == wall.Hour() && lt.Minute() == wall.Minute() && lt.Second() == wall.Second() {
			out = append(out, u)
		}
	}
	return out
}

// String describes the schedule in a few words: "Mon-Thu 09:00-16:00 Europe/Berlin, 1 freeze".
func (s *Schedule) String() string {
	var parts []string
	for _, w := range s.windows {
		parts = append(parts, strings.TrimSpace(daysString(w.days)+" "+hoursString(w)))
	}
	out := "any time"
	if len(parts) > 0 {
		out = strings.Join(parts, ", ")
	}
	out += " " + s.zone
	switch n := len(s.freezes); n {
	case 0:
	case 1:
		out += ", 1 freeze"
	default:
		out += fmt.Sprintf(", %d freezes", n)
	}
	return out
}

func daysString(days [7]bool) string {
	if days == [7]bool{true, true, true, true, true, true, true} {
		return "daily"
	}
	var parts []string
	order := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	for i := 0; i < len(order); {
		if !days[order[i]] {
			i++
			continue
		}
		j := i
		for j+1 < len(order) && days[order[j+1]] {
			j++
		}
		name := func(d time.Weekday) string { return d.String()[:3] }
		if j > i {
			parts = append(parts, name(order[i])+"-"+name(order[j]))
		} else {
			parts = append(parts, name(order[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func hoursString(w window) string {
	if w.start == 0 && w.end == 24*3600 {
		return ""
	}
	hm := func(sec int) string { return fmt.Sprintf("%02d:%02d", sec/3600, sec%3600/60) }
	return hm(w.start) + "-" + hm(w.end)
}
