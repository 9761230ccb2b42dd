package models

// RouteRateLimit is routes[].rate_limit: requests a route takes per caller,
// counted in this replica only (with N replicas the effective limit is up
// to N times as high). Empty limits are off.
type RouteRateLimit struct {
	// PerUser limits authenticated requests per user (all of a user's
	// tokens together), e.g. "600/minute".
	PerUser string `yaml:"per_user"`
	// PerClient limits anonymous requests per client address (a trusted
	// proxy's forwarded address; IPv6 per /64), e.g. "60/minute".
	PerClient string `yaml:"per_client"`
	// Burst is how many requests may come at once; 0 means the limit's N
	// (a whole period's requests at once, then the steady rate).
	Burst int `yaml:"burst"`
}

// maxRateLimitBurst bounds routes[].rate_limit.burst.
const maxRateLimitBurst = 1_000_000

// Limits parses the per-user and per-client limits; an empty one is off.
// Validate has checked them.
func (r RouteRateLimit) Limits() (perUser, perClient Limit) {
	perUser, _ = parseRouteLimit(r.PerUser)
	perClient, _ = parseRouteLimit(r.PerClient)
	return perUser, perClient
}

// BurstFor is the bucket size for a limit: Burst, or the limit's N when
// Burst is 0.
func (r RouteRateLimit) BurstFor(l Limit) int {
	if r.Burst > 0 {
		return r.Burst
	}
	return l.N
}

func parseRouteLimit(s string) (Limit, error) {
	if s == "" {
		return Limit{}, nil
	}
	return ParseLimit(s)
}

// validateRateLimits checks every routes[].rate_limit.
func validateRateLimits(p *problemList, routes []Route) {
	for i, r := range routes {
		key := indexKey("routes", i) + ".rate_limit"
		if _, err := parseRouteLimit(r.RateLimit.PerUser); err != nil {
			p.add(key+".per_user", "%s", err.Error())
		}
		if _, err := parseRouteLimit(r.RateLimit.PerClient); err != nil {
			p.add(key+".per_client", "%s", err.Error())
		}
		if r.RateLimit.Burst < 0 || r.RateLimit.Burst > maxRateLimitBurst {
			p.add(key+".burst", "must be from 0 (the limit's N) to %d, got %d", maxRateLimitBurst, r.RateLimit.Burst)
		}
		if r.RateLimit.PerUser != "" && r.Auth == AuthNone {
			p.add(key+".per_user", "is never used on a route with auth: none (no request has a user); use per_client")
		}
	}
}
