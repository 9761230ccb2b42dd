package tests

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/tests/djangoauth"
	"jwtgate/tests/fakeauth"
)

// tokensDjangoConfig is baseConfig against the real Django service, with
// the circuit breaker's default of 5 failures and a cool-down long enough
// that an opened circuit stays open for the rest of the test.
const tokensDjangoConfig = `
listen: "127.0.0.1:0"
auth_service:
  url: "%AUTH%"
  timeout: 10s
  circuit:
    failures: 5
    cool_down: 1h
auth:
  revoke_on_logout: true
throttle:
  login_rate: "off"
database:
  driver: sqlite
  dsn: "%DB%"
log:
  level: warn
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
`

// tokensSeg is one base64url segment of a hand-made token.
func tokensSeg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// tokensDeepArray is a JSON array nested n deep.
func tokensDeepArray(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// tokensForged is a well-formed access token of user 1 for the next hour
// whose header or claims carry extra JSON, with a made-up signature.
func tokensForged(headerExtra, claimsExtra string) string {
	exp := time.Now().Add(time.Hour).Unix()
	h := `{"alg":"HS256","typ":"JWT"` + headerExtra + `}`
	c := `{"token_type":"access","exp":` + itoa(exp) + `,"iat":` + itoa(time.Now().Unix()) + `,"jti":"x","user_id":1` + claimsExtra + `}`
	return tokensSeg(h) + "." + tokensSeg(c) + "." + tokensSeg("not-a-real-signature-of-32-bytes")
}

// TestSecTokensHostileRequestsDoNotOpenTheBreaker: requests any client can
// craft to make the real Django service fail (RecursionError: 500) never
// open the circuit: 50 of each kind, then 20 logins and 20 refreshes all
// succeed. Variants: deep bodies to refresh and login under several
// content types (the gateway answers 400 before relaying), a deep-header and
// a deep-payload forged token on an API route (refused by the pre-checks),
// and refresh/verify bodies that are flat but carry a deep-header token
// (relayed: Django's 500 passes through unchanged and is not counted).
func TestSecTokensHostileRequestsDoNotOpenTheBreaker(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	dj.CreateUser(t, "alice@example.com", "alice-pw", nil, false)
	gw := startGateway(t, tokensDjangoConfig, dj.URL, startUpstream(t).URL, nil)

	deepBody := `{"refresh":` + tokensDeepArray(1500) + `}`
	deepHeaderToken := tokensForged(`,"x":`+tokensDeepArray(1500), "")
	deepClaimsToken := tokensForged("", `,"x":`+tokensDeepArray(1500))
	// The hostile requests are real: straight to Django, each is a 500.
	if r := call(t, http.MethodPost, dj.URL+"/auth/token/refresh/", "application/json", deepBody); r.Status != http.StatusInternalServerError {
		t.Fatalf("Django answered a 1500-deep body %d, want 500 (the attack this test replays)", r.Status)
	}
	if r := call(t, http.MethodPost, dj.URL+"/auth/token/verify/", "application/json", `{"token":"`+deepHeaderToken+`"}`); r.Status != http.StatusInternalServerError {
		t.Fatalf("Django answered a deep-header token %d, want 500", r.Status)
	}

	kinds := []struct {
		name         string
		send         func() reply
		status       int
		code         string // "" = the auth service's body, passed through
		passThrough5 bool
	}{
		{"deep JSON body to refresh", func() reply {
			return call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", deepBody)
		}, http.StatusBadRequest, "bad_request", false},
		{"deep JSON object body to login", func() reply {
			return call(t, http.MethodPost, gw.URL+"/auth/token/", "application/json", strings.Repeat(`{"email":`, 1500)+`1`+strings.Repeat("}", 1500))
		}, http.StatusBadRequest, "bad_request", false},
		{"deep body to refresh labelled text/plain", func() reply {
			return call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "text/plain", deepBody)
		}, http.StatusBadRequest, "bad_request", false},
		{"deep body to login labelled */*", func() reply {
			return call(t, http.MethodPost, gw.URL+"/auth/token/", "*/*", deepBody)
		}, http.StatusBadRequest, "bad_request", false},
		{"unterminated deep body to verify", func() reply {
			return call(t, http.MethodPost, gw.URL+"/auth/token/verify/", "application/json", strings.Repeat("[", 3000))
		}, http.StatusBadRequest, "bad_request", false},
		{"deep-header forged token to an API route", func() reply {
			return get(t, gw.URL+"/api/x", deepHeaderToken)
		}, http.StatusUnauthorized, "token_not_valid", false},
		{"deep-payload forged token to an API route", func() reply {
			return get(t, gw.URL+"/api/x", deepClaimsToken)
		}, http.StatusUnauthorized, "token_not_valid", false},
		{"flat refresh body carrying a deep-header token", func() reply {
			return call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+deepHeaderToken+`"}`)
		}, http.StatusInternalServerError, "", true},
		{"flat verify body carrying a deep-header token", func() reply {
			return call(t, http.MethodPost, gw.URL+"/auth/token/verify/", "application/json", `{"token":"`+deepHeaderToken+`"}`)
		}, http.StatusInternalServerError, "", true},
	}
	for _, k := range kinds {
		for i := range 50 {
			r := k.send()
			if r.Status != k.status {
				t.Fatalf("%s #%d: %d %s, want %d", k.name, i, r.Status, r.Body, k.status)
			}
			if k.code != "" && r.json(t)["code"] != k.code {
				t.Fatalf("%s #%d: %s, want code %s", k.name, i, r.Body, k.code)
			}
			if k.passThrough5 && strings.Contains(string(r.Body), "auth_service_unavailable") {
				t.Fatalf("%s #%d: the gateway's own error instead of Django's answer: %s", k.name, i, r.Body)
			}
		}
	}
	if m := scrape(t, miscMetricsURL(t, gw)); m.get("jwtgate_auth_circuit_state", "state=closed") != 1 {
		t.Fatalf("circuit not closed after the hostile requests (open %v)", m.get("jwtgate_auth_circuit_state", "state=open"))
	}
	for i := range 20 {
		r := login(t, gw.URL, "alice@example.com", "alice-pw")
		if r.Status != http.StatusOK {
			t.Fatalf("login #%d after the hostile requests: %d %s", i, r.Status, r.Body)
		}
		_, refresh := tokens(t, r)
		rr := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+refresh+`"}`)
		if rr.Status != http.StatusOK {
			t.Fatalf("refresh #%d after the hostile requests: %d %s", i, rr.Status, rr.Body)
		}
	}
}

