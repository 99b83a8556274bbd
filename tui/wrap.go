package tui

import "strings"

// wrap breaks text (one printable line, no escape codes) into lines of at most width cells,
// at spaces; a word longer than a line is broken where the line ends. Unlike ansi.Wordwrap it
// never breaks at a hyphen, so "--resume" stays whole.
func wrap(text string, width int) []string {
	if width <= 0 {
		return nil
	}
	var lines []string
	var line strings.Builder
	lineW := 0
	flush := func() {
		lines = append(lines, line.String())
		line.Reset()
		lineW = 0
	}
	for _, word := range strings.Fields(text) {
		w := cells(word)
		if lineW > 0 && lineW+1+w > width {
			flush()
		}
		for w > width { // a word longer than a line: break it
			if lineW > 0 {
				flush()
			}
			head := cutCells(word, width)
			lines = append(lines, head)
			word = word[len(head):]
			w = cells(word)
		}
		if lineW > 0 {
			line.WriteByte(' ')
			lineW++
		}
		line.WriteString(word)
		lineW += w
	}
	if lineW > 0 || len(lines) == 0 {
		flush()
	}
	return lines
}

// cutCells is the longest prefix of s (no escape codes) at most width cells wide, and at
// least one rune so that breaking a long word always progresses.
func cutCells(s string, width int) string {
	n := 0
	for i, r := range s {
		if n >= width && i > 0 {
			return s[:i]
		}
		n += cells(string(r))
	}
	return s
}

// wrapStyled wraps text and paints each line.
func wrapStyled(text string, width int, style paint) []string {
	lines := wrap(text, width)
	for i, l := range lines {
		lines[i] = style.Render(l)
	}
	return lines
}

// flow packs parts (styled) into lines of at most width cells, joined by sep, in at most n
// lines: a part that does not fit on a line starts the next; what is left for the last line is
// cut to fit.
func flow(parts []string, sep string, width, n int) []string {
	var lines []string
	line := ""
	for _, p := range parts {
		switch {
		case line == "":
			line = p
		case cells(line)+cells(sep)+cells(p) <= width || len(lines) == n-1:
			line += sep + p
		default:
			lines = append(lines, line)
			line = p
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	for i := range lines {
		lines[i] = cut(lines[i], width)
	}
	return lines
}
