package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
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
	// Handler serves the whole HTTP surface except /metrics, with the
	// current settings (Reload swaps them).
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
	// A reload that changes auth.local replaces it: read it only while no
	// reload runs.
	Local *authn.Local
	// Health probes the readiness checks in the background.
	Health *health.Checker
	// ExtAuthz serves Envoy's gRPC ext_authz and the gRPC health service,
	// for ext_authz.grpc_listen only; nil when that is empty.
	ExtAuthz *grpc.Server
	// Shared is the shared verdict cache in Redis (auth.cache.redis_url);
	// nil when that is empty.
	Shared *remote.SharedCache

	// snap is the settings the gateway runs on: replaced whole by Reload,
	// so a request that started on one finishes on it.
	snap atomic.Pointer[snapshot]
	core core
	// reloadMu serialises reloads.
	reloadMu sync.Mutex
	// keys is the identity token's keyring, kept across reloads (the keys
	// it retired stay published); nil while identity_token is off.
	// Guarded by reloadMu.
	keys      *keyring
	stopPeers func()           // stops the peer listener and waits; nil without one
	tracing   *tracing.Tracing // nil: traces off
	closeOnce sync.Once
	closeErr  error

	// stopDiscovery stops the periodic discovery refresh and waits.
	stopDiscovery func()
}

// core are the long-lived parts every snapshot shares: a reload keeps
// them (and the caches and revocations they hold).
type core struct {
	ctx       context.Context // for the JWKS refreshes of a new local verifier
	log       *slog.Logger
	now       func() time.Time
	getenv    func(string) string
	store     *models.Store
	m         *metrics.Metrics
	health    *health.Checker
	remote    *remote.Client
	upstreams *http.Transport
	// upstreamRT is upstreams, traced when tracing is on.
	upstreamRT http.RoundTripper
	tracing    *tracing.Tracing // nil: traces off
	// oidc is the browser login's provider client (oidc: needs a restart
	// to change); nil when it is off. The discovery refresh replaces it,
	// under reloadMu.
	oidc *oidcClient
	// watchKeys: the identity keyring follows its files (Options.NoKeyFileWatch).
	watchKeys bool
	// userinfo is users.source: userinfo's fetcher; nil for other sources.
	userinfo *authn.Userinfo
}

