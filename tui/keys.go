package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key the view answers, built per view (never shared). It is the one place
// keys are named: Update matches against it, and the key bar, the help overlay, the dialogs
// and the hints in the header, the steps and the status line take their keys from it. A
// binding's help key is how the screen names its first key; its help text is what the key bar
// or a dialog shows beside it where that text does not depend on the state.
type keyMap struct {
	Pause, Advance, Rollback, Promote, Retry key.Binding
	NextFocus, PrevFocus                     key.Binding
	Down, Up, PageDown, PageUp, Top, Bottom  key.Binding
	Theme, Help, Quit, Close, Interrupt      key.Binding
	// The detail view: open the item under the focused pane's cursor, and return from it.
	Open, Back key.Binding
	// The fleet overview: filter by name, jump to a rollout by name, mark rows for a bulk
	// command.
	Filter, Jump, Mark key.Binding
	// The confirm dialog.
	Yes, No key.Binding
	// The quit dialog.
	Detach, Stop, Stay key.Binding
	// Replay.
	PlayPause, Faster, Slower, PrevStep, NextStep, ToStart, ToEnd key.Binding
}

func newKeyMap() keyMap {
	b := func(help string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(keyName(keys[0]), help))
	}
	return keyMap{
		Pause:     b("pause/resume", "p"),
		Advance:   b("advance", "a"),
		Rollback:  b("roll back", "r"),
		Promote:   b("promote", "P"),
		Retry:     b("retry", "R"),
		NextFocus: b("focus", "tab"),
		PrevFocus: b("previous pane", "shift+tab"),
		Down:      b("down", "j", "down"),
		Up:        b("up", "k", "up"),
		PageDown:  b("page down", "pgdown", "ctrl+d", "ctrl+f"),
		PageUp:    b("page up", "pgup", "ctrl+u", "ctrl+b"),
		Top:       b("top", "g", "home"),
		Bottom:    b("bottom", "G", "end"),
		Theme:     b("theme", "t"),
		Help:      b("help", "?"),
		Quit:      b("quit", "q"),
		Close:     b("close", "esc"),
		Interrupt: b("interrupt", "ctrl+c"),
		Open:      b("details", "enter"),
		Back:      b("back", "esc"),
		Filter:    b("filter", "/"),
		Jump:      b("jump to", ":"),
		Mark:      b("mark", " "),
		Yes:       b("confirm", "y", "enter"),
		No:        b("cancel", "n", "esc"),
		Detach:    b("detach: keep the rollout running without the view (events print as lines)", "d"),
		Stop:      b("stop the engine: traffic stays as it is; continue later with --resume", "s"),
		Stay:      b("stay", "esc", "n"),
		PlayPause: b("pause/play", " "),
		Faster:    b("faster", "+", "="),
		Slower:    b("slower", "-", "_"),
		PrevStep:  b("previous step", "left"),
		NextStep:  b("next step", "right"),
		// home and end scroll the focused pane, as outside a replay.
		ToStart: b("start", "g"),
		ToEnd:   b("end", "G"),
	}
}

// keyName is how the screen names a key as bubbletea spells it.
func keyName(k string) string {
	switch k {
	case " ":
		return "space"
	case "pgdown":
		return "pgdn"
	case "down":
		return "↓"
	case "up":
		return "↑"
	case "left":
		return "←"
	case "right":
		return "→"
	}
	return k
}

// keyNames names all of b's keys: its help key, then the others.
func keyNames(b key.Binding) []string {
	names := []string{b.Help().Key}
	if keys := b.Keys(); len(keys) > 1 {
		for _, k := range keys[1:] {
			names = append(names, keyName(k))
		}
	}
	return names
}

// pair names two opposite bindings by their help keys: "+/-", or "+ / -" with sep " / ".
func pair(a, b key.Binding, sep string) string {
	return a.Help().Key + sep + b.Help().Key
}

// pairs names two opposite bindings key by key: ["j/k", "↓/↑"] for down and up.
func pairs(a, b key.Binding) []string {
	as, bs := keyNames(a), keyNames(b)
	out := make([]string, 0, min(len(as), len(bs)))
	for i := range cap(out) {
		out = append(out, as[i]+"/"+bs[i])
	}
	return out
}

// describe is b with text in place of its help text, for a dialog that says more about it.
func describe(b key.Binding, text string) key.Binding {
	b.SetHelp(b.Help().Key, text)
	return b
}
