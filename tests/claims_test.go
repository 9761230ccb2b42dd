package tests

import (
	"net/http"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// TestAllowRuleReadsClaimsOfCachedToken: the verify cache does not keep a
// token's claims (memory), so a rule that reads claims must see them as
// well when the verdict comes from the cache: the second call of each token
// decides as the first, without calling home.
func TestAllowRuleReadsClaimsOfCachedToken(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{})
	cfg := `
auth_service: {url: "%AUTH%"}
database: {dsn: "%DB%"}
log: {level: warn}
routes:
  - path: /api/
    upstream: "%UPSTREAM%"
    allow: 'claims.level >= 3 && claims.scope == "orders"'
`
	gw := startGateway(t, cfg, fa.URL(), startUpstream(t).URL, nil)
	token := func(level int, scope string) string {
		c := fa.NewClaims(id, fakeauth.TypeAccess)
		c["level"], c["scope"], c["exp"] = level, scope, time.Now().Add(time.Hour).Unix()
		return fa.Sign(c)
	}
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"level 5, orders", token(5, "orders"), http.StatusOK},
		{"level 1, orders", token(1, "orders"), http.StatusForbidden},
		{"level 5, billing", token(5, "billing"), http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := fa.Calls(fakeauth.PathVerify)
			for i := range 3 {
				if r := get(t, gw.URL+"/api/x", tt.token); r.Status != tt.want {
					t.Fatalf("call %d: %d, want %d: %s", i+1, r.Status, tt.want, r.Body)
				}
			}
			if n := fa.Calls(fakeauth.PathVerify) - calls; n != 1 {
				t.Fatalf("%d verify calls for three requests, want 1 (cached)", n)
			}
		})
	}
}
