package handlers

import (
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/handlers/authn"
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
	identity identity
	now      func() time.Time
}

// newRouter is the one map of the HTTP surface.
func newRouter(d routerDeps) *gin.Engine {
	s := d.settings
	r := gin.New()
	r.ContextWithFallback = true    // *gin.Context carries request cancellation
	r.HandleMethodNotAllowed = true // GET /auth/token/ is 405, not 404
	r.RedirectTrailingSlash = false // no redirects on POSTs to token endpoints
	_ = r.SetTrustedProxies(nil)    // ClientIP is the TCP peer
	r.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, err any) {
		if err == http.ErrAbortHandler { // ReverseProxy's way to abort a broken response
			panic(err)
		}
		d.log.ErrorContext(c.Request.Context(), "panic serving request", "panic", err, "stack", string(debug.Stack()))
		errInternal.abort(c)
	}))

	cr := credentials{header: s.Auth.HeaderName, types: s.Auth.HeaderTypes}
	as := s.AuthService
	r.POST("/auth/token/", handleRelay(d.log, d.remote, remote.EndpointToken, as.MaxBodyBytes,
		mirrorLogin(d.log, d.remote, d.auth, s.Auth.UserIDClaim, d.now)))
	r.POST("/auth/token/refresh/", handleRelay(d.log, d.remote, remote.EndpointRefresh, as.MaxBodyBytes, nil))
	r.POST("/auth/token/verify/", handleRelay(d.log, d.remote, remote.EndpointVerify, as.MaxBodyBytes, nil))
	r.POST("/auth/token/blacklist/", handleRelay(d.log, d.remote, remote.EndpointBlacklist, as.MaxBodyBytes, forgetBlacklisted(d.auth)))

	users := r.Group("/auth/users", requireAuth(d.log, cr, d.auth))
	user := handleUser(d.log, cr, d.remote, d.auth, d.now)
	users.GET("/:id/", user)
	users.GET("/:id", user)

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })

	r.NoRoute(handleProxy(d.log, cr, d.auth, d.table, d.identity))
	r.NoMethod(func(c *gin.Context) {
		newAPIError(http.StatusMethodNotAllowed, codeMethodNotAllowed, "Method \""+c.Request.Method+"\" not allowed.").abort(c)
	})
	return r
}
