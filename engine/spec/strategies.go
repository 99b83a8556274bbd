package spec

import (
	"net/url"
	"strings"

	"github.com/perchhq/perch/engine/schedule"
	"github.com/perchhq/perch/internal/segment"
)

// Flags names the one feature-flag system setFlag steps set flags in.
type Flags struct {
	Unleash      *UnleashFlags      `yaml:"unleash" json:"unleash,omitempty"`
	LaunchDarkly *LaunchDarklyFlags `yaml:"launchDarkly" json:"launchDarkly,omitempty"`
	Flagd        *FlagdFlags        `yaml:"flagd" json:"flagd,omitempty"`
}

// Kind is the name of the configured system ("unleash", "launchDarkly", "flagd"), or "".
func (f *Flags) Kind() string {
	switch {
	case f == nil:
	case f.Unleash != nil:
		return "unleash"
	case f.LaunchDarkly != nil:
		return "launchDarkly"
	case f.Flagd != nil:
		return "flagd"
	}
	return ""
}

// UnleashFlags is an Unleash server's admin API: the flexibleRollout strategy of each flag in
// one project and environment.
type UnleashFlags struct {
	Address     string `yaml:"address" json:"address"`
	Token       Secret `yaml:"token" json:"token"`
	Project     string `yaml:"project" json:"project,omitempty"` // empty: default
	Environment string `yaml:"environment" json:"environment"`
}

// LaunchDarklyFlags is LaunchDarkly's REST API: the default rule of each flag in one project
// and environment.
type LaunchDarklyFlags struct {
	Address     string `yaml:"address" json:"address,omitempty"` // empty: https://app.launchdarkly.com
	Token       Secret `yaml:"token" json:"token"`
	Project     string `yaml:"project" json:"project"`
	Environment string `yaml:"environment" json:"environment"`
}

// FlagdFlags is a flagd flag definition file, rewritten in place (flagd watches it).
type FlagdFlags struct {
	File string `yaml:"file" json:"file"`
}

// Segments are the segments of the rollout's segment steps, in step order.
func (s *Rollout) Segments() []segment.Segment {
	var out []segment.Segment
	for _, st := range s.Steps {
		if st.Segment != nil {
			out = append(out, *st.Segment)
		}
	}
	return out
}

// FlagNames are the flags the rollout's setFlag steps set, each once, in step order.
func (s *Rollout) FlagNames() []string {
	var out []string
	for _, st := range s.Steps {
		if st.SetFlag != nil && !contains(out, st.SetFlag.Flag) {
			out = append(out, st.SetFlag.Flag)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SegmentRouting says why a traffic provider cannot route a segment, or "" when it can. Every
// provider routes segments matching a header's value; the ALB matches no regular expressions
// nor cookies.
func SegmentRouting(traffic Traffic, m segment.Match) string {
	if traffic.ALB != nil && (m.Header == nil || m.Header.Regex != "") {
		return "traffic.alb cannot route this segment: an ALB rule matches a header's value (with * and ? as wildcards), not a regular expression or a cookie"
	}
	return ""
}

// validateStrategyStep checks a segment or setFlag step; seen holds the segments named so far.
func (d *decoder) validateStrategyStep(s *Rollout, st Step, p string, seen map[string]string) {
	if st.Segment != nil {
		for _, prob := range st.Segment.Check() {
			d.Fail(p+".segment."+prob.Field, "%s", prob.Msg)
		}
		if at, ok := seen[st.Segment.Name]; ok && st.Segment.Name != "" {
			d.Fail(p+".segment.name", "segment %q is already set at %s; it stays until the rollout ends", st.Segment.Name, at)
		}
		seen[st.Segment.Name] = p
		if why := SegmentRouting(s.Traffic, st.Segment.Match); why != "" && s.Traffic.Kind() != "" {
			d.Fail(p+".segment.match", "%s", why)
		}
	}
	if f := st.SetFlag; f != nil {
		if s.Flags.Kind() == "" && !d.Written("flags") {
			d.Fail(p+".setFlag", "no flags: block: name the feature-flag system the flag is in (flags: {unleash: …}, {launchDarkly: …} or {flagd: {file: …}})")
		}
		d.required(p+".setFlag.flag", f.Flag)
		switch {
		case f.Percent == nil:
			d.Fail(p+".setFlag.percent", "missing: the percent of users the flag is on for (0..100)")
		case *f.Percent < 0 || *f.Percent > 100:
			d.Fail(p+".setFlag.percent", "%d is outside 0..100", *f.Percent)
		}
	}
}

func (d *decoder) validateFlags(s *Rollout) {
	f := s.Flags
	if f == nil {
		return
	}
	var set []string
	for _, x := range []struct {
		name string
		on   bool
	}{{"unleash", f.Unleash != nil}, {"launchDarkly", f.LaunchDarkly != nil}, {"flagd", f.Flagd != nil}} {
		if x.on {
			set = append(set, x.name)
		}
	}
	switch {
	case len(set) == 0:
		d.Fail("flags", "name exactly one feature-flag system: unleash, launchDarkly or flagd")
		return
	case len(set) > 1:
		d.Fail(d.later("flags.", set), "only one feature-flag system may be set (got %s)", strings.Join(set, " and "))
		return
	}
	switch {
	case f.Unleash != nil:
		u, p := f.Unleash, "flags.unleash"
		d.flagURL(p+".address", u.Address, true)
		if d.required(p+".token", string(u.Token)) {
			d.secret(p+".token", u.Token)
		}
		d.required(p+".environment", u.Environment)
	case f.LaunchDarkly != nil:
		l, p := f.LaunchDarkly, "flags.launchDarkly"
		d.flagURL(p+".address", l.Address, false)
		if d.required(p+".token", string(l.Token)) {
			d.secret(p+".token", l.Token)
		}
		d.required(p+".project", l.Project)
		d.required(p+".environment", l.Environment)
	default:
		d.required("flags.flagd.file", f.Flagd.File)
	}
}

// flagURL checks a flag system's address unless it names environment variables.
func (d *decoder) flagURL(path, value string, required bool) {
	switch {
	case value == "" && !required:
	case strings.Contains(value, "${"):
	default:
		if !d.required(path, value) {
			return
		}
		if u, err := url.Parse(value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.Fail(path, "want an http:// or https:// URL, got %q", value)
		}
	}
}

func (d *decoder) validateSchedule(s *Rollout) {
	if s.Schedule == nil {
		return
	}
	_, err := schedule.New(*s.Schedule)
	probs, ok := err.(schedule.Problems)
	if err != nil && !ok {
		d.Fail("schedule", "%v", err)
		return
	}
	for _, p := range probs {
		path := "schedule"
		if p.Field != "" {
			path += "." + p.Field
		}
		d.Fail(path, "%s", p.Msg)
	}
}
