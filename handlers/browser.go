package handlers

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"jwtgate/models"
)

// Browser-mode refusals (the contract's codes).
var (
	errCSRFFailed = newAPIError(http.StatusForbidden, "csrf_failed",
		"CSRF check failed: the CSRF header must repeat the CSRF cookie (GET /auth/csrf/ sets it).")
	errOriginNotAllowed = newAPIError(http.StatusForbidden, "origin_not_allowed",
		"The request's origin is not allowed.")
	errNoRefreshToken = newAPIError(http.StatusUnauthorized, codeNotAuthenticated, "No refresh token provided.")
	errCookieTwice    = newAPIError(http.StatusBadRequest, codeBadRequest,
		"The request carries a token cookie more than once.")
)

// wsTokenPrefix marks the Sec-WebSocket-Protocol entry that carries an
// access token (the Kubernetes convention): browsers cannot set headers on
// a WebSocket, but they can offer subprotocols.
const wsTokenPrefix = "base64url.bearer.authorization.k8s.io."

// browser is browser-app mode (models.Browser): token cookies, the CSRF
// double submit, the Origin check and CORS. A nil *browser is mode off.
type browser struct {
	cfg     models.Browser
	allowed map[string]bool
	now     func() time.Time
}

// newBrowser returns browser mode for cfg, nil when it is off.
func newBrowser(cfg models.Browser, now func() time.Time) *browser {
	if !cfg.Enabled {
		return nil
	}
	b := &browser{cfg: cfg, allowed: map[string]bool{}, now: now}
	for _, o := range cfg.AllowedOrigins {
		b.allowed[o] = true
	}
	return b
}

// cookiePair is one name=value of a Cookie header.
type cookiePair struct{ name, value string }

// requestCookies returns every cookie of every Cookie header, in order,
// names and values trimmed and a value's surrounding quotes removed
// (RFC 6265 §4.1.1).
func requestCookies(h http.Header) []cookiePair {
	var out []cookiePair
	for _, line := range h.Values("Cookie") {
		for part := range strings.SplitSeq(line, ";") {
			name, value, _ := strings.Cut(part, "=")
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			if name != "" {
				out = append(out, cookiePair{name, value})
			}
		}
	}
	return out
}

// cookie returns the value of the cookie named exactly name (cookie names
// are case-sensitive, as browsers treat them). twice is set when the
// request carries it more than once (a cookie planted by a sibling domain
// or another path): which one a reader takes is then anyone's guess, so
// callers refuse.
func cookie(h http.Header, name string) (value string, twice bool) {
	n := 0
	for _, c := range requestCookies(h) {
		if c.name == name {
			n++
			value = c.value
		}
	}
	return value, n > 1
}

// foldCookieName is the spelling-free form of a cookie name: lower case,
// without the __Host- or __Secure- prefix, so every spelling of a token
// cookie is stripped before the request goes upstream.
func foldCookieName(name string) string {
	n := strings.ToLower(name)
	n = strings.TrimPrefix(n, "__host-")
	return strings.TrimPrefix(n, "__secure-")
}

// stripTokenCookies removes the refresh and access cookies, in every
// spelling (case, __Host-/__Secure- prefix), from the Cookie header: an
// upstream never sees a token in a cookie. Other cookies stay, in one
// Cookie header.
func (b *browser) stripTokenCookies(h http.Header) {
	if len(h.Values("Cookie")) == 0 {
		return
	}
	drop := map[string]bool{foldCookieName(b.cfg.RefreshCookie.Name): true, foldCookieName(b.cfg.AccessCookieName): true}
	var keep []string
	removed := false
	for _, line := range h.Values("Cookie") {
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(part, "=")
			if drop[foldCookieName(strings.TrimSpace(name))] {
				removed = true
				continue
			}
			if p := strings.TrimSpace(part); p != "" {
				keep = append(keep, p)
			}
		}
	}
	if !removed && len(h.Values("Cookie")) == 1 {
		return
	}
	h.Del("Cookie")
	if len(keep) > 0 {
		h.Set("Cookie", strings.Join(keep, "; "))
	}
}

