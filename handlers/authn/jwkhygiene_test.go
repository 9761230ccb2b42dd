package authn

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// TestTokensJWKSKeyHygiene: keys carrying private material, RSA keys under
// 2048 bits and unparseable keys are skipped, each logged and counted
// once, and the rest of the JWKS keeps working.
func TestTokensJWKSKeyHygiene(t *testing.T) {
	k := keys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	leaked, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	with := func(m map[string]any, kv ...string) map[string]any {
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	bad := []map[string]any{
		jwk("small", "RS256", &small.PublicKey),
		with(jwk("broken", "RS256", &k.rsa.PublicKey), "n", "!!not base64!!"),
		with(jwk("nokty", "RS256", &k.rsa.PublicKey), "kty", "RSA", "e", ""),
	}
	for _, member := range privateJWKMembers {
		bad = append(bad, with(jwk("rsa-"+member, "RS256", &leaked.PublicKey), member, "AQAB"))
		bad = append(bad, with(jwk("ec-"+member, "ES256", &k.ec.PublicKey), member, "AQAB"))
	}
	srv := startJWKS(t, append([]map[string]any{jwk("k1", "RS256", &k.rsa.PublicKey)}, bad...)...)
	l := newTestLocal(t, LocalConfig{Algorithms: []string{"RS256", "ES256"}, Issuers: jwksIssuer(srv.URL)}, nil)
	if err := l.Ready(); err != nil {
		t.Fatalf("one bad key made the JWKS unusable: %v", err)
	}
	if got := reason(t, l.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "k1"))); got != "" {
		t.Fatalf("good key k1: %q", got)
	}
	for _, b := range bad {
		kid := b["kid"].(string)
		var tok string
		switch {
		case kid == "small":
			tok = sign(t, jwt.SigningMethodRS256, small, claims(nil), kid)
		case strings.HasPrefix(kid, "ec-"):
			tok = sign(t, jwt.SigningMethodES256, k.ec, claims(nil), kid)
		case strings.HasPrefix(kid, "rsa-"):
			tok = sign(t, jwt.SigningMethodRS256, leaked, claims(nil), kid)
		default:
			tok = sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), kid)
		}
		if got := reason(t, l.Verify(t.Context(), tok)); got != models.ReasonUnknownKey {
			t.Errorf("token under skipped key %s: %q, want %s", kid, got, models.ReasonUnknownKey)
		}
	}
	// Without kid, no skipped key may verify either.
	if got := reason(t, l.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, small, claims(nil), ""))); got == "" {
		t.Fatal("a 1024-bit key verified a token without kid")
	}
	if got := reason(t, l.Verify(t.Context(), sign(t, jwt.SigningMethodRS256, leaked, claims(nil), ""))); got == "" {
		t.Fatal("a leaked private key verified a token without kid")
	}
	if n := l.SkippedKeys(); n != int64(len(bad)) {
		t.Fatalf("SkippedKeys = %d, want %d (each once, refetches included)", n, len(bad))
	}
}

// TestTokensStaticKeyHygiene: a static PEM RSA key under 2048 bits is
// refused at load, naming the key's setting.
func TestTokensStaticKeyHygiene(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&small.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "small.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = buildTestLocal(t, LocalConfig{Algorithms: []string{"RS256"}, Issuers: staticIssuer("testdata/rsa_public.pem", path)}, nil)
	if err == nil || !strings.Contains(err.Error(), "auth.local.keys[1]") || !strings.Contains(err.Error(), "1024 bits") {
		t.Fatalf("NewLocal with a 1024-bit key: %v", err)
	}
	if _, err := buildTestLocal(t, LocalConfig{Algorithms: []string{"RS256"}, Issuers: staticIssuer("testdata/rsa_public.pem")}, nil); err != nil {
		t.Fatalf("a 2048-bit key refused: %v", err)
	}
}
