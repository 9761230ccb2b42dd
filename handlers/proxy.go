package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"jwtgate/handlers/authn"
	"jwtgate/handlers/metrics"
	"jwtgate/models"
)

// route is a configured route ready to serve.
type route struct {
	models.Route
	proxy *httputil.ReverseProxy
	allow string // Allow header for 405s
}

// routeTable picks the route for a path: longest prefix wins.
type routeTable struct {
	routes []*route // longest path first
}

func newRouteTable(rs []models.Route, transport http.RoundTripper, log *slog.Logger, m *metrics.Metrics) (*routeTable, error) {
	t := &routeTable{}
	for _, r := range rs {
		target, err := url.Parse(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("route %q upstream: %w", r.Name, err)
		}
		rt := &route{Route: r, allow: strings.Join(r.Methods, ", ")}
		rt.proxy = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				if rt.StripPath {
					rest := strings.TrimPrefix(pr.Out.URL.Path, strings.TrimSuffix(rt.Path, "/"))
					pr.Out.URL.Path = "/" + strings.TrimPrefix(rest, "/")
				}
				pr.SetURL(target)
				pr.SetXForwarded() // client-sent X-Forwarded-* were already removed
			},
			Transport: instrumented{next: transport, route: m.Route(r.Name)},
			ModifyResponse: func(resp *http.Response) error {
				// The client gets the gateway's request id, which the
				// upstream received; an echo of it would be a duplicate.
				resp.Header.Del(headerRequestID)
				return nil
			},
			ErrorHandler: proxyError(log, rt.Name),
		}
		t.routes = append(t.routes, rt)
	}
	slices.SortStableFunc(t.routes, func(a, b *route) int { return len(b.Path) - len(a.Path) })
	return t, nil
}

// match returns the route for a cleaned path, or nil.
func (t *routeTable) match(p string) *route {
	for _, r := range t.routes {
		if matchPrefix(r.Path, p) {
			return r
		}
	}
	return nil
}

// matchPrefix reports whether prefix covers p on a segment boundary:
// "/api/billing/" covers "/api/billing", "/api/billing/" and "/api/billing/x";
// "/api/billing" also covers those but not "/api/billingx".
func matchPrefix(prefix, p string) bool {
	base := strings.TrimSuffix(prefix, "/")
	if !strings.HasPrefix(p, base) {
		return false
	}
	rest := p[len(base):]
	return rest == "" || rest[0] == '/' || base == ""
}

// cleanPath resolves "..", "." and "//" in an already percent-decoded path,
// keeping a trailing slash, so a rule cannot be dodged with
// /api/billing/../reports/.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func (r *route) allowsMethod(m string) bool {
	return len(r.Methods) == 0 || slices.Contains(r.Methods, m)
}

// handleProxy authenticates and authorises a request for a configured route
// and forwards it. A path no route covers is 404: nothing is forwarded
// unless a route says so.
func handleProxy(log *slog.Logger, cr credentials, auth authenticator, table *routeTable, idn identity) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		clean := cleanPath(r.URL.Path)
		rt := table.match(clean)
		if rt == nil {
			errNotFound.abort(c)
			return
		}
		c.Set(routeKey, rt.Name)
		if !rt.allowsMethod(r.Method) {
			c.Header("Allow", rt.allow)
			newAPIError(http.StatusMethodNotAllowed, codeMethodNotAllowed, fmt.Sprintf("Method %q not allowed.", r.Method)).abort(c)
			return
		}
		var p *authn.Principal
		if rt.Auth != models.AuthNone {
			raw, present, err := cr.extract(r.Header)
			if err == nil && !present && rt.Auth == models.AuthRequired {
				err = models.ErrNotAuthenticated
			}
			if err == nil && present {
				var pr authn.Principal
				if pr, err = auth.Authenticate(r.Context(), raw); err == nil {
					p = &pr
					c.Set(principalKey, p)
				}
			}
			if err != nil {
				fail(c, log, err)
				return
			}
		}
		if rt.Rule != nil && !allowed(r.Context(), log, rt, p, r, clean) {
			errPermission.abort(c)
			return
		}
		idn.strip(r.Header)
		if p != nil {
			idn.set(r.Header, p)
		}
		r.URL.Path, r.URL.RawPath = clean, ""
		if rt.Timeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), rt.Timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		rt.proxy.ServeHTTP(c.Writer, r)
	}
}

// allowed evaluates the route's allow rule; an error in the rule denies.
func allowed(ctx context.Context, log *slog.Logger, rt *route, p *authn.Principal, r *http.Request, clean string) bool {
	env := models.RuleEnv{Request: models.RuleRequest{Method: r.Method, Path: clean}}
	if p != nil {
		env.User, env.Claims = p.Attrs, p.Token.Claims
	}
	if rt.Rule.NeedsHeaders() {
		env.Request.Headers = make(map[string]string, len(r.Header))
		for k, vs := range r.Header {
			env.Request.Headers[strings.ToLower(k)] = strings.Join(vs, ", ")
		}
	}
	ok, err := rt.Rule.Allows(&env)
	if err != nil {
		log.WarnContext(ctx, "allow rule failed; denying", "route", rt.Name, "err", err)
		return false
	}
	return ok
}

// proxyError answers a failed upstream call with our JSON: 504 when it
// timed out, 502 otherwise.
func proxyError(log *slog.Logger, name string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			log.DebugContext(r.Context(), "client went away", "route", name)
			w.WriteHeader(499)
			return
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			log.WarnContext(r.Context(), "upstream timed out", "route", name, "err", err)
			errUpstreamTimeout.write(w)
			return
		}
		log.WarnContext(r.Context(), "upstream unavailable", "route", name, "err", err)
		errUpstreamDown.write(w)
	}
}
