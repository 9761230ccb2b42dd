// Package metrics holds jwtgate's Prometheus collectors, one registry per
// gateway, and the hooks that feed them: authentication events (it
// implements authn.Observer), calls home and the circuit breaker
// (remote.Observer), per-route request and upstream
// series. Label children whose values are known at startup (routes,
// endpoints, outcomes, reasons) are resolved once, so the warm path does a
// map lookup and an atomic add, not a label hash.
package metrics

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"jwtgate/handlers/authn"
	"jwtgate/models"
	"jwtgate/remote"
)

// Unmatched is the route label of a request no route matched.
const Unmatched = "unmatched"

// latencyBuckets span 0.5ms to ~12s: warm-path answers are sub-millisecond,
// calls home and upstream calls can take seconds.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2.5, 12)

// methods are the method label values; anything else is "OTHER".
var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

// outcomes of calls home and upstream calls.
var callOutcomes = []string{"1xx", "2xx", "3xx", "4xx", "5xx", "error", "circuit_open"}

// reasons a request is refused (models.Reason*).
var reasons = []string{
	models.ReasonMalformed, models.ReasonTooLarge, models.ReasonAlgNone, models.ReasonNoExpiry,
	models.ReasonExpired, models.ReasonNotYetValid, models.ReasonWrongTokenType, models.ReasonNoUserID,
	models.ReasonRejected, models.ReasonBadSignature, models.ReasonRevoked, models.ReasonInactive,
	models.ReasonUserNotFound, models.ReasonAlgNotAllowed, models.ReasonAlgKeyMismatch, models.ReasonUnknownKey,
	models.ReasonUnknownIssuer, models.ReasonWrongIssuer, models.ReasonWrongAudience,
	models.ReasonUnsupportedCrit,
}

// Metrics is a gateway's collectors. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	upstream *prometheus.HistogramVec

	calls [remote.EndpointPasswordChange + 1][]prometheus.Observer // [endpoint][outcome index]

	cacheHits, cacheMisses, coalesced, negativeHits, evictions, staleServed prometheus.Counter

	sharedHits, sharedWrites prometheus.Counter
	sharedMisses             map[string]prometheus.Counter // by authn.SharedMissReasons
	sharedErrors             *prometheus.CounterVec

	refusals     *prometheus.CounterVec
	refusalsBy   map[string]prometheus.Counter
	userFetches  *prometheus.CounterVec
	mirrorOK     prometheus.Counter
	mirrorFailed prometheus.Counter
	circuit      *prometheus.GaugeVec
	reloadOK     prometheus.Counter
	reloadError  prometheus.Counter
	ready        *prometheus.GaugeVec
	peers        *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec

	mu     sync.RWMutex
	routes map[string]*Route
}

