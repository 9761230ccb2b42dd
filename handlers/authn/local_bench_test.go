package authn

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// benchTokens signs one valid token per algorithm with the test keys.
func benchTokens(b *testing.B) map[string]string {
	k := keys(b)
	return map[string]string{
		"RS256": sign(b, jwt.SigningMethodRS256, k.rsa, claims(nil), ""),
		"ES256": sign(b, jwt.SigningMethodES256, k.ec, claims(nil), ""),
		"HS256": sign(b, jwt.SigningMethodHS256, []byte(testSecret), claims(nil), ""),
	}
}

func benchLocal(b *testing.B) *Local { return staticLocal(b) }

// BenchmarkLocalVerify: what verify: local costs for a token not yet in
// the cache: the pre-checks plus signature, alg, key type, exp, iss, aud.
// Compare with BenchmarkAuthenticateWarm (the warm remote-cache path).
func BenchmarkLocalVerify(b *testing.B) {
	l := benchLocal(b)
	toks := benchTokens(b)
	for _, alg := range []string{"RS256", "ES256", "HS256"} {
		b.Run(alg, func(b *testing.B) {
			raw, ctx := toks[alg], b.Context()
			b.ReportAllocs()
			for b.Loop() {
				tok, err := models.PrecheckToken(raw, "user_id", 0, testNow)
				if err != nil {
					b.Fatal(err)
				}
				if err := l.VerifyToken(ctx, raw, tok); err != nil { // as the Authenticator calls it
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLocalVerifyJWKS: the same through a JWKS key set, by kid.
func BenchmarkLocalVerifyJWKS(b *testing.B) {
	k := keys(b)
	srv := startJWKS(b, jwk("k1", "RS256", &k.rsa.PublicKey), jwk("e1", "ES256", &k.ec.PublicKey))
	l := newTestLocal(b, LocalConfig{Issuers: jwksIssuer(srv.URL)}, nil)
	for alg, tok := range map[string]string{
		"RS256": sign(b, jwt.SigningMethodRS256, k.rsa, claims(nil), "k1"),
		"ES256": sign(b, jwt.SigningMethodES256, k.ec, claims(nil), "e1"),
	} {
		b.Run(alg, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthenticateWarmLocal: verify: local, token and user cached: the
// same path as BenchmarkAuthenticateWarm, so local mode's warm cost equals
// remote mode's.
func BenchmarkAuthenticateWarmLocal(b *testing.B) {
	benchAuthenticateWarm(b, false)
}

// BenchmarkAuthenticateWarmHybrid: verify: hybrid, remote verdict and user
// cached: the local check runs on every request.
func BenchmarkAuthenticateWarmHybrid(b *testing.B) {
	benchAuthenticateWarm(b, true)
}

func benchAuthenticateWarm(b *testing.B, hybrid bool) {
	l := benchLocal(b)
	toks := benchTokens(b)
	for _, alg := range []string{"RS256", "ES256", "HS256"} {
		b.Run(alg, func(b *testing.B) {
			us := newMemUsers()
			us.remote["42"] = models.User{ID: "42", IsActive: true, Email: "a@x"}
			var a *Authenticator
			if hybrid {
				a = newAuth(b, &countingVerifier{}, us)
				a = a.Reconfigured(a.st().cfg, a.st().verifier, l, false)
			} else {
				a = newAuth(b, l, us)
			}
			a.now = func() time.Time { return testNow }
			raw, ctx := toks[alg], b.Context()
			if _, err := a.Authenticate(ctx, raw); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
