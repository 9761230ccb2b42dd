package tests

import (
	"net/http"
	"strings"
	"testing"
)

// fwdHdr is an ordered list of header lines, sent verbatim: names are not
// canonicalised and a name may repeat, so duplicates and '_'/'.' spellings
// reach the gateway as written.
type fwdHdr [][2]string

// fwdSend sends method url with the header lines h.
func fwdSend(t *testing.T, method, url string, h fwdHdr) reply {
	t.Helper()
	req := mustReq(t, method, url)
	for _, kv := range h {
		req.Header[kv[0]] = append(req.Header[kv[0]], kv[1])
	}
	return callReq(t, nil, req, "", "", nil)
}

// fwdOrig and fwdTraefik are what nginx and Traefik set.
func fwdOrig(method, uri string) fwdHdr {
	return fwdHdr{{"X-Original-URI", uri}, {"X-Original-Method", method}}
}

func fwdTraefik(method, uri string) fwdHdr {
	return fwdHdr{{"X-Forwarded-Method", method}, {"X-Forwarded-Uri", uri}, {"X-Forwarded-Host", "app.example"}, {"X-Forwarded-Proto", "https"}}
}

// fwdWith joins header lists.
func fwdWith(lists ...fwdHdr) fwdHdr {
	var out fwdHdr
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func fwdBearer(tok string) fwdHdr { return fwdHdr{{"Authorization", "Bearer " + tok}} }

// fwdWant checks a forward-auth answer: exactly 200, or our JSON error
// (403 permission_denied, 401, 400 bad_request).
func fwdWant(t *testing.T, r reply, want int, anonymous bool) {
	t.Helper()
	switch want {
	case http.StatusOK:
		if r.Status != http.StatusOK { // exactly 200: Envoy Gateway refuses 202/204
			t.Fatalf("status %d, want exactly 200: %s", r.Status, r.Body)
		}
	case http.StatusUnauthorized:
		code := "token_not_valid"
		if anonymous {
			code = "not_authenticated"
		}
		wantError(t, r, want, code)
	case http.StatusBadRequest:
		wantError(t, r, want, "bad_request")
	default:
		wantError(t, r, want, "permission_denied")
	}
}

// /auth/check in each forward_auth.headers mode, against each header
// family, the two together, duplicates, alias spellings, empty values,
// request targets another stack reads differently, and method variants.
func TestSecFwdCheckModes(t *testing.T) {
	modes := []string{"auto", "nginx", "traefik"}
	envs := map[string]*edgeEnv{}
	for _, m := range modes {
		envs[m] = startEdge(t, checkRoutes, "forward_auth: {headers: "+m+"}")
	}
	type want struct{ auto, nginx, traefik int }
	all := func(s int) want { return want{s, s, s} }
	tests := []struct {
		name   string
		token  string // "alice", "bob", "carol" or "" (anonymous)
		hdr    fwdHdr
		want   want
		detail string // a word the 403 detail must hold (auto mode)
	}{
		// One family at a time.
		{"nginx family allowed", "alice", fwdOrig("GET", "/api/billing/x?y=1"), want{200, 200, 403}, ""},
		{"traefik family allowed", "alice", fwdTraefik("POST", "/api/billing/x"), want{200, 403, 200}, ""},
		{"nginx family refused", "bob", fwdOrig("GET", "/api/billing/x"), want{403, 403, 403}, ""},
		{"traefik family anonymous", "", fwdTraefik("GET", "/api/billing/x"), want{401, 403, 401}, ""},
		{"lower-case names", "alice", fwdHdr{{"x-original-uri", "/api/billing/x"}, {"x-original-method", "GET"}}, want{200, 200, 403}, ""},
		{"upper-case names", "alice", fwdHdr{{"X-ORIGINAL-URI", "/api/billing/x"}, {"X-ORIGINAL-METHOD", "GET"}}, want{200, 200, 403}, ""},
		{"no method header: the check's own", "alice", fwdHdr{{"X-Original-URI", "/api/billing/x"}}, want{200, 200, 403}, ""},

		// The attack: nginx describes the real request, the client adds the
		// other family. auto refuses; nginx decides on the real URI;
		// traefik, where Traefik itself would have set X-Forwarded-*, reads
		// only that family.
		{"spoofed X-Forwarded-Uri to a public path", "", fwdWith(fwdOrig("GET", "/api/billing/x"), fwdHdr{{"X-Forwarded-Uri", "/public/x"}}), want{403, 401, 200}, "X-Forwarded"},
		{"spoofed X-Forwarded-Uri to another route", "bob", fwdWith(fwdOrig("GET", "/api/billing/x"), fwdHdr{{"X-Forwarded-Uri", "/api/reports/x"}}), want{403, 403, 200}, "X-Original"},
		{"spoofed X-Forwarded-Uri to no route", "carol", fwdWith(fwdOrig("GET", "/nowhere/x"), fwdHdr{{"X-Forwarded-Uri", "/api/x"}}), want{403, 403, 200}, "both"},
		{"spoofed X-Forwarded-Method", "bob", fwdWith(fwdOrig("DELETE", "/api/reports/x"), fwdHdr{{"X-Forwarded-Method", "GET"}}), want{403, 403, 403}, "both"},
		{"spoofed X-Forwarded-Host alone", "alice", fwdWith(fwdOrig("GET", "/api/billing/x"), fwdHdr{{"X-Forwarded-Host", "evil.example"}}), want{403, 200, 403}, "both"},
		{"spoofed X-Forwarded-Proto, empty value", "alice", fwdWith(fwdOrig("GET", "/api/billing/x"), fwdHdr{{"X-Forwarded-Proto", ""}}), want{403, 200, 403}, "both"},
		{"spoofed X-Original-URI next to Traefik's", "", fwdWith(fwdTraefik("GET", "/api/billing/x"), fwdHdr{{"X-Original-URI", "/public/x"}}), want{403, 200, 401}, "both"},
		{"spoofed X-Original-Method next to Traefik's", "bob", fwdWith(fwdTraefik("DELETE", "/api/reports/x"), fwdHdr{{"X-Original-Method", "GET"}}), want{403, 403, 403}, "both"},
		{"spoofed lower-case x-forwarded-uri", "", fwdWith(fwdOrig("GET", "/api/billing/x"), fwdHdr{{"x-forwarded-uri", "/public/x"}}), want{403, 401, 200}, "both"},

		// Alias spellings count as the family: never a way to add a value.
		{"X_Forwarded_Uri alias", "", fwdWith(fwdOrig("GET", "/api/billing/x"), fwdHdr{{"X_Forwarded_Uri", "/public/x"}}), want{403, 401, 403}, "both"},
		{"X.Forwarded.Method alias", "bob", fwdWith(fwdOrig("DELETE", "/api/reports/x"), fwdHdr{{"X.Forwarded.Method", "GET"}}), want{403, 403, 403}, "both"},
		{"x_forwarded_host alias", "alice", fwdWith(fwdOrig("GET", "/api/billing/x"), fwdHdr{{"x_forwarded_host", "evil"}}), want{403, 200, 403}, "both"},
		{"X_Original_URI alias next to the real one", "", fwdWith(fwdOrig("GET", "/api/billing/x"), fwdHdr{{"X_Original_URI", "/public/x"}}), want{403, 403, 403}, "once"},
		{"X.Original.Method alias next to the real one", "bob", fwdWith(fwdOrig("DELETE", "/api/reports/x"), fwdHdr{{"X.Original.Method", "GET"}}), want{403, 403, 403}, "once"},
		{"X_Original_URI alias alone", "", fwdHdr{{"X_Original_URI", "/public/x"}}, all(403), "once"},
		{"X_Forwarded_Uri alias next to Traefik's", "", fwdWith(fwdTraefik("GET", "/api/billing/x"), fwdHdr{{"X_Forwarded_Uri", "/public/x"}}), want{403, 403, 403}, "once"},

		// Duplicates: the proxy's value and the client's.
		{"two X-Original-URI", "", fwdHdr{{"X-Original-URI", "/api/billing/x"}, {"X-Original-URI", "/public/x"}}, all(403), "once"},
		{"two X-Original-URI, public first", "", fwdHdr{{"X-Original-URI", "/public/x"}, {"X-Original-URI", "/api/billing/x"}}, all(403), "once"},
		{"X-Original-URI in two cases", "", fwdHdr{{"X-Original-URI", "/api/billing/x"}, {"x-original-uri", "/public/x"}}, all(403), "once"},
		{"two X-Original-Method", "bob", fwdHdr{{"X-Original-URI", "/api/reports/x"}, {"X-Original-Method", "DELETE"}, {"X-Original-Method", "GET"}}, all(403), "once"},
		{"two X-Forwarded-Uri", "", fwdWith(fwdTraefik("GET", "/api/billing/x"), fwdHdr{{"X-Forwarded-Uri", "/public/x"}}), all(403), ""},
		{"two X-Forwarded-Method", "bob", fwdWith(fwdTraefik("DELETE", "/api/reports/x"), fwdHdr{{"X-Forwarded-Method", "GET"}}), all(403), ""},

		// Request targets.
		{"empty URI", "", fwdHdr{{"X-Original-URI", ""}, {"X-Original-Method", "GET"}}, all(403), "required"},
		{"absolute-form URI", "", fwdOrig("GET", "http://app.example/public/x"), all(403), "path"},
		{"absolute-form URI, other route", "bob", fwdOrig("GET", "https://app.example/api/reports/x"), all(403), "path"},
		{"asterisk", "", fwdOrig("OPTIONS", "*"), all(403), "path"},
		{"relative URI", "", fwdOrig("GET", "public/x"), all(403), "path"},
		{"fragment hiding dot-dot", "", fwdOrig("GET", "/public/x#/../../api/billing/"), all(403), "fragment"},
		{"fragment", "", fwdOrig("GET", "/public/x#top"), all(403), "fragment"},
		{"space inside", "", fwdOrig("GET", "/public/x /api/billing/"), all(403), "spaces"},
		{"tab inside", "", fwdOrig("GET", "/public/x\t/api/billing/"), all(403), "spaces"},
		{"bad percent-encoding", "", fwdOrig("GET", "/public/%zz"), all(403), "path"},
		{"surrounding whitespace is trimmed", "", fwdOrig("GET", "  /public/x  "), want{200, 200, 403}, ""},

		// Methods.
		{"lower-case method meets the upper-case rule", "bob", fwdOrig("delete", "/api/reports/x"), want{403, 403, 403}, ""},
		{"lower-case get", "bob", fwdOrig("get", "/api/reports/x"), want{200, 200, 403}, ""},
		{"unknown method on an any-method route", "alice", fwdOrig("PROPFIND", "/api/x"), want{200, 200, 403}, ""},
		{"unknown method on a GET route", "bob", fwdOrig("PROPFIND", "/api/reports/x"), all(403), ""},
		{"empty method", "alice", fwdOrig("", "/api/x"), all(403), "method"},
		{"method with a space", "bob", fwdOrig("GET /api/reports/x", "/api/reports/x"), all(403), "method"},
		{"method with a slash", "bob", fwdOrig("GET/", "/api/reports/x"), all(403), "method"},
		{"X-HTTP-Method-Override never allows", "bob", fwdWith(fwdOrig("DELETE", "/api/reports/x"), fwdHdr{{"X-HTTP-Method-Override", "GET"}, {"X-Method-Override", "GET"}, {"X-HTTP-Method", "GET"}}), all(403), ""},
		{"X-HTTP-Method-Override is ignored", "bob", fwdWith(fwdOrig("GET", "/api/reports/x"), fwdHdr{{"X-HTTP-Method-Override", "DELETE"}}), want{200, 200, 403}, ""},
	}
	for _, tt := range tests {
		for _, m := range modes {
			t.Run(tt.name+"/"+m, func(t *testing.T) {
				e := envs[m]
				toks := map[string]string{"alice": e.people.alice, "bob": e.people.bob, "carol": e.people.carol}
				h := tt.hdr
				if tt.token != "" {
					h = fwdWith(fwdBearer(toks[tt.token]), h)
				}
				before := e.hits()
				r := fwdSend(t, http.MethodGet, e.gw.URL+"/auth/check", h)
				want := map[string]int{"auto": tt.want.auto, "nginx": tt.want.nginx, "traefik": tt.want.traefik}[m]
				fwdWant(t, r, want, tt.token == "")
				if want == http.StatusForbidden && m == "auto" && tt.detail != "" && !strings.Contains(strings.ToLower(string(r.Body)), strings.ToLower(tt.detail)) {
					t.Fatalf("403 detail does not say why (want %q): %s", tt.detail, r.Body)
				}
				if want != http.StatusOK && r.Header.Get("X-User-Id") != "" {
					t.Fatalf("refusal carries identity %q", r.Header.Get("X-User-Id"))
				}
				if e.hits() != before {
					t.Fatal("forward-auth forwarded a request upstream")
				}
			})
		}
	}
}

// Rules that read request.headers never see a forward-auth header the
// mode ignores.
func TestSecFwdCheckIgnoredFamilyHiddenFromRules(t *testing.T) {
	const routes = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
trusted_proxies: ["127.0.0.1"]
forward_auth: {headers: nginx}
routes:
  - path: "/api/"
    upstream: "%API%"
    allow: 'request.headers["X-Forwarded-Host"] == "admin.example" || user.is_staff'
`
	e := startEdge(t, routes)
	for _, name := range []string{"X-Forwarded-Host", "x_forwarded_host", "X.Forwarded.Host"} {
		r := fwdSend(t, http.MethodGet, e.gw.URL+"/auth/check", fwdWith(fwdBearer(e.people.bob), fwdOrig("GET", "/api/x"), fwdHdr{{name, "admin.example"}}))
		fwdWant(t, r, http.StatusForbidden, false)
	}
	r := fwdSend(t, http.MethodGet, e.gw.URL+"/auth/check", fwdWith(fwdBearer(e.people.carol), fwdOrig("GET", "/api/x"), fwdHdr{{"X-Forwarded-Host", "admin.example"}}))
	fwdWant(t, r, http.StatusOK, false)
}

// Two credentials are 400 bad_request wherever a token is read; a
// malformed Bearer header is 401 on optional routes as on required ones;
// another scheme is not ours (anonymous on optional routes, passed on).
func TestSecFwdCredentials(t *testing.T) {
	e := startEdge(t, checkRoutes)
	p := e.people
	type target struct {
		name   string
		method string
		path   string
		hdr    fwdHdr
	}
	targets := []target{
		{"required route", http.MethodGet, "/api/billing/x", nil},
		{"optional route", http.MethodGet, "/feed/x", nil},
		{"users endpoint", http.MethodGet, "/auth/users/me/", nil},
		{"forward-auth, required", http.MethodGet, "/auth/check", fwdOrig("GET", "/api/billing/x")},
		{"forward-auth, optional", http.MethodGet, "/auth/check", fwdOrig("GET", "/feed/x")},
	}
	two := []struct {
		name string
		hdr  fwdHdr
	}{
		{"two Authorization headers", fwdHdr{{"Authorization", "Bearer " + p.alice}, {"Authorization", "Bearer " + p.bob}}},
		{"same token twice", fwdHdr{{"Authorization", "Bearer " + p.alice}, {"Authorization", "Bearer " + p.alice}}},
		{"two spellings in case", fwdHdr{{"Authorization", "Bearer " + p.alice}, {"authorization", "Bearer " + p.bob}}},
		{"a valid and an empty one", fwdHdr{{"Authorization", "Bearer " + p.alice}, {"AUTHORIZATION", ""}}},
		{"Bearer and Basic", fwdHdr{{"Authorization", "Bearer " + p.alice}, {"Authorization", "Basic YTpi"}}},
		{"comma-joined list", fwdHdr{{"Authorization", "Bearer " + p.alice + ", Bearer " + p.bob}}},
		{"comma-joined without space", fwdHdr{{"Authorization", "Bearer " + p.alice + ",Bearer " + p.bob}}},
		{"Basic then Bearer in a list", fwdHdr{{"Authorization", "Basic YTpi, Bearer " + p.alice}}},
		{"lower-case bearer in a list", fwdHdr{{"Authorization", "bearer " + p.alice + ", bearer " + p.bob}}},
	}
	for _, tg := range targets {
		for _, c := range two {
			t.Run(tg.name+"/"+c.name, func(t *testing.T) {
				before := e.hits()
				r := fwdSend(t, tg.method, e.gw.URL+tg.path, fwdWith(c.hdr, tg.hdr))
				fwdWant(t, r, http.StatusBadRequest, false)
				if e.hits() != before {
					t.Fatal("a request with two credentials reached an upstream")
				}
			})
		}
	}

	malformed := []struct{ name, value string }{
		{"tab after Bearer", "Bearer\t" + p.bob},
		{"two spaces", "bearer  " + p.bob},
		{"two spaces, Bearer", "Bearer  " + p.bob},
		{"Bearer alone", "Bearer"},
		{"Bearer and a trailing space", "Bearer "},
		{"two words after Bearer", "Bearer " + p.bob + " x"},
		{"tab inside the token", "Bearer " + p.bob[:10] + "\t" + p.bob[10:]},
	}
	for _, path := range []string{"/feed/x", "/api/x"} {
		for _, c := range malformed {
			t.Run("malformed "+path+"/"+c.name, func(t *testing.T) {
				before := e.hits()
				r := fwdSend(t, http.MethodGet, e.gw.URL+path, fwdHdr{{"Authorization", c.value}})
				wantError(t, r, http.StatusUnauthorized, "token_not_valid")
				if e.hits() != before {
					t.Fatal("a malformed credential was forwarded")
				}
				r = fwdSend(t, http.MethodGet, e.gw.URL+"/auth/check", fwdWith(fwdHdr{{"Authorization", c.value}}, fwdOrig("GET", path)))
				wantError(t, r, http.StatusUnauthorized, "token_not_valid")
			})
		}
	}

	// Well-formed: one space, any case of the scheme.
	for _, v := range []string{"Bearer " + p.bob, "bearer " + p.bob, "BEARER " + p.bob} {
		r := fwdSend(t, http.MethodGet, e.gw.URL+"/feed/x", fwdHdr{{"Authorization", v}})
		if r.Status != http.StatusOK {
			t.Fatalf("%.10q: status %d: %s", v, r.Status, r.Body)
		}
		if got := r.echo(t).Headers.Get("X-User-Id"); got != p.bobID {
			t.Fatalf("%.10q: X-User-Id %q, want %s", v, got, p.bobID)
		}
	}

	// Another scheme is for the upstream: anonymous on optional (passed
	// on untouched), not_authenticated on required.
	for _, v := range []string{"Basic YWxpY2U6cHc=", "Digest username=\"a\", realm=\"b\"", "Token abc", "Bearerx abc"} {
		r := fwdSend(t, http.MethodGet, e.gw.URL+"/feed/x", fwdHdr{{"Authorization", v}})
		if r.Status != http.StatusOK {
			t.Fatalf("%q on optional: status %d: %s", v, r.Status, r.Body)
		}
		ec := r.echo(t)
		if ec.Headers.Get("Authorization") != v || len(identityHeaders(ec.Headers)) != 0 {
			t.Fatalf("%q on optional: upstream saw %q, identity %v", v, ec.Headers.Get("Authorization"), identityHeaders(ec.Headers))
		}
		wantError(t, fwdSend(t, http.MethodGet, e.gw.URL+"/api/x", fwdHdr{{"Authorization", v}}), http.StatusUnauthorized, "not_authenticated")
	}
}
