package tests

import (
	"net/http"
	"strings"
	"testing"

	"jwtgate/models"
)

// oidcTwoIssuers trusts two providers, each found by its discovery
// document, with users from claims: no user_endpoint needed.
const oidcTwoIssuers = `
listen: "127.0.0.1:0"
auth_service: {url: "http://127.0.0.1:1", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
auth:
  verify: local
  local:
    audience: urn:my-api
    issuers:
      - {discovery_url: "%ONE%"}
      - {discovery_url: "%TWO%"}
users:
  source: claims
  is_superuser: '"admin" in (claims.realm_access?.roles ?? [])'
routes:
  - {path: /api/, upstream: "%UPSTREAM%"}
  - {path: /api/admin/, upstream: "%UPSTREAM%", allow: 'user.is_superuser'}
`

func TestOIDCSeveralIssuersKeyUsersByIssuerAndSub(t *testing.T) {
	one, two := oidcStart(t), oidcStart(t)
	up := startUpstream(t)
	gw := startGateway(t, fill(oidcTwoIssuers, "ONE", one.Discovery(), "TWO", two.Discovery()), "", up.URL, nil)
	two.SetAccount(t, "alice", map[string]any{"email": "mallory@two.test", "realm_access": map[string]any{"roles": []string{"admin"}}})
	a1 := one.Login(t, "alice", oidcResource).Access
	a2 := two.Login(t, "alice", oidcResource).Access

	r1, r2 := get(t, gw.URL+"/api/x", a1), get(t, gw.URL+"/api/x", a2)
	if r1.Status != http.StatusOK || r2.Status != http.StatusOK {
		t.Fatalf("alice of each issuer: %d %d %s %s", r1.Status, r2.Status, r1.Body, r2.Body)
	}
	h1, h2 := r1.echo(t).Headers, r2.echo(t).Headers
	if h1.Get("X-User-Issuer") != one.URL || h2.Get("X-User-Issuer") != two.URL || h1.Get("X-User-Id") != "alice" || h2.Get("X-User-Id") != "alice" {
		t.Fatalf("issuer headers: %v / %v", identityHeaders(h1), identityHeaders(h2))
	}
	if h1.Get("X-User-Email") != "alice@example.test" || h2.Get("X-User-Email") != "mallory@two.test" {
		t.Fatalf("one issuer's alice took the other's record: %v / %v", identityHeaders(h1), identityHeaders(h2))
	}
	// The second issuer's admin "alice" is not the first issuer's alice.
	if r := get(t, gw.URL+"/api/admin/x", a1); r.Status != http.StatusForbidden {
		t.Fatalf("issuer one's alice on admin: %d", r.Status)
	}
	if r := get(t, gw.URL+"/api/admin/x", a2); r.Status != http.StatusOK {
		t.Fatalf("issuer two's alice on admin: %d %s", r.Status, r.Body)
	}
	for iss, email := range map[string]string{one.URL: "alice@example.test", two.URL: "mallory@two.test"} {
		u, err := gw.GW.Store.UserByKey(t.Context(), models.UserKey{Issuer: iss, ID: "alice"})
		if err != nil || u.Email != email {
			t.Fatalf("mirror of (%s, alice): %+v %v", iss, u, err)
		}
	}
	// A token of one issuer whose iss names the other is refused.
	if r := get(t, gw.URL+"/api/x", resignHS(t, a2)); r.Status != http.StatusUnauthorized {
		t.Fatalf("forged: %d", r.Status)
	}
	if !strings.HasPrefix(one.URL, "http://127.0.0.1:") || one.URL == two.URL {
		t.Fatal("the two providers must be two issuers")
	}
}
