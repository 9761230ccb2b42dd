package models

import (
	"iter"
	"net/url"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CleanPath resolves "//", "." and ".." in a percent-decoded request or
// route path, keeping a trailing slash, so a rule cannot be dodged with
// /api/billing/../reports/. A path that is empty or not rooted ("*" of
// OPTIONS *) is rooted first. Route paths are valid only when already clean,
// since request paths are cleaned before matching: one algorithm for both.
func CleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// maxDecodeLayers bounds how many further percent-decodings UnusualPath
// tries: an upstream (or a chain of them) that decodes twice or three
// times is real; one that decodes five times is not.
const maxDecodeLayers = 3

// UnusualPath reports why a cleaned, percent-decoded request path could be
// read as another path by some HTTP stack behind the gateway, or "" when it
// could not. The shapes are the ones Tomcat, Spring, IIS, Windows file
// systems and double-decoding proxies resolve differently from the
// gateway's own cleaning:
//   - a control character (NUL, TAB, LF, DEL, C1), raw or once encoded;
//   - invalid UTF-8, which includes overlong forms such as %c0%ae ("."):
//     a lenient decoder reads them as ASCII;
//   - a backslash or a Unicode look-alike of one (IIS and Windows read "\"
//     as "/");
//   - a dot segment the gateway's cleaning leaves alone: "..;" and ".;"
//     (Tomcat drops path parameters, then resolves ".."), "..;jsessionid=x",
//     dots with trailing spaces, and segments of Unicode dot look-alikes
//     (U+2024, U+FF0E, U+3002, ...), which NFKC or a best-fit code page
//     turns into ".";
//   - any of the above after one to three further percent-decodings
//     (%252e%252e/ is "../" to an upstream that decodes twice).
//
// An encoded slash (%2F) is decoded by the gateway like any other escape
// and forwarded as "/": the gateway and the upstream agree on the segments,
// so it is not unusual unless it is double-encoded into a dot segment.
func UnusualPath(clean string) string {
	p := clean
	for layer := 0; ; layer++ {
		if why := unusualLayer(p); why != "" {
			if layer > 0 {
				return why + " after decoding it again"
			}
			return why
		}
		if !strings.Contains(p, "%") {
			return ""
		}
		next, err := url.PathUnescape(p)
		if err != nil || next == p {
			return "" // "100%" or "%zz": nothing further to decode
		}
		if layer == maxDecodeLayers {
			return "percent-encoded more than three times"
		}
		p = next
	}
}

// unusualLayer checks one decoding of a path. Any segment of dots is
// unusual: the first layer is clean, so its plain "." and ".." segments
// are resolved already; in a deeper layer the gateway never saw them.
func unusualLayer(p string) string {
	if plainASCII(p) {
		// The common case, without the rune loop: printable ASCII has no
		// control character, no look-alike, and a backslash is checked.
		for seg := range strings.SplitSeq(p, "/") {
			if isDotLike(seg) {
				return "dot segment the gateway does not resolve"
			}
		}
		return ""
	}
	return unusualRunes(p)
}

// unusualRunes is unusualLayer for any string: control characters,
// backslashes and their look-alikes, dot segments after look-alikes map.
func unusualRunes(p string) string {
	if !utf8.ValidString(p) {
		return "invalid UTF-8"
	}
	for _, r := range p {
		switch {
		case unicode.IsControl(r):
			return "control character"
		case r == '\\' || lookalike(r) == '\\':
			return "backslash"
		}
	}
	for seg := range strings.SplitSeq(mapLookalikes(p), "/") {
		if isDotLike(seg) {
			return "dot segment the gateway does not resolve"
		}
	}
	return ""
}

// isDotLike reports whether a segment is only dots once a stack that drops
// ";parameters" (Tomcat, Spring, Jetty) or trailing spaces (Windows) has
// read it: "..;", ".;x", ".. ", "...".
func isDotLike(seg string) bool {
	base, _, _ := strings.Cut(seg, ";")
	base = strings.TrimRight(base, " ")
	return base != "" && strings.Trim(base, ".") == ""
}

// lookalike maps a Unicode look-alike of '.', '/' or '\' to the ASCII
// character NFKC normalisation or a Windows best-fit code page turns it
// into, or returns 0.
func lookalike(r rune) rune {
	switch r {
	case '\u2024', '\uFE52', '\uFF0E', '\u3002', '\uFF61':
		return '.' // ONE DOT LEADER, SMALL/FULLWIDTH FULL STOP, IDEOGRAPHIC FULL STOP (and halfwidth)
	case '\u2025', '\u2026':
		return '.' // TWO DOT LEADER, HORIZONTAL ELLIPSIS: ".." and "..."
	case '\uFF0F', '\u2215', '\u2044', '\u29F8':
		return '/' // FULLWIDTH SOLIDUS, DIVISION SLASH, FRACTION SLASH, BIG SOLIDUS
	case '\uFF3C', '\uFE68', '\u2216', '\u29F5', '\u29F9':
		return '\\' // FULLWIDTH/SMALL REVERSE SOLIDUS, SET MINUS, REVERSE SOLIDUS OPERATOR, BIG REVERSE SOLIDUS
	}
	return 0
}

// mapLookalikes replaces Unicode look-alikes of '.' and '/' with ASCII.
func mapLookalikes(p string) string {
	if isASCII(p) {
		return p
	}
	return strings.Map(func(r rune) rune {
		if a := lookalike(r); a != 0 {
			return a
		}
		return r
	}, p)
}

// plainASCII reports whether s is printable ASCII (0x20-0x7e) without a
// backslash.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// PathReadings returns the cleaned paths a lenient upstream may read a
// cleaned request path as: path parameters (";v=1") dropped from every
// segment, trailing dots and spaces of a segment dropped (Windows), Unicode
// look-alikes of "/" mapped, and each further percent-decoding (up to
// three). The readings are lower-cased: a case-insensitive stack (IIS)
// reads /API/Billing as /api/billing, so match them with MatchesFold. The
// gateway refuses a path whose readings fall under another route than the
// path itself. The first reading is always the path's own, lower-cased.
// They are yielded one by one, so the request path allocates no list.
func PathReadings(clean string) iter.Seq[string] {
	return func(yield func(string) bool) {
		prev, p := "", clean
		for layer := 0; layer <= maxDecodeLayers; layer++ {
			if r := lenientReading(p); layer == 0 || r != prev {
				if !yield(r) {
					return
				}
				prev = r
			}
			if !strings.Contains(p, "%") {
				return
			}
			next, err := url.PathUnescape(p)
			if err != nil || next == p {
				return
			}
			p = next
		}
	}
}

// lenientReading is p as a lenient stack reads it; see PathReadings.
func lenientReading(p string) string {
	if !strings.ContainsAny(p, `;\ `) && isASCII(p) && !strings.Contains(p, "./") && !strings.HasSuffix(p, ".") {
		return strings.ToLower(p) // nothing to drop: the common case, no allocation when lower-case
	}
	segs := strings.Split(strings.ReplaceAll(mapLookalikes(p), `\`, "/"), "/")
	for i, s := range segs {
		s, _, _ = strings.Cut(s, ";")
		if t := strings.TrimRight(s, ". "); t != "" {
			s = t
		}
		segs[i] = s
	}
	return strings.ToLower(CleanPath(strings.Join(segs, "/")))
}

// MatchesPrefix reports whether a route path covers a cleaned path on a
// segment boundary: "/api/billing/" covers "/api/billing", "/api/billing/"
// and "/api/billing/x"; "/api/billing" also covers those but not
// "/api/billingx". fold compares case-insensitively.
func MatchesPrefix(prefix, p string, fold bool) bool {
	base := strings.TrimSuffix(prefix, "/")
	if len(p) < len(base) {
		return false
	}
	head := p[:len(base)]
	if fold && !strings.EqualFold(head, base) {
		return false
	}
	if !fold && head != base {
		return false
	}
	rest := p[len(base):]
	return rest == "" || rest[0] == '/' || base == ""
}
