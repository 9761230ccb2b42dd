package handlers

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// The keyring adds no allocation to a request: signing through it costs
// what signing with the signer costs, and the JWKS is served from a
// pre-rendered document.
func TestKeyringAddsNoAllocation(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	kr, err := newKeyring(t.Context(), models.IdentityToken{
		Enabled: true, Algorithm: models.AlgES256, KeyFile: filepath.Join(t.TempDir(), "k.pem"), Lifetime: time.Minute, Issuer: "jwtgate",
	}, func() time.Time { return now }, slog.New(slog.DiscardHandler), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kr.close)
	claims := func() jwt.MapClaims { return jwt.MapClaims{"sub": "1"} }
	sig := kr.current()
	direct := testing.AllocsPerRun(200, func() { _, _ = sig.sign(claims(), "billing") })
	viaRing := testing.AllocsPerRun(200, func() { _, _ = kr.sign(claims(), "billing") })
	t.Logf("allocations per identity token: %.0f with the signer, %.0f through the keyring", direct, viaRing)
	if viaRing > direct {
		t.Errorf("signing through the keyring: %.0f allocs, the signer alone %.0f", viaRing, direct)
	}
	if n := testing.AllocsPerRun(200, func() { _ = kr.current().jwksAt(now) }); n != 0 {
		t.Errorf("choosing the JWKS to serve: %.0f allocs, want 0", n)
	}
}
