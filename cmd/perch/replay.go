package main

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/themes"
	"github.com/perchhq/perch/tui"
)

type replayFlags struct {
	headless bool
	output   string
	speed    float64
	theme    string
}

// The TUI steers a replay through the Player.
var _ tui.Playback = (*engine.Player)(nil)

func (a *app) replayCmd() *cobra.Command {
	var f replayFlags
	c := &cobra.Command{
		Use:   "replay RECORDING.jsonl",
		Short: "Play a recorded rollout (any journal) back",
		Long: fmt.Sprintf(`Play back a rollout from its journal, as it was shown when it ran, at --speed times the
recorded speed (%g to %g). A recorded gap longer than two analysis intervals (a long pause,
a hold waiting for an operator) is played as two intervals.

In the TUI: space pause, +/- speed, ←/→ previous/next step, g/G start/end.
--headless prints every event instead, with its recorded time.`, engine.MinReplaySpeed, float64(engine.MaxReplaySpeed)),
		Args: exactlyOneArg("recording"),
		RunE: func(c *cobra.Command, args []string) error { return a.replay(c, args[0], f) },
	}
	c.Flags().BoolVar(&f.headless, "headless", false, "print one line per event instead of the TUI")
	c.Flags().StringVarP(&f.output, "output", "o", outputText, "headless output: text or json (the journal events)")
	c.Flags().Float64Var(&f.speed, "speed", 1, "multiple of the recorded speed")
	c.Flags().StringVar(&f.theme, "theme", themes.Default, "TUI colours: "+strings.Join(themes.Names(), ", ")+", or a theme file NAME.yaml")
	return c
}

func (a *app) replay(c *cobra.Command, path string, f replayFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if math.IsNaN(f.speed) || f.speed < engine.MinReplaySpeed || f.speed > engine.MaxReplaySpeed {
		return badInput(fmt.Errorf("--speed: want %g to %g, got %v", engine.MinReplaySpeed, float64(engine.MaxReplaySpeed), f.speed))
	}
	theme, err := a.checkTUI(runFlags{headless: f.headless, theme: f.theme})
	if err != nil {
		return err
	}
	rec, err := engine.LoadRecording(path)
	if err != nil {
		return badInput(err)
	}
	for _, w := range rec.Warnings {
		fmt.Fprintf(a.stderr, "perch: %s: %s\n", path, w)
	}
	player := engine.NewPlayer(rec, f.speed)
	if !f.headless {
		return a.replayTUI(c.Context(), player, theme)
	}
	states, _ := player.Subscribe() // closed when Run returns
	printed := make(chan struct{})
	go printEvents(player.Events(), a.stdout, rec.Header.Spec, f.output, printed)
	err = player.Run(c.Context())
	<-printed
	var last engine.State
	for s := range states {
		last = s
	}
	st := player.Status()
	if err != nil {
		return runtimeError(fmt.Errorf("replay stopped at event %d of %d: %w", st.Pos, st.Len, err))
	}
	fmt.Fprintf(a.stderr, "perch: replayed %d events of %s; the rollout was %s\n", st.Len, rec.Header.Spec.Name, describeEnd(last))
	return nil
}

// describeEnd says where a replayed rollout stood at its last event.
func describeEnd(s engine.State) string {
	switch {
	case s.Phase.Done():
		return string(s.Phase)
	case s.Stopped:
		return fmt.Sprintf("stopped at step %d (%s)", s.Step+1, printable.Line(s.StopReason))
	}
	return fmt.Sprintf("%s at step %d when the recording ends", s.Phase, s.Step+1)
}

// replayTUI plays the recording in the TUI until the viewer quits; playback waits at the end
// for seeks.
func (a *app) replayTUI(ctx context.Context, player *engine.Player, theme themes.Theme) error {
	player.Linger = true
	ctx, cancel := context.WithCancel(ctx)
	played := make(chan error, 1)
	go func() { played <- player.Run(ctx) }()
	_, err := tui.Run(ctx, tui.Options{Snapshots: player, Playback: player, Mode: tui.ModeReplay, Theme: theme})
	cancel()
	if perr := <-played; err == nil && perr != nil && ctx.Err() == nil {
		err = perr
	}
	if err != nil {
		return runtimeError(err)
	}
	return nil
}
