package models

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Runtime is the compiled form of valid Settings: what the gateway runs
// on. Compile builds it; nothing in it needs parsing or defaulting again.
type Runtime struct {
	// Settings are the settings it was compiled from, as loaded (defaults
	// filled in, environment overrides applied). Treat them as read-only.
	Settings Settings
	// Routes are routes with their names, auth modes and methods normalised
	// and their allow rules compiled, in the order of settings.yaml.
	Routes []CompiledRoute
	// TrustedNets is trusted_proxies parsed (bare addresses as /32 or /128).
	TrustedNets []netip.Prefix
	// Throttle is throttle with its rates parsed.
	Throttle CompiledThrottle
	// Users is the users section's claims mapping compiled; nil when
	// users.source is auth_service.
	Users *UserMapping
	// IntrospectionNets is introspection.trusted_networks parsed.
	IntrospectionNets []netip.Prefix
	// AdminRule is admin.allow compiled; nil: the admin API is off.
	AdminRule *Rule
}

// CompiledRoute is one route ready to serve: Name is never empty (the path
// without slashes, or "root"), Auth is never empty (required when unset),
// Methods are upper-case.
type CompiledRoute struct {
	Route
	// Rule is Allow compiled; nil when Allow is empty.
	Rule *Rule
}

// CompiledThrottle is throttle with its rates parsed.
type CompiledThrottle struct {
	Throttle
	// LoginEvery is the interval login_rate allows one login per; 0 when off.
	LoginEvery time.Duration
	// AccountLimit, ClientLimit and CallsHome are failures_per_account,
	// failures_per_client and calls_home_per_client; the zero Limit is off.
	AccountLimit, ClientLimit, CallsHome Limit
}

// Compile validates s and builds the runtime form from it. With any
// problem it returns nil and every problem (Validate's); s is not changed.
func Compile(s Settings) (*Runtime, []Problem) {
	if probs := s.Validate(); len(probs) > 0 {
		return nil, probs
	}
	var p problemList // only what Validate let through: never expected
	rt := &Runtime{Settings: s, Routes: make([]CompiledRoute, 0, len(s.Routes))}
	for i, r := range s.Routes {
		r.Name, r.Auth, r.Methods = r.routeName(), r.authMode(), r.upperMethods()
		cr := CompiledRoute{Route: r}
		if r.Allow != "" {
			rule, err := CompileRule(r.Allow)
			if err != nil {
				p.add(indexKey("routes", i)+".allow", "route %q: allow expression %q does not compile: %v", r.Name, r.Allow, err)
			}
			cr.Rule = rule
		}
		rt.Routes = append(rt.Routes, cr)
	}
	for i, raw := range s.TrustedProxies {
		pfx, err := parsePrefix(raw)
		if err != nil {
			p.add(indexKey("trusted_proxies", i), "want a CIDR such as \"10.0.0.0/8\" or an address, got %q", raw)
			continue
		}
		rt.TrustedNets = append(rt.TrustedNets, pfx)
	}
	rt.Throttle = compileThrottle(&p, s.Throttle)
	compileOIDC(&p, rt)
	rt.AdminRule = compileAdmin(&p, s.Admin)
	if len(p) > 0 {
		return nil, p
	}
	return rt, nil
}

// compileThrottle parses the throttle rates.
func compileThrottle(p *problemList, t Throttle) CompiledThrottle {
	ct := CompiledThrottle{Throttle: t}
	for _, r := range []struct {
		key string
		raw string
		dst *Limit
	}{
		{"throttle.failures_per_account", t.FailuresPerAccount, &ct.AccountLimit},
		{"throttle.failures_per_client", t.FailuresPerClient, &ct.ClientLimit},
		{"throttle.calls_home_per_client", t.CallsHomePerClient, &ct.CallsHome},
	} {
		l, err := ParseLimit(r.raw)
		if err != nil {
			p.add(r.key, "%v", err)
			continue
		}
		*r.dst = l
	}
	every, err := ParseRate(t.LoginRate)
	if err != nil {
		p.add("throttle.login_rate", "%v", err)
	}
	ct.LoginEvery = every
	return ct
}

// Limit is a parsed rate: N events per Per. The zero Limit is off.
type Limit struct {
	N   int
	Per time.Duration
}

// Off reports whether the limit is switched off.
func (l Limit) Off() bool { return l.N == 0 }

// Every is the interval between two events at the limit's steady rate; 0 when off.
func (l Limit) Every() time.Duration {
	if l.Off() {
		return 0
	}
	return l.Per / time.Duration(l.N)
}

// maxRateCount bounds N in a rate, so N/Per never rounds to nothing.
const maxRateCount = 1_000_000

// ParseLimit reads a rate: "N/second", "N/minute", "N/hour", "N/day" (DRF
// style, also s, sec, m, min, h, d) or "N/<Go duration>" such as "10/15m".
// "off" gives the zero Limit.
func ParseLimit(s string) (Limit, error) {
	if s == "off" {
		return Limit{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count <= 0 || count > maxRateCount || n != strconv.Itoa(count) {
		return Limit{}, fmt.Errorf("want N/second, N/minute, N/hour, N/day or N/<duration> such as 10/15m (N from 1 to %d), or off; got %q", maxRateCount, s)
	}
	var per time.Duration
	switch unit {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	case "d", "day":
		per = 24 * time.Hour
	default:
		d, err := time.ParseDuration(unit)
		if err != nil || d <= 0 {
			return Limit{}, fmt.Errorf("unknown unit %q: want second, minute, hour, day or a positive duration such as 15m", unit)
		}
		per = d
	}
	if per/time.Duration(count) <= 0 {
		return Limit{}, fmt.Errorf("%q is more than one event per nanosecond", s)
	}
	return Limit{N: count, Per: per}, nil
}

// ParseRate reads a rate (see ParseLimit) as the interval between two
// events. "off" gives 0.
func ParseRate(s string) (time.Duration, error) {
	l, err := ParseLimit(s)
	return l.Every(), err
}

// parsePrefix reads a CIDR, or a bare address as a single-host prefix.
func parsePrefix(raw string) (netip.Prefix, error) {
	raw = strings.TrimSpace(raw)
	if strings.Contains(raw, "/") {
		p, err := netip.ParsePrefix(raw)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("trusted proxy %q: %w", raw, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(raw)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: %w", raw, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
