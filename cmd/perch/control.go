package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
)

// watchEvery is how often perch status --watch asks for the status.
const watchEvery = time.Second

// controlCmds are the verbs that steer a running perch through its control socket.
func (a *app) controlCmds() []*cobra.Command {
	verbs := []struct{ name, short string }{
		{"pause", "Pause the running rollout (it keeps watching; a failure still rolls back)"},
		{"resume", "Resume a paused or holding rollout"},
		{"advance", "Skip the rest of the current step's wait"},
		{"rollback", "Roll back now: send 0% to the canary"},
		{"promote", "Promote now: send 100% to the canary"},
		{"retry", "After a rollback, start the rollout again from step 1"},
		{"status", "Print the running rollout's phase, step, weight and last verdicts; --watch follows it"},
	}
	var cmds []*cobra.Command
	for _, v := range verbs {
		var socket, reason, output string
		var step int
		var watch bool
		c := &cobra.Command{
			Use:   v.name + " [ROLLOUT]",
			Short: v.short,
			Long: v.short + `.

ROLLOUT picks one of several running perches by the rollout's name (or its rollout file),
or one rollout of a perch running several (perch serve --rollouts, perch run A B); with one
running it may be left out. perch status without ROLLOUT, where several run, lists them all
(-o json: {"rollouts": [{"name", "phase", "step", "weight"}, …]}; a rollout waiting for its
dependsOn is "waiting", one that never will start "cancelled", a refused file "invalid" with
its "error"). Steps are counted from 1, as in perch status -o json, the
journal and the webhook's documents. A command the rollout has carried out already (pause
when paused, rollback when rolling back…) succeeds and says so.`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				req := control.Request{Command: v.name, Reason: reason}
				if c.Flags().Changed("step") {
					step0 := step - 1
					req.Step = &step0
				}
				rollout := ""
				if len(args) == 1 {
					rollout = args[0]
				}
				if watch {
					return a.watch(c.Context(), socket, rollout, output)
				}
				return a.control(c.Context(), socket, rollout, req, output)
			},
		}
		c.Flags().StringVar(&socket, "socket", "", "control socket of the running perch (default: the one in $XDG_RUNTIME_DIR/perch, /run/user/UID/perch or $TMPDIR/perch-UID)")
		c.Flags().StringVarP(&output, "output", "o", outputText, "text or json")
		if v.name == "status" {
			c.Flags().BoolVarP(&watch, "watch", "w", false, "follow the rollout in plain text until it ends (exit 0 promoted, 1 rolled back, 3 if perch went away)")
		} else {
			stepHelp := "refuse unless the rollout is still at this step (1 for the first, as perch status shows), so a late command cannot act on a later step"
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

// findSocket is the socket to talk to: --socket, else the one running perch's (of rollout,
// when several run: the rollout's own socket, else the fleet socket that serves it).
func (a *app) findSocket(ctx context.Context, socket, rollout string) (string, error) {
	if socket != "" {
		return socket, nil
	}
	found, dirs := control.Find(a.getenv)
	if rollout != "" {
		name := rolloutName(rollout)
		var mine []string
		for _, p := range found {
			if filepath.Base(p) == name+".sock" {
				mine = append(mine, p)
			}
		}
		if len(mine) == 0 {
			mine = fleetsServing(ctx, found, name)
		}
		if len(mine) == 0 {
			return "", runtimeError(fmt.Errorf("no running perch of rollout %q found in %s; pass --socket", printable.Line(name), strings.Join(dirs, ", ")))
		}
		found = mine
	}
	switch {
	case len(found) == 0:
		return "", runtimeError(fmt.Errorf("no running perch of yours found in %s; pass --socket", strings.Join(dirs, ", ")))
	case len(found) > 1:
		return "", badInput(fmt.Errorf("several perches are running; name the rollout (perch status NAME) or choose one with --socket:\n  %s", strings.Join(found, "\n  ")))
	}
	return found[0], nil
}

// fleetsServing are the fleet sockets (fleet-*.sock) among found that serve the rollout name.
func fleetsServing(ctx context.Context, found []string, name string) []string {
	var out []string
	for _, p := range found {
		if !strings.HasPrefix(filepath.Base(p), "fleet-") {
			continue
		}
		askCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := control.Send(askCtx, p, control.Request{Command: "status", Rollout: name})
		cancel()
		if err == nil && resp.OK {
			out = append(out, p)
		}
	}
	return out
}

// rolloutName is the rollout a verb's ROLLOUT names: a rollout file's name, else the text as
// given.
func rolloutName(arg string) string {
	if fi, err := os.Stat(arg); err == nil && fi.Mode().IsRegular() {
		if r, err := spec.Load(arg); err == nil {
			return r.Name
		}
	}
	return arg
}

func (a *app) control(ctx context.Context, socket, rollout string, req control.Request, output string) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	socket, err := a.findSocket(ctx, socket, rollout)
	if err != nil {
		return err
	}
	if rollout != "" {
		req.Rollout = rolloutName(rollout)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := control.Send(ctx, socket, req)
	if err != nil {
		return runtimeError(err)
	}
	if resp.OK && resp.Status == nil {
		return a.printRollouts(resp.Rollouts, output) // a fleet's list, perhaps empty
	}
	if output == outputJSON {
		line, err := json.Marshal(resp)
		if err != nil {
			return runtimeError(err)
		}
		fmt.Fprintf(a.stdout, "%s\n", printable.JSON(line))
	} else if resp.OK {
		if resp.Note != "" {
			fmt.Fprintf(a.stdout, "%s: %s\n", req.Command, printable.Line(resp.Note))
		}
		printStatus(a.stdout, resp.Status)
	}
	if !resp.OK {
		return runtimeError(fmt.Errorf("%s refused: %s", req.Command, printable.Line(resp.Error)))
	}
	return nil
}

// watch follows a running rollout: the status whenever it changes, in plain text (or one JSON
// response per line), until the rollout ends or perch goes away. Its exit says how it ended:
// 0 promoted, 1 rolled back, 3 perch went away first; Ctrl+C leaves with 0.
func (a *app) watch(ctx context.Context, socket, rollout, output string) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	socket, err := a.findSocket(ctx, socket, rollout)
	if err != nil {
		return err
	}
	name := ""
	if rollout != "" {
		name = rolloutName(rollout)
	}
	var last string
	var seen *control.Status
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(watchEvery):
			}
		}
		askCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := control.Send(askCtx, socket, control.Request{Command: "status", Rollout: name})
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && first:
			return runtimeError(err)
		case err != nil:
			return a.watchEnd(seen, output)
		case resp.OK && resp.Status == nil && len(resp.Rollouts) == 1:
			return runtimeError(fmt.Errorf("%s has not started (%s)", printable.Line(resp.Rollouts[0].Name), printable.Line(resp.Rollouts[0].Phase)))
		case resp.OK && resp.Status == nil:
			return badInput(fmt.Errorf("%d rollouts run here; name the one to watch: %s", len(resp.Rollouts), summaryNames(resp.Rollouts)))
		case !resp.OK || resp.Status == nil:
			return runtimeError(fmt.Errorf("status refused: %s", printable.Line(resp.Error)))
		}
		seen = resp.Status
		var b strings.Builder
		if output == outputJSON {
			line, _ := json.Marshal(resp)
			fmt.Fprintf(&b, "%s\n", printable.JSON(line))
		} else {
			printStatus(&b, resp.Status)
		}
		// The same status again (only its clocks moved) is not printed twice.
		if now := b.String(); now != last {
			if output == outputText && !first {
				fmt.Fprintln(a.stdout)
			}
			io.WriteString(a.stdout, now)
			last = now
		}
		switch resp.Status.Phase {
		case engine.PhasePromoted:
			return nil
		case engine.PhaseRolledBack:
			return exitWith(exitRolledBack)
		}
	}
}

