package models_test

import (
	"strings"
	"testing"
)

func TestExtauthzSettingsGRPCListen(t *testing.T) {
	const route = "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n"
	tests := []struct{ name, yaml, want, wantErr string }{
		{"default off", "", "", ""},
		{"address", "ext_authz: {grpc_listen: \"127.0.0.1:9191\"}\n", "127.0.0.1:9191", ""},
		{"no port", "ext_authz: {grpc_listen: \"127.0.0.1\"}\n", "", "ext_authz.grpc_listen"},
		{"same as listen", "listen: \"127.0.0.1:8001\"\next_authz: {grpc_listen: \"127.0.0.1:8001\"}\n", "", "ext_authz.grpc_listen"},
		{"same as metrics_listen", "ext_authz: {grpc_listen: \"127.0.0.1:9090\"}\n", "", "ext_authz.grpc_listen"},
		{"unknown key", "ext_authz: {listen: \"127.0.0.1:9191\"}\n", "", "ext_authz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := load(t, tt.yaml+route)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.ExtAuthz.GRPCListen != tt.want {
				t.Fatalf("ext_authz.grpc_listen = %q, want %q", s.ExtAuthz.GRPCListen, tt.want)
			}
		})
	}
}

func TestTracingSettingsEnabled(t *testing.T) {
	const route = "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n"
	yes, no := true, false
	tests := []struct {
		name, yaml string
		want       *bool
		wantErr    string
	}{
		{"unset", "", nil, ""},
		{"empty section", "tracing:\n", nil, ""},
		{"true", "tracing: {enabled: true}\n", &yes, ""},
		{"false", "tracing: {enabled: false}\n", &no, ""},
		{"not a bool", "tracing: {enabled: sometimes}\n", nil, "tracing.enabled"},
		{"unknown key", "tracing: {endpoint: x}\n", nil, "tracing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := load(t, tt.yaml+route)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := s.Tracing.Enabled
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Fatalf("tracing.enabled = %v, want %v", got, tt.want)
			}
		})
	}
}
