package tests

import (
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/handlers"
	"jwtgate/models"
)

// movingDiscovery is an OpenID provider's discovery document on loopback
// whose jwks_uri, issuer and availability a test changes.
type movingDiscovery struct {
	mu     sync.Mutex
	jwks   string // path of the JWKS the document names
	issuer string // "" : the server's URL
	down   bool
	authz  string // path of the authorization endpoint
}

func (m *movingDiscovery) set(f func(m *movingDiscovery)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

// startMovingDiscovery serves the document and one JWKS per key, at
// /jwks-<kid>.
func startMovingDiscovery(t *testing.T, keys map[string]*rsa.PrivateKey) (*httptest.Server, *movingDiscovery) {
	t.Helper()
	m := &movingDiscovery{jwks: "/jwks-a", authz: "/auth-1"}
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		iss := m.issuer
		if iss == "" {
			iss = srv.URL
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss, "jwks_uri": srv.URL + m.jwks, "authorization_endpoint": srv.URL + m.authz,
			"token_endpoint": srv.URL + "/token", "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	for kid, k := range keys {
		mux.HandleFunc("/jwks-"+kid, func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{tokensJWK(kid, &k.PublicKey, nil)}})
		})
	}
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, m
}

// within polls cond every 50 ms until it holds, failing after d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDiscoveryRefreshFollowsTheDocument: with verify: local through
// auth.local.discovery_url, the gateway refetches the document every
// jwks_refresh_interval and follows a jwks_uri that moves (tokens under the
// new key set verify, the old set's are refused) without a restart or a
// reload; a document that cannot be fetched keeps the running keys and is
// logged at most once per interval; a document naming another issuer is
// refused and logged.
func TestDiscoveryRefreshFollowsTheDocument(t *testing.T) {
	keyA, _, _ := rsaKeyPEM(t)
	keyB, _, _ := rsaKeyPEM(t)
	srv, doc := startMovingDiscovery(t, map[string]*rsa.PrivateKey{"a": keyA, "b": keyB})
	const interval = 100 * time.Millisecond
	up := startUpstream(t)
	gw := startGateway(t, `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
auth:
  verify: local
  local: {discovery_url: "`+srv.URL+`/.well-known/openid-configuration", jwks_refresh_interval: 100ms}
users: {source: claims}
routes:
  - {path: /api/, upstream: "%UPSTREAM%"}
`, "http://127.0.0.1:1", up.URL, nil)
	sign := func(kid string, k *rsa.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"sub": "alice", "iss": srv.URL, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tokA, tokB := sign("a", keyA), sign("b", keyB)
	status := func(tok string) int { return get(t, gw.URL+"/api/x", tok).Status }
	if a, b := status(tokA), status(tokB); a != http.StatusOK || b != http.StatusUnauthorized {
		t.Fatalf("before the move: key a %d (want 200), key b %d (want 401)", a, b)
	}

	doc.set(func(m *movingDiscovery) { m.jwks = "/jwks-b" })
	within(t, 10*time.Second, "a token under the moved JWKS verifies", func() bool { return status(tokB) == http.StatusOK })
	if s := status(tokA); s != http.StatusUnauthorized {
		t.Fatalf("a token under the old JWKS: %d, want 401", s)
	}
	if l := gw.Logs.String(); !strings.Contains(l, "discovery document changed") || !strings.Contains(l, "jwks-b") {
		t.Fatalf("no log line says what changed:\n%s", l)
	}

	doc.set(func(m *movingDiscovery) { m.down = true })
	start := time.Now()
	within(t, 10*time.Second, "the failed fetch is logged", func() bool { return strings.Contains(gw.Logs.String(), "discovery refresh failed") })
	time.Sleep(10 * interval)
	fails := strings.Count(gw.Logs.String(), "discovery refresh failed")
	if most := int(time.Since(start)/interval) + 1; fails > most {
		t.Fatalf("%d failure lines in %s: more than one per interval", fails, time.Since(start))
	}
	if s := status(tokB); s != http.StatusOK {
		t.Fatalf("document down: a token under the running keys got %d", s)
	}

	doc.set(func(m *movingDiscovery) { m.down, m.issuer, m.jwks = false, "http://other.example", "/jwks-a" })
	within(t, 10*time.Second, "the issuer change is refused", func() bool { return strings.Contains(gw.Logs.String(), "names another issuer") })
	if a, b := status(tokA), status(tokB); a != http.StatusUnauthorized || b != http.StatusOK {
		t.Fatalf("after a refused issuer change: key a %d (want 401), key b %d (want 200)", a, b)
	}
}

// TestDiscoveryRefreshFollowsTheLoginProvider: the browser login's
// document (oidc.discovery_url) is refetched too; a moved
// authorization_endpoint is where the next login goes, without a restart.
func TestDiscoveryRefreshFollowsTheLoginProvider(t *testing.T) {
	keyA, _, _ := rsaKeyPEM(t)
	srv, doc := startMovingDiscovery(t, map[string]*rsa.PrivateKey{"a": keyA})
	disc := srv.URL + "/.well-known/openid-configuration"
	yaml := `
listen: "127.0.0.1:0"
auth_service: {url: "http://127.0.0.1:1", timeout: 2s}
database: {driver: sqlite, dsn: "` + filepath.Join(t.TempDir(), "jwtgate.db") + `"}
auth:
  verify: local
  local: {discovery_url: "` + disc + `", jwks_refresh_interval: 100ms}
users: {source: claims}
browser: {enabled: true, access_cookie: true, refresh_cookie: {secure: false}}
oidc: {discovery_url: "` + disc + `", client_id: gw, client_secret: "env:SECRET", redirect_url: "http://127.0.0.1:9/auth/oidc/callback"}
`
	env := func(k string) string {
		if k == "SECRET" {
			return "s"
		}
		return ""
	}
	s, err := models.LoadSettings(strings.NewReader(yaml), env)
	if err != nil {
		t.Fatal(err)
	}
	g, err := handlers.NewGateway(t.Context(), settingsRuntime(t, s), slog.New(slog.DiscardHandler), handlers.Options{Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(g.Handler)
	t.Cleanup(func() {
		gw.Close()
		_ = g.Close()
	})
	loginGoesTo := func() string {
		r := send(t, http.DefaultClient, gw.URL+"/auth/oidc/login?next=/")
		loc, _, _ := strings.Cut(r.Header.Get("Location"), "?")
		return loc
	}
	if l := loginGoesTo(); l != srv.URL+"/auth-1" {
		t.Fatalf("login redirects to %q, want the document's authorization_endpoint", l)
	}
	doc.set(func(m *movingDiscovery) { m.authz = "/auth-2" })
	within(t, 10*time.Second, "the login follows the moved authorization_endpoint", func() bool { return loginGoesTo() == srv.URL+"/auth-2" })
}
