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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/handlers/authn"
	"jwtgate/handlers/metrics"
	"jwtgate/models"
)

// route is a configured route ready to serve.
type route struct {
	models.CompiledRoute
	proxy  *httputil.ReverseProxy
	allow  string          // Allow header for 405s
	fields []identityField // identity_headers.fields as headers
	// The compiled settings the decision reads, taken from models.Route
	// once, here, so request code never reads a compiled settings value.
	rule          *models.Rule // the allow rule; nil: none
	bodyDeadline  time.Duration
	forwardsToken bool
	limit         *routeLimit // rate_limit; nil: none
}

// routeTable picks the route for a path: longest prefix wins.
type routeTable struct {
	routes []*route // longest path first
}

func newRouteTable(rs []models.CompiledRoute, transport http.RoundTripper, log *slog.Logger, trusted trustedProxies, idn identity, m *metrics.Metrics) (*routeTable, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = metrics.New(nil)
	}
	t := &routeTable{}
	buffers := newBufferPool()
	for _, r := range rs {
		target, err := url.Parse(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("route %q upstream: %w", r.Name, err)
		}
		rt := &route{
			CompiledRoute: r, allow: strings.Join(r.Methods, ", "), fields: idn.fields(r.IdentityHeaders.Fields),
			rule: r.Rule, bodyDeadline: r.BodyDeadline(), forwardsToken: r.ForwardsToken(),
		}
		rt.proxy = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				if rt.StripPath {
					rest := strings.TrimPrefix(pr.Out.URL.Path, strings.TrimSuffix(rt.Path, "/"))
					pr.Out.URL.Path = "/" + strings.TrimPrefix(rest, "/")
				}
				pr.SetURL(target)
				setForwarded(pr, trusted.fromTrusted(pr.In))
				setOutbound(pr.Out.Header, pr.In)
			},
			Transport:  instrumented{next: transport, route: m.Route(r.Name)},
			BufferPool: buffers,
			ModifyResponse: func(resp *http.Response) error {
				// The client gets the gateway's request id, which the
				// upstream received; an echo of it would be a duplicate.
				delete(resp.Header, headerRequestID) // a canonical key: Del without re-canonicalising
				return stopHeaderTimer(resp)
			},
			ErrorHandler: proxyError(log, rt.Name),
			ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn), // not the global log package
		}
		t.routes = append(t.routes, rt)
	}
	slices.SortStableFunc(t.routes, func(a, b *route) int { return len(b.Path) - len(a.Path) })
	return t, nil
}

// setForwarded writes X-Forwarded-For/-Host/-Proto and X-Real-IP on the
// outbound request. ReverseProxy has already removed the client's
// X-Forwarded-For/-Host/-Proto and every hop-by-hop header; a trusted
// proxy's forwarded metadata (its chain, original host and scheme, the rest
// of X-Forwarded-*, X-Real-IP, X-Original-URI/-Method) is copied from the
// inbound request, so a Connection header cannot remove it, with the
// proxy's own address appended to the chain. Anyone else's never reaches
// here (dropForwarded).
func setForwarded(pr *httputil.ProxyRequest, trusted bool) {
	in := pr.In.Header
	out := pr.Out.Header
	delete(out, "X-Real-Ip") // the canonical key, as Del would look it up
	if trusted {
		for k, v := range in {
			if !isAlias(k) && isForwardedMeta(k) && k != "Forwarded" {
				out[k] = v
			}
		}
	}
	pr.SetXForwarded()
	if trusted {
		for _, k := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v := in.Get(k); v != "" {
				out.Set(k, v)
			}
		}
	}
}

// match returns the route for a cleaned path, or nil.
func (t *routeTable) match(p string) *route {
	for _, r := range t.routes {
		if models.MatchesPrefix(r.Path, p, false) {
			return r
		}
	}
	return nil
}

func (r *route) allowsMethod(m string) bool {
	return len(r.Methods) == 0 || slices.Contains(r.Methods, m)
}

