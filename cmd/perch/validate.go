package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine/notify"
	"github.com/perchhq/perch/engine/spec"
)

type validateFlags struct {
	checkAccess bool
	connect     connectFlags
}

func (a *app) validateCmd() *cobra.Command {
	var f validateFlags
	c := &cobra.Command{
		Use:   "validate ROLLOUT.yaml [--check-access]",
		Short: "Check a rollout file and print every problem with its line",
		Long: `Check a rollout file and print every problem with its line.

With --check-access, also reach what the file names: read the traffic provider's weight
(which checks the rule or route has the shape perch needs) and run each check's metric
queries once over the last ten analysis intervals, saying which return no data. No data
is a warning, not a failure: a canary that takes no traffic yet has none.

Notification URLs and headers are expanded with this environment, as perch run does:
an unset ${NAME} is a problem in the file.

Warnings (on stderr, at FILE:LINE:COL) name what is valid but likely not meant, such as a
step that sets a weight without analyze; they do not change the exit code.

Exit codes: 0 the file is good (and, with --check-access, everything was reachable),
2 problems in the file, 3 a provider or query failed.`,
		Args: exactlyOneArg("rollout file"),
		RunE: func(c *cobra.Command, args []string) error {
			spec, err := loadSpec(args[0])
			if err != nil {
				return err
			}
			if err := checkEnv(spec, a.getenv); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, summarize(spec))
			if list := checkList(spec); list != "" {
				fmt.Fprintln(a.stdout, list)
			}
			for _, w := range spec.Warnings() {
				fmt.Fprintln(a.stderr, w) // likely not what was meant, but a valid file
			}
			if !f.checkAccess {
				return nil
			}
			return a.checkAccess(c.Context(), args[0], spec, f.connect)
		},
	}
	c.Flags().BoolVar(&f.checkAccess, "check-access", false, "also reach the traffic provider and run each metric query once")
	addConnectFlags(c, &f.connect)
	return c
}

// loadSpec loads a rollout file; every problem in it is printed, one per line, as exit 2.
func loadSpec(path string) (*spec.Rollout, error) {
	rollout, err := spec.Load(path)
	var specErrs spec.Errors
	switch {
	case errors.As(err, &specErrs):
		return nil, badInput(fmt.Errorf("%w\n%d problem(s) in %s", specErrs, len(specErrs), path))
	case err != nil:
		return nil, badInput(err)
	}
	return rollout, nil
}

// checkEnv expands the ${NAME} references of the notify entries with this environment, as a
// run does when it starts, and reports each unset variable (and every other problem it shows)
// where the file wrote it, as exit 2.
func checkEnv(rollout *spec.Rollout, getenv func(string) string) error {
	problems := notify.Check(rollout, getenv)
	if len(problems) == 0 {
		return nil
	}
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = fmt.Sprintf("%s: %s", rollout.Where(p.Path), p)
	}
	return badInput(fmt.Errorf("%s\n%d problem(s) in %s", strings.Join(lines, "\n"), len(problems), rollout.File()))
}

// summarize is the one line validate prints for a good file.
func summarize(s *spec.Rollout) string {
	weights := ""
	for _, st := range s.Steps {
		if weights != "" {
			weights += " → "
		}
		weights += st.String()
	}
	name := s.Name
	if c := s.Canary.String(); c != "" {
		name += " (canary " + c + ")"
	}
	return fmt.Sprintf("%s: ok — %s traffic, %s metrics, %d check(s), %d step(s): %s → promote",
		name, s.Traffic.Kind(), s.Metrics.Kind(), len(s.Checks), len(s.Steps), weights)
}

// checkList names the checks as perch runs them, templates expanded, with where each came
// from and which are dry runs; "" when no check used a template or is a dry run (the summary
// says enough then).
func checkList(s *spec.Rollout) string {
	var names []string
	shown := false
	for i, c := range s.Checks {
		var notes []string
		if t := s.CheckTemplate(i); t != "" {
			notes = append(notes, "from "+t)
		}
		if c.DryRun {
			notes = append(notes, "dry run")
		}
		name := c.Name
		if len(notes) > 0 {
			name += " (" + strings.Join(notes, ", ") + ")"
			shown = true
		}
		names = append(names, name)
	}
	if !shown {
		return ""
	}
	return "checks: " + strings.Join(names, ", ")
}
