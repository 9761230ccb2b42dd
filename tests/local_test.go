package tests

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/remote"
	"jwtgate/tests/djangoauth"
)

// Paths of the Django test service, as the counting proxy sees them.
const (
	pathVerify = "/auth/token/verify/"
	pathJWKS   = "/.well-known/jwks.json"
)

// authProxy is a reverse proxy in front of the auth service that counts
// requests per path. The gateway reaches the auth service only through it
// (auth_service.url and jwks_url both point here), so its counts are every
// call home. Switching its target stands in for restarting the service on
// the same address.
type authProxy struct {
	*httptest.Server
	target atomic.Pointer[url.URL]
	mu     sync.Mutex
	calls  map[string]int
}

func startAuthProxy(t testing.TB, target string) *authProxy {
	t.Helper()
	p := &authProxy{calls: map[string]int{}}
	p.point(t, target)
	rp := &httputil.ReverseProxy{
		Rewrite:      func(pr *httputil.ProxyRequest) { pr.SetURL(p.target.Load()) },
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		if r.Header.Get("X-Request-Id") != remote.ProbeRequestID { // readiness probes are not calls home
			p.calls[r.URL.Path]++
		}
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *authProxy) point(t testing.TB, target string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p.target.Store(u)
}

func (p *authProxy) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[path]
}

// rsaKeyPEM generates an RSA key and returns it with its PKCS#8 PEM (for
// Django's SIGNING_KEY) and its public key's PEM (what anyone may know).
func rsaKeyPEM(t testing.TB) (*rsa.PrivateKey, string, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
}

