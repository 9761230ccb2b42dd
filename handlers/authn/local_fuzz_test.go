package authn

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// FuzzLocalVerify feeds arbitrary credentials through the whole local path
// of an API call: size cap, cache, models.PrecheckToken and the local
// verifier (static RS256, ES256 and HS256 keys, issuer and audience
// required). It must never panic, every refusal must be a token refusal
// with a reason (static keys are never "unavailable"), and whatever it
// accepts must also pass an independent strict golang-jwt parse with the
// right key and the pre-checks. The seed corpus in
// testdata/fuzz/FuzzLocalVerify holds valid and refused tokens signed with
// the keys in testdata; it runs in plain go test.
func FuzzLocalVerify(f *testing.F) {
	k := keys(f)
	l := newTestLocal(f, LocalConfig{
		Issuers: staticIssuer("testdata/rsa_public.pem", "testdata/ec_public.pem", "env:JWT_SECRET"),
	}, env(map[string]string{"JWT_SECRET": testSecret}))
	a, err := New(Config{UserIDClaim: "user_id", CacheSize: 1024, TTL: 30 * time.Second, NegativeTTL: 5 * time.Second,
		UserCacheSz: 16, RefreshAfter: time.Minute, CallTimeout: time.Second}, Deps{Verifier: l, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	strict := jwt.NewParser(jwt.WithValidMethods([]string{"RS256", "ES256", "HS256"}), jwt.WithIssuer(testIssuer),
		jwt.WithAudience(testAudience), jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return testNow }))
	keyFor := func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case "RS256":
			return &k.rsa.PublicKey, nil
		case "ES256":
			return &k.ec.PublicKey, nil
		case "HS256":
			return []byte(testSecret), nil
		}
		return nil, errors.New("no key")
	}

	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := a.Token(t.Context(), raw)
		if err != nil {
			if !errors.Is(err, models.ErrTokenInvalid) || models.TokenReason(err) == "" {
				t.Fatalf("refusal without a token reason: %v", err)
			}
			return
		}
		if _, err := strict.Parse(raw, keyFor); err != nil {
			t.Fatalf("accepted a token a strict parse refuses: %v", err)
		}
		pre, err := models.PrecheckToken(raw, "user_id", 0, testNow)
		if err != nil {
			t.Fatalf("accepted a token the pre-checks refuse: %v", err)
		}
		if pre.UserID != tok.UserID || tok.UserID == "" {
			t.Fatalf("user id %q, pre-check says %q", tok.UserID, pre.UserID)
		}
	})
}
