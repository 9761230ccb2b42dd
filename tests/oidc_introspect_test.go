package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

const oidcIntrospectConfig = oidcConfig + `
introspection:
  clients:
    - {id: billing-svc, secret: "env:JWTGATE_TEST_INTROSPECT_SECRET"}
    - {id: unset-svc, secret: "env:JWTGATE_TEST_INTROSPECT_UNSET"}
  trusted_networks: [127.0.0.3]
`

// oidcIntrospect posts token to /auth/introspect/ from client c (nil: the
// shared one, 127.0.0.1) with HTTP Basic id:secret when id is set.
func oidcIntrospect(t *testing.T, c *http.Client, gwURL, id, secret, form string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, gwURL+"/auth/introspect/", nil)
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	return callReq(t, c, req, "application/x-www-form-urlencoded", form, nil)
}

func TestOIDCIntrospectionServed(t *testing.T) {
	t.Setenv("JWTGATE_TEST_INTROSPECT_SECRET", "s3cret")
	p := oidcStart(t)
	up := startUpstream(t)
	gw := oidcGateway(t, oidcIntrospectConfig, p, up)
	alice := p.Login(t, "alice", oidcResource).Access
	form := "token=" + url.QueryEscape(alice)

	r := oidcIntrospect(t, nil, gw.URL, "billing-svc", "s3cret", form)
	if r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("introspect: %d %v %s", r.Status, r.Header, r.Body)
	}
	m := r.json(t)
	for k, want := range map[string]any{
		"active": true, "sub": "alice", "iss": p.URL, "aud": oidcResource, "client_id": oidcClientID, "token_type": "Bearer",
		"username": "alice", "email": "alice@example.test", "is_staff": true, "is_superuser": false,
		"services": []any{"billing", "reports"},
	} {
		if !reflect.DeepEqual(m[k], want) {
			t.Errorf("%s = %#v, want %#v", k, m[k], want)
		}
	}
	if _, ok := m["exp"].(float64); !ok || !strings.Contains(m["scope"].(string), "openid") {
		t.Errorf("exp / scope missing: %s", r.Body)
	}
	// From a trusted network, no credentials needed (the TCP peer counts).
	if r := oidcIntrospect(t, clientFrom(t, "127.0.0.3"), gw.URL, "", "", form); r.Status != http.StatusOK || r.json(t)["active"] != true {
		t.Fatalf("trusted network: %d %s", r.Status, r.Body)
	}

	// Callers who are not clients: 401, whatever the token.
	for name, creds := range map[string][2]string{
		"wrong secret": {"billing-svc", "s3cre"}, "secret of another case": {"billing-svc", "S3CRET"},
		"unknown client": {"other", "s3cret"}, "client whose secret is unset": {"unset-svc", ""},
		"no credentials": {"", ""}, "empty secret": {"billing-svc", ""},
	} {
		r := oidcIntrospect(t, nil, gw.URL, creds[0], creds[1], form)
		if r.Status != http.StatusUnauthorized || strings.Contains(string(r.Body), "alice") {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	// A forwarded address from an untrusted peer does not make it trusted.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, gw.URL+"/auth/introspect/", nil)
	if r := callReq(t, nil, req, "application/x-www-form-urlencoded", form, map[string]string{"X-Forwarded-For": "127.0.0.3", "X-Real-IP": "127.0.0.3"}); r.Status != http.StatusUnauthorized {
		t.Fatalf("X-Forwarded-For 127.0.0.3 from 127.0.0.1: %d", r.Status)
	}

	// Tokens the gateway refuses: {"active": false} and nothing else.
	for name, tok := range map[string]string{
		"forged": resignHS(t, alice), "garbage": "abc.def.ghi", "opaque from the provider": p.Login(t, "bob", "").Access,
		"tampered": alice[:len(alice)-4] + "AAAA",
	} {
		r := oidcIntrospect(t, nil, gw.URL, "billing-svc", "s3cret", "token="+url.QueryEscape(tok))
		var got map[string]any
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &got) != nil || !reflect.DeepEqual(got, map[string]any{"active": false}) {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	if r := oidcIntrospect(t, nil, gw.URL, "billing-svc", "s3cret", "nothing=1"); r.Status != http.StatusBadRequest {
		t.Fatalf("no token: %d %s", r.Status, r.Body)
	}
}

func TestOIDCIntrospectionOffByDefault(t *testing.T) {
	p := oidcStart(t)
	up := startUpstream(t)
	gw := oidcGateway(t, oidcConfig, p, up)
	alice := p.Login(t, "alice", oidcResource).Access
	if r := oidcIntrospect(t, clientFrom(t, "127.0.0.3"), gw.URL, "", "", "token="+url.QueryEscape(alice)); r.Status != http.StatusNotFound {
		t.Fatalf("introspection without clients or networks: %d %s", r.Status, r.Body)
	}
}
