package cli

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func TestOIDCLoginCheckFetchesDiscovery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := "http://" + r.Host
		switch r.URL.Path {
		case "/good/.well-known/openid-configuration":
			_, _ = w.Write([]byte(`{"issuer":"` + base + `/good","jwks_uri":"` + base + `/good/jwks","authorization_endpoint":"` + base + `/good/auth","token_endpoint":"` + base + `/good/token"}`))
		case "/half/.well-known/openid-configuration":
			_, _ = w.Write([]byte(`{"issuer":"` + base + `/half","jwks_uri":"` + base + `/half/jwks"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	for name, tt := range map[string]struct{ doc, want string }{
		"no authorization endpoint": {srv.URL + "/half/.well-known/openid-configuration", "names no authorization_endpoint or token_endpoint"},
		"document missing":          {srv.URL + "/gone/.well-known/openid-configuration", "oidc.discovery_url: discovery " + srv.URL + "/gone/.well-known/openid-configuration: status 404"},
		"secret not in environment": {srv.URL + "/good/.well-known/openid-configuration", "oidc.client_secret: environment variable OIDC_SECRET is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := writeConfig(t, `
listen: "127.0.0.1:0"
auth_service: {url: "http://127.0.0.1:1", timeout: 1s}
database: {dsn: "`+filepath.Join(t.TempDir(), "m.db")+`"}
browser: {enabled: true, access_cookie: true}
oidc: {discovery_url: "`+tt.doc+`", client_id: gw, client_secret: "env:OIDC_SECRET", redirect_url: "https://gw.example/auth/oidc/callback"}
`)
			out, _, err := runCLI(t, "check", "--config", cfg)
			if !errors.Is(err, ErrFailed) || !strings.Contains(out, tt.want) {
				t.Fatalf("check: err %v, output lacks %q:\n%s", err, tt.want, out)
			}
		})
	}
}