// New registers jwtgate's collectors in a fresh registry. routes are the
// route label values known at startup (route names and Gin route paths).
func New(routes []string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{reg}
	m := &Metrics{
		reg: reg,
		requests: f.counterVec("jwtgate_http_requests_total",
			"HTTP requests answered, by route (route name or gateway path, never the raw path), method and status.",
			"route", "method", "status"),
		duration: f.histogramVec("jwtgate_http_request_duration_seconds",
			"Time to answer a request, by route.", "route"),
		upstream: f.histogramVec("jwtgate_upstream_request_duration_seconds",
			"Time until an upstream's response headers, by route and outcome (status class or error).", "route", "outcome"),
		cacheHits:    f.counter("jwtgate_verify_cache_hits_total", "Tokens accepted from the verify cache without a call home."),
		cacheMisses:  f.counter("jwtgate_verify_cache_misses_total", "Tokens not in the verify cache."),
		coalesced:    f.counter("jwtgate_verify_cache_coalesced_total", "Callers that waited for another caller's verify call instead of making their own."),
		negativeHits: f.counter("jwtgate_verify_cache_negative_hits_total", "Tokens refused from the negative cache without a call home."),
		evictions:    f.counter("jwtgate_verify_cache_evictions_total", "Verdicts pushed out of a full verify cache."),
		staleServed:  f.counter("jwtgate_verify_cache_stale_served_total", "Verdicts served past their TTL under auth.cache.stale_grace while the auth service was unavailable."),
		sharedHits:   f.counter("jwtgate_shared_cache_hits_total", "Verdicts taken from the shared cache in Redis on a miss of the in-process cache (no call home)."),
		sharedWrites: f.counter("jwtgate_shared_cache_writes_total", "Verdicts written to the shared cache in Redis."),
		sharedErrors: f.counterVec("jwtgate_shared_cache_errors_total",
			"Redis commands of the shared cache that failed or timed out, by operation (get, set, del, ping).", "op"),
		refusals: f.counterVec("jwtgate_auth_refusals_total",
			"Requests refused authentication, by reason.", "reason"),
		userFetches: f.counterVec("jwtgate_user_fetches_total",
			"User records fetched from the auth service, by outcome (ok, rejected: the user is inactive or gone, token_refused: the token was refused, unavailable).", "outcome"),
		circuit: f.gaugeVec("jwtgate_auth_circuit_state",
			"Circuit breaker on the auth service: 1 for the current state (closed, half-open, open).", "state"),
		ready: f.gaugeVec("jwtgate_ready",
			"Readiness checks: 1 when the check passes.", "check"),
		rateLimited: f.counterVec("jwtgate_rate_limited_total",
			"Requests refused 429 by a route's rate_limit, by route and limit (per_user, per_client).", "route", "limit"),
		peers: f.counterVec("jwtgate_peer_messages_total",
			"Cache invalidations exchanged with other replicas, by direction (sent, received, failed) and kind (token, user).", "direction", "kind"),
		routes: map[string]*Route{},
	}
	calls := f.histogramVec("jwtgate_auth_service_call_duration_seconds",
		"Calls to the auth service, by endpoint and outcome (status class, error or circuit_open).", "endpoint", "outcome")
	for e := range m.calls {
		m.calls[e] = make([]prometheus.Observer, len(callOutcomes))
		for i, o := range callOutcomes {
			m.calls[e][i] = calls.WithLabelValues(remote.Endpoint(e).String(), o)
		}
	}
	mirror := f.counterVec("jwtgate_mirror_writes_total", "Writes of user records to the mirror database, by result.", "result")
	m.mirrorOK, m.mirrorFailed = mirror.WithLabelValues("ok"), mirror.WithLabelValues("error")
	reloads := f.counterVec("jwtgate_config_reloads_total", "Settings reloads (SIGHUP, reload.watch), by result (ok, error).", "result")
	m.reloadOK, m.reloadError = reloads.WithLabelValues("ok"), reloads.WithLabelValues("error")
	misses := f.counterVec("jwtgate_shared_cache_misses_total",
		"Lookups in the shared cache that gave no usable verdict, by reason (absent, unavailable: Redis failed or is skipped after a failure, version, bad_mac, garbled, mismatch: an entry that failed its checks, expired).", "reason")
	m.sharedMisses = make(map[string]prometheus.Counter, len(authn.SharedMissReasons))
	for _, r := range authn.SharedMissReasons {
		m.sharedMisses[r] = misses.WithLabelValues(r)
	}
	for _, op := range []string{"get", "set", "del", "ping"} {
		m.sharedErrors.WithLabelValues(op)
	}
	m.refusalsBy = make(map[string]prometheus.Counter, len(reasons))
	for _, r := range reasons {
		m.refusalsBy[r] = m.refusals.WithLabelValues(r)
	}
	for _, o := range []string{"ok", "rejected", "unavailable"} {
		m.userFetches.WithLabelValues(o)
	}
	m.Circuit("closed")
	for _, r := range append(routes, Unmatched) {
		m.Route(r)
	}
	return m
}

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// The authn.Observer hooks: authentication events.

// CacheHit counts a verify-cache hit.
func (m *Metrics) CacheHit() { m.cacheHits.Inc() }

// CacheMiss counts a verify-cache miss.
func (m *Metrics) CacheMiss() { m.cacheMisses.Inc() }

// NegativeHit counts a refusal served from the negative cache.
func (m *Metrics) NegativeHit() { m.negativeHits.Inc() }

// Coalesced counts a request that shared another's call home.
func (m *Metrics) Coalesced() { m.coalesced.Inc() }

// Evicted counts a verdict pushed out of a full cache.
func (m *Metrics) Evicted() { m.evictions.Inc() }

// StaleServed counts a verdict served past its TTL under stale_grace.
func (m *Metrics) StaleServed() { m.staleServed.Inc() }

// SharedCacheHit counts a verdict taken from the shared cache.
func (m *Metrics) SharedCacheHit() { m.sharedHits.Inc() }

// SharedCacheMiss counts a shared cache lookup without a usable verdict.
func (m *Metrics) SharedCacheMiss(reason string) {
	if c, ok := m.sharedMisses[reason]; ok {
		c.Inc()
	}
}

// SharedCacheWrite counts a verdict written to the shared cache.
func (m *Metrics) SharedCacheWrite() { m.sharedWrites.Inc() }

// SharedCacheError counts a failed Redis command (remote.SharedCacheObserver).
func (m *Metrics) SharedCacheError(op string) { m.sharedErrors.WithLabelValues(op).Inc() }