// snapshot is everything built from one version of the settings: the
// router (routes, rules, identity headers, trusted proxies, forward-auth,
// throttles, timeouts) and the local verifier. It is immutable once built.
type snapshot struct {
	decider  *decider        // the decision gRPC ext_authz asks (the router has its own, built alike)
	cfg      *models.Runtime // the compiled settings (models.Compile)
	settings models.Settings // cfg.Settings
	router   *gin.Engine
	local    *authn.Local // nil for verify: remote
	login    *loginGuard
	limits   limitSet    // the routes' rate-limit buckets, carried over by the next reload
	budget   *callBudget // nil: calls home unbounded
	auth     authn.Config
	authn    *authn.Authenticator // a view with auth's settings
	// discovered is what the discovery documents said when it was built.
	discovered authn.Discovered
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
	// NoKeyFileWatch stops the gateway from following changes of the
	// identity token's key files on its own (watch and poll): only Reload
	// reads them again. For tests of the reload path.
	NoKeyFileWatch bool
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
	// An OpenID provider's discovery document says where its keys are.
	cfg, discovered, err := discover(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s = cfg.Settings
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
		Bulkhead: m.Bulkhead(), // auth_service.max_in_flight: calls in flight, queue wait
	}
	if tr != nil {
		ro.HTTPClient = &http.Client{Transport: tr.Transport(remote.NewTransport(s.AuthService.Timeout), authServiceSpanName(s.AuthService))}
	}
	rc, err := remote.New(s.AuthService, ro)
	if err != nil {
		stopTracing(tr)
		return nil, errors.Join(err, store.Close())
	}
	var oc *oidcClient
	if s.OIDC.Enabled() {
		if oc, err = newOIDCClient(ctx, s, getenv, now); err != nil {
			stopTracing(tr)
			return nil, errors.Join(err, store.Close())
		}
	}
	g := &Gateway{Metrics: m.Handler(), Store: store, Remote: rc, Health: hc, tracing: tr}
	upstreams := upstreamTransport()
	var upstreamRT http.RoundTripper = upstreams
	if tr != nil {
		upstreamRT = tr.Transport(upstreams, spanName("upstream"))
	}
	g.core = core{ctx: context.WithoutCancel(ctx), log: log, now: now, getenv: getenv, store: store, m: m, health: hc, remote: rc,
		upstreams: upstreams, upstreamRT: upstreamRT, tracing: tr, oidc: oc, watchKeys: !opt.NoKeyFileWatch}
	g.Handler = gatewayHandler{g}
	fail := func(snap *snapshot, err error) (*Gateway, error) {
		if snap != nil && snap.local != nil {
			snap.local.Close()
		}
		if g.keys != nil {
			g.keys.close()
		}
		stopTracing(tr)
		return nil, errors.Join(g.closeShared(err), store.Close())
	}
	snap, err := g.verification(ctx, cfg, discovered, nil)
	if err != nil {
		return fail(nil, err)
	}
	// remote: every new token is verified by the auth service (cached).
	// local: in-process only, never a call home to authenticate (the
	// verdict is cached too, which saves CPU; never past exp).
	// hybrid: remote as above, plus the local check on every request.
	verifier, local := snap.verifiers(rc)
	deps := authn.Deps{Verifier: verifier, Local: local, Fetcher: rc, Store: store, Revocations: store, Observer: m, Log: log, Now: now}
	if tr != nil {
		deps.Store = tracedStore{UserStore: store, tracer: tr.Tracer()}
	}
	if s.Users.Source == models.UsersFromUserinfo { // users.source needs a restart (keepRestartOnly)
		ui, err := userinfoFetcher(s, discovered, cfg.Users)
		if err != nil {
			return fail(snap, err)
		}
		deps.Fetcher = ui
		g.core.userinfo = ui
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
	if s.Auth.Cache.RedisURL != "" { // auth.cache.redis_* need a restart (keepRestartOnly)
		if deps.Shared, g.Shared, err = sharedCache(s.Auth.Cache, getenv, m, now); err != nil {
			return fail(snap, err)
		}
	}
	if g.Auth, err = authn.New(snap.auth, deps); err != nil {
		return fail(snap, err)
	}
	snap.authn = g.Auth
	if err := g.finish(snap, nil); err != nil {
		return fail(snap, err)
	}
	g.snap.Store(snap)
	g.Local = snap.local

	hc.Add(checkDatabase, store.Ping)
	hc.Add(checkAuthService, rc.Probe)
	m.CacheEntries(g.Auth.CacheLen)
	if snap.local != nil {
		m.SkippedJWKSKeys(g.skippedKeys)
		// Ready fails until every JWKS has been fetched, and while one is
		// failing to refresh. A reload to verify: remote leaves it passing.
		hc.Add(checkJWKS, g.jwksReady)
	}
	if err := g.startPeers(ctx, s, log, m); err != nil {
		return fail(snap, err)
	}
	if s.ExtAuthz.GRPCListen != "" {
		// Each Check asks the decision of the snapshot current then.
		g.ExtAuthz = newExtAuthzServer(func() *decider { return g.snap.Load().decider }, log, tr)
	}
	g.stopDiscovery = g.startDiscoveryRefresh()
	hc.Start()
	return g, nil
}

// gatewayHandler serves each request with the snapshot current when it
// arrives.
type gatewayHandler struct{ g *Gateway }

func (h gatewayHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.g.snap.Load().router.ServeHTTP(w, r)
}

// verification builds the parts of a snapshot that decide verdicts: the
// local verifier (reused from prev when auth.local did not change) and the
// authenticator's settings, with the call budget (reused from prev when
// its limits did not change).
func (g *Gateway) verification(ctx context.Context, cfg *models.Runtime, discovered authn.Discovered, prev *snapshot) (*snapshot, error) {
	c := g.core
	s := cfg.Settings
	snap := &snapshot{cfg: cfg, settings: s, auth: authn.ConfigFrom(s), discovered: discovered}
	if s.Auth.Verify == models.VerifyIntrospect {
		ic, err := introspectionClient(s, discovered, c.getenv, c.log, c.now)
		if err != nil {
			return nil, err
		}
		snap.auth.Introspect = ic
	}
	if s.Users.Source == models.UsersFromClaims {
		snap.auth.Users = cfg.Users
	}
	if s.Auth.Verify != models.VerifyRemote && s.Auth.Verify != models.VerifyIntrospect {
		if prev != nil && prev.local != nil && localSame(prev.settings, s) {
			snap.local = prev.local
		} else {
			lc := authn.LocalConfigFrom(s)
			lc.HTTPClient = &http.Client{Transport: remote.NewTransport(s.AuthService.Timeout)}
			if c.tracing != nil {
				lc.HTTPClient.Transport = c.tracing.Transport(lc.HTTPClient.Transport, spanName("jwks fetch"))
			}
			local, err := authn.NewLocal(ctx, lc, c.getenv, c.log, c.now)
			if err != nil {
				return nil, err
			}
			// NewLocal has fetched every JWKS once. At start a JWKS still
			// missing only keeps /readyz failing; on a reload it would put a
			// verifier answering 503 (or 401) to every token in place of a
			// working one, so the reload is refused instead.
			if prev != nil {
				if err := local.Usable(); err != nil {
					local.Close()
					return nil, fmt.Errorf("%w; fix it or the JWKS server and reload again", err)
				}
			}
			snap.local = local
		}
	}
	if s.Auth.Verify != models.VerifyLocal { // local mode never calls home to verify
		if prev != nil && prev.budget != nil && prev.cfg.Throttle.CallsHome == cfg.Throttle.CallsHome && prev.settings.Throttle.CacheSize == s.Throttle.CacheSize {
			snap.budget = prev.budget
		} else {
			budget, err := newCallBudget(cfg.Throttle, c.now)
			if err != nil {
				snap.closeNew(prev)
				return nil, err
			}
			snap.budget = budget
		}
		if snap.budget != nil { // a nil *callBudget in the interface would not be nil
			snap.auth.CallsHome = snap.budget
		}
	}
	return snap, nil
}

// verifiers returns the authenticator's verifier and every-request local
// check for the snapshot's verify mode.
func (snap *snapshot) verifiers(rc *remote.Client) (verifier, local authn.Verifier) {
	switch snap.settings.Auth.Verify {
	case models.VerifyLocal:
		return snap.local, nil
	case models.VerifyHybrid:
		return rc, snap.local
	}
	return rc, nil
}

// closeNew stops a local verifier this snapshot made (not one it shares
// with prev), after a failed build.
func (snap *snapshot) closeNew(prev *snapshot) {
	if snap.local != nil && (prev == nil || prev.local != snap.local) {
		snap.local.Close()
	}
}

// finish builds the rest of a snapshot: the identity token signer, the
// login throttles and the routes' rate limits (each count carried over
// from prev while its limit is unchanged), the route table and the router.
func (g *Gateway) finish(snap *snapshot, prev *snapshot) error {
	c := g.core
	s := snap.settings
	// The keyring outlives snapshots: a new one is made only when
	// identity_token is turned on; a running one takes the new settings
	// last, once nothing else can fail.
	sig, fresh := g.keys, false
	if s.IdentityToken.Enabled && sig == nil {
		var err error
		if sig, err = newKeyring(c.ctx, s.IdentityToken, c.now, c.log, c.watchKeys); err != nil {
			return err
		}
		g.keys, fresh = sig, true
	} else if !s.IdentityToken.Enabled {
		sig = nil
	}
	var prevLogin *loginGuard
	if prev != nil {
		prevLogin = prev.login // its counts survive where their limits did not change
	}
	login, err := newLoginGuard(snap.cfg.Throttle, s.AuthService.MaxBodyBytes, c.log, c.now, prevLogin)
	if err != nil {
		return err
	}
	snap.login = login
	trusted := trustedProxies(snap.cfg.TrustedNets)
	idn := newIdentity(s.IdentityHeaders.Prefix)
	idn.signer = sig
	idn.sendIssuer = len(s.UserIssuers()) > 1
	table, err := newRouteTable(snap.cfg.Routes, c.upstreamRT, c.log, trusted, idn, c.m)
	if err != nil {
		return err
	}
	var prevLimits limitSet
	if prev != nil {
		prevLimits = prev.limits
	}
	if snap.limits, err = attachRateLimits(table, s.Throttle.CacheSize, c.now, c.m, prevLimits); err != nil {
		return err
	}
	rd := routerDeps{
		log: c.log, settings: s, remote: c.remote, auth: snap.authn, table: table,
		identity: idn, signer: sig, login: snap.login, callsHome: snap.budget != nil, trusted: trusted,
		metrics: c.m, health: c.health, now: c.now,
		introspect: introspectorFor(snap.cfg, c.getenv),
		store:      c.store, adminRule: snap.cfg.AdminRule,
		tracing: c.tracing, oidc: c.oidc,
	}
	snap.router = newRouter(rd)
	snap.decider = newDecider(rd, newBrowser(s.Browser, c.now))
	for _, ri := range snap.router.Routes() {
		c.m.Route(ri.Path) // resolve every label child before traffic
	}
	for _, r := range snap.cfg.Routes {
		c.m.Route(r.Name)
	}
	switch {
	case sig != nil && !fresh:
		if err := sig.configure(c.ctx, s.IdentityToken); err != nil {
			return err
		}
	case sig == nil && g.keys != nil: // identity_token turned off
		g.keys.close()
		g.keys = nil
	}
	return nil
}

// discover resolves the OpenID providers' discovery documents
// (auth.local.discovery_url): cfg with their jwks_url and issuer filled
// in, and what each document said.
func discover(ctx context.Context, cfg *models.Runtime) (*models.Runtime, authn.Discovered, error) {
	s := cfg.Settings
	s, discovered, err := authn.ResolveDiscovery(ctx, s, &http.Client{Transport: remote.NewTransport(s.AuthService.Timeout), Timeout: s.AuthService.Timeout})
	if err != nil {
		return nil, nil, err
	}
	resolved := *cfg
	resolved.Settings = s
	return &resolved, discovered, nil
}

// localSame reports whether two settings build the same local verifier.
func localSame(a, b models.Settings) bool {
	return reflect.DeepEqual(a.Auth.Local, b.Auth.Local) && a.AuthService.Timeout == b.AuthService.Timeout
}

// skippedKeys is the current local verifier's count of skipped JWKS keys.
func (g *Gateway) skippedKeys() int64 {
	if l := g.snap.Load().local; l != nil {
		return l.SkippedKeys()
	}
	return 0
}

// jwksReady is the readiness check of the current local verifier's JWKS.
func (g *Gateway) jwksReady(context.Context) error {
	if l := g.snap.Load().local; l != nil {
		return l.Ready()
	}
	return nil
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
		if g.stopDiscovery != nil {
			g.stopDiscovery() // first: a discovery refresh reloads under reloadMu
		}
		g.reloadMu.Lock()
		if g.keys != nil {
			g.keys.close()
		}
		g.reloadMu.Unlock()
		if g.stopPeers != nil {
			g.stopPeers()
		}
		if l := g.snap.Load().local; l != nil {
			l.Close()
		}
		// Idle keep-alive connections would otherwise hold the auth
		// service's and upstreams' graceful shutdowns.
		g.Remote.CloseIdleConnections()
		g.core.upstreams.CloseIdleConnections()
		if err := g.Store.Close(); err != nil {
			g.closeErr = fmt.Errorf("close database: %w", err)
		}
		stopTracing(g.tracing) // exports the spans still buffered
		g.closeErr = g.closeShared(g.closeErr)
	})
	return g.closeErr
}

