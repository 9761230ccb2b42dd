package models_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"jwtgate/models"
)

func TestSettingsProblemsOIDC(t *testing.T) {
	settingsProblemRows(t, []settingsProblemRow{
		{"unknown source", "users: {source: token}", "users.source", 0, `must be auth_service, claims or userinfo, got "token"`},
		{"source in upper case", "users: {source: Claims}", "users.source", 0, "must be auth_service, claims or userinfo"},
		{"unmapped field", "users: {source: claims, claims: {is_staff: staff}}", "users.claims.is_staff", 0, "is not a mapped field"},
		{"empty claim", "users: {source: claims, claims: {email: ' '}}", "users.claims.email", 0, "must name a claim"},
		{"field shadows a column", "users: {source: claims, fields: {is_superuser: 'true'}}", "users.fields.is_superuser", 0, "is a mirrored column"},
		{"field not a header token", "users: {source: claims, fields: {'a b': 'true'}}", "users.fields.a b", 0, "must be letters"},
		{"userinfo without discovery", "users: {source: userinfo}", "users.source", 0, "userinfo needs auth.local.discovery_url"},
		{"bad discovery url", "auth: {verify: local, local: {discovery_url: 'file:///x'}}", "auth.local.discovery_url", 0, "must be an http:// or https:// URL"},
		{"discovery and jwks url", "auth: {verify: local, local: {discovery_url: 'http://127.0.0.1:1/d', jwks_url: 'http://127.0.0.1:1/j'}}", "auth.local.discovery_url", 0, "sets the keys itself"},
		{"discovery beside issuers", "auth: {local: {discovery_url: 'http://127.0.0.1:1/d', issuers: [{issuer: a, keys: [k.pem]}]}}", "auth.local.discovery_url", 0, "must be empty when auth.local.issuers is set"},
		{"issuer discovery and keys", "auth: {local: {issuers: [{discovery_url: 'http://127.0.0.1:1/d', keys: [k.pem]}]}}", "auth.local.issuers[0]", 0, "needs either jwks_url or keys (exactly one), or discovery_url alone"},
		{"proxy header not a name", "auth: {proxy_header: 'X Token'}", "auth.proxy_header", 0, "must be a header name"},
		{"proxy header is the token header", "auth: {proxy_header: authorization}", "auth.proxy_header", 0, "must differ from auth.header_name"},
		{"proxy header is the token header respelt", "auth: {header_name: X-Token, proxy_header: x_token}", "auth.proxy_header", 0, "must differ from auth.header_name"},
		{"client without id", "introspection: {clients: [{secret: 'env:S'}]}", "introspection.clients[0].id", 0, "must be a client id"},
		{"client id with colon", "introspection: {clients: [{id: 'a:b', secret: 'env:S'}]}", "introspection.clients[0].id", 0, "must be a client id without ':'"},
		{"duplicate client", "introspection: {clients: [{id: a, secret: 'env:S'}, {id: a, secret: 'env:T'}]}", "introspection.clients[1].id", 0, `"a" is also introspection.clients[0].id`},
		{"literal secret", "introspection: {clients: [{id: a, secret: hunter2}]}", "introspection.clients[0].secret", 0, "must be env:NAME"},
		{"introspect without endpoint", "auth: {verify: introspect, introspection: {client_id: c, client_secret: 'env:S'}}", "auth.introspection.url", 0, "verify: introspect needs auth.introspection.url or auth.local.discovery_url"},
		{"introspect without client", "auth: {verify: introspect, introspection: {url: 'http://127.0.0.1:1/i', client_secret: 'env:S'}}", "auth.introspection.client_id", 0, "must not be empty"},
		{"introspect literal secret", "auth: {verify: introspect, introspection: {url: 'http://127.0.0.1:1/i', client_id: c, client_secret: s}}", "auth.introspection.client_secret", 0, "must be env:NAME"},
		{"introspect bad url", "auth: {verify: introspect, introspection: {url: 'ftp://x', client_id: c, client_secret: 'env:S'}}", "auth.introspection.url", 0, "must be an http:// or https:// URL"},
		{"bad network", "introspection: {trusted_networks: [10.0.0.0/33]}", "introspection.trusted_networks[0]", 0, "want a CIDR"},
	})
}

// oidcCompile compiles settings YAML, failing the test on problems.
func oidcCompile(t *testing.T, y string) *models.Runtime {
	t.Helper()
	s, probs := models.ParseAndValidate([]byte(y), func(string) string { return "" })
	if len(probs) > 0 {
		t.Fatalf("problems: %v", models.Problems(probs))
	}
	rt, probs := models.Compile(s)
	if len(probs) > 0 {
		t.Fatalf("compile problems: %v", models.Problems(probs))
	}
	return rt
}

