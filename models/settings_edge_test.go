package models_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"jwtgate/models"
)

func load(t *testing.T, yaml string) (models.Settings, error) {
	t.Helper()
	return models.LoadSettings(strings.NewReader(yaml), func(string) string { return "" })
}

func TestEdgeSettingsDefaults(t *testing.T) {
	s, err := load(t, "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n")
	if err != nil {
		t.Fatal(err)
	}
	rt := settingsCompile(t, s)
	if len(rt.TrustedNets) != 0 {
		t.Errorf("trusted_proxies default %v, want none", rt.TrustedNets)
	}
	if rt.Throttle.LoginEvery != 0 || rt.Throttle.LoginBurst != 5 {
		t.Errorf("login throttle default every %s burst %d, want off and 5", rt.Throttle.LoginEvery, rt.Throttle.LoginBurst)
	}
	it := s.IdentityToken
	if it.Enabled || it.Algorithm != "ES256" || it.Lifetime != time.Minute || it.KeyFile == "" {
		t.Errorf("identity_token defaults %+v", it)
	}
	r := rt.Routes[0]
	if !r.ForwardsToken() || r.Name != "api" || r.Auth != models.AuthRequired {
		t.Errorf("route defaults: forward_token %v name %q auth %q", r.ForwardsToken(), r.Name, r.Auth)
	}
}

func TestEdgeSettingsParsed(t *testing.T) {
	s, err := load(t, `
trusted_proxies: ["10.0.0.0/8", "127.0.0.1", "fd00::/64"]
throttle: {login_rate: "3/hour", login_burst: 2}
identity_token: {enabled: true, algorithm: RS256, key_file: k.pem, lifetime: 30s}
routes:
  - path: /api/billing/
    name: billing
    upstream: http://127.0.0.1:9
    forward_token: false
    identity_headers: {fields: [services, tenant_id]}
`)
	if err != nil {
		t.Fatal(err)
	}
	rt := settingsCompile(t, s)
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("fd00::/64")}
	if len(rt.TrustedNets) != len(want) {
		t.Fatalf("trusted nets %v, want %v", rt.TrustedNets, want)
	}
	for i := range want {
		if rt.TrustedNets[i] != want[i] {
			t.Errorf("trusted_proxies[%d] = %v, want %v", i, rt.TrustedNets[i], want[i])
		}
	}
	if rt.Throttle.LoginEvery != 20*time.Minute {
		t.Errorf("3/hour parsed as %s", rt.Throttle.LoginEvery)
	}
	if s.Routes[0].ForwardsToken() {
		t.Error("forward_token: false ignored")
	}
}

func TestEdgeSettingsErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"bad cidr", `trusted_proxies: ["10.0.0.0/33", "nonsense"]`,
			[]string{"trusted_proxies[0]", "trusted_proxies[1]", `"nonsense"`}},
		{"bad rate", `throttle: {login_rate: "10/fortnight"}`, []string{"throttle.login_rate", "fortnight"}},
		{"zero burst", `throttle: {login_burst: 0}`, []string{"throttle.login_burst"}},
		{"bad algorithm", `identity_token: {enabled: true, algorithm: HS256}`, []string{"identity_token.algorithm", "HS256"}},
		{"no lifetime", `identity_token: {enabled: true, lifetime: 0s}`, []string{"identity_token.lifetime"}},
		{"allow does not compile", `
routes:
  - path: /api/billing/
    name: billing
    upstream: http://127.0.0.1:9
    allow: '"billing" in user.services &&'`,
			[]string{"routes[0].allow", `route "billing"`, `"\"billing\" in user.services &&"`}},
		{"allow not a bool", `
routes:
  - path: /api/reports/
    upstream: http://127.0.0.1:9
    allow: 'request.method'`,
			[]string{"routes[0].allow", `route "api/reports"`, `"request.method"`}},
		{"reserved field", `
routes:
  - path: /api/
    upstream: http://127.0.0.1:9
    identity_headers: {fields: [email, "bad field"]}`,
			[]string{"routes[0].identity_headers.fields[0]", "routes[0].identity_headers.fields[1]"}},
		{"duplicate names", `
routes:
  - {path: /a/, name: x, upstream: "http://127.0.0.1:9"}
  - {path: /b/, name: x, upstream: "http://127.0.0.1:9"}`,
			[]string{"routes[1].name", `"x"`}},
		{"forward_token not a bool", `
routes:
  - {path: /a/, upstream: "http://127.0.0.1:9", forward_token: maybe}`,
			[]string{"forward_token", "maybe"}},
		{"unknown route key", `
routes:
  - {path: /a/, upstream: "http://127.0.0.1:9", identity_header: {fields: [x]}}`,
			[]string{`unknown key "identity_header"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yaml)
			if err == nil {
				t.Fatal("loaded without error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}