// requestOrigin is the origin a request comes from: its Origin header or,
// without one, its Referer's origin; "" when it names none. A request
// with two Origin headers has none we believe.
func requestOrigin(h http.Header) string {
	if o := h.Values("Origin"); len(o) > 0 {
		if len(o) > 1 {
			return ""
		}
		return o[0]
	}
	ref := h.Values("Referer")
	if len(ref) != 1 {
		return ""
	}
	u, err := url.Parse(ref[0])
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// originAllowed reports whether origin is listed in allowed_origins or is
// the gateway's own origin (host the request was sent to; either scheme,
// as the gateway may sit behind a TLS terminator). "null" and "" never are.
func (b *browser) originAllowed(origin, host string) bool {
	if origin == "" || origin == "null" {
		return false
	}
	if b.allowed[origin] {
		return true
	}
	host = strings.ToLower(host)
	return host != "" && (origin == "http://"+host || origin == "https://"+host)
}

// listed reports whether origin is in allowed_origins (CORS answers go
// only to listed origins; same-origin requests need none).
func (b *browser) listed(origin string) bool { return b.allowed[origin] }

// guard checks a cookie-authenticated state-changing request: its origin
// (Origin, else Referer) must be allowed, and the CSRF header must equal
// the CSRF cookie (compared in constant time).
func (b *browser) guard(h http.Header, host string) error {
	if !b.originAllowed(requestOrigin(h), host) {
		return errOriginNotAllowed
	}
	sent := h.Values(b.cfg.CSRFHeader)
	want, twice := cookie(h, b.cfg.CSRFCookie)
	if len(sent) != 1 || twice || want == "" ||
		subtle.ConstantTimeCompare([]byte(sent[0]), []byte(want)) != 1 {
		return errCSRFFailed
	}
	return nil
}

// safeMethod reports whether m cannot change state (no CSRF check).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// isWebSocket reports whether h asks for a WebSocket upgrade.
func isWebSocket(h http.Header) bool {
	for _, v := range h.Values("Upgrade") {
		for el := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(el), "websocket") {
				return true
			}
		}
	}
	return false
}

// headerWSProtocol is Sec-WebSocket-Protocol's key in an http.Header
// (canonical: "Socket" in lower case). Every request is looked up, so the
// key is not canonicalised, and allocated, each time.
const headerWSProtocol = "Sec-Websocket-Protocol"

// wsProtocolToken takes the access token out of Sec-WebSocket-Protocol:
// the entry base64url.bearer.authorization.k8s.io.<base64url(token)> (its
// prefix in any case) is removed, so the upstream never sees it and
// cannot echo it back; the other entries stay. found is false when no
// entry carries a token; two entries are errAmbiguousCredential.
func wsProtocolToken(h http.Header) (raw string, found bool, err error) {
	vals := h[headerWSProtocol]
	if len(vals) == 0 {
		return "", false, nil
	}
	var keep []string
	n := 0
	for _, v := range vals {
		for el := range strings.SplitSeq(v, ",") {
			el = strings.TrimSpace(el)
			if len(el) >= len(wsTokenPrefix) && strings.EqualFold(el[:len(wsTokenPrefix)], wsTokenPrefix) {
				n++
				raw = el[len(wsTokenPrefix):]
				continue
			}
			if el != "" {
				keep = append(keep, el)
			}
		}
	}
	if n == 0 {
		return "", false, nil
	}
	h.Del("Sec-WebSocket-Protocol")
	if len(keep) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(keep, ", "))
	}
	if n > 1 {
		return "", true, errAmbiguousCredential
	}
	tok, derr := base64.RawURLEncoding.DecodeString(strings.TrimRight(raw, "="))
	if derr != nil || len(tok) == 0 {
		return "", true, &models.TokenError{Reason: models.ReasonMalformed, Detail: "WebSocket subprotocol token is not base64url"}
	}
	return string(tok), true, nil
}

