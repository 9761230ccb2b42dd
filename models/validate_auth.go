package models

import (
	"slices"
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
}
