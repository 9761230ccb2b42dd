package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// testNow is the frozen clock of these tests; the fuzz seeds' tokens expire
// an hour after it.
var testNow = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// testSecret is the HMAC secret of the HS256 tests (test only).
const testSecret = "jwtgate-unit-test-hmac-secret-0123456789"

const (
	testIssuer   = "https://auth.test"
	testAudience = "api"
)

// testKeys are the fixed key pairs in testdata (test fixtures, not secrets).
type testKeys struct {
	rsa   *rsa.PrivateKey
	ec    *ecdsa.PrivateKey
	ec384 *ecdsa.PrivateKey
	// rsaPublicPEM is what an attacker knows: the RSA public key's PEM.
	rsaPublicPEM []byte
}

var loadTestKeys = sync.OnceValues(func() (testKeys, error) {
	var k testKeys
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			panic(err)
		}
		return b
	}
	var err error
	if k.rsa, err = jwt.ParseRSAPrivateKeyFromPEM(read("rsa_private.pem")); err != nil {
		return k, err
	}
	if k.ec, err = jwt.ParseECPrivateKeyFromPEM(read("ec_private.pem")); err != nil {
		return k, err
	}
	if k.ec384, err = jwt.ParseECPrivateKeyFromPEM(read("ec384_private.pem")); err != nil {
		return k, err
	}
	k.rsaPublicPEM = read("rsa_public.pem")
	return k, nil
})

func keys(t testing.TB) testKeys {
	t.Helper()
	k, err := loadTestKeys()
	if err != nil {
		t.Fatalf("test keys: %v", err)
	}
	return k
}

