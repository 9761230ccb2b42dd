package models_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"jwtgate/models"
)

func TestBrowserSettings(t *testing.T) {
	const route = "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n"
	tests := []struct{ name, yaml, wantErr string }{
		{"defaults", "", ""},
		{"on, local http", "browser: {enabled: true, allowed_origins: [\"http://127.0.0.1:5173\"], refresh_cookie: {secure: false}}\n", ""},
		{"origin with path", "browser: {allowed_origins: [\"https://app.example.com/\"]}\n", "browser.allowed_origins[0]"},
		{"origin wildcard", "browser: {allowed_origins: [\"*\"]}\n", "browser.allowed_origins[0]"},
		{"origin upper case", "browser: {allowed_origins: [\"https://App.example.com\"]}\n", "browser.allowed_origins[0]"},
		{"origin without scheme", "browser: {allowed_origins: [\"app.example.com\"]}\n", "browser.allowed_origins[0]"},
		{"origin with user", "browser: {allowed_origins: [\"https://u@app.example.com\"]}\n", "browser.allowed_origins[0]"},
		{"same_site unknown", "browser: {refresh_cookie: {same_site: Lax}}\n", "browser.refresh_cookie.same_site"},
		{"same_site none needs secure", "browser: {refresh_cookie: {same_site: none, secure: false}}\n", "browser.refresh_cookie.same_site"},
		{"cookie name with ;", "browser: {refresh_cookie: {name: \"a;b\"}}\n", "browser.refresh_cookie.name"},
		{"cookie name empty", "browser: {csrf_cookie: \"\"}\n", "browser.csrf_cookie"},
		{"__Host- needs path /", "browser: {refresh_cookie: {name: __Host-rt}}\n", "browser.refresh_cookie.name"},
		{"__Host- ok", "browser: {refresh_cookie: {name: __Host-rt, path: /}}\n", ""},
		{"path relative", "browser: {refresh_cookie: {path: auth}}\n", "browser.refresh_cookie.path"},
		{"csrf header", "browser: {csrf_header: \"X CSRF\"}\n", "browser.csrf_header"},
		{"same names", "browser: {enabled: true, csrf_cookie: refresh_token}\n", "browser"},
		{"unknown key", "browser: {allowed_origin: []}\n", "browser"},
		{"password_change_path", "auth_service: {password_change_path: pw}\n", "auth_service.password_change_path"},
		{"password_reset_url", "auth_service: {password_reset_url: \"/reset\"}\n", "auth_service.password_reset_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yaml+route)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

// The repository's settings.yaml documents every browser key with its default.
func TestBrowserRepoSettings(t *testing.T) {
	b, err := os.ReadFile("../settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"\nbrowser:\n", "  allowed_origins:", "  refresh_cookie:", "    same_site:", "  access_cookie:",
		"  access_cookie_name:", "  csrf_cookie:", "  csrf_header:", "  password_change_path:", "  password_reset_url:"} {
		if !strings.Contains(string(b), k) {
			t.Errorf("settings.yaml does not document %q", strings.TrimSpace(k))
		}
	}
	s, err := load(t, string(b))
	if err != nil {
		t.Fatal(err)
	}
	d := models.DefaultSettings()
	if len(s.Browser.AllowedOrigins) == 0 {
		s.Browser.AllowedOrigins = nil // [] in the file
	}
	if !reflect.DeepEqual(s.Browser, d.Browser) {
		t.Fatalf("settings.yaml browser %+v, default %+v", s.Browser, d.Browser)
	}
	if s.Browser.Enabled || s.AuthService.PasswordChangePath != d.AuthService.PasswordChangePath || s.AuthService.PasswordResetURL != "" {
		t.Fatalf("settings.yaml differs from the defaults: %+v %+v", s.Browser, s.AuthService)
	}
}

func TestBrowserWarnings(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"off", "browser: {refresh_cookie: {secure: false}}\n", nil},
		{"secure", "browser: {enabled: true}\n", nil},
		{"plain http", "browser: {enabled: true, refresh_cookie: {secure: false}}\n", []string{"browser.refresh_cookie.secure"}},
		{"access cookie without revocation", "browser: {enabled: true, access_cookie: true}\nauth: {revoke_on_logout: false}\n", []string{"auth.revoke_on_logout"}},
		{"access cookie with revocation", "browser: {enabled: true, access_cookie: true}\nauth: {revoke_on_logout: true}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := load(t, tt.yaml+"routes:\n  - path: /api/\n    upstream: http://127.0.0.1:9\n")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range s.Warnings() {
				if strings.Contains(w, "browser.") {
					got = append(got, w)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("warnings %q, want ones naming %q", got, tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Fatalf("warning %q does not name %q", got[i], w)
				}
			}
		})
	}
}