// watchEnd is how a watch ends when perch has gone: a run that does not linger ends with its
// rollout, and its journal says how. It exits as the rollout ended; 3 if it had not.
func (a *app) watchEnd(seen *control.Status, output string) error {
	var st *engine.State
	if seen != nil && seen.Journal != "" {
		if rec, err := engine.LoadRecording(seen.Journal); err == nil {
			folded := rec.Fold()
			st = &folded
		}
	}
	if st == nil || !st.Phase.Done() {
		fmt.Fprintln(a.stderr, "perch: perch went away before the rollout ended; its journal tells the rest")
		return exitWith(exitRuntime)
	}
	if output == outputText {
		fmt.Fprintln(a.stdout)
		s := control.StatusOf(*st)
		printStatus(a.stdout, s)
	}
	if st.Phase == engine.PhaseRolledBack {
		return exitWith(exitRolledBack)
	}
	return nil
}

// printRollouts writes a fleet's rollouts, one line each, or as {"rollouts": […]}.
func (a *app) printRollouts(list []control.Summary, output string) error {
	if list == nil {
		list = []control.Summary{}
	}
	if output == outputJSON {
		line, err := json.Marshal(struct {
			Rollouts []control.Summary `json:"rollouts"`
		}{list})
		if err != nil {
			return runtimeError(err)
		}
		fmt.Fprintf(a.stdout, "%s\n", printable.JSON(line))
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPHASE\tSTEP\tWEIGHT\t")
	for _, s := range list {
		step, weight := "—", "—"
		if s.Step > 0 {
			step = strconv.Itoa(s.Step)
		}
		if s.Weight >= 0 {
			weight = fmt.Sprintf("%d%%", s.Weight)
		}
		note := s.Reason
		switch {
		case s.Error != "":
			note = s.Error
		case len(s.Waiting) > 0:
			note = "waiting for " + strings.Join(s.Waiting, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable.Line(s.Name), printable.Line(s.Phase), step, weight, printable.Line(note))
	}
	return tw.Flush()
}

// summaryNames lists the rollouts' names.
func summaryNames(list []control.Summary) string {
	var names []string
	for _, s := range list {
		names = append(names, printable.Line(s.Name))
	}
	return strings.Join(names, ", ")
}

// printStatus writes a rollout's status for people: values in each check's unit, nothing
// where nothing has been measured yet. Its reasons, names and errors came from outside
// (alerts, providers, operators), so each is made one printable line.
func printStatus(w io.Writer, s *control.Status) {
	line := printable.Line
	name := line(s.Name)
	if c := s.Canary.String(); c != "" {
		name += " " + line(c)
	}
	weight := "canary weight not set yet"
	if s.Weight >= 0 {
		weight = fmt.Sprintf("canary %d%%", s.Weight)
	}
	fmt.Fprintf(w, "%s  %s  step %d/%d (%s)  %s", name, line(s.Phase.Words()), s.Step, s.Steps, line(s.StepDesc), weight)
	if s.Target != s.Weight && s.Target >= 0 {
		fmt.Fprintf(w, " (setting %d%%)", s.Target)
	}
	if s.Role != "" {
		leader := s.Leader
		if leader == "" {
			leader = "none yet"
		}
		fmt.Fprintf(w, "  this replica: %s (leader: %s)", line(s.Role), line(leader))
	}
	fmt.Fprintln(w)
	if s.Reason != "" {
		who := ""
		if s.PausedBy != "" {
			who = " by " + s.PausedBy
		}
		fmt.Fprintf(w, "  %s%s: %s\n", line(strings.TrimSpace(s.Hold+" "+s.Phase.Words())), line(who), line(s.Reason))
	}
	if s.RouterErr != "" {
		fmt.Fprintf(w, "  provider error: %s\n", line(s.RouterErr))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range s.Checks {
		u := metrics.Unit{Name: line(c.Unit), Rate: c.Rate}
		value := func(v metrics.Number) string {
			if math.IsNaN(float64(v)) {
				return "—"
			}
			return u.Value(float64(v))
		}
		name := line(c.Name)
		if c.DryRun {
			name += " (dry run)"
		}
		if c.Verdict == "" {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, "no look yet this step", "")
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\tlast interval: canary %s, baseline %s\t%s\n", name, line(string(c.Verdict)),
			value(c.Canary), value(c.Baseline), line(c.Reason))
	}
	tw.Flush()
	if s.LastChange != "" {
		fmt.Fprintf(w, "  last: %s  %s\n", s.LastEvent.UTC().Format(time.RFC3339), line(s.LastChange))
	}
}