// claims are SimpleJWT-shaped access token claims valid at testNow;
// mod edits them (delete a key with nil).
func claims(mod map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"token_type": "access", "exp": testNow.Add(time.Hour).Unix(), "iat": testNow.Unix(),
		"jti": "0123456789abcdef", "user_id": "42", "iss": testIssuer, "aud": testAudience,
	}
	for k, v := range mod {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign mints a token; kid "" leaves the kid header out.
func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// unsigned builds alg-none style tokens golang-jwt refuses to sign.
func unsigned(header, payload map[string]any, sig string) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "." + sig
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// newTestLocal builds a Local with test defaults for what cfg leaves out.
func newTestLocal(t testing.TB, cfg LocalConfig, getenv func(string) string) *Local {
	t.Helper()
	l, err := buildTestLocal(t, cfg, getenv)
	if err != nil {
		t.Fatalf("NewLocal: %v", err)
	}
	return l
}

func buildTestLocal(t testing.TB, cfg LocalConfig, getenv func(string) string) (*Local, error) {
	if cfg.Algorithms == nil {
		cfg.Algorithms = []string{"RS256", "ES256", "HS256"}
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = time.Hour // refreshes in these tests come from unknown kids
	}
	if cfg.RefetchInterval == 0 {
		cfg.RefetchInterval = time.Hour
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if getenv == nil {
		getenv = env(nil)
	}
	l, err := NewLocal(t.Context(), cfg, getenv, slog.New(slog.DiscardHandler), func() time.Time { return testNow })
	if err == nil {
		t.Cleanup(l.Close)
	}
	return l, err
}

// reason returns the refusal reason, "unavailable" for ErrAuthUnavailable,
// "" for nil, and fails on anything else.
func reason(t testing.TB, err error) string {
	t.Helper()
	switch {
	case err == nil:
		return ""
	case errors.Is(err, models.ErrAuthUnavailable):
		if errors.Is(err, models.ErrTokenInvalid) {
			t.Fatalf("error is both invalid and unavailable: %v", err)
		}
		return "unavailable"
	case errors.Is(err, models.ErrTokenInvalid):
		return models.TokenReason(err)
	}
	t.Fatalf("error %v is neither ErrTokenInvalid nor ErrAuthUnavailable", err)
	return ""
}

func staticIssuer(keys ...string) []IssuerConfig {
	return []IssuerConfig{{Setting: "auth.local", Issuer: testIssuer, Audience: testAudience, Keys: keys}}
}

// TestLocalVerifyStaticKeys: PEM files and an HMAC secret from the
// environment; every refusal a forger or a stale client would meet.
func TestLocalVerifyStaticKeys(t *testing.T) {
	k := keys(t)
	l := newTestLocal(t, LocalConfig{
		Issuers: staticIssuer("testdata/rsa_public.pem", "testdata/ec_public.pem", "env:JWT_SECRET"),
	}, env(map[string]string{"JWT_SECRET": testSecret}))

	valid := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "")
	parts := strings.Split(valid, ".")
	otherPayload := strings.Split(sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"user_id": "1"}), ""), ".")[1]

	tests := []struct {
		name, token, want string
	}{
		{"RS256", valid, ""},
		{"RS256 with a kid", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "any"), ""},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, claims(nil), ""), ""},
		{"HS256", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil), ""), ""},
		{"aud as a list", sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"aud": []string{"x", testAudience}}), ""), ""},
		{"tampered payload", parts[0] + "." + otherPayload + "." + parts[2], models.ReasonBadSignature},
		{"tampered signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 256)), models.ReasonBadSignature},
		{"HS256 with another secret", sign(t, jwt.SigningMethodHS256, []byte(testSecret+"x"), claims(nil), ""), models.ReasonBadSignature},
		{"HS256 signed with the RSA public key PEM", sign(t, jwt.SigningMethodHS256, k.rsaPublicPEM, claims(nil), ""), models.ReasonBadSignature},
		{"expired", sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"exp": testNow.Add(-time.Second).Unix()}), ""), models.ReasonExpired},
		{"not yet valid", sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}), ""), models.ReasonNotYetValid},
		{"no exp", sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"exp": nil}), ""), models.ReasonNoExpiry},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"iss": "https://evil.test"}), ""), models.ReasonWrongIssuer},
		{"no issuer", sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"iss": nil}), ""), models.ReasonWrongIssuer},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"aud": "billing"}), ""), models.ReasonWrongAudience},
		{"no audience", sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"aud": nil}), ""), models.ReasonWrongAudience},
		{"alg not in the allowlist (RS384)", sign(t, jwt.SigningMethodRS384, k.rsa, claims(nil), ""), models.ReasonAlgNotAllowed},
		{"alg not in the allowlist (PS256)", sign(t, jwt.SigningMethodPS256, k.rsa, claims(nil), ""), models.ReasonAlgNotAllowed},
		{"alg none", unsigned(map[string]any{"alg": "none", "typ": "JWT"}, claims(nil), ""), models.ReasonAlgNotAllowed},
		{"alg unknown", unsigned(map[string]any{"alg": "XS256", "typ": "JWT"}, claims(nil), "c2ln"), models.ReasonAlgNotAllowed},
		{"not a JWT", "a.b", models.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reason(t, l.Verify(t.Context(), tt.token)); got != tt.want {
				t.Fatalf("reason %q, want %q", got, tt.want)
			}
		})
	}
	if err := l.Ready(); err != nil {
		t.Fatalf("static keys not ready: %v", err)
	}
}

