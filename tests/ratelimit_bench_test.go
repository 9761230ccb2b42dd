package tests

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"jwtgate/tests/fakeauth"
)

// ratelimitBenchConfig has the same route twice: /api/ without a limit,
// /limited/ with a per-user limit the benchmark never reaches.
const ratelimitBenchConfig = `
auth_service:
  url: "%AUTH%"
database:
  dsn: "%DB%"
log:
  level: error
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
  - path: "/limited/"
    upstream: "%UPSTREAM%"
    rate_limit: {per_user: "1000000/second", per_client: "1000000/second"}
`

// BenchmarkRatelimitWarm compares the warm authenticated path without a
// rate limit and with one (the bucket lookup and take).
func BenchmarkRatelimitWarm(b *testing.B) {
	fa, id := newFake(b, fakeauth.Options{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	b.Cleanup(up.Close)
	gw := startGateway(b, ratelimitBenchConfig, fa.URL(), up.URL, nil)
	access, _ := fa.IssuePair(id)
	for _, p := range []string{"/api/warm", "/limited/warm"} {
		if r := get(b, gw.URL+p, access); r.Status != http.StatusOK {
			b.Fatalf("warm-up %s: %d %s", p, r.Status, r.Body)
		}
	}
	b.Run("off", func(b *testing.B) { benchServe(b, gw.GW.Handler, "/api/orders", access) })
	b.Run("on", func(b *testing.B) { benchServe(b, gw.GW.Handler, "/limited/orders", access) })
}
