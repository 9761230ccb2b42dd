package handlers

import (
	"net/url"
	"strings"
)

// safeNext returns where a finished login may send the browser: next when
// it is a same-origin path or an absolute URL whose origin allowed
// accepts, else "/". It refuses, in raw form and in every percent-decoded
// form (up to three rounds): a leading "//" or "/\" (browsers read both as
// another host), backslashes anywhere, control characters (a tab or CR/LF
// that a browser strips or a header splits on), a scheme on a relative
// form ("https:evil", "javascript:"), and user info ("http://ok@evil").
func safeNext(next string, allowed func(origin string) bool) string {
	if next == "" || len(next) > 2048 {
		return "/"
	}
	forms := []string{next}
	for cur, i := next, 0; i < 3; i++ {
		dec, err := url.PathUnescape(cur)
		if err != nil {
			return "/"
		}
		if dec == cur {
			break
		}
		forms = append(forms, dec)
		cur = dec
	}
	for _, f := range forms {
		if strings.ContainsFunc(f, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
			return "/"
		}
	}
	if next[0] == '/' {
		for _, f := range forms {
			if !strings.HasPrefix(f, "/") || strings.HasPrefix(f, "//") {
				return "/"
			}
		}
		u, err := url.Parse(next)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
			return "/"
		}
		return next
	}
	u, err := url.Parse(next)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	if len(next) < len(origin) || !strings.EqualFold(next[:len(origin)], origin) {
		return "/"
	}
	if rest := next[len(origin):]; rest != "" && rest[0] != '/' && rest[0] != '?' && rest[0] != '#' {
		return "/"
	}
	if !allowed(origin) {
		return "/"
	}
	return next
}
