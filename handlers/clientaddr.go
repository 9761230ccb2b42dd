package handlers

import (
	"net"
	"net/http"
	"net/netip"
)

// trustedProxies are the peers whose forwarded metadata (X-Forwarded-*,
// X-Real-IP, /auth/check's X-Forwarded-Uri) the gateway believes.
type trustedProxies []netip.Prefix

// peer returns the TCP peer's address; the zero Addr when it cannot be read.
func peer(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// contains reports whether a is inside one of the trusted prefixes.
func (t trustedProxies) contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// fromTrusted reports whether the request came straight from a trusted proxy.
func (t trustedProxies) fromTrusted(r *http.Request) bool {
	return len(t) > 0 && t.contains(peer(r))
}

// strings returns the prefixes in the form gin.SetTrustedProxies takes.
func (t trustedProxies) strings() []string {
	out := make([]string, len(t))
	for i, p := range t {
		out[i] = p.String()
	}
	return out
}