// TestLocalAlgConfusion: with HS256 allowed (another issuer uses it) and only
// an RSA public key for this issuer, a token HMAC-signed with the public key's
// PEM is refused by the key-type check, not by luck.
func TestLocalAlgConfusion(t *testing.T) {
	k := keys(t)
	l := newTestLocal(t, LocalConfig{
		Algorithms: []string{"RS256", "HS256", "ES256"},
		Issuers:    staticIssuer("testdata/rsa_public.pem"),
	}, nil)
	for _, tt := range []struct{ name, token string }{
		{"HS256 with the public key PEM", sign(t, jwt.SigningMethodHS256, k.rsaPublicPEM, claims(nil), "")},
		{"ES256 against an RSA key", sign(t, jwt.SigningMethodES256, k.ec, claims(nil), "")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := reason(t, l.Verify(t.Context(), tt.token)); got != models.ReasonAlgKeyMismatch {
				t.Fatalf("reason %q, want %q", got, models.ReasonAlgKeyMismatch)
			}
		})
	}
	if !keyFits("ES256", &k.ec.PublicKey) || keyFits("ES256", &k.ec384.PublicKey) || !keyFits("ES384", &k.ec384.PublicKey) {
		t.Fatal("keyFits does not tell EC curves apart")
	}
	if keyFits("HS256", &k.rsa.PublicKey) || keyFits("RS256", []byte(testSecret)) || keyFits("HS256", []byte{}) {
		t.Fatal("keyFits mixes key types")
	}
}

// TestLocalConfigErrors: a bad key entry stops the gateway with a message
// naming the settings key; the secret never appears in it.
func TestLocalConfigErrors(t *testing.T) {
	tests := []struct {
		name       string
		algs, keys []string
		env        map[string]string
		want       string
	}{
		{"unset env", nil, []string{"env:NOPE"}, nil, "auth.local.keys[0]: environment variable NOPE"},
		{"short secret", nil, []string{"testdata/rsa_public.pem", "env:S"}, map[string]string{"S": "short-secret"}, "auth.local.keys[1]: the HMAC secret in S is 12 bytes"},
		{"missing file", nil, []string{"testdata/nope.pem"}, nil, "auth.local.keys[0]: read PEM file"},
		{"private key", nil, []string{"testdata/rsa_private.pem"}, nil, "never the private one"},
		{"not PEM", nil, []string{"testdata/README.md"}, nil, "no PEM block"},
		{"curve fits no alg", []string{"ES256"}, []string{"testdata/ec384_public.pem"}, nil, "ECDSA public key fits none of auth.local.algorithms"},
		{"HMAC with only RS256", []string{"RS256"}, []string{"env:S"}, map[string]string{"S": testSecret}, "HMAC secret fits none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			algs := tt.algs
			if algs == nil {
				algs = []string{"RS256", "HS256"}
			}
			_, err := buildTestLocal(t, LocalConfig{Algorithms: algs, Issuers: []IssuerConfig{{Setting: "auth.local", Keys: tt.keys}}}, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "short-secret") {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

// jwksServer serves a JWKS that tests change, counting fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	keys    []map[string]any
	failing bool
}

func startJWKS(t testing.TB, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.failing {
			http.Error(w, "Server Error (500)", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *jwksServer) fail(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = on
}

// jwk renders a public key as a JWK, as the Django test service does.
func jwk(kid, alg string, pub any) map[string]any {
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	m := map[string]any{"kid": kid, "use": "sig"}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		point, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		size := (len(point) - 1) / 2
		m["kty"], m["crv"] = "EC", k.Curve.Params().Name
		m["x"], m["y"] = b64(point[1:1+size]), b64(point[1+size:])
	case []byte:
		m["kty"], m["k"] = "oct", b64(k)
	}
	return m
}

func jwksIssuer(url string) []IssuerConfig {
	return []IssuerConfig{{Setting: "auth.local", Issuer: testIssuer, Audience: testAudience, JWKSURL: url}}
}

// TestLocalJWKS: kid lookup, tokens without kid (stock SimpleJWT), rotation
// picked up by one refetch, unknown kids rate-limited, a JWK's alg and an
// HMAC key published in a JWKS refused.
func TestLocalJWKS(t *testing.T) {
	k := keys(t)
	srv := startJWKS(t, jwk("k1", "RS256", &k.rsa.PublicKey), jwk("e1", "ES256", &k.ec.PublicKey))
	l := newTestLocal(t, LocalConfig{Algorithms: []string{"RS256", "PS256", "ES256", "HS256"}, Issuers: jwksIssuer(srv.URL)}, nil)
	if err := l.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	step := func(name, token, want string, fetches int64) {
		t.Helper()
		if got := reason(t, l.Verify(t.Context(), token)); got != want {
			t.Fatalf("%s: reason %q, want %q", name, got, want)
		}
		if n := srv.fetches.Load(); n != fetches {
			t.Fatalf("%s: %d JWKS fetches, want %d", name, n, fetches)
		}
	}
	step("RS256 kid k1", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "k1"), "", 1)
	step("ES256 kid e1", sign(t, jwt.SigningMethodES256, k.ec, claims(nil), "e1"), "", 1)
	step("RS256 without kid", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), ""), "", 1)
	step("RS256 under the EC key's kid", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "e1"), models.ReasonAlgKeyMismatch, 1)
	step("PS256 against a JWK that says RS256", sign(t, jwt.SigningMethodPS256, k.rsa, claims(nil), "k1"), models.ReasonAlgKeyMismatch, 1)
	step("HS256 with the public key PEM", sign(t, jwt.SigningMethodHS256, k.rsaPublicPEM, claims(nil), "k1"), models.ReasonAlgKeyMismatch, 1)

	// Rotation: the service now signs with a new key under a new kid.
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv.set(jwk("k2", "RS256", &k2.PublicKey), jwk("h1", "HS256", []byte(testSecret)))
	step("new kid k2 after rotation: one refetch", sign(t, jwt.SigningMethodRS256, k2, claims(nil), "k2"), "", 2)
	step("k2 again: no fetch", sign(t, jwt.SigningMethodRS256, k2, claims(nil), "k2"), "", 2)
	step("k1 was removed", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "k1"), models.ReasonUnknownKey, 2)
	step("made-up kid: rate-limited, no fetch", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "evil"), models.ReasonUnknownKey, 2)
	step("HMAC key published in the JWKS", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil), "h1"), models.ReasonAlgKeyMismatch, 2)
	step("HMAC token without kid", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil), ""), models.ReasonAlgKeyMismatch, 2)
}

