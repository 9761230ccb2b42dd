package cli

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Mirrored records come from the auth service, and users choose their own
// email and username: a value may hold an escape sequence (ESC [ ..., OSC 52
// to set the clipboard, BEL), a carriage return, C1 controls (U+009B is CSI
// on its own) or bidi overrides (U+202E) that rewrite what the operator's
// terminal shows. Nothing from a record reaches the terminal raw.

// termSafe reports whether s can be printed as it is: valid UTF-8 of
// printable characters (unicode.IsPrint: no C0 or C1 controls, DEL, bidi
// or other format characters, line separators or tabs), not starting with
// a double quote (which would read as a quoted value).
func termSafe(s string) bool {
	if strings.HasPrefix(s, `"`) {
		return false
	}
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// termField renders one table cell: the value itself when it is safe,
// else Go-quoted ("\x1b[2J", "\u202e"), as users show quotes it in JSON.
func termField(s string) string {
	if termSafe(s) {
		return s
	}
	return strconv.Quote(s)
}

// termJSON escapes, inside encoded JSON, every character that is not
// printable: encoding/json escapes C0 controls but not DEL, C1 controls or
// bidi and other format characters. The result is equivalent JSON.
func termJSON(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r >= 0x7f && (r == utf8.RuneError || !unicode.IsPrint(r)) {
			if out == nil {
				out = append(make([]byte, 0, len(b)+16), b[:i]...)
			}
			if r1, r2 := utf16.EncodeRune(r); r1 != unicode.ReplacementChar {
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		} else if out != nil {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	if out == nil {
		return b
	}
	return out
}
