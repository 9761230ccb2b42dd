package models

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Validate checks every value and returns every problem, each naming its
// key, in the order of settings.yaml's sections; none when the settings can
// be served. It is pure: s is left exactly as it was (Compile builds the
// normalised, parsed form the gateway runs on). One file per section:
// validate_auth.go, validate_local.go, validate_throttle.go,
// validate_routes.go; the small top-level sections are here.
func (s Settings) Validate() []Problem {
	var p problemList
	s.validateServer(&p)
	s.AuthService.validate(&p)
	s.Auth.validate(&p)
	s.Auth.Local.validate(&p, s.Auth.Verify, s.Users.Source)
	s.validateStorage(&p)
	s.validateIdentity(&p)
	s.Throttle.validate(&p)
	s.validateLogging(&p)
	s.Browser.validate(&p)
	s.Admin.validate(&p)
	validateRoutes(&p, s.Routes)
	s.validateOIDC(&p)
	s.validateOIDCLogin(&p)
	s.validateExtAuthz(&p)
	validateRateLimits(&p, s.Routes)
	return p
}

// validateServer checks listen, shutdown_timeout, readiness_interval and
// metrics_listen.
func (s Settings) validateServer(p *problemList) {
	if s.Listen == "" {
		p.add("listen", "must not be empty (e.g. \"127.0.0.1:8001\")")
	}
	if s.ShutdownTimeout <= 0 {
		p.add("shutdown_timeout", "must be a positive duration, got %s", s.ShutdownTimeout)
	}
	if s.ReadinessInterval <= 0 {
		p.add("readiness_interval", "must be a positive duration, got %s", s.ReadinessInterval)
	}
	if s.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(s.MetricsListen); err != nil {
			p.add("metrics_listen", "must be host:port (e.g. \"127.0.0.1:9090\"), got %q", s.MetricsListen)
		} else if s.MetricsListen == s.Listen && !strings.HasSuffix(s.Listen, ":0") {
			p.add("metrics_listen", "must differ from listen: /metrics is never served on the public listener (set \"\" to turn it off)")
		}
	}
}

// validateStorage checks database and users (the user mirror).
func (s Settings) validateStorage(p *problemList) {
	switch s.Database.Driver {
	case "sqlite", "postgres":
	default:
		p.add("database.driver", "must be sqlite or postgres, got %q", s.Database.Driver)
	}
	if s.Database.DSN == "" {
		p.add("database.dsn", "must not be empty")
	}
	if s.Users.RefreshAfter <= 0 {
		p.add("users.refresh_after", "must be a positive duration, got %s", s.Users.RefreshAfter)
	}
	if s.Users.CacheSize <= 0 {
		p.add("users.cache_size", "must be positive, got %d", s.Users.CacheSize)
	}
}

// validateIdentity checks identity_headers, trusted_proxies and
// identity_token: what the gateway tells upstreams and whom it believes.
func (s Settings) validateIdentity(p *problemList) {
	if s.IdentityHeaders.Prefix == "" {
		p.add("identity_headers.prefix", "must not be empty (e.g. \"X-User-\")")
	} else if !isHeaderToken(s.IdentityHeaders.Prefix) {
		p.add("identity_headers.prefix", "must be letters, digits and '-' (a header name prefix), got %q", s.IdentityHeaders.Prefix)
	}
	for i, raw := range s.TrustedProxies {
		if _, err := parsePrefix(raw); err != nil {
			p.add(indexKey("trusted_proxies", i), "want a CIDR such as \"10.0.0.0/8\" or an address, got %q", raw)
		}
	}
	if it := s.IdentityToken; it.Enabled {
		if it.Algorithm != AlgES256 && it.Algorithm != AlgRS256 {
			p.add("identity_token.algorithm", "must be ES256 or RS256, got %q", it.Algorithm)
		}
		if it.KeyFile == "" {
			p.add("identity_token.key_file", "must not be empty when identity_token.enabled")
		}
		if it.Lifetime <= 0 {
			p.add("identity_token.lifetime", "must be a positive duration, got %s", it.Lifetime)
		}
	}
}

// validateLogging checks forward_auth and log.
func (s Settings) validateLogging(p *problemList) {
	if !slices.Contains([]string{ForwardAuthAuto, ForwardAuthNginx, ForwardAuthTraefik}, s.ForwardAuth.Headers) {
		p.add("forward_auth.headers", "must be auto, nginx or traefik, got %q", s.ForwardAuth.Headers)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(s.Log.Level)) {
		p.add("log.level", "must be debug, info, warn or error, got %q", s.Log.Level)
	}
	if s.Log.Format != "text" && s.Log.Format != "json" {
		p.add("log.format", "must be text or json, got %q", s.Log.Format)
	}
}

// checkURL reports raw at key unless it is an http(s) URL with a host;
// empty is a problem only when required.
func (p *problemList) checkURL(key, raw string, required bool) {
	if raw == "" {
		if required {
			p.add(key, "must not be empty")
		}
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(key, "must be an http:// or https:// URL with a host, got %q", raw)
	}
}

// indexKey names a list item: indexKey("routes", 2) is "routes[2]".
func indexKey(key string, i int) string {
	return key + "[" + strconv.Itoa(i) + "]"
}

// isHeaderToken reports whether s is made of letters, digits, '-' and '_'.
func isHeaderToken(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}
