package authn

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// decodeSpy is a local verifier that takes the pre-checked token; a call
// to Verify means the token would be decoded again to find its issuer.
type decodeSpy struct {
	t       *testing.T
	got     []models.Token
	decoded int
}

func (s *decodeSpy) Verify(context.Context, string) error {
	s.decoded++
	return nil
}

func (s *decodeSpy) VerifyToken(_ context.Context, _ string, tok models.Token) error {
	s.got = append(s.got, tok)
	return nil
}

// In hybrid mode with several issuers, the token is decoded once by the
// pre-checks: the every-request local check gets the pre-checked token
// (its issuer picks the keys) on a cache miss and on a hit, and the user's
// issuer comes from it too, so neither decodes the token again.
func TestDecodeOnceHybridSeveralIssuers(t *testing.T) {
	spy := &decodeSpy{t: t}
	us := newMemUsers()
	us.remote["42"] = models.User{ID: "42", IsActive: true}
	cfg := testConfig()
	cfg.Issuers = []string{testIssuer, "https://other.test"}
	cfg.Issuer = testIssuer
	a, err := New(cfg, Deps{Verifier: &countingVerifier{}, Local: spy, Fetcher: us, Store: us,
		Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil)).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // a miss, then a cache hit
		p, err := a.Authenticate(t.Context(), raw)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if p.Issuer != testIssuer {
			t.Fatalf("call %d: issuer %q", i, p.Issuer)
		}
	}
	if spy.decoded != 0 {
		t.Fatalf("the local check decoded the token again %d times", spy.decoded)
	}
	if len(spy.got) != 2 || spy.got[0].Issuer != testIssuer || spy.got[1].Issuer != testIssuer {
		t.Fatalf("local check got %+v, want the pre-checked token twice", spy.got)
	}
	// A token without iss is refused as before, without a decode.
	noIss, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(map[string]any{"iss": nil})).SignedString([]byte("k"))
	if _, err := a.Authenticate(t.Context(), noIss); reason(t, err) != models.ReasonUnknownIssuer {
		t.Fatalf("token without iss: %v", err)
	}
}
