package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"google.golang.org/grpc"

	"jwtgate/handlers/authn"
	"jwtgate/handlers/health"
	"jwtgate/handlers/metrics"
	"jwtgate/handlers/tracing"
	"jwtgate/models"
	"jwtgate/models/notify"
	"jwtgate/remote"
)

// Gateway is jwtgate wired together: the HTTP handler and what it owns.
type Gateway struct {
	// Handler serves the whole HTTP surface except /metrics.
	Handler http.Handler
	// Metrics serves the Prometheus registry, for metrics_listen only.
	Metrics http.Handler
	// Store is the user mirror.
	Store *models.Store
	// Auth authenticates tokens and resolves users.
	Auth *authn.Authenticator
	// Remote is the auth service client.
	Remote *remote.Client
	// Local is the in-process verifier of verify: local and hybrid; nil for
	// verify: remote. Its Ready says whether every JWKS has been fetched.
	Local *authn.Local
	// Health probes the readiness checks in the background.
	Health *health.Checker
	// ExtAuthz serves Envoy's gRPC ext_authz and the gRPC health service,
	// for ext_authz.grpc_listen only; nil when that is empty.
	ExtAuthz *grpc.Server

	stopPeers func() // stops the peer listener and waits; nil without one
	upstreams *http.Transport
	tracing   *tracing.Tracing // nil: traces off
	closeOnce sync.Once
	closeErr  error
}

// Options adjust a Gateway for tests; the zero value is production.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Getenv reads the environment (HMAC secrets of auth.local.keys);
	// nil means os.Getenv.
	Getenv func(string) string
	// Version is the service.version of traces; "" leaves it out.
	Version string
}

// NewGateway opens the database and builds the auth service client, the
// authenticator and the router from the compiled settings (models.Compile),
// and starts the background work (readiness probes, the peer listener on
// PostgreSQL) that Close stops. Every object gets its dependencies when it
// is constructed.
func NewGateway(ctx context.Context, cfg *models.Runtime, log *slog.Logger, opt Options) (*Gateway, error) {
	s := cfg.Settings
	getenv := opt.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
	log = slog.New(withRequestID(log.Handler()))
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	var tr *tracing.Tracing
	if tracing.Enabled(s.Tracing.Enabled, getenv) {
		var err error
		if tr, err = tracing.New(ctx, opt.Version, getenv); err != nil {
			return nil, err
		}
		log = slog.New(withTraceIDs(log.Handler()))
	}
	store, err := models.OpenStore(ctx, s.Database, now)
	if err != nil {
		stopTracing(tr)
		return nil, err
	}
	for _, n := range store.Notes() {
		log.Warn("database file mode: " + n)
	}
	names := make([]string, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		names = append(names, r.Name)
	}
	m := metrics.New(names)
	hc := health.New(s.ReadinessInterval, log, m.Ready)
	ro := remote.Options{
		Observer: authServiceObserver{m: m, health: hc, log: log, coolDown: s.AuthService.Circuit.CoolDown},
	}
	if tr != nil {
		ro.HTTPClient = &http.Client{Transport: tr.Transport(remote.NewTransport(s.AuthService.Timeout), authServiceSpanName(s.AuthService))}
	}
	rc, err := remote.New(s.AuthService, ro)
	if err != nil {
		stopTracing(tr)
		return nil, errors.Join(err, store.Close())
	}
	// remote: every new token is verified by the auth service (cached).
	// local: in-process only, never a call home to authenticate (the
	// verdict is cached too, which saves CPU; never past exp).
	// hybrid: remote as above, plus the local check on every request.
	deps := authn.Deps{Verifier: rc, Fetcher: rc, Store: store, Observer: m, Log: log, Now: now}
	if tr != nil {
		deps.Store = tracedStore{UserStore: store, tracer: tr.Tracer()}
	}
	var local *authn.Local
	if s.Auth.Verify != models.VerifyRemote {
		lc := authn.LocalConfigFrom(s)
		lc.HTTPClient = &http.Client{Transport: remote.NewTransport(s.AuthService.Timeout)}
		if tr != nil {
			lc.HTTPClient.Transport = tr.Transport(lc.HTTPClient.Transport, spanName("jwks fetch"))
		}
		local, err = authn.NewLocal(ctx, lc, getenv, log, now)
		if err != nil {
			stopTracing(tr)
			return nil, errors.Join(err, store.Close())
		}
		if s.Auth.Verify == models.VerifyLocal {
			deps.Verifier = local
		} else {
			deps.Local = local
		}
	}
	fail := func(err error) (*Gateway, error) {
		if local != nil {
			local.Close()
		}
		stopTracing(tr)
		return nil, errors.Join(err, store.Close())
	}
	var sig *signer
	if s.IdentityToken.Enabled {
		if sig, err = newSigner(s.IdentityToken, now, log); err != nil {
			return fail(err)
		}
	}
	login, err := newLoginGuard(cfg.Throttle, s.AuthService.MaxBodyBytes, log, now)
	if err != nil {
		return fail(err)
	}
	ac := authn.ConfigFrom(s)
	if s.Auth.Verify != models.VerifyLocal { // local mode never calls home to verify
		budget, err := newCallBudget(cfg.Throttle, now)
		if err != nil {
			return fail(err)
		}
		if budget != nil { // a nil *callBudget in the interface would not be nil
			ac.CallsHome = budget
		}
	}
	if store.Driver() == "postgres" {
		deps.Peers = notify.NewPublisher(store, log, func(kind string, err error) {
			if err != nil {
				m.Peer("failed", kind)
				return
			}
			m.Peer("sent", kind)
		})
	}
	auth, err := authn.New(ac, deps)
	if err != nil {
		return fail(err)
	}
	trusted := trustedProxies(cfg.TrustedNets)
	idn := newIdentity(s.IdentityHeaders.Prefix)
	idn.signer = sig
	idn.sendIssuer = len(s.UserIssuers()) > 1
	upstreams := upstreamTransport()
	var upstreamRT http.RoundTripper = upstreams
	if tr != nil {
		upstreamRT = tr.Transport(upstreams, spanName("upstream"))
	}
	table, err := newRouteTable(cfg.Routes, upstreamRT, log, trusted, idn, m)
	if err != nil {
		return fail(err)
	}
	if err := attachRateLimits(table, s.Throttle.CacheSize, now, m); err != nil {
		return fail(err)
	}

	hc.Add(checkDatabase, store.Ping)
	hc.Add(checkAuthService, rc.Probe)
	m.CacheEntries(auth.CacheLen)
	if local != nil {
		m.SkippedJWKSKeys(local.SkippedKeys)
	}

	rd := routerDeps{
		log: log, settings: s, remote: rc, auth: auth, table: table,
		identity: idn, signer: sig, login: login, callsHome: ac.CallsHome != nil, trusted: trusted,
		metrics: m, health: hc, now: now, tracing: tr,
	}
	router := newRouter(rd)
	for _, ri := range router.Routes() {
		m.Route(ri.Path) // resolve every label child before traffic
	}
	if local != nil {
		// Ready fails until every JWKS has been fetched, and while one is
		// failing to refresh.
		hc.Add(checkJWKS, func(context.Context) error { return local.Ready() })
	}
	gw := &Gateway{Handler: router, Metrics: m.Handler(), Store: store, Auth: auth, Remote: rc, Local: local, Health: hc, upstreams: upstreams, tracing: tr}
	if s.ExtAuthz.GRPCListen != "" {
		gw.ExtAuthz = newExtAuthzServer(newDecider(rd), log, tr)
	}
	if err := gw.startPeers(ctx, s, log, m); err != nil {
		return fail(err)
	}
	hc.Start()
	return gw, nil
}

