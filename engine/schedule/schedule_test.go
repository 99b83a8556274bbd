package schedule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine/schedule"
)

func mustNew(t *testing.T, c schedule.Config) *schedule.Schedule {
	t.Helper()
	s, err := schedule.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

type probe struct {
	at     string // RFC 3339
	ok     bool
	next   string // RFC 3339, or "" for none
	reason string
}

func check(t *testing.T, s *schedule.Schedule, probes []probe) {
	t.Helper()
	for _, p := range probes {
		ok, next, reason := s.Allowed(at(p.at))
		wantNext := time.Time{}
		if p.next != "" {
			wantNext = at(p.next)
		}
		if ok != p.ok || !next.Equal(wantNext) || reason != p.reason {
			t.Errorf("Allowed(%s) = %v, %s, %q\n                   want %v, %s, %q", p.at, ok, next.UTC().Format(time.RFC3339), reason,
				p.ok, wantNext.UTC().Format(time.RFC3339), p.reason)
		}
	}
}

var berlinWorkdays = schedule.Config{Timezone: "Europe/Berlin", Advance: []schedule.Window{{Days: "Mon-Thu", Hours: "09:00-16:00"}}}

func TestWindowsInAZone(t *testing.T) {
	s := mustNew(t, berlinWorkdays)
	check(t, s, []probe{
		// Monday 2 March 2026, CET (UTC+1).
		{"2026-03-02T08:59:59Z", true, "2026-03-02T15:00:00Z", "inside release window until Mon 16:00 Europe/Berlin"},
		{"2026-03-02T07:59:59Z", false, "2026-03-02T08:00:00Z", "outside release window; next window Mon 09:00 Europe/Berlin"},
		{"2026-03-05T15:00:00Z", false, "2026-03-09T08:00:00Z", "outside release window; next window Mon 09:00 Europe/Berlin"},
		{"2026-03-06T10:00:00Z", false, "2026-03-09T08:00:00Z", "outside release window; next window Mon 09:00 Europe/Berlin"},
		// Summer (CEST, UTC+2): the same wall-clock hours.
		{"2026-07-09T13:59:00Z", true, "2026-07-09T14:00:00Z", "inside release window until Thu 16:00 Europe/Berlin"},
	})
	if got := s.String(); got != "Mon-Thu 09:00-16:00 Europe/Berlin" {
		t.Errorf("String() = %q", got)
	}
}

// TestSpringForward: on 29 March 2026 Berlin's clocks jump from 02:00 CET to 03:00 CEST
// (01:00 UTC). A window over the skipped hour opens when the clocks land inside it; one wholly
// inside the skipped hour does not open that day.
func TestSpringForward(t *testing.T) {
	s := mustNew(t, schedule.Config{Timezone: "Europe/Berlin", Advance: []schedule.Window{{Hours: "02:00-04:00"}}})
	check(t, s, []probe{
		{"2026-03-28T23:00:00Z", false, "2026-03-29T01:00:00Z", "outside release window; next window Sun 03:00 Europe/Berlin"},
		{"2026-03-29T00:59:59Z", false, "2026-03-29T01:00:00Z", "outside release window; next window Sun 03:00 Europe/Berlin"},
		{"2026-03-29T01:00:00Z", true, "2026-03-29T02:00:00Z", "inside release window until Sun 04:00 Europe/Berlin"},
	})
	skipped := mustNew(t, schedule.Config{Timezone: "Europe/Berlin", Advance: []schedule.Window{{Hours: "02:00-02:30"}}})
	check(t, skipped, []probe{
		{"2026-03-28T23:00:00Z", false, "2026-03-30T00:00:00Z", "outside release window; next window Mon 02:00 Europe/Berlin"},
	})
}

// TestFallBack: on 25 October 2026 Berlin's clocks go back from 03:00 CEST to 02:00 CET
// (01:00 UTC): the hour 02:00-03:00 is lived twice, and a window over it is open for both.
func TestFallBack(t *testing.T) {
	s := mustNew(t, schedule.Config{Timezone: "Europe/Berlin", Advance: []schedule.Window{{Hours: "02:00-03:00"}}})
	check(t, s, []probe{
		{"2026-10-24T23:30:00Z", false, "2026-10-25T00:00:00Z", "outside release window; next window Sun 02:00 Europe/Berlin"},
		{"2026-10-25T00:30:00Z", true, "2026-10-25T02:00:00Z", "inside release window until Sun 03:00 Europe/Berlin"},
		{"2026-10-25T01:30:00Z", true, "2026-10-25T02:00:00Z", "inside release window until Sun 03:00 Europe/Berlin"},
		{"2026-10-25T02:00:00Z", false, "2026-10-26T01:00:00Z", "outside release window; next window Mon 02:00 Europe/Berlin"},
	})
}

// TestAcrossMidnight: "22:00-02:00" on Fridays runs into Saturday, and belongs to Friday.
func TestAcrossMidnight(t *testing.T) {
	s := mustNew(t, schedule.Config{Timezone: "America/New_York", Advance: []schedule.Window{{Days: "Fri", Hours: "22:00-02:00"}}})
	check(t, s, []probe{
		// Friday 6 November 2026, EST (UTC-5).
		{"2026-11-07T02:59:00Z", false, "2026-11-07T03:00:00Z", "outside release window; next window Fri 22:00 America/New_York"},
		{"2026-11-07T03:00:00Z", true, "2026-11-07T07:00:00Z", "inside release window until Sat 02:00 America/New_York"},
		{"2026-11-07T06:59:59Z", true, "2026-11-07T07:00:00Z", "inside release window until Sat 02:00 America/New_York"},
		// Six days or more ahead, the date is given.
		{"2026-11-07T07:00:00Z", false, "2026-11-14T03:00:00Z", "outside release window; next window Fri 13 Nov 22:00 America/New_York"},
		// A Thursday night is not a Friday night.
		{"2026-11-06T04:00:00Z", false, "2026-11-07T03:00:00Z", "outside release window; next window Fri 22:00 America/New_York"},
		{"2026-11-08T03:30:00Z", false, "2026-11-14T03:00:00Z", "outside release window; next window Fri 22:00 America/New_York"},
	})
	// Across midnight into spring-forward: Berlin's Saturday 28 March 2026 22:00 CET to
	// Sunday 03:00 CEST is four hours, not five.
	berlin := mustNew(t, schedule.Config{Timezone: "Europe/Berlin", Advance: []schedule.Window{{Days: "Sat", Hours: "22:00-03:00"}}})
	check(t, berlin, []probe{
		{"2026-03-28T21:00:00Z", true, "2026-03-29T01:00:00Z", "inside release window until Sun 03:00 Europe/Berlin"},
	})
}

func TestFreeze(t *testing.T) {
	c := berlinWorkdays
	c.Freeze = []schedule.Freeze{{From: "2026-12-20T00:00:00Z", To: "2027-01-04T00:00:00Z"}}
	s := mustNew(t, c)
	check(t, s, []probe{
		{"2026-12-17T14:00:00Z", true, "2026-12-17T15:00:00Z", "inside release window until Thu 16:00 Europe/Berlin"},
		{"2026-12-21T10:00:00Z", false, "2027-01-04T08:00:00Z",
			"release freeze until Mon 4 Jan 01:00 Europe/Berlin; next window Mon 4 Jan 09:00 Europe/Berlin"},
		{"2026-12-18T10:00:00Z", false, "2027-01-04T08:00:00Z", "outside release window; next window Mon 4 Jan 09:00 Europe/Berlin"},
	})
	// A freeze that begins mid-window closes it; a date is midnight in the zone.
	c.Freeze = []schedule.Freeze{{From: "2026-12-17T14:00:00Z", To: "2026-12-18"}}
	s = mustNew(t, c)
	check(t, s, []probe{
		{"2026-12-17T09:00:00Z", true, "2026-12-17T14:00:00Z", "inside release window until Thu 15:00 Europe/Berlin"},
		{"2026-12-17T23:30:00Z", false, "2026-12-21T08:00:00Z", "outside release window; next window Mon 09:00 Europe/Berlin"},
	})
	// Freezes alone: any time outside them.
	only := mustNew(t, schedule.Config{Timezone: "UTC", Freeze: []schedule.Freeze{{From: "2026-12-24", To: "2026-12-27"}}})
	check(t, only, []probe{
		{"2026-12-23T12:00:00Z", true, "2026-12-24T00:00:00Z", "inside release window until Thu 00:00 UTC"},
		{"2026-12-25T12:00:00Z", false, "2026-12-27T00:00:00Z", "release freeze until Sun 00:00 UTC"},
		{"2026-12-28T12:00:00Z", true, "", "inside release window"},
	})
}

func TestDaysAndHours(t *testing.T) {
	s := mustNew(t, schedule.Config{Timezone: "UTC", Advance: []schedule.Window{
		{Days: "fri-mon", Hours: "10:00-11:00"}, {Days: "Wednesday", Hours: "00:00-24:00"}, {Days: "Tue, Thu"},
	}})
	if got := s.String(); got != "Mon,Fri-Sun 10:00-11:00, Wed, Tue,Thu UTC" {
		t.Errorf("String() = %q", got)
	}
	check(t, s, []probe{
		{"2026-03-08T10:30:00Z", true, "2026-03-08T11:00:00Z", "inside release window until Sun 11:00 UTC"}, // Sunday
		{"2026-03-09T10:30:00Z", true, "2026-03-09T11:00:00Z", "inside release window until Mon 11:00 UTC"},
		{"2026-03-09T11:00:00Z", false, "2026-03-10T00:00:00Z", "outside release window; next window Tue 00:00 UTC"},
		// Tuesday to Thursday is open all along.
		{"2026-03-10T12:00:00Z", true, "2026-03-13T00:00:00Z", "inside release window until Fri 00:00 UTC"},
	})
}

func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    schedule.Config
		want string
	}{
		{"no zone", schedule.Config{Advance: []schedule.Window{{Days: "Mon"}}}, "timezone: missing"},
		{"bad zone", schedule.Config{Timezone: "Europe/Berlinn", Advance: []schedule.Window{{Days: "Mon"}}}, `timezone: "Europe/Berlinn" is not a time zone`},
		{"local", schedule.Config{Timezone: "Local", Advance: []schedule.Window{{Days: "Mon"}}}, `timezone: "Local" is not a time zone`},
		{"nothing", schedule.Config{Timezone: "UTC"}, "give advance windows, freeze periods or both"},
		{"bad day", schedule.Config{Timezone: "UTC", Advance: []schedule.Window{{Days: "Mon-Thr"}}}, `advance[0].days: "Thr" is not a day`},
		{"bad hours", schedule.Config{Timezone: "UTC", Advance: []schedule.Window{{Hours: "9-16"}}}, `advance[0].hours: "9-16": "9" is not a time of day HH:MM`},
		{"25 o'clock", schedule.Config{Timezone: "UTC", Advance: []schedule.Window{{Hours: "09:00-25:00"}}}, `is not a time of day (00:00 to 23:59, or 24:00`},
		{"no dash", schedule.Config{Timezone: "UTC", Advance: []schedule.Window{{Hours: "09:00"}}}, `want HH:MM-HH:MM`},
		{"empty window", schedule.Config{Timezone: "UTC", Advance: []schedule.Window{{Hours: "09:00-09:00"}}}, "opens and closes at the same time"},
		{"backwards freeze", schedule.Config{Timezone: "UTC", Freeze: []schedule.Freeze{{From: "2027-01-04", To: "2026-12-20"}}}, "freeze[0].to: 2026-12-20 is not after from"},
		{"bad freeze", schedule.Config{Timezone: "UTC", Freeze: []schedule.Freeze{{From: "Dec 20", To: "2026-12-20"}}}, `freeze[0].from: "Dec 20": want an RFC 3339 time`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := schedule.New(tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
			if _, ok := err.(schedule.Problems); !ok {
				t.Errorf("error is %T, want schedule.Problems", err)
			}
		})
	}
}
