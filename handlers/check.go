package handlers

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// Forward-auth answers. A proxy's auth hook understands only 2xx, 401 and
// 403 (nginx turns anything else into a 500), so every refusal that is not
// about credentials is a 403.
var (
	errCheckUntrusted = newAPIError(http.StatusForbidden, codePermissionDenied, "Forward-auth is answered only to trusted proxies.")
	errCheckNoURI     = newAPIError(http.StatusForbidden, codePermissionDenied, "X-Forwarded-Uri or X-Original-URI is required.")
	errCheckNoRoute   = newAPIError(http.StatusForbidden, codePermissionDenied, "No route covers this path.")
	errCheckMethod    = newAPIError(http.StatusForbidden, codePermissionDenied, "Method not allowed on this route.")
)

// handleCheck is forward-auth for nginx auth_request, Traefik forwardAuth
// and Envoy ext_authz: it decides the original request, described by
// X-Forwarded-Method + X-Forwarded-Uri (or X-Original-Method +
// X-Original-URI), exactly as the proxy would, and answers 200 with the
// identity headers, 401 or 403. Only trusted proxies may ask: anyone else
// could describe any request they like.
func handleCheck(g gate, table *routeTable, idn identity, trusted trustedProxies) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if !trusted.fromTrusted(r) {
			errCheckUntrusted.abort(c)
			return
		}
		method := firstHeader(r.Header, "X-Forwarded-Method", "X-Original-Method")
		if method == "" {
			method = r.Method // Envoy's ext_authz sends the original method as the check's own
		}
		method = strings.ToUpper(method)
		raw := firstHeader(r.Header, "X-Forwarded-Uri", "X-Original-Uri")
		if raw == "" {
			errCheckNoURI.abort(c)
			return
		}
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			errCheckNoURI.abort(c)
			return
		}
		clean, rt, why := table.resolve(u.Path)
		if why != "" {
			errCheckUnusualPath(why).abort(c)
			return
		}
		if rt == nil {
			errCheckNoRoute.abort(c)
			return
		}
		if !rt.allowsMethod(method) {
			errCheckMethod.abort(c)
			return
		}
		p, err := g.admit(r.Context(), rt, r.Header, method, clean)
		if err != nil {
			fail(c, g.log, err)
			return
		}
		if p != nil {
			if err := idn.set(c.Writer.Header(), p, rt); err != nil {
				errorFor(r.Context(), g.log, err).abort(c)
				return
			}
		}
		c.Header("Cache-Control", "no-store")
		c.Status(http.StatusOK)
	}
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(h.Get(n)); v != "" {
			return v
		}
	}
	return ""
}
