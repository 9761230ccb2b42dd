package tests

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// decideRoutes are checkRoutes plus a route whose rule reads a request
// header and the method, so header and method handling drift shows too.
const decideRoutes = checkRoutes + `
  - path: "/tenant/"
    upstream: "%API%"
    allow: 'request.headers["x-tenant"] == user.tenant && request.method != "DELETE"'
`

// decideClass is what a client or a proxy's auth hook makes of a status:
// allowed, unauthenticated, or refused (the proxy's 400/403/404/405 are
// forward-auth's 403).
func decideClass(status int) string {
	switch {
	case status >= 200 && status < 300:
		return "allow"
	case status == http.StatusUnauthorized:
		return "unauthenticated"
	case status == http.StatusBadRequest, status == http.StatusForbidden, status == http.StatusNotFound, status == http.StatusMethodNotAllowed:
		return "refuse"
	}
	return "unexpected " + strconv.Itoa(status)
}

// decideProxy sends method and the raw request target (not cleaned or
// re-encoded by the client) through the proxy.
func decideProxy(t *testing.T, gw, method, target, token string, hdr map[string]string) reply {
	t.Helper()
	u, err := url.Parse(gw)
	if err != nil {
		t.Fatal(err)
	}
	req := mustReq(t, http.MethodGet, gw)
	req.Method = method
	req.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: target}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return callReq(t, nil, req, "", "", hdr)
}

// TestDecideProxyAndCheckAgree is the drift test: the same requests go
// through the proxy and, described by a trusted proxy, through /auth/check;
// both must reach the same decision (allow, unauthenticated, refuse). Each
// row is an attacker's variant of a refused or allowed request: dot
// segments raw, encoded and double-encoded, path parameters, backslashes,
// case, lower-case methods, spoofed identity and header spellings.
func TestDecideProxyAndCheckAgree(t *testing.T) {
	e := startEdge(t, decideRoutes)
	p := e.people
	tests := []struct {
		name, method, target, token string
		hdr                         map[string]string
		want                        string
	}{
		{"rule allows", "GET", "/api/billing/invoices?x=1", p.alice, nil, "allow"},
		{"staff allowed", "POST", "/api/billing/", p.carol, nil, "allow"},
		{"rule refuses", "GET", "/api/billing/invoices", p.bob, nil, "refuse"},
		{"dot-dot into the ruled route", "GET", "/api/reports/../billing/", p.bob, nil, "refuse"},
		{"encoded dot-dot", "GET", "/api/reports/%2e%2e/billing/", p.bob, nil, "refuse"},
		{"double-encoded dot-dot", "GET", "/api/x/%252e%252e/billing/", p.bob, nil, "refuse"},
		{"path parameter dot-dot", "GET", "/api/reports/..;/billing/", p.bob, nil, "refuse"},
		{"backslash", "GET", "/api/reports/..%5cbilling/", p.bob, nil, "refuse"},
		{"case folded into another route", "GET", "/API/Billing/x", p.bob, nil, "refuse"},
		{"double slash", "GET", "//api//billing//x", p.bob, nil, "refuse"},
		{"anonymous on required", "GET", "/api/x", "", nil, "unauthenticated"},
		{"bad token", "GET", "/api/x", "not.a.jwt", nil, "unauthenticated"},
		{"anonymous on optional", "GET", "/feed/x", "", nil, "allow"},
		{"bad token on optional", "GET", "/feed/x", "not.a.jwt", nil, "unauthenticated"},
		{"auth none ignores a bad token", "GET", "/public/x", "not.a.jwt", nil, "allow"},
		{"no route", "GET", "/nowhere/", p.carol, nil, "refuse"},
		{"method allowed", "GET", "/api/reports/x", p.bob, nil, "allow"},
		{"method not allowed", "DELETE", "/api/reports/x", p.bob, nil, "refuse"},
		{"lower-case method meets the method list", "get", "/api/reports/x", p.bob, nil, "allow"},
		{"lower-case method meets the rule", "delete", "/tenant/x", p.alice, map[string]string{"X-Tenant": "acme"}, "refuse"},
		{"header rule allows", "GET", "/tenant/x", p.alice, map[string]string{"X-Tenant": "acme"}, "allow"},
		{"header rule refuses", "GET", "/tenant/x", p.bob, map[string]string{"X-Tenant": "acme"}, "refuse"},
		{"header in two spellings", "GET", "/tenant/x", p.alice, map[string]string{"X-Tenant": "acme", "X_Tenant": "globex"}, "refuse"},
		{"aliased header only", "GET", "/tenant/x", p.alice, map[string]string{"X_Tenant": "acme"}, "refuse"},
		{"spoofed identity ignored", "GET", "/api/billing/x", p.bob, map[string]string{"X-User-Id": p.aliceID, "X_User_Services": `["billing"]`}, "refuse"},
		{"token twice", "GET", "/api/x", p.bob, map[string]string{"authorization": "Bearer " + p.alice}, "refuse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxied := decideProxy(t, e.gw.URL, tt.method, tt.target, tt.token, tt.hdr)
			desc := map[string]string{"X-Original-Method": tt.method, "X-Original-URI": tt.target}
			for k, v := range tt.hdr {
				desc[k] = v
			}
			checked := do(t, nil, http.MethodGet, e.gw.URL+"/auth/check", tt.token, desc)
			pc, cc := decideClass(proxied.Status), decideClass(checked.Status)
			if pc != cc {
				t.Fatalf("drift: proxy %d (%s), /auth/check %d (%s)\nproxy: %s\ncheck: %s", proxied.Status, pc, checked.Status, cc, proxied.Body, checked.Body)
			}
			if pc != tt.want {
				t.Fatalf("both %s (proxy %d, check %d), want %s: %s", pc, proxied.Status, checked.Status, tt.want, strings.TrimSpace(string(checked.Body)))
			}
		})
	}
}
