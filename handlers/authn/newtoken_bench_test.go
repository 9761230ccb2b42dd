package authn

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// BenchmarkAuthenticateNewToken: verify: local with every request a token
// whose verdict is not cached (64 tokens of one cached user, round robin):
// the miss path without the HTTP pipeline. cache=1 is load row 11's
// verdict cache (every verdict stored evicts the one before), cache=16
// BenchmarkPathLocalNewToken*'s. Measure with callgrind (see
// tests/bench_paths_test.go); allocations are exact with -benchmem.
func BenchmarkAuthenticateNewToken(b *testing.B) {
	l := benchLocal(b)
	k := keys(b)
	methods := map[string]struct {
		m   jwt.SigningMethod
		key any
	}{
		"RS256": {jwt.SigningMethodRS256, k.rsa},
		"HS256": {jwt.SigningMethodHS256, []byte(testSecret)},
	}
	for _, alg := range []string{"RS256", "HS256"} {
		toks := make([]string, 64)
		for i := range toks {
			toks[i] = sign(b, methods[alg].m, methods[alg].key, claims(map[string]any{"jti": fmt.Sprintf("new-token-%d", i)}), "")
		}
		for _, size := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/cache=%d", alg, size), func(b *testing.B) {
				us := newMemUsers()
				us.remote["42"] = models.User{ID: "42", IsActive: true, Email: "a@x"}
				cfg := testConfig()
				cfg.CacheSize = size
				a, err := New(cfg, Deps{Verifier: l, Fetcher: us, Store: us, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return testNow }})
				if err != nil {
					b.Fatal(err)
				}
				ctx := b.Context()
				if _, err := a.Authenticate(ctx, toks[len(toks)-1]); err != nil { // the user cached
					b.Fatal(err)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := a.Authenticate(ctx, toks[i%len(toks)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}
