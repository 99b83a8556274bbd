// Package printabletest gives tests text an attacker may send, and finds what of it reached
// a terminal.
package printabletest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// Hostile is text an attacker may put in an alert label, an error message, an SSH key's
// comment or a hand-edited journal: every C0 control, DEL, every C1 control, escape sequences
// that set the window title, write the clipboard and clear the screen (7-bit and C1 forms), a
// forged line, bidi controls and invalid UTF-8. It starts with mark, so a test can tell where
// it was shown.
func Hostile(mark string) string {
	var b strings.Builder
	b.WriteString(mark)
	for r := rune(0); r < 0x20; r++ {
		b.WriteRune(r)
	}
	b.WriteRune(0x7f)
	for r := rune(0x80); r <= 0x9f; r++ {
		b.WriteRune(r)
	}
	b.WriteString("\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x1b[H\u009b2J\x9b2J\xc2\r✔ promoted\n")
	b.WriteString("2026-01-01T00:00:00Z  promoted: canary weight is 100%\n")
	b.WriteString("\u202eevil\u202c \u2066x\u2069 \u200f\u061c\u2028\u2029\xff\xfe")
	return b.String()
}

// Find returns the first character in s that a terminal would act on rather than show, or that
// reorders or breaks the text around it, and whether there is one. Invalid UTF-8 counts.
// Line feeds (and tabs) are allowed only with multiline.
func Find(s string, multiline bool) (rune, bool) {
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			return r, true // an invalid byte
		}
		switch {
		case (r == '\n' || r == '\t') && multiline:
		case r < 0x20, r >= 0x7f && r <= 0x9f, r == 0x061c, r == 0x200e, r == 0x200f,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x2028, r == 0x2029:
			return r, true
		}
	}
	return 0, false
}

// Fill sets every string reachable from v, a pointer — in struct fields, slices, arrays and
// the structs pointers point to, allocating nil pointers to structs — to Hostile of its path
// ("Log[3].Actor.Name"), so a field added later is filled too. Values of the types in keep
// (what perch writes or checks itself) stay as they are, as do maps and unexported fields.
// Fill writes only to *v: the slices and pointers it reaches are replaced by filled copies, so
// what *v shared with other values stays as it was.
func Fill(v any, keep ...reflect.Type) {
	fill(reflect.ValueOf(v).Elem(), "", keep)
}

func fill(v reflect.Value, path string, keep []reflect.Type) {
	if slices.Contains(keep, v.Type()) {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(Hostile(path))
	case reflect.Pointer:
		if v.IsNil() && v.Type().Elem().Kind() != reflect.Struct {
			return
		}
		c := reflect.New(v.Type().Elem())
		if !v.IsNil() {
			c.Elem().Set(v.Elem())
		}
		v.Set(c)
		fill(c.Elem(), path, keep)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				fill(v.Field(i), strings.TrimPrefix(path+"."+f.Name, "."), keep)
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		v.Set(reflect.AppendSlice(reflect.MakeSlice(v.Type(), 0, v.Len()), v))
		fallthrough
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), fmt.Sprintf("%s[%d]", path, i), keep)
		}
	}
}

// Unsafe returns the path of the first string reachable from v (as Fill walks it) that holds a
// character Find reports, with that character, or "" if every one is printable.
func Unsafe(v any) (string, rune) {
	return unsafeIn(reflect.ValueOf(v), "")
}

func unsafeIn(v reflect.Value, path string) (string, rune) {
	switch v.Kind() {
	case reflect.String:
		if r, ok := Find(v.String(), false); ok {
			return path, r
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return unsafeIn(v.Elem(), path)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				if p, r := unsafeIn(v.Field(i), strings.TrimPrefix(path+"."+f.Name, ".")); p != "" {
					return p, r
				}
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p, r := unsafeIn(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p, r
			}
		}
	}
	return "", 0
}