// tokensSpellings returns every other spelling of a token's signature: the
// last character with its unused low bits flipped, which lenient base64url
// decoders (Go's default, PyJWT's) read as the same bytes.
func tokensSpellings(t *testing.T, raw string) []string {
	t.Helper()
	i := strings.LastIndexByte(raw, '.')
	sig := raw[i+1:]
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var out []string
	for _, c := range alphabet {
		alt := sig[:len(sig)-1] + string(c)
		if got, err := base64.RawURLEncoding.DecodeString(alt); alt != sig && err == nil && string(got) == string(want) {
			out = append(out, raw[:i+1]+alt)
		}
	}
	if len(out) == 0 {
		t.Fatal("no alternative spelling of the signature")
	}
	return out
}

// TestSecTokensSignatureSpellings: with the real Django service, every
// other spelling of a token's signature (which PyJWT accepts) is refused
// as malformed, before and after logout; after a logout with
// revoke_on_logout the original and every spelling are refused, also via
// padding, a trailing percent-encoded newline and standard-alphabet
// spellings.
func TestSecTokensSignatureSpellings(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	dj.CreateUser(t, "alice@example.com", "alice-pw", nil, false)
	gw := startGateway(t, tokensDjangoConfig, dj.URL, startUpstream(t).URL, nil)
	access, refresh := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	alts := tokensSpellings(t, access)
	// The spellings are real: Django's verify endpoint accepts them.
	if r := call(t, http.MethodPost, dj.URL+"/auth/token/verify/", "application/json", `{"token":"`+alts[0]+`"}`); r.Status != http.StatusOK {
		t.Fatalf("Django refused an alternative spelling (%d): the attack this test replays is gone", r.Status)
	}
	others := append([]string{access + "=", access + "==", access + "%0A"}, alts...)
	if std := strings.NewReplacer("-", "+", "_", "/").Replace(access); std != access {
		others = append(others, std)
	}
	if r := get(t, gw.URL+"/api/x", access); r.Status != http.StatusOK {
		t.Fatalf("original before logout: %d %s", r.Status, r.Body)
	}
	for _, alt := range others {
		wantError(t, get(t, gw.URL+"/api/x", alt), http.StatusUnauthorized, "token_not_valid")
	}
	bl := call(t, http.MethodPost, gw.URL+"/auth/token/blacklist/", "application/json", `{"refresh":"`+refresh+`","access":"`+access+`"}`)
	if bl.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", bl.Status, bl.Body)
	}
	wantError(t, get(t, gw.URL+"/api/x", access), http.StatusUnauthorized, "token_not_valid")
	for _, alt := range others {
		wantError(t, get(t, gw.URL+"/api/x", alt), http.StatusUnauthorized, "token_not_valid")
	}
}

