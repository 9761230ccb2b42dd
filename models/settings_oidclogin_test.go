package models

import (
	"strings"
	"testing"
)

func TestOIDCLoginSettingsProblems(t *testing.T) {
	base := `
browser: {enabled: true, access_cookie: true}
oidc: {discovery_url: "https://sso.example/.well-known/openid-configuration", client_id: gw, client_secret: "env:OIDC_SECRET", redirect_url: "https://gw.example/auth/oidc/callback"}
`
	tests := []struct{ name, yaml, key string }{
		{"valid", base, ""},
		{"off by default", ``, ""},
		{"client_id alone needs the rest", `oidc: {client_id: gw}`, "oidc.discovery_url"},
		{"no redirect_url", strings.Replace(base, `redirect_url: "https://gw.example/auth/oidc/callback"`, `redirect_url: ""`, 1), "oidc.redirect_url"},
		{"redirect_url elsewhere", strings.Replace(base, "/auth/oidc/callback", "/cb", 1), "oidc.redirect_url"},
		{"redirect_url with a query", strings.Replace(base, "/auth/oidc/callback", "/auth/oidc/callback?x=1", 1), "oidc.redirect_url"},
		{"secret in the file", strings.Replace(base, `"env:OIDC_SECRET"`, `"s3cret"`, 1), "oidc.client_secret"},
		{"no openid scope", strings.Replace(base, `client_id: gw,`, `client_id: gw, scopes: [email],`, 1), "oidc.scopes"},
		{"browser mode off", strings.Replace(base, "enabled: true", "enabled: false", 1), "browser.enabled"},
		{"no access cookie", strings.Replace(base, "access_cookie: true", "access_cookie: false", 1), "browser.access_cookie"},
		{"bad post-logout URL", strings.Replace(base, `client_id: gw,`, `client_id: gw, post_logout_redirect_url: "/bye",`, 1), "oidc.post_logout_redirect_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := tt.yaml
			_, probs := ParseAndValidate([]byte(y), func(string) string { return "" })
			found := false
			for _, p := range probs {
				if p.Key == tt.key {
					found = true
				} else if tt.name != "client_id alone needs the rest" && (strings.HasPrefix(p.Key, "oidc") || strings.HasPrefix(p.Key, "browser")) {
					t.Errorf("unexpected problem %v", p)
				}
			}
			if tt.key != "" && !found {
				t.Fatalf("no problem at %s; got %v", tt.key, probs)
			}
		})
	}
}
