package handlers

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"maps"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gin-gonic/gin"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// introspector serves POST /auth/introspect/ (RFC 7662) to internal
// services: one call turns a token into its claims and the caller's
// mirrored user, through the same decision and caches as API calls.
type introspector struct {
	// secrets are the SHA-256 of each client's secret by client id; a
	// client whose environment variable is empty is absent (never matches).
	secrets  map[string][32]byte
	networks []netip.Prefix
	maxBody  int64
}

// newIntrospector reads introspection.clients' secrets from getenv.
func newIntrospector(cfg *models.Runtime, getenv func(string) string) *introspector {
	in := &introspector{secrets: map[string][32]byte{}, networks: cfg.IntrospectionNets, maxBody: cfg.Settings.AuthService.MaxBodyBytes}
	for _, c := range cfg.Settings.Introspection.Clients {
		if v := getenv(strings.TrimPrefix(c.Secret, models.KeyEnvPrefix)); v != "" {
			in.secrets[c.ID] = sha256.Sum256([]byte(v))
		}
	}
	return in
}

// errIntrospectClient answers a caller that is neither a listed client nor
// on a trusted network.
var errIntrospectClient = newAPIError(http.StatusUnauthorized, codeNotAuthenticated, "Introspection needs client credentials (HTTP Basic) or a trusted network.")

// allowed reports whether the request comes from an introspection client:
// HTTP Basic credentials of introspection.clients, or a TCP peer in
// introspection.trusted_networks (the peer itself: X-Forwarded-For is not
// believed here).
func (in *introspector) allowed(r *http.Request) bool {
	if id, secret, ok := r.BasicAuth(); ok {
		want, known := in.secrets[id]
		got := sha256.Sum256([]byte(secret))
		return subtle.ConstantTimeCompare(got[:], want[:]) == 1 && known
	}
	if len(in.networks) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, n := range in.networks {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// handleIntrospect answers RFC 7662: {"active": false} alone for a token
// the decision refuses (invalid, expired, revoked, its user inactive or
// unknown); the claims and the mirrored user for one it accepts; 503 when
// the auth service or provider cannot say; 401 to an unknown caller.
func handleIntrospect(d *decider, in *introspector, cr credentials) gin.HandlerFunc {
	rt := builtinRoute("introspect")
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		if !in.allowed(c.Request) {
			c.Header("WWW-Authenticate", `Basic realm="jwtgate introspection"`)
			errIntrospectClient.abort(c)
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, in.maxBody)
		token := c.PostForm("token")
		if token == "" || strings.ContainsAny(token, " \t,") {
			c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": "invalid_request", "detail": "form field token is missing or malformed", "code": codeBadRequest})
			return
		}
		h := http.Header{}
		if len(cr.types) > 0 {
			h.Set(cr.header, cr.types[0]+" "+token)
		} else {
			h.Set(cr.header, token)
		}
		dec, err := d.decide(c.Request.Context(), decisionInput{Entry: entryBuiltin, Method: http.MethodPost, Header: h, Route: rt})
		switch {
		case err == nil:
			c.JSON(http.StatusOK, introspection(dec.Principal))
		case refusesToken(err):
			c.JSON(http.StatusOK, gin.H{"active": false})
		default: // the auth service or provider cannot say: 503, never inactive
			fail(c, d.gate.log, err)
		}
	}
}

// refusesToken reports whether err is the decision's word about the token
// or its user (so the answer is {"active": false}), not an outage.
func refusesToken(err error) bool {
	for _, e := range []error{
		models.ErrTokenInvalid, models.ErrUserRejected, models.ErrUserInactive, models.ErrPermissionDenied,
		models.ErrNotAuthenticated, models.ErrNoUserSource, errAmbiguousCredential,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// introspection is the answer for an accepted token: the mirrored user's
// fields, then the RFC 7662 members from the token's claims.
func introspection(p *authn.Principal) map[string]any {
	out := make(map[string]any, len(p.Attrs)+12)
	maps.Copy(out, p.Attrs)
	claims := p.Claims()
	for _, k := range []string{"sub", "exp", "iat", "nbf", "iss", "aud", "scope", "client_id", "jti"} {
		if v, ok := claims[k]; ok {
			out[k] = v
		} else {
			delete(out, k)
		}
	}
	if _, ok := out["sub"]; !ok {
		out["sub"] = p.User.ID
	}
	if _, ok := out["client_id"]; !ok {
		if azp, ok := claims["azp"]; ok {
			out["client_id"] = azp
		}
	}
	out["token_type"] = "Bearer"
	out["active"] = true
	return out
}

// introspectorFor returns the introspection endpoint's client list, or
// nil when introspection names no client and no network (the endpoint is
// then not served at all).
func introspectorFor(cfg *models.Runtime, getenv func(string) string) *introspector {
	if len(cfg.Settings.Introspection.Clients) == 0 && len(cfg.IntrospectionNets) == 0 {
		return nil
	}
	return newIntrospector(cfg, getenv)
}
