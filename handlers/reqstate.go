package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// reqState is one request's own state, from observe to its access log
// line: the matched route and the caller the log and metrics name and,
// on the proxy path, what the route's Rewrite writes on the outbound
// request. It is also the request's context node above the request id
// (observe copies the request once with it), so the proxy path stores its
// per-request values here without a context value, a request copy or gin
// Keys of its own. Only the request's own goroutine writes it, before the
// upstream call that reads it starts.
type reqState struct {
	context.Context // the request's context, carrying its request id

	// route is the route handleProxy matched (routeName); nil: none.
	route *route
	// principal is the caller (principalOf); nil when unknown or
	// anonymous.
	principal *authn.Principal
	// caller is where the proxy path's decision keeps its principal, so
	// authenticating the caller allocates no Principal of its own.
	caller authn.Principal

	// What handleProxy decided for the outbound request (setOutbound):
	// idn writes the caller's identity headers (the decision's, with
	// idToken its signed identity token, "" when none); forward are the
	// request headers the gateway sends as its own.
	idn     *identity
	idToken string
	forward []string

	// body is the client's body on the proxy path (in bodyStore); nil when
	// the request has none.
	body      *clientBody
	bodyStore clientBody
	// timer is the route's timeout until response headers arrive
	// (stopHeaderTimer); nil when the route has none.
	timer *time.Timer
}

type reqStateKey struct{}

// Value returns the reqState itself for reqStateKey, else the parent's
// value.
func (s *reqState) Value(key any) any {
	if _, ok := key.(reqStateKey); ok {
		return s
	}
	return s.Context.Value(key)
}

// withRequestState returns ctx carrying a request's id and a fresh
// reqState, and the state.
func withRequestState(ctx context.Context, id string) (context.Context, *reqState) {
	s := &reqState{Context: models.WithRequestID(ctx, id)}
	return s, s
}

// stateOf returns the reqState in ctx, or nil.
func stateOf(ctx context.Context) *reqState {
	s, _ := ctx.Value(reqStateKey{}).(*reqState)
	return s
}

// ginState returns the request's reqState, or nil when observe did not
// run (a handler mounted without the gateway's middleware).
func ginState(c *gin.Context) *reqState {
	if c.Request == nil {
		return nil
	}
	return stateOf(c.Request.Context())
}

// setPrincipal records the caller for the access log, metrics, traces and
// the handlers after requireAuth (principalOf).
func setPrincipal(c *gin.Context, p *authn.Principal) {
	if s := ginState(c); s != nil {
		s.principal = p
		return
	}
	c.Set(principalKey, p)
}

// principalOf returns the caller setPrincipal recorded, or nil.
func principalOf(c *gin.Context) *authn.Principal {
	if s := ginState(c); s != nil && s.principal != nil {
		return s.principal
	}
	p, _ := c.Get(principalKey)
	pp, _ := p.(*authn.Principal)
	return pp
}

// principalKey is where setPrincipal records the caller when the request
// has no reqState.
const principalKey = "jwtgate.principal"

// setOutbound writes the headers handleProxy decided (the caller's
// identity, the identity token and the forwarded token), then the request
// id observe settled, on the outbound request: in the same order, with the
// same values, as an intermediate header map copied in would. Rewrite runs
// after ReverseProxy has removed the hop-by-hop headers, the ones a client
// names in Connection included, so a client cannot strip what the gateway
// adds. The forwarded token and the request id are read from the inbound
// request, which ReverseProxy leaves whole, so an anonymous request needs
// no outbound headers of its own.
func setOutbound(out http.Header, in *http.Request) {
	if s := stateOf(in.Context()); s != nil {
		if s.idn != nil && s.principal != nil && s.route != nil {
			s.idn.write(out, s.principal, s.route, s.idToken)
		}
		for _, k := range s.forward {
			if v := in.Header[k]; len(v) > 0 {
				out[k] = v
			}
		}
	}
	if v := in.Header[headerRequestID]; len(v) > 0 {
		out[headerRequestID] = v
	}
}