// TestLocalJWKSRotationWithoutKid: stock SimpleJWT tokens carry no kid; a
// token signed by a new key makes one (rate-limited) refetch and passes,
// and a forgery costs at most one refetch per interval.
func TestLocalJWKSRotationWithoutKid(t *testing.T) {
	k := keys(t)
	srv := startJWKS(t, jwk("k1", "RS256", &k.rsa.PublicKey))
	l := newTestLocal(t, LocalConfig{Issuers: jwksIssuer(srv.URL)}, nil)
	if err := l.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "")); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv.set(jwk("k1", "RS256", &k2.PublicKey)) // same kid name, new key: the JWKS "k1" of an unchanged Django project
	if err := l.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, k2, claims(nil), "")); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	for range 3 {
		if got := reason(t, l.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), ""))); got != models.ReasonBadSignature {
			t.Fatalf("old key: reason %q, want bad_signature", got)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after forgeries, want 2 (rate-limited)", n)
	}
}

// TestLocalJWKSConcurrentRotation: many requests carrying a new kid at once
// all pass, and the JWKS is fetched once for all of them.
func TestLocalJWKSConcurrentRotation(t *testing.T) {
	k := keys(t)
	srv := startJWKS(t, jwk("k1", "RS256", &k.rsa.PublicKey))
	l := newTestLocal(t, LocalConfig{Issuers: jwksIssuer(srv.URL)}, nil)
	srv.set(jwk("k1", "RS256", &k.rsa.PublicKey), jwk("e2", "ES256", &k.ec.PublicKey))
	token := sign(t, jwt.SigningMethodES256, k.ec, claims(nil), "e2")
	errs := make([]error, 32)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = l.Verify(t.Context(), token) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2 (start + one refetch)", n)
	}
}