// sharedCache builds the shared verdict cache of c (auth.cache.redis_*),
// with its secret read from the environment.
func sharedCache(c models.AuthCache, getenv func(string) string, m *metrics.Metrics, now func() time.Time) (*authn.Shared, *remote.SharedCache, error) {
	name := strings.TrimPrefix(c.RedisSecret, models.KeyEnvPrefix)
	secret := getenv(name)
	if len(secret) < models.RedisSecretMinBytes {
		return nil, nil, fmt.Errorf("auth.cache.redis_secret: environment variable %s must hold at least %d bytes, got %d", name, models.RedisSecretMinBytes, len(secret))
	}
	sc, err := remote.NewSharedCache(c, m, now)
	if err != nil {
		return nil, nil, err
	}
	return &authn.Shared{Store: sc, Secret: []byte(secret)}, sc, nil
}

// closeShared closes the Redis client, if any, adding its error to err.
func (g *Gateway) closeShared(err error) error {
	if g.Shared == nil {
		return err
	}
	if cerr := g.Shared.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close redis: %w", cerr))
	}
	return err
}

// upstreamTransport pools keep-alive connections to every upstream.
func upstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// changePoll is how often a replica reads the revocation changes other
// processes wrote (the CLI on SQLite; on PostgreSQL a safety net under the
// NOTIFY hints).
const changePoll = time.Second

