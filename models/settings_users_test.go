package models

import (
	"strings"
	"testing"
)

// TestUsersSettingsUserEndpoint: with several issuers exactly one names the
// auth service (user_endpoint: true); the error names the key.
func TestUsersSettingsUserEndpoint(t *testing.T) {
	two := func(a, b string) string {
		return "auth:\n  verify: local\n  local:\n    algorithms: [RS256, HS256]\n    issuers:\n" +
			"      - {issuer: 'https://a', jwks_url: 'https://a/jwks.json'" + a + "}\n" +
			"      - {issuer: legacy, keys: ['env:LEGACY']" + b + "}\n"
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"none says true", two("", ""), "auth.local.issuers: with several issuers, exactly one must set user_endpoint: true"},
		{"both false", two(", user_endpoint: false", ", user_endpoint: false"), "auth.local.issuers: with several issuers"},
		{"both true", two(", user_endpoint: true", ", user_endpoint: true"), "auth.local.issuers[1].user_endpoint: only one issuer"},
		{"only issuer false", "auth:\n  local:\n    issuers:\n      - {issuer: a, jwks_url: 'http://a/jwks', user_endpoint: false}\n", "auth.local.issuers[0].user_endpoint: must be true"},
		{"not a bool", two(", user_endpoint: maybe", ""), "user_endpoint"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSettings(strings.NewReader(tt.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to contain %q", err, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		name, yaml string
		issuers    int
		issuer     string
	}{
		{"first", two(", user_endpoint: true", ""), 2, "https://a"},
		{"second", two("", ", user_endpoint: true"), 2, "legacy"},
		{"remote mode: one namespace", strings.Replace(two(", user_endpoint: true", ""), "verify: local", "verify: remote", 1), 0, ""},
		{"one issuer, unset", "auth:\n  verify: local\n  local:\n    issuers:\n      - {issuer: a, jwks_url: 'http://a/jwks'}\n", 0, "a"},
		{"no issuers list", "auth:\n  verify: hybrid\n  local:\n    issuer: b\n    jwks_url: 'http://b/jwks'\n", 0, "b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadSettings(strings.NewReader(tt.yaml), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(s.UserIssuers()); n != tt.issuers || s.UserEndpointIssuer() != tt.issuer {
				t.Fatalf("UserIssuers %v, UserEndpointIssuer %q; want %d issuers and %q", s.UserIssuers(), s.UserEndpointIssuer(), tt.issuers, tt.issuer)
			}
		})
	}
}