// TestLocalJWKSUnavailable: a JWKS down at start leaves the verifier not
// ready and its tokens unavailable (503), never invalid (401); it recovers
// without a restart; a later failed refresh keeps the last good keys.
func TestLocalJWKSUnavailable(t *testing.T) {
	k := keys(t)
	srv := startJWKS(t, jwk("k1", "RS256", &k.rsa.PublicKey))
	srv.fail(true)
	// Refetches allowed at any rate: this test is about outcomes, not the limiter.
	l := newTestLocal(t, LocalConfig{Issuers: jwksIssuer(srv.URL), RefetchInterval: time.Nanosecond}, nil)
	token := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "k1")
	noKid := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "")

	if err := l.Ready(); err == nil || !strings.Contains(err.Error(), "auth.local.jwks_url") || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("Ready = %v, want an error naming auth.local.jwks_url and the URL", err)
	}
	for _, tok := range []string{token, noKid} {
		if got := reason(t, l.Verify(t.Context(), tok)); got != "unavailable" {
			t.Fatalf("JWKS down at start: reason %q, want unavailable", got)
		}
	}

	srv.fail(false)
	if got := reason(t, l.Verify(t.Context(), token)); got != "" {
		t.Fatalf("JWKS back: reason %q, want accepted", got)
	}
	if err := l.Ready(); err != nil {
		t.Fatalf("Ready after recovery: %v", err)
	}

	srv.fail(true)
	before := srv.fetches.Load()
	if got := reason(t, l.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "k9"))); got != "unavailable" {
		t.Fatalf("unknown kid while the JWKS is down: reason %q, want unavailable", got)
	}
	if srv.fetches.Load() == before {
		t.Fatal("an unknown kid did not try a refetch")
	}
	for _, tok := range []string{token, noKid} {
		if got := reason(t, l.Verify(t.Context(), tok)); got != "" {
			t.Fatalf("failed refresh: reason %q, want the last good keys to verify", got)
		}
	}
	if err := l.Ready(); err != nil {
		t.Fatalf("Ready after a failed refresh: %v (the last good keys still work)", err)
	}
}

