package models

import (
	"fmt"
	"net"
	"net/netip"
)

// metricsListenWarning warns when metrics_listen is not a loopback
// address: /metrics counts refusals by reason (revoked, expired, ...), so
// whoever reaches it learns why a token was refused.
func metricsListenWarning(addr string) string {
	if addr == "" {
		return ""
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "" // Validate reports it
	}
	if host == "localhost" {
		return ""
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return ""
	}
	return fmt.Sprintf("metrics_listen %q is not a loopback address: /metrics tells whoever reaches it why tokens "+
		"were refused (jwtgate_auth_refusals_total{reason}); keep it on a private network or firewall it", addr)
}
