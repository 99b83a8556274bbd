package tui

import (
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// cells is the cells s takes on screen, like ansi.StringWidth, which segments every string
// into graphemes and was most of a frame's time (BenchmarkView). The view's own strings are
// colour codes around ASCII and a few narrow symbols; cells counts those directly and hands
// anything else (wide or zero-width characters, other escape sequences) to ansi.StringWidth.
func cells(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b:
			end := csiEnd(s, i)
			if end < 0 {
				return ansi.StringWidth(s)
			}
			i = end
		case c < 0x20 || c == 0x7f:
			return ansi.StringWidth(s)
		case c < utf8.RuneSelf:
			n++
			i++
		case c == 0xe2 && i+2 < len(s) && s[i+1]&0xfc == 0xa0: // braille, U+2800–U+28FF: charts
			n++
			i += 3
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if !narrow(r) {
				return ansi.StringWidth(s)
			}
			n++
			i += size
		}
	}
	return n
}

// csiEnd is the index just past the CSI sequence (ESC [ … final byte) at s[i], or -1 if there
// is none there.
func csiEnd(s string, i int) int {
	if i+1 >= len(s) || s[i+1] != '[' {
		return -1
	}
	for j := i + 2; j < len(s); j++ {
		switch c := s[j]; {
		case c >= 0x40 && c <= 0x7e:
			return j + 1
		case c < 0x20 || c > 0x3f:
			return -1
		}
	}
	return -1
}

// narrow reports whether r is known to take one cell alone: Latin and Greek, general
// punctuation, arrows and mathematical operators, box drawing, blocks and geometric shapes,
// and the symbols the view uses. Combining marks, zero-width characters and anything that may
// be drawn as an emoji are not.
func narrow(r rune) bool {
	switch {
	case r >= 0xa0 && r < 0x300, r >= 0x370 && r < 0x400:
		return r != 0xad // soft hyphen
	case r >= 0x2010 && r < 0x2028, r >= 0x2030 && r < 0x205f:
		return true
	case r >= 0x2190 && r < 0x2300, r >= 0x2500 && r < 0x25fd, r >= 0x2800 && r < 0x2900: // …, braille
		return true
	}
	switch r {
	case 0x2605, 0x26a0, 0x2714, 0x2718: // ★ ⚠ ✔ ✘
		return true
	}
	return false
}
