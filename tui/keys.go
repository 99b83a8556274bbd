package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key the view answers, built per view (never shared).
type keyMap struct {
	Pause, Advance, Rollback, Promote, Retry key.Binding
	NextFocus, PrevFocus                     key.Binding
	Down, Up, PageDown, PageUp, Top, Bottom  key.Binding
	Theme, Help, Quit, Close, Interrupt      key.Binding
	Yes, No, Detach, Stop                    key.Binding
	// Replay.
	PlayPause, Faster, Slower, PrevStep, NextStep, ToStart, ToEnd key.Binding
}

func newKeyMap() keyMap {
	b := func(help string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(keys[0], help))
	}
	return keyMap{
		Pause:     b("pause/resume", "p"),
		Advance:   b("advance", "a"),
		Rollback:  b("roll back", "r"),
		Promote:   b("promote", "P"),
		Retry:     b("retry", "R"),
		NextFocus: b("next pane", "tab"),
		PrevFocus: b("previous pane", "shift+tab"),
		Down:      b("down", "j", "down"),
		Up:        b("up", "k", "up"),
		PageDown:  b("page down", "pgdown", "ctrl+d", "ctrl+f"),
		PageUp:    b("page up", "pgup", "ctrl+u", "ctrl+b"),
		Top:       b("top", "home", "g"),
		Bottom:    b("bottom", "end", "G"),
		Theme:     b("theme", "t"),
		Help:      b("help", "?"),
		Quit:      b("quit", "q"),
		Close:     b("close", "esc"),
		Interrupt: b("interrupt", "ctrl+c"),
		Yes:       b("yes", "y", "enter"),
		No:        b("no", "n", "esc"),
		Detach:    b("detach", "d"),
		Stop:      b("stop", "s"),
		PlayPause: b("pause/play", " "),
		Faster:    b("faster", "+", "="),
		Slower:    b("slower", "-", "_"),
		PrevStep:  b("previous step", "left"),
		NextStep:  b("next step", "right"),
		ToStart:   b("start", "g", "home"),
		ToEnd:     b("end", "G", "end"),
	}
}
