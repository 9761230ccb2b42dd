package handlers

import (
	"net/http"
	"strings"

	"jwtgate/models"
)

// withProxyHeader returns g reading auth.proxy_header (name; "" is off):
// a trusted proxy's copy of the caller's bare access token
// (X-Forwarded-Access-Token, as oauth2-proxy sends it). The header becomes
// one the gateway owns, so only its dash spelling ever passes, and it
// travels upstream only where the token header does.
func withProxyHeader(g gate, name string) gate {
	if name == "" {
		return g
	}
	g.proxyHeader = canonicalHeader(name)
	g.headers.owned[normalizeHeaderName(name)] = true
	g.tokenHeader = append(append([]string(nil), g.tokenHeader...), g.proxyHeader)
	return g
}

// dropProxyHeader removes the proxy header in every spelling (case, '_'
// and '.' for '-') from a request that did not come from a trusted proxy:
// neither the gateway nor an upstream may read a client's own copy.
func (g gate) dropProxyHeader(h http.Header) {
	if g.proxyHeader == "" {
		return
	}
	for k := range h {
		if fwdSameFolded(k, g.proxyHeader) {
			delete(h, k)
		}
	}
}

// proxyToken reads the proxy header of a trusted proxy's request that
// carries no token header: present is false when it is absent or empty;
// twice, in another spelling as well, or a list is errAmbiguousCredential.
func (g gate) proxyToken(h http.Header) (raw string, present bool, err error) {
	vals := h[g.proxyHeader]
	for k := range h {
		if k != g.proxyHeader && fwdSameFolded(k, g.proxyHeader) {
			return "", true, errAmbiguousCredential
		}
	}
	if len(vals) > 1 {
		return "", true, errAmbiguousCredential
	}
	if len(vals) == 0 {
		return "", false, nil
	}
	v := strings.Trim(vals[0], " \t")
	if v == "" {
		return "", false, nil
	}
	if len(v) > models.MaxTokenBytes+64 {
		return "", true, &models.TokenError{Reason: models.ReasonTooLarge, Detail: "credential header too long"}
	}
	if strings.ContainsAny(v, ", \t") {
		return "", true, errAmbiguousCredential
	}
	return v, true, nil
}