// Refused counts a refusal by reason.
func (m *Metrics) Refused(reason string) {
	if c, ok := m.refusalsBy[reason]; ok {
		c.Inc()
		return
	}
	m.refusals.WithLabelValues(reason).Inc() // a reason added without updating the list
}

// UserFetched counts a user fetch by outcome.
func (m *Metrics) UserFetched(outcome string) { m.userFetches.WithLabelValues(outcome).Inc() }

// MirrorWritten counts a write of the user mirror, failed or not.
func (m *Metrics) MirrorWritten(err error) {
	if err != nil {
		m.mirrorFailed.Inc()
		return
	}
	m.mirrorOK.Inc()
}

// CacheEntries exports the verify cache's size, read at scrape time.
func (m *Metrics) CacheEntries(n func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jwtgate_verify_cache_entries", Help: "Positive verdicts in the verify cache.",
	}, func() float64 { return float64(n()) }))
}

// SkippedJWKSKeys exports how many JWKS keys were skipped as unusable
// (private key material, RSA under 2048 bits, unparseable), read at scrape
// time.
func (m *Metrics) SkippedJWKSKeys(n func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "jwtgate_jwks_keys_skipped_total", Help: "Distinct JWKS keys skipped as unusable (each also logged once).",
	}, func() float64 { return float64(n()) }))
}

// ObserveCall records one call home (remote.Observer).
func (m *Metrics) ObserveCall(e remote.Endpoint, outcome string, d time.Duration) {
	if int(e) >= len(m.calls) {
		return
	}
	i := slices.Index(callOutcomes, outcome)
	if i < 0 {
		i = slices.Index(callOutcomes, "error")
	}
	m.calls[e][i].Observe(d.Seconds())
}

// Circuit records the circuit breaker's state (remote.Observer).
func (m *Metrics) Circuit(state string) {
	for _, s := range []string{"closed", "half-open", "open"} {
		v := 0.0
		if s == state {
			v = 1
		}
		m.circuit.WithLabelValues(s).Set(v)
	}
}

// Ready records a readiness check's state.
func (m *Metrics) Ready(check string, ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.ready.WithLabelValues(check).Set(v)
}

// Reloaded counts a settings reload, applied or refused.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloadOK.Inc()
		return
	}
	m.reloadError.Inc()
}

// Peer counts a message to ("sent", "failed") or from ("received") other replicas.
func (m *Metrics) Peer(direction, kind string) { m.peers.WithLabelValues(direction, kind).Inc() }

// Route returns the pre-resolved series of one route label value.
func (m *Metrics) Route(name string) *Route {
	m.mu.RLock()
	r := m.routes[name]
	m.mu.RUnlock()
	if r != nil {
		return r
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r = m.routes[name]; r == nil {
		r = &Route{m: m, name: name, duration: m.duration.WithLabelValues(name), byStatus: map[statusKey]prometheus.Counter{}}
		for i, o := range callOutcomes[:6] {
			r.upstream[i] = m.upstream.WithLabelValues(name, o)
		}
		m.routes[name] = r
	}
	return r
}

// Route is the series of one route label value.
type Route struct {
	m        *Metrics
	name     string
	duration prometheus.Observer
	upstream [6]prometheus.Observer // 1xx..5xx, error

	mu       sync.RWMutex
	byStatus map[statusKey]prometheus.Counter
}

type statusKey struct {
	method uint8
	status uint16
}

// Done records one answered request.
func (r *Route) Done(method string, status int, d time.Duration) {
	r.duration.Observe(d.Seconds())
	k := statusKey{method: methodIndex(method), status: uint16(status)}
	r.mu.RLock()
	c := r.byStatus[k]
	r.mu.RUnlock()
	if c == nil {
		c = r.m.requests.WithLabelValues(r.name, methods[k.method], itoa(status))
		r.mu.Lock()
		r.byStatus[k] = c
		r.mu.Unlock()
	}
	c.Inc()
}

// Upstream records one upstream call: its status, or 0 when it failed.
func (r *Route) Upstream(status int, d time.Duration) {
	i := 5 // error
	if status >= 100 && status < 600 {
		i = status/100 - 1
	}
	r.upstream[i].Observe(d.Seconds())
}

func methodIndex(m string) uint8 {
	if i := slices.Index(methods[:len(methods)-1], m); i >= 0 {
		return uint8(i)
	}
	return uint8(len(methods) - 1)
}

func itoa(n int) string {
	if n < 0 || n > 999 {
		return "other"
	}
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}

// factory registers collectors as it makes them.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogramVec(name, help string, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}, labels)
	f.reg.MustRegister(h)
	return h
}
