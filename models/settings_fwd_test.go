package models_test

import (
	"os"
	"strings"
	"testing"

	"jwtgate/models"
)

func TestFwdSettingsForwardAuthHeaders(t *testing.T) {
	const route = "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n"
	tests := []struct {
		name, yaml, want, wantErr string
	}{
		{"default", "", models.ForwardAuthAuto, ""},
		{"auto", "forward_auth: {headers: auto}\n", models.ForwardAuthAuto, ""},
		{"nginx", "forward_auth: {headers: nginx}\n", models.ForwardAuthNginx, ""},
		{"traefik", "forward_auth: {headers: traefik}\n", models.ForwardAuthTraefik, ""},
		{"unknown value", "forward_auth: {headers: envoy}\n", "", `forward_auth.headers: must be auto, nginx or traefik, got "envoy"`},
		{"case matters", "forward_auth: {headers: NGINX}\n", "", "forward_auth.headers"},
		{"empty", "forward_auth: {headers: \"\"}\n", "", "forward_auth.headers"},
		{"unknown key", "forward_auth: {header: nginx}\n", "", "forward_auth"},
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
			if s.ForwardAuth.Headers != tt.want {
				t.Fatalf("forward_auth.headers = %q, want %q", s.ForwardAuth.Headers, tt.want)
			}
		})
	}
}

// The repository's settings.yaml documents forward_auth.headers with its default.
func TestFwdRepoSettingsForwardAuth(t *testing.T) {
	b, err := os.ReadFile("../settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nforward_auth:\n") {
		t.Fatal("settings.yaml does not document forward_auth")
	}
	s, err := load(t, string(b))
	if err != nil {
		t.Fatal(err)
	}
	if s.ForwardAuth.Headers != models.DefaultSettings().ForwardAuth.Headers || s.ForwardAuth.Headers != models.ForwardAuthAuto {
		t.Fatalf("settings.yaml forward_auth.headers %q, default %q", s.ForwardAuth.Headers, models.DefaultSettings().ForwardAuth.Headers)
	}
}
