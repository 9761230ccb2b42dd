package models

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestLocalSettingsErrorsNameTheKey: every bad auth.local value is reported
// with its key, whatever the verify mode.
func TestLocalSettingsErrorsNameTheKey(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no algorithms", "auth:\n  local:\n    algorithms: []\n", "auth.local.algorithms"},
		{"unknown algorithm", "auth:\n  local:\n    algorithms: [RS256, none]\n", "auth.local.algorithms[1]"},
		{"lower-case algorithm", "auth:\n  local:\n    algorithms: [rs256]\n", "auth.local.algorithms[0]"},
		{"refresh interval", "auth:\n  local:\n    jwks_refresh_interval: 0s\n", "auth.local.jwks_refresh_interval"},
		{"refetch interval", "auth:\n  local:\n    jwks_refetch_interval: -1s\n", "auth.local.jwks_refetch_interval"},
		{"jwks url", "auth:\n  local:\n    jwks_url: ftp://x\n", "auth.local.jwks_url"},
		{"empty key", "auth:\n  local:\n    keys: ['']\n", "auth.local.keys[0]"},
		{"bad env name", "auth:\n  local:\n    keys: ['env:1X']\n", "auth.local.keys[0]"},
		{"inline PEM", "auth:\n  local:\n    keys: ['-----BEGIN PUBLIC KEY-----']\n", "auth.local.keys[0]"},
		{"jwks and keys", "auth:\n  local:\n    jwks_url: http://a/jwks\n    keys: [a.pem]\n", "auth.local.keys: set either"},
		{"local without keys", "auth:\n  verify: hybrid\n", "auth.local: verify: hybrid needs"},
		{"issuers and top-level jwks", "auth:\n  local:\n    jwks_url: http://a/jwks\n    issuers:\n      - {issuer: a, jwks_url: 'http://a/jwks'}\n", "auth.local.jwks_url: must be empty when auth.local.issuers"},
		{"issuers and top-level issuer", "auth:\n  local:\n    issuer: a\n    issuers:\n      - {issuer: a, jwks_url: 'http://a/jwks'}\n", "auth.local.issuer: must be empty"},
		{"issuer missing", "auth:\n  local:\n    issuers:\n      - {jwks_url: 'http://a/jwks'}\n", "auth.local.issuers[0].issuer"},
		{"duplicate issuer", "auth:\n  local:\n    issuers:\n      - {issuer: a, jwks_url: 'http://a/jwks'}\n      - {issuer: a, keys: [a.pem]}\n", "auth.local.issuers[1].issuer"},
		{"issuer without keys", "auth:\n  local:\n    issuers:\n      - {issuer: a}\n", "auth.local.issuers[0]: needs either"},
		{"issuer with both", "auth:\n  local:\n    issuers:\n      - {issuer: a, jwks_url: 'http://a/jwks', keys: [a.pem]}\n", "auth.local.issuers[0]: needs either"},
		{"issuer jwks url", "auth:\n  local:\n    issuers:\n      - {issuer: a, jwks_url: 'nowhere'}\n", "auth.local.issuers[0].jwks_url"},
		{"issuer key", "auth:\n  local:\n    issuers:\n      - {issuer: a, keys: ['env:']}\n", "auth.local.issuers[0].keys[0]"},
		{"unknown issuer key", "auth:\n  local:\n    issuers:\n      - {issuer: a, jwks: 'http://a'}\n", `unknown key "jwks"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSettings(strings.NewReader(tt.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v does not contain %q", err, tt.want)
			}
		})
	}
}

// TestLocalSettingsValid: the shapes the README shows load.
func TestLocalSettingsValid(t *testing.T) {
	for name, doc := range map[string]string{
		"jwks":    "auth:\n  verify: local\n  local:\n    jwks_url: http://127.0.0.1:8000/.well-known/jwks.json\n    issuer: https://auth\n    audience: api\n    leeway: 5s\n",
		"hmac":    "auth:\n  verify: hybrid\n  local:\n    keys: ['env:JWT_SECRET']\n    algorithms: [HS256]\n",
		"issuers": "auth:\n  verify: local\n  local:\n    algorithms: [RS256, ES256, HS256]\n    audience: api\n    issuers:\n      - issuer: https://a\n        jwks_url: https://a/jwks.json\n        user_endpoint: true\n      - issuer: legacy\n        keys: [/etc/jwtgate/legacy.pem, 'env:LEGACY_SECRET']\n        audience: old\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadSettings(strings.NewReader(doc), noEnv); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRepoSettingsLocalDefaults: settings.yaml documents auth.local with the
// embedded defaults.
func TestRepoSettingsLocalDefaults(t *testing.T) {
	b, err := os.ReadFile("../settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSettings(strings.NewReader(string(b)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	l, d := s.Auth.Local, DefaultSettings().Auth.Local
	if l.JWKSRefreshInterval != d.JWKSRefreshInterval || l.JWKSRefetchInterval != d.JWKSRefetchInterval ||
		l.JWKSRefetchInterval != 30*time.Second || len(l.Issuers) != 0 || strings.Join(l.Algorithms, ",") != "RS256" {
		t.Fatalf("settings.yaml auth.local %+v, defaults %+v", l, d)
	}
}