// oidcIssueUsers is the users section of issue 13, verbatim.
const oidcIssueUsers = `
users:
  source: claims
  claims: {id: sub, email: email, username: preferred_username}
  is_staff: '"staff" in (claims.realm_access?.roles ?? [])'
  is_superuser: '"admin" in (claims.realm_access?.roles ?? [])'
  fields:
    services: 'claims.resource_access?.["my-api"]?.roles ?? []'
`

func TestOIDCUserMapping(t *testing.T) {
	rt := oidcCompile(t, oidcIssueUsers)
	if rt.Settings.Auth.UserIDClaim != "sub" {
		t.Fatalf("user_id_claim = %q, want sub by default with users from claims", rt.Settings.Auth.UserIDClaim)
	}
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name   string
		claims map[string]any
		want   models.User
	}{
		{"keycloak staff with services", map[string]any{
			"sub": "u-1", "email": "a@x", "preferred_username": "alice", "given_name": "Alice", "family_name": "A",
			"realm_access":    map[string]any{"roles": []any{"staff"}},
			"resource_access": map[string]any{"my-api": map[string]any{"roles": []any{"billing"}}},
		}, models.User{ID: "u-1", Email: "a@x", Username: "alice", FirstName: "Alice", LastName: "A", IsActive: true, IsStaff: true,
			Fields: map[string]any{"services": []any{"billing"}}}},
		{"admin without resource access", map[string]any{
			"sub": "u-2", "realm_access": map[string]any{"roles": []any{"admin", "staff"}},
		}, models.User{ID: "u-2", IsActive: true, IsStaff: true, IsSuperuser: true, Fields: map[string]any{"services": []any{}}}},
		{"no roles at all", map[string]any{"sub": "u-3"},
			models.User{ID: "u-3", IsActive: true, Fields: map[string]any{"services": []any{}}}},
		{"roles of another client only", map[string]any{
			"sub": "u-4", "resource_access": map[string]any{"other": map[string]any{"roles": []any{"admin"}}},
		}, models.User{ID: "u-4", IsActive: true, Fields: map[string]any{"services": []any{}}}},
		{"numeric sub", map[string]any{"sub": float64(7)},
			models.User{ID: "7", IsActive: true, Fields: map[string]any{"services": []any{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := rt.Users.User("https://idp", tt.claims, now)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Issuer, tt.want.FetchedAt = "https://idp", now
			if !reflect.DeepEqual(u, tt.want) {
				t.Fatalf("user\n%+v\nwant\n%+v", u, tt.want)
			}
			if !models.SameUser(u, tt.want) {
				t.Fatal("SameUser says a record differs from itself")
			}
		})
	}
	if _, err := rt.Users.User("", map[string]any{"email": "a@x"}, now); err == nil {
		t.Fatal("claims without sub made a user")
	}
	a, _ := rt.Users.User("", map[string]any{"sub": "1", "realm_access": map[string]any{"roles": []any{"staff"}}}, now)
	b, _ := rt.Users.User("", map[string]any{"sub": "1"}, now)
	if models.SameUser(a, b) {
		t.Fatal("a lost staff role is not a difference")
	}
}

func TestOIDCUserExpressionsNameTheirKey(t *testing.T) {
	for key, y := range map[string]string{
		"users.is_staff":        "users: {source: claims, is_staff: 'claims.roles +'}",
		"users.is_superuser":    "users: {source: claims, is_superuser: '\"x\"'}", // not a bool
		"users.fields.services": "users: {source: claims, fields: {services: 'repeat(\"a\", 1000000000)'}}",
	} {
		s, probs := models.ParseAndValidate([]byte(y), func(string) string { return "" })
		if len(probs) > 0 {
			t.Fatalf("%s: validation problems: %v", key, models.Problems(probs))
		}
		_, probs = models.Compile(s)
		if len(probs) != 1 || probs[0].Key != key || !strings.Contains(probs[0].Msg, "does not compile") {
			t.Fatalf("%s: problems %v", key, models.Problems(probs))
		}
	}
	// An explicit user_id_claim is kept.
	if rt := oidcCompile(t, "auth: {user_id_claim: uid}\nusers: {source: claims}"); rt.Settings.Auth.UserIDClaim != "uid" {
		t.Fatalf("user_id_claim = %q", rt.Settings.Auth.UserIDClaim)
	}
	// The SimpleJWT default does not move.
	if rt := oidcCompile(t, ""); rt.Settings.Auth.UserIDClaim != "user_id" || rt.Users != nil {
		t.Fatalf("defaults moved: %q %v", rt.Settings.Auth.UserIDClaim, rt.Users)
	}
}
