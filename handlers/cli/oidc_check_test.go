package cli

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func TestOIDCCheckFetchesDiscoveryDocuments(t *testing.T) {
	var docs int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good/.well-known/openid-configuration":
			docs++
			_, _ = w.Write([]byte(`{"issuer":"http://` + r.Host + `/good","jwks_uri":"http://` + r.Host + `/good/jwks"}`))
		case "/moved/.well-known/openid-configuration":
			docs++
			_, _ = w.Write([]byte(`{"issuer":"https://elsewhere","jwks_uri":"http://` + r.Host + `/good/jwks"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	for name, tt := range map[string]struct{ issuers, want string }{
		"issuer mismatch":   {`[{issuer: "` + srv.URL + `/moved", discovery_url: "` + srv.URL + `/moved/.well-known/openid-configuration"}]`, `is "` + srv.URL + `/moved" but its discovery document says "https://elsewhere"`},
		"document missing":  {`[{discovery_url: "` + srv.URL + `/gone/.well-known/openid-configuration"}]`, "auth.local.issuers[0].discovery_url: discovery " + srv.URL + "/gone/.well-known/openid-configuration: status 404"},
		"second of two bad": {`[{discovery_url: "` + srv.URL + `/good/.well-known/openid-configuration"}, {discovery_url: "http://127.0.0.1:1/x"}]`, "auth.local.issuers[1].discovery_url"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := writeConfig(t, `
listen: "127.0.0.1:0"
auth_service: {url: "http://127.0.0.1:1", timeout: 1s}
database: {dsn: "`+filepath.Join(t.TempDir(), "m.db")+`"}
auth: {verify: local, local: {issuers: `+tt.issuers+`}}
users: {source: claims}
`)
			out, _, err := runCLI(t, "check", "--config", cfg)
			if !errors.Is(err, ErrFailed) || !strings.Contains(out, tt.want) {
				t.Fatalf("check: err %v, output lacks %q:\n%s", err, tt.want, out)
			}
		})
	}
	if docs < 2 {
		t.Fatalf("check fetched %d discovery documents", docs)
	}
}
