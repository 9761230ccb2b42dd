package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"jwtgate/tests/fakeauth"
)

// The served introspection works the same for SimpleJWT tokens: the
// auth service's user comes back with the claims, a token revoked at
// logout is inactive, and an unreachable auth service is 503, never
// inactive.
func TestOIDCIntrospectionSimpleJWT(t *testing.T) {
	fa, aliceID := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	gw := startGateway(t, opsConfig("  revoke_on_logout: true\n")+"introspection: {trusted_networks: [127.0.0.1]}\n", fa.URL(), up.URL, nil)
	access, refresh := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))

	r := oidcIntrospect(t, nil, gw.URL, "", "", "token="+url.QueryEscape(access))
	m := r.json(t)
	for k, want := range map[string]any{
		"active": true, "sub": itoa(aliceID), "email": "alice@example.com", "username": "alice",
		"services": []any{"billing"}, "is_staff": false, "token_type": "Bearer",
	} {
		if !reflect.DeepEqual(m[k], want) {
			t.Errorf("%s = %#v, want %#v (%s)", k, m[k], want, r.Body)
		}
	}

	body := `{"refresh":"` + refresh + `","access":"` + access + `"}`
	if r := call(t, http.MethodPost, gw.URL+"/auth/token/blacklist/", "application/json", body); r.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	r = oidcIntrospect(t, nil, gw.URL, "", "", "token="+url.QueryEscape(access))
	var got map[string]any
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &got) != nil || !reflect.DeepEqual(got, map[string]any{"active": false}) {
		t.Fatalf("revoked token: %d %s", r.Status, r.Body)
	}

	fresh, _ := fa.IssuePair(aliceID)
	fa.Stop()
	if r := oidcIntrospect(t, nil, gw.URL, "", "", "token="+url.QueryEscape(fresh)); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("auth service down: %d %s, want 503", r.Status, r.Body)
	}
}
