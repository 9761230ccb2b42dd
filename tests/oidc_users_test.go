package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
)

// oidcConfig is a gateway in front of a real OpenID provider: keys from
// its discovery document, users from the token's claims with issue 13's
// role expressions, routes whose rules read them.
const oidcConfig = `
listen: "127.0.0.1:0"
auth_service: {url: "http://127.0.0.1:1", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
auth:
  verify: local
  local:
    discovery_url: "%DISCOVERY%"
    audience: urn:my-api
    jwks_refetch_interval: 1ms
users:
  source: claims
  claims: {id: sub, email: email, username: preferred_username}
  is_staff: '"staff" in (claims.realm_access?.roles ?? [])'
  is_superuser: '"admin" in (claims.realm_access?.roles ?? [])'
  fields:
    services: 'claims.resource_access?.["my-api"]?.roles ?? []'
routes:
  - {path: /api/, upstream: "%UPSTREAM%", identity_headers: {fields: [services]}}
  - {path: /api/billing/, upstream: "%UPSTREAM%", allow: '"billing" in user.services'}
  - {path: /api/admin/, upstream: "%UPSTREAM%", allow: 'user.is_superuser'}
  - {path: /api/staff/, upstream: "%UPSTREAM%", allow: 'user.is_staff && claims.preferred_username == user.username'}
`

// oidcGateway starts a gateway on cfg against provider p.
func oidcGateway(t *testing.T, cfg string, p *oidcProvider, up *upstream, kv ...string) *gateway {
	t.Helper()
	return startGateway(t, fill(cfg, append([]string{"DISCOVERY", p.Discovery(), "ISSUER", p.URL}, kv...)...), "", up.URL, nil)
}

func TestOIDCClaimsMirrorAndRoles(t *testing.T) {
	p := oidcStart(t)
	up := startUpstream(t)
	gw := oidcGateway(t, oidcConfig, p, up)
	alice := p.Login(t, "alice", oidcResource).Access
	root := p.Login(t, "root", oidcResource).Access
	bob := p.Login(t, "bob", oidcResource).Access

	r := get(t, gw.URL+"/api/x", alice)
	if r.Status != http.StatusOK {
		t.Fatalf("alice /api/: %d %s", r.Status, r.Body)
	}
	h := r.echo(t).Headers
	if h.Get("X-User-Id") != "alice" || h.Get("X-User-Email") != "alice@example.test" || h.Get("X-User-Username") != "alice" ||
		h.Get("X-User-Is-Staff") != "true" || h.Get("X-User-Services") != `["billing","reports"]` {
		t.Fatalf("identity headers from claims: %v", identityHeaders(h))
	}
	for _, tt := range []struct {
		who, token, path string
		want             int
	}{
		{"alice", alice, "/api/billing/x", 200}, {"alice", alice, "/api/admin/x", 403}, {"alice", alice, "/api/staff/x", 200},
		{"root", root, "/api/billing/x", 403}, {"root", root, "/api/admin/x", 200}, {"root", root, "/api/staff/x", 200},
		{"bob", bob, "/api/billing/x", 403}, {"bob", bob, "/api/admin/x", 403}, {"bob", bob, "/api/staff/x", 403},
		{"bob", bob, "/api/x", 200},
	} {
		if r := get(t, gw.URL+tt.path, tt.token); r.Status != tt.want {
			t.Errorf("%s %s: %d, want %d: %s", tt.who, tt.path, r.Status, tt.want, r.Body)
		}
	}
	u, err := gw.GW.Store.UserByKey(t.Context(), models.UserKey{ID: "alice"})
	if err != nil || u.Email != "alice@example.test" || !u.IsStaff || u.IsSuperuser || u.Username != "alice" {
		t.Fatalf("alice's mirror: %+v %v", u, err)
	}
	seen := u.UpdatedAt

	// Same token again: the warm path writes nothing.
	for range 3 {
		get(t, gw.URL+"/api/x", alice)
	}
	if u2, _ := gw.GW.Store.UserByKey(t.Context(), models.UserKey{ID: "alice"}); !u2.UpdatedAt.Equal(seen) {
		t.Fatalf("the mirror was written again for the same claims: %v then %v", seen, u2.UpdatedAt)
	}

	// A new token with the same claims writes nothing either.
	if r := get(t, gw.URL+"/api/x", p.Login(t, "alice", oidcResource).Access); r.Status != http.StatusOK {
		t.Fatalf("alice's second token: %d", r.Status)
	}
	if u2, _ := gw.GW.Store.UserByKey(t.Context(), models.UserKey{ID: "alice"}); !u2.UpdatedAt.Equal(seen) {
		t.Fatalf("the mirror was written again for a new token with the same claims: %v then %v", seen, u2.UpdatedAt)
	}

	// The provider makes alice an admin and takes billing away: her next
	// token says so, and the mirror follows.
	p.SetAccount(t, "alice", map[string]any{
		"email": "alice@new.test", "preferred_username": "alice",
		"realm_access":    map[string]any{"roles": []string{"staff", "admin"}},
		"resource_access": map[string]any{"my-api": map[string]any{"roles": []string{"reports"}}},
	})
	alice2 := p.Login(t, "alice", oidcResource).Access
	if r := get(t, gw.URL+"/api/admin/x", alice2); r.Status != http.StatusOK {
		t.Fatalf("alice as admin: %d %s", r.Status, r.Body)
	}
	if r := get(t, gw.URL+"/api/billing/x", alice2); r.Status != http.StatusForbidden {
		t.Fatalf("alice without billing: %d %s", r.Status, r.Body)
	}
	u, err = gw.GW.Store.UserByKey(t.Context(), models.UserKey{ID: "alice"})
	if err != nil || u.Email != "alice@new.test" || !u.IsSuperuser {
		t.Fatalf("alice's mirror after the claim change: %+v %v", u, err)
	}

	// A token the provider did not sign, or for another audience, is 401.
	forged := resignHS(t, alice2)
	if r := get(t, gw.URL+"/api/x", forged); r.Status != http.StatusUnauthorized {
		t.Fatalf("forged token: %d", r.Status)
	}
	if opaque := p.Login(t, "alice", "").Access; get(t, gw.URL+"/api/x", opaque).Status != http.StatusUnauthorized {
		t.Fatal("an opaque token (not for urn:my-api) was accepted by verify: local")
	}
}

