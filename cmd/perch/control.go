package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
)

// controlCmds are the verbs that steer a running perch through its control socket.
func (a *app) controlCmds() []*cobra.Command {
	verbs := []struct{ name, short string }{
		{"pause", "Pause the running rollout (it keeps watching; a failure still rolls back)"},
		{"resume", "Resume a paused or holding rollout"},
		{"advance", "Skip the rest of the current step's wait"},
		{"rollback", "Roll back now: send 0% to the canary"},
		{"promote", "Promote now: send 100% to the canary"},
		{"retry", "After a rollback, start the rollout again from step 1"},
		{"status", "Print the running rollout's phase, step, weight and last verdicts"},
	}
	var cmds []*cobra.Command
	for _, v := range verbs {
		var socket, reason, output string
		var step int
		c := &cobra.Command{
			Use:   v.name,
			Short: v.short,
			Args:  cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				req := control.Request{Command: v.name, Reason: reason}
				if c.Flags().Changed("step") {
					step0 := step - 1
					req.Step = &step0
				}
				return a.control(c.Context(), socket, req, output)
			},
		}
		c.Flags().StringVar(&socket, "socket", "", "control socket of the running perch (default: the one in $XDG_RUNTIME_DIR/perch, /run/user/UID/perch or $TMPDIR/perch-UID)")
		c.Flags().StringVarP(&output, "output", "o", outputText, "text or json")
		if v.name != "status" {
			stepHelp := "refuse unless the rollout is still at this step (1-based), so a late command cannot act on a later step"
			if engine.CommandKind(v.name).NeverStale() {
				stepHelp = "ignored: a " + v.name + " acts on whatever step the rollout is at"
			}
			c.Flags().IntVar(&step, "step", 0, stepHelp)
			c.Flags().StringVar(&reason, "reason", "", "why, for the event log")
		}
		cmds = append(cmds, c)
	}
	return cmds
}

func (a *app) control(ctx context.Context, socket string, req control.Request, output string) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	if socket == "" {
		found, dirs := control.Find(a.getenv)
		switch {
		case len(found) == 0:
			return runtimeError(fmt.Errorf("no running perch of yours found in %s; pass --socket", strings.Join(dirs, ", ")))
		case len(found) > 1:
			return badInput(fmt.Errorf("several perches are running; choose one with --socket:\n  %s", strings.Join(found, "\n  ")))
		}
		socket = found[0]
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := control.Send(ctx, socket, req)
	if err != nil {
		return runtimeError(err)
	}
	if output == outputJSON {
		line, err := json.Marshal(resp)
		if err != nil {
			return runtimeError(err)
		}
		fmt.Fprintf(a.stdout, "%s\n", printable.JSON(line))
	} else if resp.OK {
		printStatus(a.stdout, resp.Status)
	}
	if !resp.OK {
		return runtimeError(fmt.Errorf("%s refused: %s", req.Command, printable.Line(resp.Error)))
	}
	return nil
}

// printStatus writes a rollout's status for people. Its reasons, names and errors came from
// outside (alerts, providers, operators), so each is made one printable line.
func printStatus(w io.Writer, s *control.Status) {
	line := printable.Line
	fmt.Fprintf(w, "%s  %s  step %d/%d (%s)  canary %d%%", line(s.Name), line(strings.ReplaceAll(string(s.Phase), "_", " ")), s.Step, s.Steps, line(s.StepDesc), s.Weight)
	if s.Target != s.Weight && s.Target >= 0 {
		fmt.Fprintf(w, " (setting %d%%)", s.Target)
	}
	fmt.Fprintln(w)
	if s.Reason != "" {
		who := ""
		if s.PausedBy != "" {
			who = " by " + s.PausedBy
		}
		fmt.Fprintf(w, "  %s%s: %s\n", line(strings.TrimSpace(s.Hold+" "+string(s.Phase))), line(who), line(s.Reason))
	}
	if s.RouterErr != "" {
		fmt.Fprintf(w, "  provider error: %s\n", line(s.RouterErr))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range s.Checks {
		verdict := line(string(c.Verdict))
		if verdict == "" {
			verdict = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\tcanary %s\tbaseline %s\t%s\n", line(c.Name), verdict,
			metrics.FormatValue(float64(c.Canary)), metrics.FormatValue(float64(c.Baseline)), line(c.Reason))
	}
	tw.Flush()
	if s.LastChange != "" {
		fmt.Fprintf(w, "  last: %s  %s\n", s.LastEvent.UTC().Format(time.RFC3339), line(s.LastChange))
	}
}
