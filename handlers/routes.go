package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/handlers/authn"
	"jwtgate/handlers/health"
	"jwtgate/handlers/metrics"
	"jwtgate/handlers/tracing"
	"jwtgate/models"
	"jwtgate/remote"
)

// routerDeps is everything the router serves with.
type routerDeps struct {
	log      *slog.Logger
	settings models.Settings
	remote   *remote.Client
	auth     *authn.Authenticator
	table    *routeTable
	metrics  *metrics.Metrics
	health   *health.Checker
	identity identity
	signer   *keyring    // nil: identity_token off
	login    *loginGuard // the login throttles
	trusted  trustedProxies
	now      func() time.Time
	// introspect serves POST /auth/introspect/; nil when introspection
	// lists no clients and no networks.
	introspect *introspector
	store      adminStore
	// adminRule is admin.allow compiled; nil: /admin/ is off.
	adminRule *models.Rule
	tracing   *tracing.Tracing // nil: traces off
	// oidc is the browser login's provider client; nil when oidc is off.
	oidc *oidcClient

	// callsHome is set when throttle.calls_home_per_client bounds calls
	// home: requests then carry their client key for it.
	callsHome bool
}

// newRouter is the one map of the HTTP surface.
func newRouter(d routerDeps) *gin.Engine {
	s := d.settings
	r := gin.New()
	r.ContextWithFallback = true    // *gin.Context carries request cancellation
	r.HandleMethodNotAllowed = true // GET /auth/token/ is 405, not 404
	r.RedirectTrailingSlash = false // no redirects on POSTs to token endpoints
	// ClientIP is the TCP peer unless that is a trusted proxy, then the
	// client its X-Forwarded-For (or X-Real-IP) names.
	if err := r.SetTrustedProxies(d.trusted.strings()); err != nil {
		panic(err) // the prefixes were parsed by models.Compile
	}
	r.Use(
		observe(d.log, d.metrics, d.trusted), // request id, access log, request metrics
		gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, err any) {
			if err == http.ErrAbortHandler { // ReverseProxy's way to abort a broken response
				panic(err)
			}
			d.log.ErrorContext(c.Request.Context(), "panic serving request", "panic", err, "stack", string(debug.Stack()))
			errInternal.abort(c)
		}),
	)
	if d.tracing != nil {
		r.Use(traceRequests(d.tracing, d.trusted))
	}
	r.Use(closeAfterChunked)
	r.Use(tokenBodyDeadline(s.AuthService.BodyTimeout))
	if d.callsHome {
		r.Use(withClientKey())
	}

	cr := newCredentials(s.Auth.HeaderName, s.Auth.HeaderTypes)
	as := s.AuthService
	br := newBrowser(s.Browser, d.now)
	if br != nil {
		r.Use(br.cors())
	}
	bt := &browserTokens{
		b: br, log: d.log, rl: d.remote, m: d.auth, cr: cr, maxBody: as.MaxBodyBytes,
		loginUser: loginUser(d.log, d.remote, d.auth, s.Auth.UserIDClaim, d.now), resetURL: as.PasswordResetURL,
		userIDClaim: s.Auth.UserIDClaim, forgetUser: d.auth.ForgetUser, now: d.now,
		revokeUser: func(ctx context.Context, raw string) error {
			p, err := d.auth.Authenticate(ctx, raw)
			if err != nil {
				return err
			}
			return d.auth.RevokeUser(ctx, p.User.Key(), "password_change")
		},
	}
	if br != nil && d.oidc != nil {
		bt.oidc = &oidcLogin{cl: d.oidc, b: br, log: d.log, auth: d.auth, userIDClaim: s.Auth.UserIDClaim, now: d.now}
	}
	r.POST("/auth/token/", d.login.handler(), bt.login(handleRelay(d.log, d.remote, remote.EndpointToken, as.MaxBodyBytes,
		both(warmIssued(d.auth), mirrorLogin(d.log, d.remote, d.auth, s.Auth.UserIDClaim, d.now)))))
	// A refresh token issued before its user's cutoff is refused here,
	// whether it comes in the body or (browser mode) from the cookie.
	refuseRevoked := refuseRevokedRefresh(d.log, d.auth, as.MaxBodyBytes)
	refreshRelay := handleRelay(d.log, d.remote, remote.EndpointRefresh, as.MaxBodyBytes, warmIssued(d.auth))
	r.POST("/auth/token/refresh/", bt.refresh(func(c *gin.Context) {
		if refuseRevoked(c); !c.IsAborted() {
			refreshRelay(c)
		}
	}))
	r.POST("/auth/token/logout/", bt.logout)
	r.POST("/auth/password-change/", bt.passwordChange)
	r.GET("/auth/password-reset/", bt.passwordReset)
	if br != nil {
		r.GET("/auth/csrf/", bt.csrf)
	}
	if ol := bt.oidc; ol != nil {
		r.GET("/auth/oidc/login", ol.login)
		r.GET(models.OIDCCallbackPath, ol.callback)
		r.GET("/auth/oidc/logout", ol.logout)
	}
	r.POST("/auth/token/verify/", handleRelay(d.log, d.remote, remote.EndpointVerify, as.MaxBodyBytes, nil))
	r.POST("/auth/token/blacklist/", handleRelay(d.log, d.remote, remote.EndpointBlacklist, as.MaxBodyBytes, forgetBlacklisted(d.auth)))

	dc := newDecider(d, br)
	users := r.Group("/auth/users", requireAuth(dc, builtinRoute("users")))
	user := handleUser(d.log, cr, d.remote, d.auth, d.now)
	users.GET("/:id/", user)
	users.GET("/:id", user)
	r.POST("/auth/token/logout-all/", requireAuth(dc, builtinRoute("logout-all")), handleLogoutAll(d.log, d.auth))
	mountAdmin(r, dc, d.adminRule, admin{log: d.log, store: d.store, rv: d.auth})

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", handleReadyz(d.health))
	// /metrics is served only on metrics_listen (cli serve), never here:
	// jwtgate_auth_refusals_total{reason} would tell a client why its
	// token was refused.

	r.Any("/auth/check", handleCheck(dc, s.ForwardAuth.Headers))
	if d.introspect != nil {
		r.POST("/auth/introspect/", handleIntrospect(dc, d.introspect, cr))
	}
	if d.signer != nil {
		r.GET("/.well-known/jwks.json", handleJWKS(d.signer))
	}

	r.NoRoute(handleProxy(dc))
	r.NoMethod(func(c *gin.Context) {
		newAPIError(http.StatusMethodNotAllowed, codeMethodNotAllowed, "Method \""+c.Request.Method+"\" not allowed.").abort(c)
	})
	return r
}

// handleReadyz answers 200 when every readiness check passes, else 503
// naming what is down. It reads the background probes' results: a request
// never waits for a probe.
func handleReadyz(h *health.Checker) gin.HandlerFunc {
	return func(c *gin.Context) {
		ok, checks := h.Status()
		if ok {
			c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": checks})
			return
		}
		down := make([]string, 0, len(checks))
		for name, state := range checks {
			if state != "ok" {
				down = append(down, name)
			}
		}
		slices.Sort(down)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "not ready", "down": down, "checks": checks})
	}
}
