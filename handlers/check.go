package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"jwtgate/models"
)

// Forward-auth answers. A proxy's auth hook understands only 2xx, 401 and
// 403 (nginx turns anything else into a 500), so every refusal that is not
// about credentials is a 403.
var (
	errCheckUntrusted = newAPIError(http.StatusForbidden, codePermissionDenied, "Forward-auth is answered only to trusted proxies.")
	errCheckNoRoute   = newAPIError(http.StatusForbidden, codePermissionDenied, "No route covers this path.")
	errCheckMethod    = newAPIError(http.StatusForbidden, codePermissionDenied, "Method not allowed on this route.")
	errCheckBoth      = newAPIError(http.StatusForbidden, codePermissionDenied,
		"Both X-Original-* and X-Forwarded-* forward-auth headers are present: a proxy sets one family, so the other came from the client. "+
			"Have the proxy clear the other family, or set forward_auth.headers to nginx or traefik.")
	errCheckNoURI = map[string]*apiError{
		models.ForwardAuthAuto:    newAPIError(http.StatusForbidden, codePermissionDenied, "X-Original-URI or X-Forwarded-Uri is required."),
		models.ForwardAuthNginx:   newAPIError(http.StatusForbidden, codePermissionDenied, "X-Original-URI is required (forward_auth.headers: nginx)."),
		models.ForwardAuthTraefik: newAPIError(http.StatusForbidden, codePermissionDenied, "X-Forwarded-Uri is required (forward_auth.headers: traefik)."),
	}
)

// fwdFamily is a set of headers one kind of proxy sets to describe the
// original request to /auth/check.
type fwdFamily uint8

const (
	fwdNginx   fwdFamily = 1 << iota // X-Original-URI, X-Original-Method
	fwdTraefik                       // X-Forwarded-Uri, -Method, -Host, -Proto
)

// fwdHeader is one header of a family: its canonical name (as Go's server
// stores a '-' spelling in any case) and its folded form (lower case, '_'
// and '.' as '-'), which every alias spelling shares.
type fwdHeader struct {
	canon, fold string
	family      fwdFamily
}

var fwdHeaders = []fwdHeader{
	{"X-Original-Uri", "x-original-uri", fwdNginx},
	{"X-Original-Method", "x-original-method", fwdNginx},
	{"X-Forwarded-Uri", "x-forwarded-uri", fwdTraefik},
	{"X-Forwarded-Method", "x-forwarded-method", fwdTraefik},
	{"X-Forwarded-Host", "x-forwarded-host", fwdTraefik},
	{"X-Forwarded-Proto", "x-forwarded-proto", fwdTraefik},
}

// fwdReads returns the families forward_auth.headers lets the gateway read.
func fwdReads(mode string) fwdFamily {
	switch mode {
	case models.ForwardAuthNginx:
		return fwdNginx
	case models.ForwardAuthTraefik:
		return fwdTraefik
	}
	return fwdNginx | fwdTraefik
}

// handleCheck is forward-auth for nginx auth_request, Traefik forwardAuth
// and Envoy ext_authz: it turns the original request, described by the
// header family forward_auth.headers names (see fwdDescribe), into the
// decision's input, exactly as the proxy would decide it, and answers
// exactly 200 (Envoy Gateway refuses other 2xx) with the identity headers,
// 401 or 403. Only trusted proxies may ask: anyone else could describe any
// request they like.
func handleCheck(d *decider, mode string) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if !d.trusted.fromTrusted(r) {
			errCheckUntrusted.abort(c)
			return
		}
		t, apiErr := fwdDescribe(r.Header, mode)
		if apiErr != nil {
			apiErr.abort(c)
			return
		}
		method := t.method
		if method == "" {
			// nginx's subrequest and Envoy's ext_authz use the original
			// method as the check's own.
			method = strings.ToUpper(r.Method)
		}
		p, apiErr := fwdPath(t)
		if apiErr != nil {
			apiErr.abort(c)
			return
		}
		dec, err := d.decide(r.Context(), decisionInput{
			Entry: entryCheck, Method: method, Path: p, Header: fwdStripIgnored(r.Header, mode), Trusted: true, Client: c,
		})
		if dec.Principal != nil {
			setPrincipal(c, dec.Principal) // the access log names the caller, a refused one too
		}
		if err != nil {
			if apiErr := checkError(err); apiErr != nil {
				apiErr.abort(c)
				return
			}
			fail(c, d.gate.log, err)
			return
		}
		h := c.Writer.Header()
		for k, v := range dec.Identity {
			h[k] = v
		}
		c.Header("Cache-Control", "no-store")
		c.Status(http.StatusOK)
	}
}

// checkError translates the decision's refusals that the proxy answers
// with 400, 404 or 405 into forward-auth's 403s; nil for the rest, which
// fail answers as for the proxy.
func checkError(err error) *apiError {
	var pe *pathError
	switch {
	case errors.As(err, &pe):
		return errCheckUnusualPath(pe.why)
	case errors.Is(err, errNoRoute):
		return errCheckNoRoute
	case errors.As(err, new(*methodError)):
		return errCheckMethod
	case errors.Is(err, errHeaderSpellings):
		return errCheckHeaderSpellings
	}
	return nil
}