// pruneEvery is how often expired revocations are pruned from the table and
// from memory.
const pruneEvery = time.Minute

// startPeers loads the unexpired revocations and keeps this replica in step
// with every process sharing its database: a Follower reads back the
// revocation changes (replicas, the CLI) every second, and on PostgreSQL a
// listener turns the others' NOTIFY hints into an immediate read. A hint
// only evicts and polls; what is refused comes from the tables. It waits
// for the first LISTEN so a replica never serves before it can hear the
// others.
func (g *Gateway) startPeers(ctx context.Context, s models.Settings, log *slog.Logger, m *metrics.Metrics) error {
	f, err := notify.Follow(ctx, g.Store, notify.Applier{
		TokenRevoked:    g.Auth.RevokeKey,
		UserChanged:     g.Auth.ForgetUserKey,
		AllUsersChanged: g.Auth.ForgetUsers,
	}, changePoll, log)
	if err != nil {
		return err
	}
	if err := g.Auth.LoadRevocations(ctx); err != nil {
		f.Stop()
		return err
	}
	pctx, stopPrune := context.WithCancel(context.WithoutCancel(ctx))
	pruned := make(chan struct{})
	go func() {
		defer close(pruned)
		g.prune(pctx, log)
	}()
	stops := []func(){f.Stop, func() { stopPrune(); <-pruned }}
	g.stopPeers = func() {
		for _, stop := range stops {
			stop()
		}
	}
	if g.Store.Driver() != "postgres" {
		return nil
	}
	l := notify.Listen(s.Database.DSN, notify.Handler{
		TokenRevoked: func(key [32]byte, _ time.Time) {
			m.Peer("received", notify.KindToken)
			g.Auth.ForgetTokenKey(key) // evict only: a refusal comes from the table
		},
		UserChanged: func(k models.UserKey) {
			m.Peer("received", notify.KindUser)
			g.Auth.ForgetUserKey(k)
		},
		Hint:      f.Poke,
		Malformed: func(why string) { m.Peer("malformed", why) },
		Gap: func() {
			g.Auth.ForgetAll()
			if err := g.Auth.LoadRevocations(context.Background()); err != nil {
				log.Error("could not reload revocations after a notification gap", "err", err)
			}
			f.Poke()
		},
	}, log)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.WaitReady(wctx); err != nil {
		l.Stop()
		g.stopPeers()
		g.stopPeers = nil
		return err
	}
	stops = append([]func(){l.Stop}, stops...)
	return nil
}

// prune deletes expired revocations from the table and memory every
// pruneEvery until ctx ends.
func (g *Gateway) prune(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := g.Store.PruneRevocations(ctx, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("could not prune expired revocations", "err", err)
		}
		g.Auth.PruneRevocations()
	}
}
