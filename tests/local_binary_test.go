package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryLocalKeys: `jwtgate check` and `jwtgate serve` refuse a local
// key that cannot be loaded, naming its key and never printing the secret;
// check accepts a secret given through the environment.
func TestBinaryLocalKeys(t *testing.T) {
	bin := gatewayBinary(t)
	dir := t.TempDir()
	secret := "a-secret-of-at-least-thirty-two-bytes-0123"
	tests := []struct {
		name, cmd, yaml string
		env             []string
		exit            int
		want            string
	}{
		{"check: unset env", "check", "auth:\n  verify: local\n  local:\n    algorithms: [HS256]\n    keys: ['env:JWTGATE_T_SECRET']\n", nil, 1, "auth.local.keys[0]: environment variable JWTGATE_T_SECRET is empty or unset"},
		{"serve: missing PEM", "serve", "auth:\n  verify: hybrid\n  local:\n    keys: ['" + filepath.Join(dir, "nope.pem") + "']\n", nil, 1, "auth.local.keys[0]: read PEM file"},
		{"check: JWKS unreachable", "check", "auth:\n  verify: local\n  local:\n    jwks_url: 'http://127.0.0.1:1/jwks.json'\n", nil, 1, "auth.local.jwks_url: JWKS http://127.0.0.1:1/jwks.json not fetched yet"},
		{"check: secret from env", "check", "auth_service:\n  url: 'http://127.0.0.1:1'\nauth:\n  verify: local\n  local:\n    algorithms: [HS256]\n    keys: ['env:JWTGATE_T_SECRET']\n", []string{"JWTGATE_T_SECRET=" + secret}, 1, "auth.local keys (verify: local): ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "settings.yaml")
			if err := os.WriteFile(cfg, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), bin, tt.cmd, "--config", cfg)
			cmd.Env = append(os.Environ(), append(tt.env, "JWTGATE_LISTEN="+freePort(t), "JWTGATE_DATABASE_DSN="+filepath.Join(t.TempDir(), "g.db"))...)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tt.exit {
				t.Fatalf("exit %d, want %d; output %s", code, tt.exit, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output %q does not contain %q", out, tt.want)
			}
			if strings.Contains(string(out), secret) {
				t.Fatal("the secret appears in the output")
			}
		})
	}
}