// credential returns a token the request carries outside the token header
// (alt, "" for none), for the decision to authenticate when the header is
// absent; it cleans h first. In order:
//   - Sec-WebSocket-Protocol's token entry (removed from h; with a token
//     header too: 400, two credentials);
//   - in browser mode, token cookies are stripped from the Cookie header
//     (never forwarded), and with access_cookie the access cookie is the
//     credential when the token header is absent (the header wins: it is
//     what the client chose to send, and the cookie never travels on). A
//     cookie-authenticated request must pass the Origin check on a
//     WebSocket upgrade, and guard (Origin and CSRF) when its method
//     changes state.
//
// Only routes that authenticate (auth: required|optional) read a
// credential; the headers are cleaned on every route.
func (b *browser) credential(h http.Header, headerPresent bool, host, method string, authenticates bool) (string, error) {
	ws, found, err := wsProtocolToken(h)
	var cookieTok string
	var twice bool
	if b != nil {
		cookieTok, twice = cookie(h, b.cfg.AccessCookieName)
		b.stripTokenCookies(h)
	}
	if !authenticates {
		return "", nil
	}
	if found {
		if err == nil && headerPresent {
			err = errAmbiguousCredential
		}
		return ws, err
	}
	if b == nil || !b.cfg.AccessCookie || headerPresent || (cookieTok == "" && !twice) {
		return "", nil
	}
	if twice {
		return "", errCookieTwice
	}
	switch {
	case isWebSocket(h):
		if !b.originAllowed(requestOrigin(h), host) {
			return "", errOriginNotAllowed
		}
	case !safeMethod(method):
		if err := b.guard(h, host); err != nil {
			return "", err
		}
	}
	return cookieTok, nil
}

// newCSRFToken returns 32 random bytes, base64url.
func newCSRFToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sameSite maps the setting to net/http's value.
func (b *browser) sameSite() http.SameSite {
	switch b.cfg.RefreshCookie.SameSite {
	case models.SameSiteStrict:
		return http.SameSiteStrictMode
	case models.SameSiteNone:
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}

// setCookie writes one of the gateway's cookies. maxAge 0 is a session
// cookie; negative deletes it.
func (b *browser) setCookie(w http.ResponseWriter, name, value, path string, maxAge int, httpOnly bool) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, Domain: b.cfg.RefreshCookie.Domain, MaxAge: maxAge,
		Secure: b.cfg.RefreshCookie.Secure, HttpOnly: httpOnly, SameSite: b.sameSite(),
	})
}

// setRefresh stores a refresh token (marked when the provider login made
// it) in its cookie, for its lifetime.
func (b *browser) setRefresh(w http.ResponseWriter, tok string) {
	raw, _ := unmarkRefresh(tok)
	b.setCookie(w, b.cfg.RefreshCookie.Name, tok, b.cfg.RefreshCookie.Path, b.lifetime(raw), true)
}

// setAccess stores an access token in its cookie (path /), for its lifetime.
func (b *browser) setAccess(w http.ResponseWriter, tok string) {
	b.setCookie(w, b.cfg.AccessCookieName, tok, "/", b.lifetime(tok), true)
}

// setCSRF sets a fresh CSRF cookie (readable by the page: it repeats it in
// the CSRF header) and returns it.
func (b *browser) setCSRF(w http.ResponseWriter) string {
	tok := newCSRFToken()
	b.setCookie(w, b.cfg.CSRFCookie, tok, "/", 0, false)
	return tok
}

// clearCookies deletes every cookie the gateway sets.
func (b *browser) clearCookies(w http.ResponseWriter) {
	b.setCookie(w, b.cfg.RefreshCookie.Name, "", b.cfg.RefreshCookie.Path, -1, true)
	b.setCookie(w, b.cfg.AccessCookieName, "", "/", -1, true)
	b.setCookie(w, b.cfg.CSRFCookie, "", "/", -1, false)
}

// lifetime is a token's remaining lifetime in seconds, read from its
// (unverified: the auth service just issued it) exp claim; 0 (a session
// cookie) when it has none, -1 when it has expired.
func (b *browser) lifetime(tok string) int {
	claims, err := models.TokenClaims(tok)
	if err != nil {
		return 0
	}
	var exp int64
	switch v := claims["exp"].(type) {
	case int64:
		exp = v
	case float64:
		exp = int64(v)
	default:
		return 0
	}
	s := int(exp - b.now().Unix())
	if s <= 0 {
		return -1
	}
	return s
}
