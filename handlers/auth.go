package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/gin-gonic/gin"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// authenticator is what the HTTP layer needs from authn.
type authenticator interface {
	Authenticate(ctx context.Context, raw string) (authn.Principal, error)
}

// credentials reads the token from the configured header.
type credentials struct {
	header string
	types  []string // empty: the header holds the bare token
	canon  string   // header's key in an http.Header; "" until newCredentials
}

// newCredentials reads the token from header, with the given schemes
// (none: the header holds the bare token). The header's key is worked out
// once here, not on every request.
func newCredentials(header string, types []string) credentials {
	return credentials{header: header, types: types, canon: textproto.CanonicalMIMEHeaderKey(header)}
}

// key is the token header's key in an http.Header.
func (cr credentials) key() string {
	if cr.canon != "" {
		return cr.canon
	}
	return textproto.CanonicalMIMEHeaderKey(cr.header)
}

// errAmbiguousCredential means the request does not carry exactly one
// credential the gateway and every upstream read alike: the token header
// twice (in any case), in another spelling ('_' or '.' for '-', which a
// WSGI or CGI upstream reads as the same header), or one header holding a
// comma-joined list. Checking one and forwarding the other would let the
// upstream read a token the gateway never checked, so it is 400.
var errAmbiguousCredential = errors.New("the request carries more than one credential, or one under another spelling")

// errCredentialsBadRequest answers errAmbiguousCredential (the contract's
// bad_request).
var errCredentialsBadRequest = newAPIError(http.StatusBadRequest, "bad_request",
	"The request carries more than one credential (the token header twice or under another spelling, or a list of credentials in one header).")

// extract returns the raw token. present is false when the request carries
// no credential for us (no header, an empty one, or another scheme such as
// Basic, which may be meant for the upstream); err is set when it carries
// a malformed one (one of our schemes not followed by exactly one space
// and a token: "Bearer", "Bearer\tx", "Bearer  x") or an ambiguous one
// (errAmbiguousCredential).
func (cr credentials) extract(h http.Header) (raw string, present bool, err error) {
	vals := h[cr.key()]
	if len(vals) > 1 || cr.aliased(h) {
		return "", true, errAmbiguousCredential
	}
	if len(vals) == 0 {
		return "", false, nil
	}
	v := strings.Trim(vals[0], " \t") // what a server trims (RFC 9110 §5.5)
	if v == "" {
		return "", false, nil
	}
	if len(v) > models.MaxTokenBytes+64 {
		return "", true, &models.TokenError{Reason: models.ReasonTooLarge, Detail: "credential header too long"}
	}
	if len(cr.types) == 0 {
		if strings.IndexByte(v, ',') >= 0 {
			return "", true, errAmbiguousCredential
		}
		return v, true, nil
	}
	if cr.listsOurs(v) {
		return "", true, errAmbiguousCredential
	}
	i := strings.IndexAny(v, " \t")
	scheme := v
	if i >= 0 {
		scheme = v[:i]
	}
	if !cr.ours(scheme) {
		return "", false, nil // another scheme: not ours
	}
	if i < 0 || v[i] != ' ' || hasSpaceOrTab(v[i+1:]) {
		return "", true, &models.TokenError{Reason: models.ReasonMalformed, Detail: "header must contain two space-delimited values"}
	}
	return v[i+1:], true, nil
}

// hasSpaceOrTab reports whether s holds a space or a tab: ContainsAny(s,
// " \t") without its byte-at-a-time scan, which cost a few thousand
// instructions per request on a token.
func hasSpaceOrTab(s string) bool {
	return strings.IndexByte(s, ' ') >= 0 || strings.IndexByte(s, '\t') >= 0
}

// ours reports whether scheme is one of the configured types (any case).
func (cr credentials) ours(scheme string) bool {
	for _, t := range cr.types {
		if strings.EqualFold(scheme, t) {
			return true
		}
	}
	return false
}

// listsOurs reports whether v is a comma-joined list with an element in
// one of our schemes ("Bearer a, Bearer b", "Basic x, Bearer y"). A list
// of another scheme's parameters (Digest) is not ours.
func (cr credentials) listsOurs(v string) bool {
	if strings.IndexByte(v, ',') < 0 {
		return false
	}
	for el := range strings.SplitSeq(v, ",") {
		el = strings.Trim(el, " \t")
		if i := strings.IndexAny(el, " \t"); i >= 0 {
			el = el[:i]
		}
		if cr.ours(el) {
			return true
		}
	}
	return false
}

// aliased reports whether h holds the token header under another
// spelling ('_' or '.' for '-'), which a WSGI or CGI upstream reads as the
// same header.
func (cr credentials) aliased(h http.Header) bool {
	if strings.IndexByte(cr.header, '-') < 0 && strings.IndexByte(cr.header, '_') < 0 && strings.IndexByte(cr.header, '.') < 0 {
		return false // nothing to respell: every case spelling is one key
	}
	canon := cr.key()
	for name := range h {
		if name != canon && fwdSameFolded(name, cr.header) {
			return true
		}
	}
	return false
}

// requireAuth is the entry point of a built-in route that needs a caller
// (/auth/users/...): the decision authenticates the request, or it is
// aborted with 401/403/503.
func requireAuth(d *decider, rt *route) gin.HandlerFunc {
	return func(c *gin.Context) {
		dec, err := d.decide(c.Request.Context(), decisionInput{
			Entry: entryBuiltin, Method: c.Request.Method, Header: c.Request.Header, Route: rt, Host: c.Request.Host,
		})
		if err != nil {
			fail(c, d.gate.log, err)
			return
		}
		setPrincipal(c, dec.Principal)
		c.Set(altTokenKey, dec.AltToken)
		c.Next()
	}
}

// rawToken returns the request's token after requireAuth accepted it.
func rawToken(c *gin.Context, cr credentials) string {
	raw, _, _ := cr.extract(c.Request.Header)
	if raw == "" {
		raw = c.GetString(altTokenKey) // the access cookie
	}
	return raw
}

// altTokenKey holds decision.AltToken for a built-in route.
const altTokenKey = "jwtgate.alttoken"
