// Package printable makes text perch did not write itself safe to show on a terminal: alert
// labels and annotations, provider and metrics-source errors, SSH user names, command reasons,
// journal text read back. A terminal acts on control characters instead of showing them
// (ESC ] 0 sets the window title, ESC ] 52 writes the clipboard, ESC [ 2 J or the C1 CSI
// clears the screen, CR and LF forge lines), and bidi controls reorder what follows them, so
// such text could disguise itself or rewrite what an operator sees. The functions here make
// every such character visible instead. Journals and JSON keep the text as it came.
package printable

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line returns s as one line of printable text. Tab becomes a space; LF and CR become the
// visible `\n` and `\r`; every other C0 control, DEL and C1 control (U+0080–U+009F) becomes
// `\xHH` or `\u00HH`, so an escape sequence shows as text (`\x1b]0;title\x07`); bidi controls
// (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and the line and paragraph
// separators (U+2028, U+2029) become `\uHHHH`; invalid UTF-8 becomes U+FFFD. Text without
// any of these is returned as it is.
func Line(s string) string { return clean(s, oneLine) }

// Text is Line for text of several lines: line feeds and tabs stay as they are.
func Text(s string) string { return clean(s, lines) }

// JSON escapes, in JSON text such as encoding/json writes, the characters it leaves raw that
// a terminal would act on or that reorder text: DEL, the C1 controls and the bidi controls
// become \uHHHH escapes, which decode to the same string. JSON has them only inside strings,
// so the result is the same JSON value.
func JSON(b []byte) []byte {
	i := unsafeIndex(string(b), jsonText)
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	for _, r := range string(b[i:]) { // invalid UTF-8 reads as U+FFFD
		if jsonText.keeps(r) {
			out = utf8.AppendRune(out, r)
			continue
		}
		out = fmt.Appendf(out, `\u%04x`, r)
	}
	return out
}

// mode is what kind of text is made printable.
type mode int

const (
	oneLine  mode = iota // Line
	lines                // Text
	jsonText             // JSON
)

// keeps reports whether r stays as it is in text of mode m.
func (m mode) keeps(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return m != oneLine
	case r < 0x20:
		// Raw in JSON only as whitespace between tokens: encoding/json escapes them in strings.
		return m == jsonText
	}
	return !unsafe(r)
}

// clean makes s printable as text of mode m.
func clean(s string, m mode) string {
	i := unsafeIndex(s, m)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for _, r := range s[i:] { // invalid UTF-8 reads as U+FFFD
		switch {
		case m.keeps(r):
			b.WriteRune(r)
		case r == '\t':
			b.WriteByte(' ')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// unsafeIndex is the index of the first byte of s that text of mode m does not keep, or -1.
func unsafeIndex(s string, m mode) int {
	for i := 0; i < len(s); {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || !m.keeps(r) {
			return i
		}
		i += size
	}
	return -1
}

// unsafe reports whether a terminal acts on r, or r reorders or breaks the text around it.
func unsafe(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}
