package tests

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"jwtgate/models"
	"jwtgate/tests/djangoauth"
)

// reloadJWKS is a gateway in front of the real Django; %VERIFY% is its
// verification section.
const reloadJWKS = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
%VERIFY%
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
`

// reloadVerifyLocal is verify: local (or hybrid) against the JWKS at url.
func reloadVerifyLocal(mode, url string) string {
	return "auth:\n  verify: " + mode + "\n  local:\n    jwks_url: \"" + url + "\"\n    algorithms: [RS256]\n"
}

// reloadServeJWKS serves body as a JWKS on addr until the test ends.
func reloadServeJWKS(t *testing.T, addr string, body []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("JWKS server: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
}

// A reload into verify: local or hybrid whose JWKS cannot be fetched (its
// server down) or holds no usable key is refused: the running settings
// keep serving, the error names auth.local.jwks_url and
// jwtgate_config_reloads_total{result="error"} counts it. Once the JWKS
// server is up, the same reload applies.
func TestReloadRefusedWhileJWKSDown(t *testing.T) {
	_, keyPEM, _ := rsaKeyPEM(t)
	dj := djangoauth.Start(t, djangoauth.Options{Algorithm: "RS256", SigningKeyPEM: keyPEM, Kid: "k1"})
	dj.CreateUser(t, "alice@example.com", "alice-pw", nil, false)
	r := get(t, dj.URL+pathJWKS, "")
	if r.Status != http.StatusOK {
		t.Fatalf("Django's JWKS: %d %s", r.Status, r.Body)
	}
	djangoJWKS := r.Body

	tests := []struct {
		name, from, to string // verify sections; %JWKS% is the new JWKS server's URL
		empty          bool   // the new JWKS server, when up first, serves no key
	}{
		{"remote to local", "", reloadVerifyLocal("local", "%JWKS%"), false},
		{"remote to hybrid", "", reloadVerifyLocal("hybrid", "%JWKS%"), false},
		{"local to local with another JWKS", reloadVerifyLocal("local", dj.URL+pathJWKS), reloadVerifyLocal("local", "%JWKS%"), false},
		{"remote to local with an empty JWKS", "", reloadVerifyLocal("local", "%JWKS%"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t)
			gw := startGateway(t, fill(reloadJWKS, "VERIFY", tt.from), dj.URL, up.URL, nil)
			running := gw.GW.Local
			jwksAddr := freePort(t) // nothing listens there yet
			next := fill(reloadJWKS, "VERIFY", fill(tt.to, "JWKS", "http://"+jwksAddr+pathJWKS))
			next = strings.NewReplacer("%AUTH%", dj.URL, "%UPSTREAM%", up.URL, "%DB%", gw.DBDSN).Replace(next)
			reload := func() error {
				return gw.GW.Reload(t.Context(), func() (models.Settings, error) {
					return models.LoadSettings(strings.NewReader(next), func(string) string { return "" })
				})
			}
			// serves checks a token Django issued now gets through.
			serves := func(when string) {
				t.Helper()
				access, _ := tokens(t, login(t, dj.URL, "alice@example.com", "alice-pw"))
				if r := get(t, gw.URL+"/api/x", access); r.Status != http.StatusOK {
					t.Fatalf("%s: %d %s", when, r.Status, r.Body)
				}
			}
			serves("before the reload")
			if tt.empty {
				reloadServeJWKS(t, jwksAddr, []byte(`{"keys": []}`))
			}

			err := reload()
			if err == nil || !strings.Contains(err.Error(), "auth.local.jwks_url") {
				t.Fatalf("reload with the JWKS unusable: %v, want a refusal naming auth.local.jwks_url", err)
			}
			if !strings.Contains(gw.Logs.String(), "settings reload refused") || !strings.Contains(gw.Logs.String(), "auth.local.jwks_url") {
				t.Fatalf("the refusal was not logged with the key:\n%s", gw.Logs.String())
			}
			if gw.GW.Local != running {
				t.Fatal("the refused reload replaced the running verifier")
			}
			serves("after the refused reload")
			if r := get(t, gw.URL+"/readyz", ""); r.Status != http.StatusOK {
				t.Fatalf("/readyz %d after the refused reload: %s", r.Status, r.Body)
			}
			m := scrape(t, miscMetricsURL(t, gw))
			if m.get("jwtgate_config_reloads_total", "result=error") != 1 || m.get("jwtgate_config_reloads_total", "result=ok") != 0 {
				t.Fatalf("reloads counted: ok %v, error %v", m.get("jwtgate_config_reloads_total", "result=ok"), m.get("jwtgate_config_reloads_total", "result=error"))
			}
			if tt.empty {
				return
			}

			reloadServeJWKS(t, jwksAddr, djangoJWKS)
			if err := reload(); err != nil {
				t.Fatalf("reload with the JWKS up: %v", err)
			}
			if gw.GW.Local == nil || gw.GW.Local == running {
				t.Fatal("the reload did not put the new verifier in place")
			}
			if err := gw.GW.Local.Ready(); err != nil {
				t.Fatalf("new verifier not ready: %v", err)
			}
			serves("after the reload")
		})
	}
}