// gate authenticates and authorises a request for a route: the part of
// the decision (decider) after the route is known.
type gate struct {
	log     *slog.Logger
	cr      credentials
	auth    authenticator
	headers headerRules
	// tokenHeader is the token header's key (and auth.proxy_header's):
	// decision.Remove of a route that does not forward the token.
	tokenHeader []string
	// proxyHeader is auth.proxy_header's key; "" when off (proxyheader.go).
	proxyHeader string
}

// newGate builds the gate for a token header and header rules.
func newGate(log *slog.Logger, cr credentials, auth authenticator, headers headerRules) gate {
	return gate{log: log, cr: cr, auth: auth, headers: headers, tokenHeader: []string{canonicalHeader(cr.header)}}
}

// admit returns the caller (nil when anonymous on an optional route, or
// on an auth: none route) or the error to answer with fail. method and
// clean are the request as the allow rule sees it; h carries the token,
// or, when it carries no token header, alt does (browser.credential).
// With cleanHeaders, h is first cleaned in place (headerRules.clean): the
// rule sees only headers the upstream gets in the same spelling. trusted
// says the request came from a trusted proxy, whose auth.proxy_header is
// read when h carries no token header (before alt). The caller is kept in
// into, when not nil, instead of a new Principal.
func (g gate) admit(ctx context.Context, rt *route, h http.Header, method, clean string, cleanHeaders bool, alt string, trusted bool, into *authn.Principal) (*authn.Principal, error) {
	if cleanHeaders {
		if err := g.headers.clean(h, rt.rule != nil && rt.rule.NeedsHeaders()); err != nil {
			return nil, err
		}
	}
	var p *authn.Principal
	if rt.Auth != models.AuthNone {
		raw, present, err := g.cr.extract(h)
		if err == nil && !present && trusted && g.proxyHeader != "" {
			raw, present, err = g.proxyToken(h)
		}
		if err == nil && !present && alt != "" {
			raw, present = alt, true
		}
		if err == nil && !present && rt.Auth == models.AuthRequired {
			err = models.ErrNotAuthenticated
		}
		if err == nil && present {
			var pr authn.Principal
			if pr, err = g.auth.Authenticate(ctx, raw); err == nil {
				if into == nil {
					into = new(authn.Principal)
				}
				*into = pr
				p = into
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if rt.rule != nil && !allowed(ctx, g.log, rt, p, h, method, clean) {
		return p, models.ErrPermissionDenied // the caller is known: the access log names it
	}
	return p, nil
}

// handleProxy forwards a request the decision allows to its route's
// upstream. A path no route covers is 404: nothing is forwarded unless a
// route says so.
func handleProxy(d *decider) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		st := stateOf(r.Context())
		if st == nil { // not behind observe: a state of its own
			var ctx context.Context
			ctx, st = withRequestState(r.Context(), models.RequestID(r.Context()))
			r = r.WithContext(ctx)
			c.Request = r
		}
		dec, err := d.decide(r.Context(), decisionInput{
			Entry: entryProxy, Method: r.Method, Path: r.URL.Path, Header: r.Header,
			Trusted: d.trusted.fromTrusted(r), Host: r.Host, Client: c, Caller: &st.caller,
		})
		// The access log and metrics name the route and the caller, on a
		// refusal too.
		st.route, st.principal = dec.Route, dec.Principal
		if err != nil {
			var me *methodError
			if errors.As(err, &me) {
				c.Header("Allow", me.allow)
			}
			fail(c, d.gate.log, err)
			return
		}
		rt := dec.Route
		// What the route's Rewrite writes (setOutbound). Every key of
		// dec.Remove is canonical already (the gate's tokenHeader): a
		// plain delete, as Del would do after canonicalising it again.
		for _, k := range dec.Remove {
			delete(r.Header, k)
		}
		st.idn, st.idToken, st.forward = &d.idn, dec.idToken, dec.Forward
		if r.Body != nil && r.Body != http.NoBody {
			st.bodyStore.ReadCloser = r.Body
			st.body = &st.bodyStore
			st.body.limit(c.Writer, rt.bodyDeadline)
		}
		// The request is observe's copy (its context holds st): changed
		// in place, copied again only for a route timeout's context.
		if rt.Timeout > 0 {
			ctx, cancel := context.WithCancelCause(r.Context())
			defer cancel(nil)
			st.timer = time.AfterFunc(rt.Timeout, func() { cancel(errUpstreamSlow) })
			defer st.timer.Stop()
			r = r.WithContext(ctx)
		}
		r.URL.Path, r.URL.RawPath = dec.CleanPath, ""
		r.Method = dec.Method // the method the decision checked
		if st.body != nil {
			r.Body = st.body
		}
		rt.proxy.ServeHTTP(c.Writer, r)
	}
}

// errUpstreamSlow is the cancel cause when a route's timeout passes before
// the upstream's response headers arrive.
var errUpstreamSlow = errors.New("upstream did not answer within the route's timeout")

// stopHeaderTimer stops the route timeout once response headers arrive, so
// a stream (SSE, WebSocket, a long download) is not cut afterwards.
func stopHeaderTimer(resp *http.Response) error {
	if st := stateOf(resp.Request.Context()); st != nil && st.timer != nil {
		st.timer.Stop()
	}
	return nil
}

// allowed evaluates the route's allow rule; an error in the rule denies.
func allowed(ctx context.Context, log *slog.Logger, rt *route, p *authn.Principal, h http.Header, method, clean string) bool {
	env := models.RuleEnv{Request: models.RuleRequest{Method: method, Path: clean}}
	if p != nil {
		env.User = p.Attrs
		if rt.rule.NeedsClaims() {
			env.Claims = p.Claims()
		}
	}
	if rt.rule.NeedsHeaders() {
		env.Request.Headers = make(map[string]string, len(h))
		for k, vs := range h {
			env.Request.Headers[strings.ToLower(k)] = strings.Join(vs, ", ")
		}
	}
	ok, err := rt.rule.Allows(&env)
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
		var b *clientBody
		if st := stateOf(r.Context()); st != nil {
			b = st.body
		}
		if b != nil && b.timedOut() && !errors.Is(context.Cause(r.Context()), errUpstreamSlow) {
			log.DebugContext(r.Context(), "request body timed out", "route", name, "err", err)
			w.Header().Set("Connection", "close")
			errBodyTimeout.write(w)
			return
		}
		if b != nil && b.failed.Load() {
			// The client's own body was malformed (a bad chunk size, say):
			// its fault, not the upstream's.
			log.DebugContext(r.Context(), "malformed request body", "route", name, "err", err)
			errMalformed.write(w)
			return
		}
		if errors.Is(context.Cause(r.Context()), errUpstreamSlow) {
			log.WarnContext(r.Context(), "upstream timed out", "route", name, "err", err)
			errUpstreamTimeout.write(w)
			return
		}
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

// proxyBufferSize is the copy buffer ReverseProxy would allocate itself.
const proxyBufferSize = 32 << 10

// bufferPool lends ReverseProxy its response copy buffers. Without one,
// every proxied response allocates 32 KiB: three quarters of the bytes the
// gateway allocated under load (tests/load, pprof), and so most of its GC
// work. Buffers are kept as array pointers so Put does not allocate.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([proxyBufferSize]byte) }}}
}

// Get returns a buffer of proxyBufferSize bytes.
func (b *bufferPool) Get() []byte { return b.p.Get().(*[proxyBufferSize]byte)[:] }

// Put takes a buffer back; one of another size (not ours) is dropped.
func (b *bufferPool) Put(buf []byte) {
	if len(buf) == proxyBufferSize {
		b.p.Put((*[proxyBufferSize]byte)(buf))
	}
}
