package models

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// validate checks auth_service: where the auth service is, its paths, the
// token endpoints' body bounds and the circuit breaker.
func (as AuthService) validate(p *problemList) {
	p.checkURL("auth_service.url", as.URL, true)
	for _, path := range []struct{ key, val string }{
		{"auth_service.token_path", as.TokenPath}, {"auth_service.refresh_path", as.RefreshPath},
		{"auth_service.verify_path", as.VerifyPath}, {"auth_service.blacklist_path", as.BlacklistPath},
		{"auth_service.user_path", as.UserPath}, {"auth_service.password_change_path", as.PasswordChangePath},
	} {
		if !strings.HasPrefix(path.val, "/") {
			p.add(path.key, "must be a path starting with /, got %q", path.val)
		}
	}
	p.checkURL("auth_service.password_reset_url", as.PasswordResetURL, false)
	if as.Timeout <= 0 {
		p.add("auth_service.timeout", "must be a positive duration, got %s", as.Timeout)
	}
	if as.MaxBodyBytes <= 0 {
		p.add("auth_service.max_body_bytes", "must be positive, got %d", as.MaxBodyBytes)
	}
	if as.BodyTimeout < 0 {
		p.add("auth_service.body_timeout", "must not be negative (0 turns it off), got %s", as.BodyTimeout)
	}
	if as.MaxInFlight <= 0 {
		p.add("auth_service.max_in_flight", "must be a positive number of calls, got %d", as.MaxInFlight)
	}
	if as.Circuit.Failures < 0 {
		p.add("auth_service.circuit.failures", "must not be negative (0 turns the breaker off), got %d", as.Circuit.Failures)
	}
	if as.Circuit.Failures > 0 && as.Circuit.CoolDown <= 0 {
		p.add("auth_service.circuit.cool_down", "must be a positive duration, got %s", as.Circuit.CoolDown)
	}
}

// validate checks auth, except auth.local (validate_local.go): the token
// header, the verification mode and the verify cache.
func (a Auth) validate(p *problemList) {
	if a.HeaderName == "" {
		p.add("auth.header_name", "must not be empty")
	}
	if a.UserIDClaim == "" {
		p.add("auth.user_id_claim", "must not be empty")
	}
	if !slices.Contains([]string{VerifyRemote, VerifyLocal, VerifyHybrid, VerifyIntrospect}, a.Verify) {
		p.add("auth.verify", "must be remote, local, hybrid or introspect, got %q", a.Verify)
	}
	if a.Cache.Size <= 0 {
		p.add("auth.cache.size", "must be positive, got %d", a.Cache.Size)
	}
	if a.Cache.TTL <= 0 {
		p.add("auth.cache.ttl", "must be a positive duration, got %s", a.Cache.TTL)
	}
	if a.Cache.NegativeTTL < 0 {
		p.add("auth.cache.negative_ttl", "must not be negative, got %s", a.Cache.NegativeTTL)
	}
	if a.Cache.StaleGrace < 0 {
		p.add("auth.cache.stale_grace", "must not be negative (0 turns it off), got %s", a.Cache.StaleGrace)
	}
	a.Cache.validateRedis(p)
}

// validateRedis checks the shared verdict cache's keys (auth.cache.redis_*).
func (c AuthCache) validateRedis(p *problemList) {
	if c.RedisTimeout <= 0 {
		p.add("auth.cache.redis_timeout", "must be a positive duration, got %s", c.RedisTimeout)
	}
	if c.RedisPrefix == "" || strings.ContainsFunc(c.RedisPrefix, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		p.add("auth.cache.redis_prefix", "must be non-empty, without spaces or control characters, got %q", c.RedisPrefix)
	}
	if c.RedisURL == "" {
		return
	}
	if msg := redisURLProblem(c.RedisURL); msg != "" {
		p.add("auth.cache.redis_url", "%s", msg)
	}
	if name, ok := strings.CutPrefix(c.RedisSecret, KeyEnvPrefix); !ok || !validEnvName(name) {
		p.add("auth.cache.redis_secret", "must be %sNAME when auth.cache.redis_url is set (the HMAC secret the replicas share, read from that environment variable)", KeyEnvPrefix)
	}
}

// redisURLProblem says what is wrong with a Redis URL, or "" when it is
// redis:// or rediss://, with a host, and at most a database number as
// its path.
func redisURLProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "must be a URL like redis://127.0.0.1:6379/0 (could not parse it)"
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Sprintf("must start with redis:// or rediss://, got scheme %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return "must name a host, as in redis://127.0.0.1:6379/0"
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("has a bad port %q", port)
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return fmt.Sprintf("path must be a database number, got %q", u.Path)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "must not have a query or fragment (use auth.cache.redis_timeout for the timeout)"
	}
	return ""
}
