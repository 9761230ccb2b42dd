package handlers

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"jwtgate/handlers/authn"
	"jwtgate/handlers/metrics"
	"jwtgate/models"
)

// Names of a route's rate limits, as RateLimit-Policy and the metric's
// limit label show them.
const (
	limitPerUser   = "per_user"
	limitPerClient = "per_client"
)

// routeLimit is routes[].rate_limit: a token bucket per user for
// authenticated requests and per client address for anonymous ones, each
// in a bounded LRU (the least recently seen callers forgotten first). The
// buckets live in this replica only.
type routeLimit struct {
	perUser, perClient *limitBuckets // nil: that limit is off
}

// limitBuckets is one limit's buckets, one per caller key.
type limitBuckets struct {
	name      string // limitPerUser or limitPerClient
	limit     models.Limit
	burst     int
	keys      *lru.Cache[string, *rate.Limiter]
	now       func() time.Time
	throttled prometheus.Counter
	policy    string // the RateLimit-Policy value
}

// limitKey identifies one limit's buckets across reloads: the route (by
// name), which limit, and everything that shapes a bucket. A reload keeps
// the buckets of a key it finds again, so a caller at its limit stays
// there; a changed limit, burst or throttle.cache_size starts afresh.
type limitKey struct {
	route, name string
	limit       models.Limit
	burst, size int
}

// limitSet is every route limit's buckets of one snapshot, by key: what the
// next reload carries over.
type limitSet map[limitKey]*limitBuckets

// newRouteLimit builds a route's limits; nil when both are off. size
// bounds the callers each limit remembers (throttle.cache_size). A limit
// whose key is in prev keeps prev's buckets; every limit built or kept is
// added to next.
func newRouteLimit(route string, rl models.RouteRateLimit, size int, now func() time.Time, m *metrics.Metrics, prev, next limitSet) (*routeLimit, error) {
	perUser, perClient := rl.Limits()
	if perUser.Off() && perClient.Off() {
		return nil, nil
	}
	out := &routeLimit{}
	build := func(name string, l models.Limit) (*limitBuckets, error) {
		k := limitKey{route: route, name: name, limit: l, burst: rl.BurstFor(l), size: size}
		b, ok := prev[k]
		if !ok {
			var err error
			if b, err = newLimitBuckets(name, l, k.burst, size, now, m.RateLimited(route, name)); err != nil {
				return nil, err
			}
		}
		next[k] = b
		return b, nil
	}
	var err error
	if !perUser.Off() {
		if out.perUser, err = build(limitPerUser, perUser); err != nil {
			return nil, err
		}
	}
	if !perClient.Off() {
		if out.perClient, err = build(limitPerClient, perClient); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func newLimitBuckets(name string, l models.Limit, burst, size int, now func() time.Time, throttled prometheus.Counter) (*limitBuckets, error) {
	keys, err := lru.New[string, *rate.Limiter](size)
	if err != nil {
		return nil, fmt.Errorf("rate_limit: %w", err)
	}
	return &limitBuckets{
		name: name, limit: l, burst: burst, keys: keys, now: now, throttled: throttled,
		policy: fmt.Sprintf("%q;q=%d;w=%d", name, l.N, int64(math.Ceil(l.Per.Seconds()))),
	}, nil
}

// take spends one request of the caller: per user when p is set (every
// token of the user together), else per client address. It returns a
// *rateLimitError when the caller is over its limit.
func (r *routeLimit) take(p *authn.Principal, client clientAddr) error {
	if p != nil {
		if r.perUser == nil {
			return nil
		}
		return r.perUser.take(userLimitKey(p))
	}
	if r.perClient == nil || client == nil {
		return nil
	}
	return r.perClient.take(clientKey(client.ClientIP()))
}

func (b *limitBuckets) take(key string) error {
	lim, ok := b.keys.Get(key)
	if !ok {
		fresh := rate.NewLimiter(rate.Every(b.limit.Every()), b.burst)
		if prev, found, _ := b.keys.PeekOrAdd(key, fresh); found {
			lim = prev // another request of the same caller got here first
		} else {
			lim = fresh
		}
	}
	now := b.now()
	if lim.AllowN(now, 1) {
		return nil
	}
	b.throttled.Inc()
	wait := time.Duration((1 - lim.TokensAt(now)) * float64(b.limit.Every()))
	return &rateLimitError{ThrottledError: &authn.ThrottledError{RetryAfter: wait}, limits: b}
}

// rateLimitError refuses a request over its route's rate limit: 429
// throttled with Retry-After (it unwraps to the authn.ThrottledError every
// entry point answers so) and the IETF RateLimit headers (setHeaders).
type rateLimitError struct {
	*authn.ThrottledError
	limits *limitBuckets
}

func (e *rateLimitError) Error() string {
	return fmt.Sprintf("route rate limit %s exceeded; retry after %s", e.limits.name, e.RetryAfter)
}

func (e *rateLimitError) Unwrap() error { return e.ThrottledError }

// headers are the RateLimit-Policy and RateLimit headers of
// draft-ietf-httpapi-ratelimit-headers: the policy ("per_user";q=600;w=60)
// and, for it, no request remaining until t seconds from now.
func (e *rateLimitError) headers() http.Header {
	return http.Header{
		"Ratelimit-Policy": {e.limits.policy},
		"Ratelimit":        {fmt.Sprintf("%q;r=0;t=%s", e.limits.name, strconv.Itoa(retryAfterSeconds(e.RetryAfter)))},
	}
}

// attachRateLimits gives every route of the table with a rate_limit its
// buckets: prev's (the running snapshot's, nil at start) where the route
// and its limit did not change, so a reload resets no caller's count. size
// bounds the callers each limit remembers. It returns the set the next
// reload carries over.
func attachRateLimits(t *routeTable, size int, now func() time.Time, m *metrics.Metrics, prev limitSet) (limitSet, error) {
	next := limitSet{}
	for _, rt := range t.routes {
		l, err := newRouteLimit(rt.Name, rt.RateLimit, size, now, m, prev, next)
		if err != nil {
			return nil, fmt.Errorf("routes %q: %w", rt.Name, err)
		}
		rt.limit = l
	}
	return next, nil
}

// userLimitKey keys a user's bucket: the mirrored user (issuer and id), so
// all of a user's tokens count together. Without an issuer (one auth
// service) it is the id alone, with no allocation.
func userLimitKey(p *authn.Principal) string {
	issuer, id := p.Issuer, p.Token.UserID
	if p.User != nil {
		issuer, id = p.User.Issuer, p.User.ID
	}
	if issuer == "" {
		return id
	}
	return issuer + "\x00" + id
}

// clientAddr gives a request's client address (gin.Context.ClientIP).
type clientAddr interface{ ClientIP() string }

// fixedClient is a client address already known (ext_authz's source).
type fixedClient string

// ClientIP returns the address.
func (f fixedClient) ClientIP() string { return string(f) }
