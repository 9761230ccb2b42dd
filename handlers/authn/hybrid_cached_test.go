package authn

import (
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// hybridAuth is an Authenticator in verify: hybrid: remote verifies the
// tokens it has not seen, local checks every request.
func hybridAuth(t testing.TB, remote Verifier, local Verifier) *Authenticator {
	t.Helper()
	a, err := New(testConfig(), Deps{Verifier: remote, Local: local, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestHybridCachedHitUsesFastRSA: on a cache hit the verdict carries no
// decoded token, and hybrid's every-request local check still verifies an
// RS256 signature with the precomputed modulus (rsaKeys), not
// crypto/rsa's VerifyPKCS1v15 through ParseWithClaims: with the moduli
// forgotten after the miss, the hit builds the key's modulus again.
func TestHybridCachedHitUsesFastRSA(t *testing.T) {
	k := keys(t)
	l := newTestLocal(t, LocalConfig{Issuers: staticIssuer("testdata/rsa_public.pem")}, nil)
	remote := &countingVerifier{}
	a := hybridAuth(t, remote, l)
	raw := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), "")
	if _, err := a.Token(t.Context(), raw); err != nil { // the miss: the pre-checks' decoding
		t.Fatal(err)
	}
	if n := l.rsa.builds.Load(); n != 1 {
		t.Fatalf("miss: %d moduli built, want 1", n)
	}
	if _, ok := a.tokens.Get(TokenKey(raw)); !ok {
		t.Fatal("no cached verdict after the miss")
	}
	l.rsa.m.Clear()
	for i := range 3 {
		if _, err := a.Token(t.Context(), raw); err != nil {
			t.Fatalf("hit %d: %v", i, err)
		}
	}
	if n := remote.calls.Load(); n != 1 {
		t.Fatalf("%d remote verifies, want 1 (then cached hits)", n)
	}
	if n := l.rsa.builds.Load(); n != 2 {
		t.Fatalf("%d moduli built, want 2: the hits' signature checks did not use rsaKeys", n)
	}
}

// writePublicPEM writes pub as a PEM file in a test directory.
func writePublicPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "public.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rotated checks that l accepts a token signed by the JWKS's new key: the
// token made l fetch the JWKS again (a refetch for an unknown kid, or for
// a kid-less token whose signature the old keys refused).
func rotated(t *testing.T, l *Local, raw string) {
	t.Helper()
	if err := l.Verify(t.Context(), raw); err != nil {
		t.Fatalf("token signed by the new key: %v", err)
	}
}

// TestHybridCachedVerdictKeyNoLongerTrusted: a token whose remote verdict
// is cached is refused on its next request once its signing key is no
// longer trusted locally (rotated in the JWKS, removed from it, or
// replaced by a reload): the every-request local check still bites on a
// cache hit, and the auth service is not asked.
func TestHybridCachedVerdictKeyNoLongerTrusted(t *testing.T) {
	k := keys(t)
	newKey := rsaKeysBySize(t)[2048]
	tests := []struct {
		name string
		kid  string
		// distrust makes the old key untrusted: it returns the local
		// verifier the next request is checked with.
		distrust func(t *testing.T, srv *jwksServer, l *Local) Verifier
		want     string
	}{
		{"JWKS rotated, same kid name, token without kid", "", func(t *testing.T, srv *jwksServer, l *Local) Verifier {
			srv.set(jwk("k1", "RS256", &newKey.PublicKey))
			rotated(t, l, sign(t, jwt.SigningMethodRS256, newKey, claims(nil), ""))
			return l
		}, models.ReasonBadSignature},
		{"JWKS key removed, token with its kid", "k1", func(t *testing.T, srv *jwksServer, l *Local) Verifier {
			srv.set(jwk("k2", "RS256", &newKey.PublicKey))
			rotated(t, l, sign(t, jwt.SigningMethodRS256, newKey, claims(nil), "k2"))
			return l
		}, models.ReasonUnknownKey},
		{"reload with only another PEM key", "", func(t *testing.T, _ *jwksServer, _ *Local) Verifier {
			return newTestLocal(t, LocalConfig{Issuers: staticIssuer(writePublicPEM(t, &newKey.PublicKey))}, nil)
		}, models.ReasonBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startJWKS(t, jwk("k1", "RS256", &k.rsa.PublicKey))
			l := newTestLocal(t, LocalConfig{Issuers: jwksIssuer(srv.URL)}, nil)
			remote := &countingVerifier{}
			a := hybridAuth(t, remote, l)
			raw := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), tt.kid)
			for i := range 2 { // a miss, then a cache hit
				if _, err := a.Token(t.Context(), raw); err != nil {
					t.Fatalf("request %d before: %v", i, err)
				}
			}
			local := tt.distrust(t, srv, l)
			if local != Verifier(l) {
				a = a.Reconfigured(a.st().cfg, a.st().verifier, local, false)
			}
			if _, ok := a.tokens.Get(TokenKey(raw)); !ok {
				t.Fatal("the remote verdict is no longer cached")
			}
			_, err := a.Token(t.Context(), raw)
			if got := reason(t, err); got != tt.want {
				t.Fatalf("cached verdict, untrusted key: reason %q, want %q", got, tt.want)
			}
			if n := remote.calls.Load(); n != 1 {
				t.Fatalf("%d remote verifies, want 1", n)
			}
		})
	}
}
