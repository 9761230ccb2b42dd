package models

import "strings"

// validate checks the throttle rates (each must parse; ParseLimit's words
// say how) and sizes.
func (t Throttle) validate(p *problemList) {
	for _, r := range []struct{ key, raw string }{
		{"throttle.failures_per_account", t.FailuresPerAccount},
		{"throttle.failures_per_client", t.FailuresPerClient},
		{"throttle.calls_home_per_client", t.CallsHomePerClient},
		{"throttle.login_rate", t.LoginRate},
	} {
		if _, err := ParseLimit(r.raw); err != nil {
			p.add(r.key, "%v", err)
		}
	}
	if t.LoginBurst <= 0 {
		p.add("throttle.login_burst", "must be positive, got %d", t.LoginBurst)
	}
	if t.CacheSize <= 0 {
		p.add("throttle.cache_size", "must be positive, got %d", t.CacheSize)
	}
	if t.AccountsSize <= 0 {
		p.add("throttle.accounts_size", "must be positive, got %d", t.AccountsSize)
	}
	if f := t.LoginField; f != "" && (strings.TrimSpace(f) != f || len(f) > 150) {
		p.add("throttle.login_field", "must be a body field name without surrounding spaces, got %q", f)
	}
}