// resign takes a token the service issued, edits its claims (nil deletes)
// and signs it again with key: the forgeries and edge cases below are real
// tokens except for the one thing each test changes.
func resign(t testing.TB, token string, m jwt.SigningMethod, key any, kid string, mod map[string]any) string {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, c); err != nil {
		t.Fatalf("parse issued token: %v", err)
	}
	for k, v := range mod {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// tamper swaps the claims of token for edited ones, keeping its signature.
func tamper(t testing.TB, token string, mod map[string]any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for k, v := range mod {
		c[k] = v
	}
	b, _ = json.Marshal(c)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

// algNone is token with an alg: none header and no signature.
func algNone(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
}

// localConfig is baseConfig with verify: MODE against the proxy's JWKS.
func localConfig(mode, extra string) string {
	return strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 5s\nauth:\n  verify: "+mode+"\n  local:\n"+extra, 1)
}

const (
	djIssuer   = "https://auth.jwtgate.test"
	djAudience = "jwtgate-api"
)

// TestLocalDjangoRS256 runs verify: local against the real Django SimpleJWT
// service signing RS256 with a key this test generated, its JWKS behind a
// counting proxy: valid tokens pass with zero calls to the verify endpoint;
// forged and unfit ones are refused; a restart with a new key and kid is
// picked up without restarting the gateway.
func TestLocalDjangoRS256(t *testing.T) {
	key, keyPEM, pubPEM := rsaKeyPEM(t)
	dj := djangoauth.Start(t, djangoauth.Options{Algorithm: "RS256", SigningKeyPEM: keyPEM, Issuer: djIssuer, Audience: djAudience, Kid: "k1"})
	alice := dj.CreateUser(t, "alice@example.com", "alice-pw", []string{"billing"}, false)
	proxy := startAuthProxy(t, dj.URL)
	up := startUpstream(t)
	cfg := localConfig("local", `    jwks_url: "%AUTH%`+pathJWKS+`"
    algorithms: [RS256]
    issuer: "`+djIssuer+`"
    audience: "`+djAudience+`"
`)
	gw := startGateway(t, cfg, proxy.URL, up.URL, nil)
	if err := gw.GW.Local.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	access, refresh := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	for i := range 3 {
		r := get(t, gw.URL+"/api/billing/invoices", access)
		if r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != strconv.FormatInt(alice, 10) {
			t.Fatalf("call %d with a valid token: %d %s", i, r.Status, r.Body)
		}
	}
	if r := get(t, gw.URL+"/auth/users/me/", access); r.Status != http.StatusOK || r.json(t)["email"] != "alice@example.com" {
		t.Fatalf("me: %d %s", r.Status, r.Body)
	}

	past := time.Now().Add(-time.Minute).Unix()
	refused := []struct{ name, token string }{
		{"tampered claims", tamper(t, access, map[string]any{"user_id": "999"})},
		{"tampered signature", access[:len(access)-4] + "AAAA"},
		{"expired (signed with the real key)", resign(t, access, jwt.SigningMethodRS256, key, "k1", map[string]any{"exp": past, "iat": past - 300})},
		{"refresh token", refresh},
		{"wrong issuer (real key)", resign(t, access, jwt.SigningMethodRS256, key, "k1", map[string]any{"iss": "https://evil.test"})},
		{"no issuer (real key)", resign(t, access, jwt.SigningMethodRS256, key, "k1", map[string]any{"iss": nil})},
		{"wrong audience (real key)", resign(t, access, jwt.SigningMethodRS256, key, "k1", map[string]any{"aud": "other-api"})},
		{"alg none", algNone(t, access)},
		{"HS256 signed with the public key PEM", resign(t, access, jwt.SigningMethodHS256, pubPEM, "k1", nil)},
		{"RS384 (not allowed, real key)", resign(t, access, jwt.SigningMethodRS384, key, "k1", nil)},
		{"garbage", "abc.def.ghi"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, get(t, gw.URL+"/api/billing/invoices", tt.token), http.StatusUnauthorized, "token_not_valid")
		})
	}
	// A gateway that also accepts HS256 (another issuer uses it) still
	// refuses HS256 against this issuer's RSA key: the key-type check.
	mixed := startGateway(t, strings.Replace(cfg, "algorithms: [RS256]", "algorithms: [RS256, HS256]", 1), proxy.URL, up.URL, nil)
	wantError(t, get(t, mixed.URL+"/api/billing/invoices", resign(t, access, jwt.SigningMethodHS256, pubPEM, "k1", nil)), http.StatusUnauthorized, "token_not_valid")
	wantError(t, get(t, mixed.URL+"/api/billing/invoices", resign(t, access, jwt.SigningMethodHS256, pubPEM, "", nil)), http.StatusUnauthorized, "token_not_valid")
	if r := get(t, mixed.URL+"/api/billing/invoices", access); r.Status != http.StatusOK {
		t.Fatalf("mixed gateway, valid token: %d %s", r.Status, r.Body)
	}

	// The proxy is the gateway's only way home: it saw the login and the user fetch.
	if proxy.count("/auth/token/") != 1 || proxy.count("/auth/users/"+strconv.FormatInt(alice, 10)+"/") == 0 {
		t.Fatalf("the counting proxy is not on the gateway's path: %v", proxy.calls)
	}
	if n := proxy.count(pathVerify); n != 0 {
		t.Fatalf("%d calls to the verify endpoint in local mode, want 0", n)
	}
	if n := proxy.count(pathJWKS); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2 (one per gateway start)", n)
	}

	// Key rotation: the service comes back (same address) with a new key
	// under a new kid. The gateway, not restarted, fetches the JWKS again
	// when it first sees the new kid.
	_, key2PEM, _ := rsaKeyPEM(t)
	dj2 := djangoauth.Start(t, djangoauth.Options{Algorithm: "RS256", SigningKeyPEM: key2PEM, Issuer: djIssuer, Audience: djAudience, Kid: "k2"})
	dj2.CreateUser(t, "alice@example.com", "alice-pw", []string{"billing"}, false)
	proxy.point(t, dj2.URL)
	access2, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	if r := get(t, gw.URL+"/api/billing/invoices", access2); r.Status != http.StatusOK {
		t.Fatalf("token under the new kid: %d %s", r.Status, r.Body)
	}
	if n := proxy.count(pathJWKS); n != 3 {
		t.Fatalf("%d JWKS fetches after rotation, want 3", n)
	}
	// Old-key tokens: their kid left the JWKS. The answer is cached verdicts
	// aside: a fresh old-key token is refused.
	old := resign(t, access, jwt.SigningMethodRS256, key, "k1", map[string]any{"jti": "fresh-old-key-token"})
	wantError(t, get(t, gw.URL+"/api/billing/invoices", old), http.StatusUnauthorized, "token_not_valid")
	if n := proxy.count(pathVerify); n != 0 {
		t.Fatalf("%d calls to the verify endpoint after rotation, want 0", n)
	}
	for _, secret := range []string{access, refresh, access2, "alice-pw", keyPEM, string(pubPEM)} {
		if strings.Contains(gw.Logs.String(), secret) {
			t.Fatal("a token, password or key appears in the log")
		}
	}
}

