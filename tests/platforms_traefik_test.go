package tests

import (
	"net/http"
	"testing"
)

// platformsTraefikCheck sends /auth/check what Traefik's forwardAuth
// (trustForwardHeader: false, no authRequestHeaders) sends for a client's
// request: a GET carrying every header the client sent, as written (alias
// spellings and X-Original-* included), then X-Forwarded-Method, -Proto,
// -Host and -Uri set from the request Traefik received and X-Forwarded-For
// from its peer, replacing the client's own (any case: Go canonicalises).
func platformsTraefikCheck(t *testing.T, gwURL, method, target string, client fwdHdr) reply {
	t.Helper()
	req := mustReq(t, http.MethodGet, gwURL+"/auth/check")
	for _, kv := range client {
		req.Header[kv[0]] = append(req.Header[kv[0]], kv[1])
	}
	for name := range req.Header {
		switch http.CanonicalHeaderKey(name) {
		case "X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri", "X-Forwarded-For":
			delete(req.Header, name)
		}
	}
	req.Header.Set("X-Forwarded-Method", method)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "app.example")
	req.Header.Set("X-Forwarded-Uri", target)
	req.Header.Set("X-Forwarded-For", "192.0.2.7")
	return callReq(t, nil, req, "", "", nil)
}

// /auth/check with forward_auth.headers: traefik answers what Traefik
// sends exactly as the README's middleware needs: exactly 200 with the
// identity headers (Envoy Gateway and some proxies refuse 202/204), 403,
// or 401; a client's own X-Forwarded-* never count (Traefik replaces them),
// its X-Original-* are ignored, its alias spellings refuse the request,
// and its X-User-* are never echoed back.
func TestPlatformsTraefikForwardAuth(t *testing.T) {
	e := startEdge(t, checkRoutes, "forward_auth: {headers: traefik}")
	p := e.people
	toPublic := fwdHdr{{"X-Forwarded-Uri", "/public/x"}, {"X-Forwarded-Method", "GET"}, {"X-Forwarded-Host", "public.example"}}
	tests := []struct {
		name, token, method, target string
		client                      fwdHdr
		want                        int
		wantID                      string
	}{
		{"allowed", p.alice, "GET", "/api/billing/invoices?x=1", nil, 200, p.aliceID},
		{"allowed POST", p.alice, "POST", "/api/billing/invoices", nil, 200, p.aliceID},
		{"staff allowed", p.carol, "GET", "/api/billing/", nil, 200, p.carolID},
		{"forbidden", p.bob, "GET", "/api/billing/invoices", nil, 403, ""},
		{"forbidden via encoded dot-dot", p.bob, "GET", "/api/reports/%2e%2e/billing/", nil, 403, ""},
		{"method not allowed on route", p.bob, "DELETE", "/api/reports/x", nil, 403, ""},
		{"anonymous on required", "", "GET", "/api/billing/invoices", nil, 401, ""},
		{"anonymous on optional", "", "GET", "/feed/x", nil, 200, ""},
		{"public", "", "GET", "/public/x", nil, 200, ""},
		{"no route", p.carol, "GET", "/nowhere/x", nil, 403, ""},

		{"client X-Forwarded-* to a public path replaced", "", "GET", "/api/billing/invoices", toPublic, 401, ""},
		{"client x-forwarded-uri lower case replaced", "", "GET", "/api/billing/invoices", fwdHdr{{"x-forwarded-uri", "/public/x"}}, 401, ""},
		{"client X-FORWARDED-METHOD replaced", p.bob, "DELETE", "/api/reports/x", fwdHdr{{"X-FORWARDED-METHOD", "GET"}}, 403, ""},
		{"client X-Forwarded-Uri twice replaced", "", "GET", "/api/billing/invoices", fwdHdr{{"X-Forwarded-Uri", "/public/x"}, {"X-Forwarded-Uri", "/public/y"}}, 401, ""},
		{"client X_Forwarded_Uri alias refused", "", "GET", "/api/billing/invoices", fwdHdr{{"X_Forwarded_Uri", "/public/x"}}, 403, ""},
		{"client X.Forwarded.Method alias refused", p.bob, "DELETE", "/api/reports/x", fwdHdr{{"X.Forwarded.Method", "GET"}}, 403, ""},
		{"client x_forwarded_host alias refuses an allowed request", p.alice, "GET", "/api/billing/invoices", fwdHdr{{"x_forwarded_host", "evil"}}, 403, ""},
		{"client X-Original-URI ignored", "", "GET", "/api/billing/invoices", fwdHdr{{"X-Original-URI", "/public/x"}, {"X-Original-Method", "GET"}}, 401, ""},
		{"client X_Original_URI ignored", "", "GET", "/api/billing/invoices", fwdHdr{{"X_Original_URI", "/public/x"}}, 401, ""},
		{"client X-Original-Method ignored", p.bob, "DELETE", "/api/reports/x", fwdHdr{{"X-Original-Method", "GET"}}, 403, ""},
		{"client X-Original-URI next to an allowed request", p.alice, "GET", "/api/billing/invoices", fwdHdr{{"X-Original-URI", "/nowhere"}}, 200, p.aliceID},
		{"X-HTTP-Method-Override", p.bob, "DELETE", "/api/reports/x", fwdHdr{{"X-HTTP-Method-Override", "GET"}}, 403, ""},
		{"spoofed identity, allowed", p.alice, "GET", "/api/billing/invoices", platformsSpoofedIdentity, 200, p.aliceID},
		{"spoofed identity, anonymous on optional", "", "GET", "/feed/x", platformsSpoofedIdentity, 200, ""},
		{"spoofed identity, anonymous on required", "", "GET", "/api/billing/invoices", platformsSpoofedIdentity, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := tt.client
			if tt.token != "" {
				client = fwdWith(fwdBearer(tt.token), client)
			}
			r := platformsTraefikCheck(t, e.gw.URL, tt.method, tt.target, client)
			fwdWant(t, r, tt.want, tt.token == "")
			ih := identityHeaders(r.Header)
			if tt.want != http.StatusOK || tt.wantID == "" {
				if len(ih) != 0 {
					t.Fatalf("status %d with identity headers %v", r.Status, ih)
				}
				return
			}
			if got := ih["x-user-id"]; len(got) != 1 || got[0] != tt.wantID {
				t.Fatalf("X-User-Id %v, want [%s] (all: %v)", got, tt.wantID, ih)
			}
			for name, vals := range ih {
				for _, v := range vals {
					if v == "666" || v == "evil@example.com" || v == "root" || v == "forged" {
						t.Fatalf("a client's %s came back: %v", name, ih)
					}
				}
			}
		})
	}
	if h := e.hits(); h != [4]int64{} {
		t.Fatalf("forward-auth forwarded requests upstream: %v", h)
	}
}

// The check answers exactly 200 on allow, whatever method the proxy's own
// request uses (Envoy Gateway refuses any other 2xx).
func TestPlatformsCheckAnswersExactly200(t *testing.T) {
	e := startEdge(t, checkRoutes)
	p := e.people
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch} {
		for _, target := range []fwdHdr{fwdOrig(m, "/api/billing/x"), fwdTraefik(m, "/api/billing/x")} {
			req := mustReq(t, m, e.gw.URL+"/auth/check")
			r := callReq(t, nil, req, "", "", map[string]string{"Authorization": "Bearer " + p.alice, target[0][0]: target[0][1], target[1][0]: target[1][1]})
			if r.Status != http.StatusOK {
				t.Fatalf("%s /auth/check (%s): status %d, want exactly 200: %s", m, target[0][0], r.Status, r.Body)
			}
			if got := r.Header.Get("X-User-Id"); got != p.aliceID {
				t.Fatalf("%s /auth/check: X-User-Id %q, want %q", m, got, p.aliceID)
			}
		}
	}
}
