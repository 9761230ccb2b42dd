package handlers

import (
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// Even a route whose fields name registered claims (settings refuse them;
// this builds the route by hand) cannot change the identity token's sub,
// nbf, jti, iss, aud, iat or exp, nor the gateway's own identity claims:
// user 2's token says sub "2" whatever her record holds.
func TestSecMiscIdentityTokenReservedClaims(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sig := testKeyring(t, now)
	idn := newIdentity("X-User-")
	idn.signer = sig
	user := &models.User{ID: "2", Email: "bob@example.com", Username: "bob", IsActive: true,
		Fields: map[string]any{
			"sub": "1", "SUB": "1", "nbf": 9_999_999_999, "jti": "replayed", "iss": "evil", "aud": "other",
			"iat": 1, "exp": 9_999_999_999, "email": "admin@example.com", "is_staff": true, "is-superuser": true,
			"services": []any{"billing"},
		}}
	attrs := user.Attributes()
	rt := &route{CompiledRoute: models.CompiledRoute{Route: models.Route{Name: "billing"}}}
	rt.fields = idn.fields([]string{"sub", "SUB", "nbf", "jti", "iss", "aud", "iat", "exp", "email", "is_staff", "is-superuser", "services"})
	h := http.Header{}
	if err := idn.set(h, &authn.Principal{User: user, Attrs: attrs}, rt); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(h.Get("X-User-Token"), claims, func(*jwt.Token) (any, error) {
		return sig.current().key.Public(), nil
	}, jwt.WithTimeFunc(func() time.Time { return now })); err != nil {
		t.Fatalf("identity token does not verify: %v", err)
	}
	want := map[string]any{
		"sub": "2", "iss": "jwtgate", "aud": "billing", "iat": float64(now.Unix()), "exp": float64(now.Add(time.Minute).Unix()),
		"email": "bob@example.com", "is_staff": false, "is_superuser": false,
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	for _, k := range []string{"nbf", "jti", "SUB", "is-superuser"} {
		if v, ok := claims[k]; ok {
			t.Errorf("claim %s = %v: a mirrored field must not set it", k, v)
		}
	}
	if s, ok := claims["services"].([]any); !ok || len(s) != 1 || s[0] != "billing" {
		t.Errorf("services = %v, want [billing]", claims["services"])
	}
}

// testKeyring is an ES256 identity token keyring (issuer jwtgate, one
// minute lifetime) with a key generated in a temporary directory, whose
// clock is now.
func testKeyring(t *testing.T, now time.Time) *keyring {
	t.Helper()
	sig, err := newKeyring(t.Context(), models.IdentityToken{
		Enabled: true, Algorithm: models.AlgES256, KeyFile: filepath.Join(t.TempDir(), "k.pem"),
		Lifetime: time.Minute, Issuer: "jwtgate",
	}, func() time.Time { return now }, slog.New(slog.DiscardHandler), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sig.close)
	return sig
}
