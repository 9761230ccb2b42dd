package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// entry says how a request reached the decision. The decision is the same
// for every entry; the entry only says which steps the request has already
// been through (a built-in route is matched by the router, not the route
// table) and who will read the identity headers.
type entry uint8

const (
	// entryProxy is a request for a configured route, forwarded upstream.
	entryProxy entry = iota
	// entryCheck is forward-auth (/auth/check): a trusted proxy describes
	// the request it is about to forward.
	entryCheck
	// entryBuiltin is one of the gateway's own endpoints that needs a
	// caller (/auth/users/...): its route is given, nothing is forwarded.
	//
	// Entries later issues add (gRPC ext_authz, token introspection) are
	// entryCheck-like: they turn their request into a decisionInput with
	// the described method, path and headers, and the decision into their
	// own answer, as handleCheck does.
	entryBuiltin
)

// decisionInput is a request as the decision sees it, whatever way it came
// in.
type decisionInput struct {
	Entry entry
	// Method is the request's method, in any case: the decision compares
	// it in upper case (decision.Method).
	Method string
	// Path is the percent-decoded request path as received, not cleaned.
	// Ignored for entryBuiltin.
	Path string
	// Header are the request's headers. The decision cleans them in place
	// (headerRules.clean, and dropForwarded unless Trusted): what the rule
	// saw is then what goes upstream.
	Header http.Header
	// Trusted is set when the request came straight from a trusted proxy,
	// whose forwarded metadata is believed.
	Trusted bool
	// Route is the built-in route of an entryBuiltin request.
	Route *route
	// Host is the request's Host: the gateway's own origin for browser
	// mode's Origin check.
	Host string
	// Client gives the client's address (a trusted proxy's forwarded
	// one), read only when a rate limit needs it; nil: none. A
	// *gin.Context is one, without allocating.
	Client clientAddr
	// Caller is where the decision keeps the authenticated caller
	// (decision.Principal then points to it); nil: a new Principal.
	Caller *authn.Principal
}

// decision is what the gateway decided about an allowed request.
type decision struct {
	// Route is the route that covers the request. It is set on a refusal
	// too, once the route is known (for the access log and metrics).
	Route *route
	// Principal is the caller; nil when anonymous (an optional route, or
	// auth: none).
	Principal *authn.Principal
	// Method is the method the route's methods and the allow rule were
	// checked against: upper case, as an upstream that folds case (Django)
	// reads "delete" as DELETE. The proxy forwards this method.
	Method string
	// CleanPath is the request path after cleaning (models.CleanPath): the
	// path the route matched, the rule saw and the upstream gets.
	CleanPath string
	// Identity are the identity headers to send to the asking proxy for
	// forward-auth. Empty when anonymous; nil for a built-in route, and
	// for the proxy, which writes the same headers straight into the
	// outbound request (identity.write, with idToken).
	Identity http.Header
	// idToken is the signed identity token of an authenticated proxied
	// request ("" when the identity token is off).
	idToken string
	// Remove are request headers that must not travel upstream (the token
	// header of a route that does not forward it).
	Remove []string
	// Forward are request headers the gateway sends upstream as its own,
	// so a Connection header cannot strip them (the token header of a
	// route that forwards it).
	Forward []string
	// AltToken is the token that authenticated the request when it came
	// from outside the token header (the access cookie, a WebSocket
	// subprotocol); "" otherwise.
	AltToken string
}

// Refusals the decision returns before authentication; errorFor maps them
// to the proxy's answers, forward-auth to its own (checkError).
var errNoRoute = errors.New("no route covers this path")

// pathError refuses a path a stack behind the gateway could read as another
// (routeTable.resolve).
type pathError struct{ why string }

func (e *pathError) Error() string { return "request path refused: " + e.why }

// methodError refuses a method the route does not allow.
type methodError struct {
	method string
	allow  string // the route's Allow header
}

func (e *methodError) Error() string { return fmt.Sprintf("method %q not allowed", e.method) }

// decider is the one access decision every entry point calls: resolve and
// clean the path, match the route, check the method, apply the header
// rules, authenticate, evaluate the allow rule and build the identity
// headers. Entry points only turn their request into a decisionInput and
// the decision (or its error) into their answer.
type decider struct {
	table   *routeTable
	gate    gate
	idn     identity
	trusted trustedProxies
	// browser is browser mode (nil: off). WebSocket subprotocol tokens are
	// read either way.
	browser *browser
}

// decide decides in. On error the returned decision may carry the Route
// (once matched); the error is one errorFor maps (or, for forward-auth,
// checkError), wrapping what authentication returned.
func (d *decider) decide(ctx context.Context, in decisionInput) (decision, error) {
	dec := decision{Method: strings.ToUpper(in.Method)}
	rt := in.Route
	if in.Entry != entryBuiltin {
		clean, matched, why := d.table.resolve(in.Path)
		dec.CleanPath = clean
		if why != "" {
			return dec, &pathError{why: why}
		}
		dec.Route, rt = matched, matched
		if rt == nil {
			return dec, errNoRoute
		}
		if !rt.allowsMethod(dec.Method) {
			return dec, &methodError{method: in.Method, allow: rt.allow}
		}
		if !in.Trusted {
			dropForwarded(in.Header)
			d.gate.dropProxyHeader(in.Header)
		}
	}
	dec.Route = rt
	var alt string
	if in.Entry != entryCheck {
		// Cookies and subprotocols are a browser's credentials: a proxy
		// asking /auth/check describes requests with headers.
		_, headerPresent, _ := d.gate.cr.extract(in.Header)
		var err error
		alt, err = d.browser.credential(in.Header, headerPresent, in.Host, dec.Method, rt.Auth != models.AuthNone)
		if err != nil {
			return dec, err
		}
	}
	p, err := d.gate.admit(ctx, rt, in.Header, dec.Method, dec.CleanPath, in.Entry != entryBuiltin, alt, in.Trusted && in.Entry != entryBuiltin, in.Caller)
	dec.Principal = p // also on a refusal by the allow rule, for the access log
	if err != nil {
		return dec, err
	}
	if p != nil {
		dec.AltToken = alt
	}
	if rt.limit != nil {
		if err := rt.limit.take(p, in.Client); err != nil {
			return dec, err
		}
	}
	if in.Entry == entryBuiltin {
		return dec, nil
	}
	if p != nil { // anonymous: no identity headers (a nil map reads as empty)
		tok, err := d.idn.signedToken(p, rt)
		if err != nil {
			return dec, err
		}
		if in.Entry == entryProxy {
			dec.idToken = tok
		} else {
			dec.Identity = http.Header{}
			d.idn.write(dec.Identity, p, rt, tok)
		}
	}
	if rt.forwardsToken {
		dec.Forward = d.gate.tokenHeader
	} else {
		dec.Remove = d.gate.tokenHeader
	}
	return dec, nil
}

// builtinRoute is a gateway endpoint that needs an authenticated caller
// (/auth/users/...): no rule, no upstream.
func builtinRoute(name string) *route {
	return &route{CompiledRoute: models.CompiledRoute{Route: models.Route{Name: name, Auth: models.AuthRequired}}}
}
