package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/bubbles/key"

	"github.com/perchhq/perch/engine"
)

// rebind gives b other keys, named on screen by the first, keeping its help text.
func rebind(b *key.Binding, keys ...string) {
	b.SetKeys(keys...)
	b.SetHelp(keyName(keys[0]), b.Help().Desc)
}

// withKeys is a harness whose view answers the key map edit makes of the default one.
func withKeys(h *harness, edit func(*keyMap)) *harness {
	k := newKeyMap()
	edit(&k)
	h.m.keys, h.m.dirty = k, true
	return h
}

// lines are the screen's lines that contain s.
func lines(screen, s string) []string {
	var out []string
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// TestKeyMapDrivesEverything: a key changed in the key map changes what the key does, the key
// bar, the help overlay and the hints beside the state; the old key does nothing.
func TestKeyMapDrivesEverything(t *testing.T) {
	st, now := stateRunning(t)
	h := withKeys(newHarness(t, st, now, nil), func(k *keyMap) { rebind(&k.Pause, "x") })
	bar := h.screen()[strings.LastIndex(h.screen(), "\n")+1:]
	if !strings.Contains(bar, "x pause") || strings.Contains(bar, "p pause") {
		t.Errorf("key bar does not offer x for pause:\n%s", bar)
	}
	h.press("p")
	if got := h.sentKinds(); len(got) != 0 {
		t.Fatalf("p sent %v after pause moved to x", got)
	}
	h.press("x")
	if got := h.sentKinds(); len(got) != 1 || got[0] != engine.CommandPause {
		t.Fatalf("x sent %v, want a pause", got)
	}
	h.press("?")
	help := h.screen()
	if l := lines(help, "pause: stop progress here"); len(l) != 1 || !strings.HasPrefix(l[0], "  x        pause:") {
		t.Errorf("help does not list x for pause:\n%s", help)
	}

	// The hints beside a pause step name the key too.
	pst, pnow := statePauseStep(t)
	h = withKeys(newHarness(t, pst, pnow, nil), func(k *keyMap) { rebind(&k.Pause, "x") })
	screen := h.screen()
	if !strings.Contains(screen, "waiting for an operator to resume (x)") || !strings.Contains(screen, "waits for an operator (x resumes)") ||
		strings.Contains(screen, "(p)") || strings.Contains(screen, "p resume") {
		t.Errorf("pause step hints do not name x:\n%s", screen)
	}
}

// TestKeyMapDrivesDialogs: the confirm and quit dialogs show the keys of the key map, and
// answer to them only.
func TestKeyMapDrivesDialogs(t *testing.T) {
	st, now := stateRunning(t)
	h := withKeys(newHarness(t, st, now, nil), func(k *keyMap) {
		rebind(&k.Yes, "o")
		rebind(&k.No, "c")
	})
	h.press("r")
	screen := h.screen()
	for _, want := range []string{"o   roll back", "c   cancel", "o roll back  c cancel"} {
		if !strings.Contains(screen, want) {
			t.Errorf("confirm dialog does not say %q:\n%s", want, screen)
		}
	}
	for _, k := range []string{"y", "enter", "n"} {
		if h.press(k); h.m.dialog == nil || len(h.ctl.sent()) != 0 {
			t.Fatalf("%s answered the dialog after yes and no moved to o and c", k)
		}
	}
	h.press("c")
	if h.m.dialog != nil || len(h.ctl.sent()) != 0 {
		t.Fatalf("c did not cancel: dialog %v, sent %v", h.m.dialog, h.sentKinds())
	}
	h.press("r")
	h.press("o")
	if got := h.sentKinds(); len(got) != 1 || got[0] != engine.CommandRollback {
		t.Fatalf("o sent %v, want a rollback", got)
	}

	h = withKeys(newHarness(t, st, now, nil), func(k *keyMap) {
		rebind(&k.Detach, "D")
		rebind(&k.Stay, "w")
	})
	h.press("q")
	screen = h.screen()
	for _, want := range []string{"D   detach", "w   stay", "D detach  s stop the engine  w stay"} {
		if !strings.Contains(screen, want) {
			t.Errorf("quit dialog does not say %q:\n%s", want, screen)
		}
	}
	for _, k := range []string{"d", "esc", "n"} {
		if h.press(k); h.m.dialog == nil || h.quit {
			t.Fatalf("%s answered the quit dialog after detach and stay moved to D and w", k)
		}
	}
	h.press("w")
	if h.m.dialog != nil || h.quit {
		t.Fatal("w did not stay")
	}
	h.press("q")
	h.press("D")
	if !h.quit || h.m.Choice() != ChoiceDetach {
		t.Errorf("D: quit %v, choice %v; want to detach", h.quit, h.m.Choice())
	}
}

// TestKeyMapDrivesReplayKeys: the replay's keys come from the key map as well.
func TestKeyMapDrivesReplayKeys(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, func(o *Options) { o.Mode, o.Commander = ModeReplay, nil })
	h.m.opts.Playback = h.pb
	withKeys(h, func(k *keyMap) {
		rebind(&k.PlayPause, "w")
		rebind(&k.Faster, "f")
		rebind(&k.ToStart, "0")
	})
	for _, k := range []string{" ", "+", "w", "f", "0"} {
		h.press(k)
	}
	if got, want := strings.Join(h.pb.calls, " "), "toggle faster start"; got != want {
		t.Errorf("playback calls %q, want %q", got, want)
	}
	screen := h.screen()
	for _, want := range []string{"w pause/play", "f/- speed", "0/G start/end"} {
		if !strings.Contains(screen, want) {
			t.Errorf("replay key bar does not say %q:\n%s", want, screen)
		}
	}
	h.press("?")
	screen = h.screen()
	for _, want := range []string{"  w        pause or play the replay", "  f / -    play faster", "  0 / G    jump to the start"} {
		if !strings.Contains(screen, want) {
			t.Errorf("replay help does not say %q:\n%s", want, screen)
		}
	}
}
