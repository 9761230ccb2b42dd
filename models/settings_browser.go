package models

import (
	"net/url"
	"strings"
)

// Browser configures browser-app mode: tokens in HttpOnly cookies, CSRF
// double submit, allowed origins and CORS. Off by default; without it the
// token endpoints answer exactly as the auth service does.
type Browser struct {
	Enabled bool `yaml:"enabled"`
	// AllowedOrigins are exact origins ("https://app.example.com") that may
	// call the gateway with credentials (CORS) and pass the Origin check of
	// cookie-authenticated state-changing requests. Empty: same-origin only.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// RefreshCookie is the HttpOnly cookie holding the refresh token.
	RefreshCookie Cookie `yaml:"refresh_cookie"`
	// AccessCookie moves the access token into an HttpOnly cookie too, and
	// API routes authenticate from it when no Authorization header is sent.
	AccessCookie bool `yaml:"access_cookie"`
	// AccessCookieName names the access cookie (same path, domain, secure
	// and same_site as the refresh cookie, except path "/").
	AccessCookieName string `yaml:"access_cookie_name"`
	// CSRFCookie names the (readable) CSRF cookie set by GET /auth/csrf/.
	CSRFCookie string `yaml:"csrf_cookie"`
	// CSRFHeader is the request header that must repeat the CSRF cookie.
	CSRFHeader string `yaml:"csrf_header"`
}

// Cookie is a cookie's attributes.
type Cookie struct {
	Name   string `yaml:"name"`
	Path   string `yaml:"path"`
	Domain string `yaml:"domain"`
	Secure bool   `yaml:"secure"`
	// SameSite is lax, strict or none (none requires secure).
	SameSite string `yaml:"same_site"`
}

// Values of browser.refresh_cookie.same_site.
const (
	SameSiteLax    = "lax"
	SameSiteStrict = "strict"
	SameSiteNone   = "none"
)

// DefaultBrowser returns browser's defaults (off).
func DefaultBrowser() Browser {
	return Browser{
		RefreshCookie:    Cookie{Name: "refresh_token", Path: "/auth/", Secure: true, SameSite: SameSiteLax},
		AccessCookieName: "access_token",
		CSRFCookie:       "csrftoken",
		CSRFHeader:       "X-CSRFToken",
	}
}

// validate checks browser; a disabled section is still checked, so
// turning it on later cannot surface old mistakes.
func (b Browser) validate(p *problemList) {
	for i, o := range b.AllowedOrigins {
		if !IsOrigin(o) {
			p.add(indexKey("browser.allowed_origins", i),
				"must be an exact origin, scheme://host[:port] without path, \"*\" or a trailing slash (e.g. \"https://app.example.com\"), got %q", o)
		}
	}
	c := b.RefreshCookie
	checkCookieName(p, "browser.refresh_cookie.name", c.Name)
	checkCookieName(p, "browser.access_cookie_name", b.AccessCookieName)
	checkCookieName(p, "browser.csrf_cookie", b.CSRFCookie)
	if !strings.HasPrefix(c.Path, "/") {
		p.add("browser.refresh_cookie.path", "must be a path starting with /, got %q", c.Path)
	}
	if strings.ContainsAny(c.Domain, " ;,/:") {
		p.add("browser.refresh_cookie.domain", "must be a host name or empty, got %q", c.Domain)
	}
	switch c.SameSite {
	case SameSiteLax, SameSiteStrict:
	case SameSiteNone:
		if !c.Secure {
			p.add("browser.refresh_cookie.same_site", "none requires browser.refresh_cookie.secure: true (browsers drop SameSite=None cookies without Secure)")
		}
	default:
		p.add("browser.refresh_cookie.same_site", "must be lax, strict or none, got %q", c.SameSite)
	}
	if strings.HasPrefix(c.Name, "__Host-") && (!c.Secure || c.Domain != "" || c.Path != "/") {
		p.add("browser.refresh_cookie.name", "a __Host- cookie needs secure: true, domain \"\" and path \"/\" (browsers drop it otherwise)")
	}
	if strings.HasPrefix(c.Name, "__Secure-") && !c.Secure {
		p.add("browser.refresh_cookie.name", "a __Secure- cookie needs secure: true (browsers drop it otherwise)")
	}
	if !isHeaderToken(b.CSRFHeader) {
		p.add("browser.csrf_header", "must be a header name (letters, digits, '-', '_'), got %q", b.CSRFHeader)
	}
	if b.Enabled && (b.RefreshCookie.Name == b.AccessCookieName || b.RefreshCookie.Name == b.CSRFCookie || b.AccessCookieName == b.CSRFCookie) {
		p.add("browser", "refresh_cookie.name, access_cookie_name and csrf_cookie must differ")
	}
}

// checkCookieName reports name at key unless it is a cookie name (an
// RFC 6265 token).
func checkCookieName(p *problemList, key, name string) {
	if name == "" {
		p.add(key, "must not be empty")
		return
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			p.add(key, "must be a cookie name (letters, digits and !#$%%&'*+-.^_`|~), got %q", name)
			return
		}
	}
}

// IsOrigin reports whether s is an exact, serialised origin as browsers
// send it in the Origin header: http(s)://host[:port], lower case, no
// path, query, user info or trailing slash.
func IsOrigin(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery &&
		s == strings.ToLower(u.Scheme+"://"+u.Host)
}