// fwdTarget is the original request as the proxy described it.
type fwdTarget struct {
	method string // upper case; "" when the proxy sent no method header
	uri    string // the raw request target
	header string // the header uri came from, for error details
}

// fwdDescribe reads the original request from the headers of the family
// mode allows. Every header of a family read must appear at most once and
// in its '-' spelling (any case): a second copy, or an alias such as
// X_Original_URI or X.Forwarded.Uri (which a WSGI app or a lenient proxy
// reads as the same header), is refused, so a client can never add a
// value next to the proxy's. In auto mode a request carrying headers of
// both families (an alias counts) is refused. Families the mode does not
// read are ignored.
func fwdDescribe(h http.Header, mode string) (fwdTarget, *apiError) {
	reads := fwdReads(mode)
	var present fwdFamily
	var twice string // a header of a family read, seen twice or respelled
	for name, vals := range h {
		for _, fh := range fwdHeaders {
			if !fwdSameFolded(name, fh.fold) {
				continue
			}
			present |= fh.family
			if reads&fh.family != 0 && (name != fh.canon || len(vals) != 1) {
				twice = fh.canon
			}
			break
		}
	}
	if present&reads == fwdNginx|fwdTraefik {
		return fwdTarget{}, errCheckBoth
	}
	if twice != "" {
		return fwdTarget{}, newAPIError(http.StatusForbidden, codePermissionDenied,
			fmt.Sprintf("%s must appear exactly once, spelled with '-'.", fwdDisplay(twice)))
	}
	var uriName, methodName string
	switch present & reads {
	case fwdNginx:
		uriName, methodName = "X-Original-Uri", "X-Original-Method"
	case fwdTraefik:
		uriName, methodName = "X-Forwarded-Uri", "X-Forwarded-Method"
	}
	t := fwdTarget{header: fwdDisplay(uriName)}
	if v := h[uriName]; uriName != "" && len(v) == 1 {
		t.uri = v[0]
	}
	if t.uri == "" {
		return fwdTarget{}, errCheckNoURI[mode]
	}
	if v, ok := h[methodName]; ok && methodName != "" {
		if !fwdMethodOK(v[0]) {
			return fwdTarget{}, newAPIError(http.StatusForbidden, codePermissionDenied,
				methodName+" must be an HTTP method (a token such as GET).")
		}
		// Methods are compared in upper case: an upstream that reads
		// "delete" as DELETE (Django does) must meet the DELETE rule.
		t.method = strings.ToUpper(v[0])
	}
	return t, nil
}

// fwdMaxMethod bounds a method name; real ones are a few letters.
const fwdMaxMethod = 32

// fwdMethodOK reports whether m is a non-empty HTTP token (RFC 9110 §5.6.2).
func fwdMethodOK(m string) bool {
	if m == "" || len(m) > fwdMaxMethod {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// fwdPath parses the described request target and returns its path. Only
// origin form (/path?query) is accepted: a proxy describes the request it
// routes by its path, and anything else (absolute form, "*", a fragment,
// spaces or control characters) is a target another stack could resolve
// differently.
func fwdPath(t fwdTarget) (string, *apiError) {
	bad := func() *apiError {
		return newAPIError(http.StatusForbidden, codePermissionDenied,
			t.header+" must be a request path (/path?query) without a fragment, spaces or control characters.")
	}
	if !strings.HasPrefix(t.uri, "/") || strings.IndexByte(t.uri, '#') >= 0 {
		return "", bad()
	}
	for i := 0; i < len(t.uri); i++ {
		if c := t.uri[i]; c <= ' ' || c == 0x7f {
			return "", bad()
		}
	}
	u, err := url.ParseRequestURI(t.uri)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return "", bad()
	}
	return u.Path, nil
}

// fwdStripIgnored returns h without the headers of the families mode does
// not read (in any spelling), so an allow rule reading request.headers
// never sees a forward-auth header the decision ignored. h is copied only
// when there is something to remove.
func fwdStripIgnored(h http.Header, mode string) http.Header {
	reads := fwdReads(mode)
	var out http.Header
	for name := range h {
		for _, fh := range fwdHeaders {
			if reads&fh.family == 0 && fwdSameFolded(name, fh.fold) {
				if out == nil {
					out = h.Clone()
				}
				delete(out, name)
				break
			}
		}
	}
	if out == nil {
		return h
	}
	return out
}

// fwdDisplay spells a canonical header name as the documentation does.
func fwdDisplay(canon string) string {
	if canon == "X-Original-Uri" {
		return "X-Original-URI"
	}
	return canon
}

// fwdSameFolded reports whether a and b name one header once folded
// (any case, '_' and '.' as '-'), without allocating.
func fwdSameFolded(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if fwdFold(a[i]) != fwdFold(b[i]) {
			return false
		}
	}
	return true
}

func fwdFold(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	case c == '_' || c == '.':
		return '-'
	}
	return c
}