// resignHS re-signs a token's claims with HS256 and a guessed secret.
func resignHS(t *testing.T, token string) string {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatal(err)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOIDCKeyRotationWithoutRestart(t *testing.T) {
	p := oidcStart(t)
	up := startUpstream(t)
	gw := oidcGateway(t, oidcConfig, p, up)
	before := p.Login(t, "bob", oidcResource).Access
	if r := get(t, gw.URL+"/api/x", before); r.Status != http.StatusOK {
		t.Fatalf("before rotation: %d %s", r.Status, r.Body)
	}
	kid := p.Rotate(t)
	after := p.Login(t, "bob", oidcResource).Access
	if tok, _, _ := jwt.NewParser().ParseUnverified(after, jwt.MapClaims{}); tok == nil || tok.Header["kid"] != kid {
		t.Fatalf("the provider did not sign with the new key %s", kid)
	}
	if r := get(t, gw.URL+"/api/x", after); r.Status != http.StatusOK {
		t.Fatalf("token signed with the rotated key: %d %s", r.Status, r.Body)
	}
	if r := get(t, gw.URL+"/api/x", before); r.Status != http.StatusOK {
		t.Fatalf("token signed with the old, still published key: %d %s", r.Status, r.Body)
	}
}

func TestOIDCDiscoveryChecks(t *testing.T) {
	p := oidcStart(t)
	up := startUpstream(t)
	for name, tt := range map[string]struct{ cfg, want string }{
		"issuer mismatch": {strings.Replace(oidcConfig, "    audience: urn:my-api\n", "    audience: urn:my-api\n    issuer: https://other.example\n", 1),
			`auth.local.issuer is "https://other.example" but its discovery document says`},
		"provider down": {strings.Replace(oidcConfig, "%DISCOVERY%", "http://127.0.0.1:1/.well-known/openid-configuration", 1),
			"auth.local.discovery_url"},
		"not a discovery document": {strings.Replace(oidcConfig, "%DISCOVERY%", p.URL+"/jwks", 1),
			"no issuer"},
	} {
		t.Run(name, func(t *testing.T) {
			s := loadEdgeSettings(t, fill(tt.cfg, "DISCOVERY", p.Discovery()), "", up.URL)
			_, err := newGatewayErr(t, s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewGateway error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
