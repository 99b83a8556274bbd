package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine"
)

func (a *app) validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate ROLLOUT.yaml",
		Short: "Check a rollout file and print every problem with its line",
		Args:  exactlyOneArg("rollout file"),
		RunE: func(c *cobra.Command, args []string) error {
			spec, err := loadSpec(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, summarize(spec))
			return nil
		},
	}
}

// loadSpec loads a rollout file; every problem in it is printed, one per line, as exit 2.
func loadSpec(path string) (*engine.Spec, error) {
	spec, err := engine.LoadSpec(path)
	var specErrs engine.SpecErrors
	switch {
	case errors.As(err, &specErrs):
		return nil, badInput(fmt.Errorf("%w\n%d problem(s) in %s", specErrs, len(specErrs), path))
	case err != nil:
		return nil, badInput(err)
	}
	return spec, nil
}

// summarize is the one line validate prints for a good file.
func summarize(s *engine.Spec) string {
	weights := ""
	for _, st := range s.Steps {
		if weights != "" {
			weights += " → "
		}
		weights += st.String()
	}
	return fmt.Sprintf("%s: ok — %s traffic, %s metrics, %d check(s), %d step(s): %s → promote",
		s.Name, s.Traffic.Kind(), s.Metrics.Kind(), len(s.Checks), len(s.Steps), weights)
}
