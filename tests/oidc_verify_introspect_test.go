package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// oidcIntrospectVerify verifies opaque tokens by asking the provider's
// introspection endpoint (found by discovery), users from the answer.
const oidcIntrospectVerify = `
listen: "127.0.0.1:0"
auth_service: {url: "http://127.0.0.1:1", timeout: 2s, circuit: {failures: 2, cool_down: 1m}}
database: {driver: sqlite, dsn: "%DB%"}
auth:
  verify: introspect
  cache: {ttl: 30s, negative_ttl: 5s}
  introspection: {client_id: jwtgate-test, client_secret: "env:JWTGATE_TEST_OIDC_SECRET"}
  local: {discovery_url: "%DISCOVERY%"}
users:
  source: claims
  claims: {id: sub}
  is_staff: '"staff" in (claims.realm_access?.roles ?? [])'
routes:
  - {path: /api/, upstream: "%UPSTREAM%"}
  - {path: /api/staff/, upstream: "%UPSTREAM%", allow: 'user.is_staff'}
introspection: {trusted_networks: [127.0.0.1]}
`

func TestOIDCVerifyIntrospect(t *testing.T) {
	t.Setenv("JWTGATE_TEST_OIDC_SECRET", oidcClientSecret)
	p := oidcStart(t)
	up := startUpstream(t)
	clk := newClock()
	gw := startGateway(t, fill(oidcIntrospectVerify, "DISCOVERY", p.Discovery()), "", up.URL, clk.Now)
	alice := p.Login(t, "alice", "").Access // opaque
	bob := p.Login(t, "bob", "").Access
	if strings.Count(alice, ".") == 2 {
		t.Fatalf("the provider issued a JWT, not an opaque token: %s", alice)
	}
	r := get(t, gw.URL+"/api/x", alice)
	if r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != "alice" {
		t.Fatalf("opaque token: %d %s", r.Status, r.Body)
	}
	if r := get(t, gw.URL+"/api/staff/x", alice); r.Status != http.StatusOK {
		t.Fatalf("alice (staff, from the introspection answer) on staff: %d %s", r.Status, r.Body)
	}
	if r := get(t, gw.URL+"/api/staff/x", bob); r.Status != http.StatusForbidden {
		t.Fatalf("bob on staff: %d %s", r.Status, r.Body)
	}
	// Another first character: "x"+alice[1:] was alice's own token when it
	// began with x (1 run in 64), and the gateway rightly let it through.
	unknown := "x" + alice[1:]
	if alice[0] == 'x' {
		unknown = "y" + alice[1:]
	}
	for name, tok := range map[string]string{"unknown opaque": unknown, "JWT the provider cannot introspect": p.Login(t, "alice", oidcResource).Access} {
		if r := get(t, gw.URL+"/api/x", tok); r.Status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}

	// The served endpoint answers from the same verdict and user.
	if m := oidcIntrospect(t, nil, gw.URL, "", "", "token="+url.QueryEscape(alice)).json(t); m["active"] != true || m["sub"] != "alice" || m["is_staff"] != true {
		t.Fatalf("served introspection of an opaque token: %v", m)
	}

	// Revoked at the provider: served from the cache until cache.ttl,
	// refused after.
	p.Revoke(t, alice)
	if r := get(t, gw.URL+"/api/x", alice); r.Status != http.StatusOK {
		t.Fatalf("cached verdict within ttl: %d", r.Status)
	}
	clk.Advance(31 * time.Second)
	if r := get(t, gw.URL+"/api/x", alice); r.Status != http.StatusUnauthorized {
		t.Fatalf("revoked at the provider, past cache.ttl: %d %s", r.Status, r.Body)
	}
	if r := oidcIntrospect(t, nil, gw.URL, "", "", "token="+url.QueryEscape(alice)); string(r.Body) != `{"active":false}` {
		t.Fatalf("served introspection of a revoked token: %d %s", r.Status, r.Body)
	}

	// Provider down: 503, never 401; the breaker then stops calling.
	p.Stop()
	clk.Advance(31 * time.Second)
	for i := range 3 {
		if r := get(t, gw.URL+"/api/x", bob); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("provider down, call %d: %d %s", i, r.Status, r.Body)
		}
	}
}