// TestSecTokensJunkLogoutsKeepRevocations: 5 000 logouts naming made-up
// access tokens (well-formed forgeries, which the old code recorded, and
// plain junk) do not push a real revocation out of the bounded list; the
// forgeries are checked with the auth service and never recorded.
func TestSecTokensJunkLogoutsKeepRevocations(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{})
	cfg := strings.Replace(tokensDjangoConfig, "  revoke_on_logout: true", "  revoke_on_logout: true\n  cache:\n    size: 1000", 1)
	gw := startGateway(t, cfg, fa.URL(), startUpstream(t).URL, nil)
	access, refresh := fa.IssuePair(id)
	if r := get(t, gw.URL+"/api/x", access); r.Status != http.StatusOK {
		t.Fatalf("before logout: %d %s", r.Status, r.Body)
	}
	if r := call(t, http.MethodPost, gw.URL+"/auth/token/blacklist/", "application/json", `{"refresh":"`+refresh+`","access":"`+access+`"}`); r.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	wantError(t, get(t, gw.URL+"/api/x", access), http.StatusUnauthorized, "token_not_valid")

	const n, workers = 5000, 8
	var failed atomic.Int64
	parallel(workers, func(w int) {
		for i := w; i < n && failed.Load() == 0; i += workers {
			junk := "junk-" + itoa(int64(i))
			if i%2 == 0 {
				claims := jwt.MapClaims{"token_type": "access", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "jti": "forged-" + itoa(int64(i)), "user_id": id}
				junk, _ = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("not-the-secret"))
			}
			_, r := fa.IssuePair(id)
			if res := call(t, http.MethodPost, gw.URL+"/auth/token/blacklist/", "application/json", `{"refresh":"`+r+`","access":"`+junk+`"}`); res.Status != http.StatusOK {
				failed.Add(1)
				t.Errorf("junk logout %d: %d %s", i, res.Status, res.Body)
			}
		}
	})
	if failed.Load() > 0 {
		t.FailNow()
	}
	wantError(t, get(t, gw.URL+"/api/x", access), http.StatusUnauthorized, "token_not_valid")
}

// tokensJWK renders an RSA public key as a JWK with extra members.
func tokensJWK(kid string, pub *rsa.PublicKey, extra map[string]any) map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig", "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	maps.Copy(m, extra)
	return m
}

// TestSecTokensJWKSSkipsUnusableKeys: with verify: local against the real
// Django service, a JWKS that also publishes a 1024-bit key, a key with
// its private exponent, and an unparseable key still verifies Django's
// tokens; tokens under the skipped keys get 401; the skipped keys are
// counted once each in jwtgate_jwks_keys_skipped_total.
func TestSecTokensJWKSSkipsUnusableKeys(t *testing.T) {
	key, keyPEM, _ := rsaKeyPEM(t)
	dj := djangoauth.Start(t, djangoauth.Options{Algorithm: "RS256", SigningKeyPEM: keyPEM, Issuer: djIssuer, Audience: djAudience, Kid: "k1"})
	dj.CreateUser(t, "alice@example.com", "alice-pw", nil, false)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	leaked, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := []map[string]any{
		tokensJWK("small", &small.PublicKey, nil),
		tokensJWK("leaked", &leaked.PublicKey, map[string]any{"d": base64.RawURLEncoding.EncodeToString(leaked.D.Bytes())}),
		tokensJWK("broken", &key.PublicKey, map[string]any{"n": "***"}),
		tokensJWK("k1", &key.PublicKey, nil),
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(jwks.Close)
	cfg := localConfig("local", `    jwks_url: "`+jwks.URL+`"
    algorithms: [RS256]
    issuer: "`+djIssuer+`"
    audience: "`+djAudience+`"
`)
	gw := startGateway(t, cfg, dj.URL, startUpstream(t).URL, nil)
	if err := gw.GW.Local.Ready(); err != nil {
		t.Fatalf("one bad key made the JWKS unusable: %v", err)
	}
	access, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	if r := get(t, gw.URL+"/api/x", access); r.Status != http.StatusOK {
		t.Fatalf("Django's token under k1: %d %s", r.Status, r.Body)
	}
	forge := func(k *rsa.PrivateKey, kid string) string {
		c := claimsOf(t, access)
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(c))
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, f := range []struct {
		kid string
		key *rsa.PrivateKey
	}{{"small", small}, {"leaked", leaked}, {"", small}, {"", leaked}} {
		wantError(t, get(t, gw.URL+"/api/x", forge(f.key, f.kid)), http.StatusUnauthorized, "token_not_valid")
	}
	ms := httptest.NewServer(gw.GW.Metrics)
	t.Cleanup(ms.Close)
	if n := scrape(t, ms.URL).get("jwtgate_jwks_keys_skipped_total"); n != 3 {
		t.Fatalf("jwtgate_jwks_keys_skipped_total = %v, want 3", n)
	}
}
