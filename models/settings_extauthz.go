package models

import (
	"net"
	"strings"
)

// ExtAuthz configures Envoy's external authorization over gRPC
// (envoy.service.auth.v3.Authorization/Check).
type ExtAuthz struct {
	// GRPCListen is the address the gRPC Authorization and health
	// services listen on; empty (the default) turns them off.
	GRPCListen string `yaml:"grpc_listen"`
}

// validateExtAuthz checks ext_authz.
func (s Settings) validateExtAuthz(p *problemList) {
	if a := s.ExtAuthz.GRPCListen; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.add("ext_authz.grpc_listen", "must be host:port (e.g. \"127.0.0.1:9191\") or empty (off), got %q", a)
		} else if (a == s.Listen || a == s.MetricsListen) && !strings.HasSuffix(a, ":0") {
			p.add("ext_authz.grpc_listen", "must differ from listen and metrics_listen, got %q", a)
		}
	}
}

// Tracing configures OpenTelemetry traces; the exporter itself is
// configured by the standard OTEL_* environment variables.
type Tracing struct {
	// Enabled turns traces on or off; unset (the default) means on when
	// OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) is set.
	Enabled *bool `yaml:"enabled"`
}
