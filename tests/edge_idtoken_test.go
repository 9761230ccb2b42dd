package tests

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/tests/fakeauth"
)

const idTokenRoutes = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
identity_token:
  enabled: true
  algorithm: %ALG%
  key_file: "%KEY%"
routes:
  - path: "/api/billing/"
    name: billing
    upstream: "%UPSTREAM%"
    identity_headers: {fields: [services]}
  - path: "/public/"
    upstream: "%UPSTREAM%"
    auth: none
`

// jwksKeys fetches the gateway's JWKS and returns its keys by kid.
func jwksKeys(t testing.TB, gatewayURL string) map[string]crypto.PublicKey {
	t.Helper()
	r := get(t, gatewayURL+"/.well-known/jwks.json", "")
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("jwks: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	b64 := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("jwks: bad base64url %q: %v", s, err)
		}
		return b
	}
	out := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if k["use"] != "sig" || k["kid"] == "" || k["d"] != "" {
			t.Fatalf("jwks key %v: want use sig, a kid and no private part", k)
		}
		switch k["kty"] {
		case "EC":
			pt := append(append([]byte{4}, b64(k["x"])...), b64(k["y"])...)
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
			if err != nil {
				t.Fatalf("jwks EC key: %v", err)
			}
			out[k["kid"]] = pub
		case "RSA":
			out[k["kid"]] = &rsa.PublicKey{N: new(big.Int).SetBytes(b64(k["n"])), E: int(new(big.Int).SetBytes(b64(k["e"])).Int64())}
		default:
			t.Fatalf("jwks key type %q", k["kty"])
		}
	}
	return out
}

// The upstream gets X-User-Token, a JWT it can verify with the served
// JWKS: right issuer, audience = route name, 60 s lifetime, identity claims.
// The key is generated once (0600) and reused after a restart.
func TestEdgeIdentityTokenVerifiesWithJWKS(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			up := startUpstream(t)
			fa := fakeauth.Start(t, fakeauth.Options{})
			u := fa.AddUser(fakeauth.User{Email: "ann@example.com", Username: "ann", Password: "pw", IsActive: true, IsStaff: true,
				Extra: map[string]any{"services": []string{"billing", "reports"}}})
			access, _ := fa.IssuePair(u.ID)
			keyFile := filepath.Join(t.TempDir(), "identity.pem")
			yaml := fill(idTokenRoutes, "ALG", alg, "KEY", keyFile)
			gw := startGateway(t, yaml, fa.URL(), up.URL, nil)

			fi, err := os.Stat(keyFile)
			if err != nil {
				t.Fatalf("key file not created: %v", err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
			}
			keys := jwksKeys(t, gw.URL)

			r := do(t, nil, http.MethodGet, gw.URL+"/api/billing/x", access, map[string]string{"X-User-Token": "forged", "x_user_token": "forged"})
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			toks := identityHeaders(r.echo(t).Headers)["x-user-token"]
			if len(toks) != 1 || toks[0] == "forged" {
				t.Fatalf("upstream X-User-Token %q", toks)
			}
			before := time.Now().Add(-time.Second)
			claims := jwt.MapClaims{}
			tok, err := jwt.ParseWithClaims(toks[0], claims, func(tok *jwt.Token) (any, error) {
				k, ok := keys[tok.Header["kid"].(string)]
				if !ok {
					t.Fatalf("kid %v not in the JWKS", tok.Header["kid"])
				}
				return k, nil
			}, jwt.WithValidMethods([]string{alg}), jwt.WithAudience("billing"), jwt.WithIssuer("jwtgate"),
				jwt.WithExpirationRequired(), jwt.WithIssuedAt())
			if err != nil || !tok.Valid {
				t.Fatalf("identity token does not verify with the JWKS: %v", err)
			}
			iat, _ := claims.GetIssuedAt()
			exp, _ := claims.GetExpirationTime()
			if exp.Sub(iat.Time) != 60*time.Second || iat.Before(before) {
				t.Fatalf("iat %v exp %v: want a fresh 60s token", iat, exp)
			}
			if claims["sub"] != itoa(u.ID) || claims["email"] != "ann@example.com" || claims["username"] != "ann" ||
				claims["is_staff"] != true || claims["is_superuser"] != false {
				t.Fatalf("identity claims %v", claims)
			}
			if sv, _ := json.Marshal(claims["services"]); string(sv) != `["billing","reports"]` {
				t.Fatalf("services claim %s", sv)
			}
			// A token for another route's audience does not pass as this one.
			if _, err := jwt.Parse(toks[0], func(*jwt.Token) (any, error) { return keys[tok.Header["kid"].(string)], nil },
				jwt.WithValidMethods([]string{alg}), jwt.WithAudience("reports")); err == nil {
				t.Fatal("token verified for audience reports")
			}

			// Anonymous traffic gets no identity token, and a forged one is removed.
			r = do(t, nil, http.MethodGet, gw.URL+"/public/x", "", map[string]string{"X-User-Token": "forged"})
			if ih := identityHeaders(r.echo(t).Headers); len(ih) != 0 {
				t.Fatalf("anonymous request carried %v", ih)
			}

			// A second gateway on the same key file serves the same key.
			pem1, _ := os.ReadFile(keyFile)
			gw2 := startGateway(t, yaml, fa.URL(), up.URL, nil)
			keys2 := jwksKeys(t, gw2.URL)
			pem2, _ := os.ReadFile(keyFile)
			if string(pem1) != string(pem2) || len(keys2) != 1 {
				t.Fatal("restart rewrote the key file")
			}
			for kid := range keys {
				if _, ok := keys2[kid]; !ok {
					t.Fatalf("restart changed the key: kid %s gone", kid)
				}
			}
		})
	}
}

// A key of the wrong type for the algorithm fails startup, naming the key.
func TestEdgeIdentityTokenWrongKeyType(t *testing.T) {
	up := startUpstream(t)
	fa := fakeauth.Start(t, fakeauth.Options{})
	keyFile := filepath.Join(t.TempDir(), "identity.pem")
	startGateway(t, fill(idTokenRoutes, "ALG", "ES256", "KEY", keyFile), fa.URL(), up.URL, nil)
	s := loadEdgeSettings(t, fill(idTokenRoutes, "ALG", "RS256", "KEY", keyFile), fa.URL(), up.URL)
	_, err := newGatewayErr(t, s)
	if err == nil || !strings.Contains(err.Error(), "identity_token.key_file") || !strings.Contains(err.Error(), "RS256") {
		t.Fatalf("RS256 over an EC key file: err %v, want one naming identity_token.key_file and RS256", err)
	}
}