// TestLocalDjangoJWKSDownAtStart: the gateway starts without its JWKS,
// readiness says so, tokens get 503 (never 401), and it recovers by itself
// once the JWKS answers.
func TestLocalDjangoJWKSDownAtStart(t *testing.T) {
	_, keyPEM, _ := rsaKeyPEM(t)
	dj := djangoauth.Start(t, djangoauth.Options{Algorithm: "RS256", SigningKeyPEM: keyPEM, Kid: "k1"})
	dj.CreateUser(t, "bob@example.com", "bob-pw", nil, false)
	proxy := startAuthProxy(t, dj.URL)
	up := startUpstream(t)
	// A token obtained straight from the service before the gateway exists.
	access, _ := tokens(t, login(t, proxy.URL, "bob@example.com", "bob-pw"))

	proxy.point(t, "http://127.0.0.1:1") // nothing listens there
	gw := startGateway(t, localConfig("local", "    jwks_url: \"%AUTH%"+pathJWKS+"\"\n    jwks_refetch_interval: 100ms\n"), proxy.URL, up.URL, nil)
	err := gw.GW.Local.Ready()
	if err == nil || !strings.Contains(err.Error(), "auth.local.jwks_url") {
		t.Fatalf("Ready = %v, want an error naming auth.local.jwks_url", err)
	}
	wantError(t, get(t, gw.URL+"/api/x", access), http.StatusServiceUnavailable, "auth_service_unavailable")

	proxy.point(t, dj.URL)
	if r := get(t, gw.URL+"/api/x", access); r.Status != http.StatusOK {
		t.Fatalf("after the JWKS came back: %d %s", r.Status, r.Body)
	}
	if err := gw.GW.Local.Ready(); err != nil {
		t.Fatalf("Ready after recovery: %v", err)
	}
	if n := proxy.count(pathVerify); n != 0 {
		t.Fatalf("%d verify calls, want 0", n)
	}
}

// TestLocalDjangoHS256 runs verify: local and verify: hybrid against the
// real service's HS256 tokens, the shared secret given through an
// environment variable.
func TestLocalDjangoHS256(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	carol := dj.CreateUser(t, "carol@example.com", "carol-pw", []string{"billing"}, false)
	t.Setenv("JWTGATE_TEST_SIGNING_KEY", dj.SigningKey())
	proxy := startAuthProxy(t, dj.URL)
	up := startUpstream(t)
	hs := "    keys: [\"env:JWTGATE_TEST_SIGNING_KEY\"]\n    algorithms: [HS256]\n"

	t.Run("local", func(t *testing.T) {
		gw := startGateway(t, localConfig("local", hs), proxy.URL, up.URL, nil)
		access, refresh := tokens(t, login(t, gw.URL, "carol@example.com", "carol-pw"))
		before := proxy.count(pathVerify)
		for range 3 {
			if r := get(t, gw.URL+"/api/billing/x", access); r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != strconv.FormatInt(carol, 10) {
				t.Fatalf("valid token: %d %s", r.Status, r.Body)
			}
		}
		for name, tok := range map[string]string{
			"other secret": resign(t, access, jwt.SigningMethodHS256, []byte(dj.SigningKey()+"-not"), "", map[string]any{"jti": "x"}),
			"tampered":     tamper(t, access, map[string]any{"user_id": "7"}),
			"refresh":      refresh,
			"alg none":     algNone(t, access),
		} {
			if r := get(t, gw.URL+"/api/billing/x", tok); r.Status != http.StatusUnauthorized {
				t.Fatalf("%s: %d %s", name, r.Status, r.Body)
			}
		}
		if n := proxy.count(pathVerify) - before; n != 0 {
			t.Fatalf("%d verify calls in local mode, want 0", n)
		}
		if strings.Contains(gw.Logs.String(), dj.SigningKey()) {
			t.Fatal("the HMAC secret appears in the log")
		}
	})

	t.Run("hybrid", func(t *testing.T) {
		clk := newClock()
		gw := startGateway(t, localConfig("hybrid", hs), proxy.URL, up.URL, clk.Now)
		access, _ := tokens(t, login(t, gw.URL, "carol@example.com", "carol-pw"))
		before := proxy.count(pathVerify)
		for range 3 {
			if r := get(t, gw.URL+"/api/billing/x", access); r.Status != http.StatusOK {
				t.Fatalf("valid token: %d %s", r.Status, r.Body)
			}
		}
		if n := proxy.count(pathVerify) - before; n != 0 {
			t.Fatalf("%d verify calls for a token issued through the gateway, seen 3 times, want 0", n)
		}
		clk.Advance(31 * time.Second) // past cache.ttl (30s)
		if r := get(t, gw.URL+"/api/billing/x", access); r.Status != http.StatusOK {
			t.Fatalf("after ttl: %d %s", r.Status, r.Body)
		}
		if n := proxy.count(pathVerify) - before; n != 1 {
			t.Fatalf("%d verify calls after cache.ttl, want 1", n)
		}
		forged := resign(t, access, jwt.SigningMethodHS256, []byte(dj.SigningKey()+"-not"), "", map[string]any{"jti": "y"})
		wantError(t, get(t, gw.URL+"/api/billing/x", forged), http.StatusUnauthorized, "token_not_valid")
		if n := proxy.count(pathVerify) - before; n != 1 {
			t.Fatalf("a forged token reached the verify endpoint (%d calls, want 1)", n)
		}
	})
}