// The metrics implement the authenticator's observer.
var _ authn.Observer = (*metrics.Metrics)(nil)

// authServiceObserver is told about calls home and the circuit breaker: it
// feeds the metrics, keeps the auth service's readiness fresh with real
// traffic, and logs the breaker's changes.
type authServiceObserver struct {
	m        *metrics.Metrics
	health   *health.Checker
	log      *slog.Logger
	coolDown time.Duration
}

// ObserveCall records a call home; any answer says the service is up.
func (o authServiceObserver) ObserveCall(e remote.Endpoint, outcome string, d time.Duration) {
	o.m.ObserveCall(e, outcome, d)
	switch outcome {
	case "1xx", "2xx", "3xx", "4xx":
		o.health.Answered(checkAuthService) // real traffic keeps readiness fresh between probes
	}
}

// Circuit records and logs the breaker's new state.
func (o authServiceObserver) Circuit(state string) {
	o.m.Circuit(state)
	if state == "open" {
		o.log.Warn("auth service circuit open: calls home stop for the cool-down", "cool_down", o.coolDown)
	} else {
		o.log.Info("auth service circuit "+state, "state", state)
	}
}

// Names of the readiness checks, as /readyz shows them.
const (
	checkDatabase    = "database"
	checkAuthService = "auth_service"
	checkJWKS        = "jwks"
)

// Close stops the background work (readiness probes, the peer listener,
// JWKS refreshes) and closes the database. It is safe to call more than once.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.Health.Stop()
		if g.stopPeers != nil {
			g.stopPeers()
		}
		if g.Local != nil {
			g.Local.Close()
		}
		// Idle keep-alive connections would otherwise hold the auth
		// service's and upstreams' graceful shutdowns.
		g.Remote.CloseIdleConnections()
		g.upstreams.CloseIdleConnections()
		if err := g.Store.Close(); err != nil {
			g.closeErr = fmt.Errorf("close database: %w", err)
		}
		stopTracing(g.tracing) // exports the spans still buffered
	})
	return g.closeErr
}

// upstreamTransport pools keep-alive connections to every upstream.
func upstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// startPeers connects this replica to the others sharing its PostgreSQL
// database: what it revokes or sees deactivated is published, and what the
// others publish is evicted here. It waits for the first LISTEN so a
// replica never serves before it can hear the others. A no-op on SQLite.
func (g *Gateway) startPeers(ctx context.Context, s models.Settings, log *slog.Logger, m *metrics.Metrics) error {
	if g.Store.Driver() != "postgres" {
		return nil
	}
	l := notify.Listen(s.Database.DSN, notify.Handler{
		TokenRevoked: func(key [32]byte, until time.Time) {
			m.Peer("received", notify.KindToken)
			g.Auth.RevokeKey(key, until)
		},
		UserChanged: func(k models.UserKey) {
			m.Peer("received", notify.KindUser)
			g.Auth.ForgetUserKey(k)
		},
		Gap: g.Auth.ForgetAll,
	}, log)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.WaitReady(wctx); err != nil {
		l.Stop()
		return err
	}
	g.stopPeers = l.Stop
	return nil
}