// TestLocalJWKSRefreshInterval: the background refresh picks up a new key
// set without any token asking for it.
func TestLocalJWKSRefreshInterval(t *testing.T) {
	k := keys(t)
	srv := startJWKS(t, jwk("k1", "RS256", &k.rsa.PublicKey))
	l := newTestLocal(t, LocalConfig{Issuers: jwksIssuer(srv.URL), RefreshInterval: 20 * time.Millisecond}, nil)
	srv.set(jwk("e1", "ES256", &k.ec.PublicKey))
	token := sign(t, jwt.SigningMethodES256, k.ec, claims(nil), "e1")
	deadline := time.Now().Add(10 * time.Second)
	for srv.fetches.Load() < 3 { // two refreshes: the second surely saw the new set
		if time.Now().After(deadline) {
			t.Fatalf("only %d fetches in 10s with a 20ms refresh interval", srv.fetches.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Verify(t.Context(), token); err != nil {
		t.Fatalf("key from a background refresh: %v", err)
	}
	if got := reason(t, l.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "k1"))); got != models.ReasonUnknownKey && got != "unavailable" {
		t.Fatalf("removed key: reason %q, want unknown_key", got)
	}
}

// TestLocalIssuers: the token's iss picks the key set and audience; an
// unknown or missing iss is refused; one issuer's key never verifies another's tokens.
func TestLocalIssuers(t *testing.T) {
	k := keys(t)
	srv := startJWKS(t, jwk("k1", "RS256", &k.rsa.PublicKey))
	l := newTestLocal(t, LocalConfig{
		Algorithms: []string{"RS256", "HS256"},
		Issuers: []IssuerConfig{
			{Setting: "auth.local.issuers[0]", Issuer: "https://a", JWKSURL: srv.URL, Audience: "api"},
			{Setting: "auth.local.issuers[1]", Issuer: "legacy", Keys: []string{"env:LEGACY"}, Audience: "old"},
		},
	}, env(map[string]string{"LEGACY": testSecret}))
	mk := func(m jwt.SigningMethod, key any, iss, aud any, kid string) string {
		return sign(t, m, key, claims(map[string]any{"iss": iss, "aud": aud}), kid)
	}
	tests := []struct{ name, token, want string }{
		{"issuer a, RS256", mk(jwt.SigningMethodRS256, k.rsa, "https://a", "api", "k1"), ""},
		{"legacy, HS256", mk(jwt.SigningMethodHS256, []byte(testSecret), "legacy", "old", ""), ""},
		{"legacy token with a's audience", mk(jwt.SigningMethodHS256, []byte(testSecret), "legacy", "api", ""), models.ReasonWrongAudience},
		{"a's iss, HS256 with legacy's secret", mk(jwt.SigningMethodHS256, []byte(testSecret), "https://a", "api", ""), models.ReasonAlgKeyMismatch},
		{"a's iss, HS256 with the public PEM", mk(jwt.SigningMethodHS256, k.rsaPublicPEM, "https://a", "api", "k1"), models.ReasonAlgKeyMismatch},
		{"legacy's iss, RS256", mk(jwt.SigningMethodRS256, k.rsa, "legacy", "old", "k1"), models.ReasonAlgKeyMismatch},
		{"unknown issuer", mk(jwt.SigningMethodRS256, k.rsa, "https://evil", "api", "k1"), models.ReasonUnknownIssuer},
		{"no issuer", mk(jwt.SigningMethodRS256, k.rsa, nil, "api", "k1"), models.ReasonUnknownIssuer},
		{"issuer not a string", mk(jwt.SigningMethodRS256, k.rsa, 7, "api", "k1"), models.ReasonUnknownIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reason(t, l.Verify(t.Context(), tt.token)); got != tt.want {
				t.Fatalf("reason %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLocalConfigFrom: settings.yaml's shapes become key sets; an issuer
// without its own audience inherits auth.local.audience.
func TestLocalConfigFrom(t *testing.T) {
	s := models.DefaultSettings()
	s.Auth.Local.Audience = "api"
	s.Auth.Local.Issuers = []models.LocalIssuer{{Issuer: "a", JWKSURL: "http://a"}, {Issuer: "b", Keys: []string{"env:B"}, Audience: "b-aud"}}
	cfg := LocalConfigFrom(s)
	if len(cfg.Issuers) != 2 || cfg.Issuers[0].Audience != "api" || cfg.Issuers[1].Audience != "b-aud" || cfg.Issuers[1].Setting != "auth.local.issuers[1]" {
		t.Fatalf("issuers %+v", cfg.Issuers)
	}
	s.Auth.Local.Issuers = nil
	s.Auth.Local.JWKSURL, s.Auth.Local.Issuer = "http://x", "x"
	cfg = LocalConfigFrom(s)
	if len(cfg.Issuers) != 1 || cfg.Issuers[0].JWKSURL != "http://x" || cfg.Issuers[0].Issuer != "x" || cfg.Issuers[0].Setting != "auth.local" {
		t.Fatalf("single issuer %+v", cfg.Issuers)
	}
}

// spyVerifier counts calls and answers err, or passes them on to next.
type spyVerifier struct {
	next  Verifier
	calls atomic.Int64
	err   atomic.Pointer[error]
}

func (c *spyVerifier) Verify(ctx context.Context, raw string) error {
	c.calls.Add(1)
	if p := c.err.Load(); p != nil {
		return *p
	}
	if c.next != nil {
		return c.next.Verify(ctx, raw)
	}
	return nil
}

// TestHybrid: the local check runs on every request; the remote verify the
// first time a token is seen and again after cache.ttl; forged tokens never
// reach the auth service; a revoked token is refused once the ttl is over.
func TestHybrid(t *testing.T) {
	k := keys(t)
	now := testNow
	clock := func() time.Time { return now }
	local, err := NewLocal(t.Context(), LocalConfig{
		Algorithms: []string{"RS256"}, Issuers: staticIssuer("testdata/rsa_public.pem"),
		RefreshInterval: time.Hour, RefetchInterval: time.Hour, Timeout: time.Second,
	}, env(nil), slog.New(slog.DiscardHandler), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(local.Close)
	localCalls := &spyVerifier{next: local}
	remote := &spyVerifier{}
	a, err := New(Config{UserIDClaim: "user_id", CacheSize: 100, TTL: 30 * time.Second, NegativeTTL: 5 * time.Second,
		UserCacheSz: 10, RefreshAfter: time.Minute, CallTimeout: time.Second}, Deps{Verifier: remote, Local: localCalls, Log: slog.New(slog.DiscardHandler), Now: clock})
	if err != nil {
		t.Fatal(err)
	}

	token := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "")
	check := func(step, tok, wantReason string, wantLocal, wantRemote int64) {
		t.Helper()
		_, err := a.Token(t.Context(), tok)
		if got := reason(t, err); got != wantReason {
			t.Fatalf("%s: reason %q, want %q", step, got, wantReason)
		}
		if l, r := localCalls.calls.Load(), remote.calls.Load(); l != wantLocal || r != wantRemote {
			t.Fatalf("%s: local checks %d, remote verifies %d; want %d, %d", step, l, r, wantLocal, wantRemote)
		}
	}
	check("first sight", token, "", 1, 1)
	check("cached remote verdict", token, "", 2, 1)
	now = now.Add(23 * time.Second) // before the last 20% of the ttl (no refresh-ahead)
	check("within ttl", token, "", 3, 1)
	now = now.Add(8 * time.Second)
	check("after ttl", token, "", 4, 2)

	parts := strings.Split(token, ".")
	forged := parts[0] + "." + strings.Split(sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"user_id": "1"}), ""), ".")[1] + "." + parts[2]
	check("forged: local refuses, no call home", forged, models.ReasonBadSignature, 5, 2)

	revoked := &models.TokenError{Reason: models.ReasonRejected, Detail: "blacklisted"}
	var rerr error = revoked
	remote.err.Store(&rerr)
	now = now.Add(31 * time.Second)
	check("revoked, seen after ttl", token, models.ReasonRejected, 6, 3)
}

// TestLocalModeCaching: with the local verifier as the Authenticator's
// verifier (verify: local), a verdict is cached and never outlives exp.
func TestLocalModeCaching(t *testing.T) {
	k := keys(t)
	now := testNow
	clock := func() time.Time { return now }
	local, err := NewLocal(t.Context(), LocalConfig{
		Algorithms: []string{"ES256"}, Issuers: staticIssuer("testdata/ec_public.pem"),
		RefreshInterval: time.Hour, RefetchInterval: time.Hour, Timeout: time.Second,
	}, env(nil), slog.New(slog.DiscardHandler), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(local.Close)
	v := &spyVerifier{next: local}
	a, err := New(Config{UserIDClaim: "user_id", CacheSize: 100, TTL: time.Hour, NegativeTTL: 5 * time.Second,
		UserCacheSz: 10, RefreshAfter: time.Minute, CallTimeout: time.Second}, Deps{Verifier: v, Log: slog.New(slog.DiscardHandler), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	token := sign(t, jwt.SigningMethodES256, k.ec, claims(map[string]any{"exp": testNow.Add(time.Minute).Unix()}), "")
	for i := range 3 {
		if _, err := a.Token(t.Context(), token); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := v.calls.Load(); n != 1 {
		t.Fatalf("%d verifications, want 1 (then cached)", n)
	}
	now = now.Add(time.Minute)
	if _, err := a.Token(t.Context(), token); reason(t, err) != models.ReasonExpired {
		t.Fatalf("at exp: %v, want expired although the cache ttl is an hour", err)
	}
}
