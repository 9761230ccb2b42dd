package tests

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"jwtgate/tests/fakeauth"
)

// edgeRoutes is the route table of the routing tests: a catch-all API, two
// per-service APIs with their own rule, a staff-only admin API, an
// optional-auth feed and a public area, each on its own upstream.
const edgeRoutes = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
routes:
  - path: "/api/"
    upstream: "%API%"
  - path: "/api/billing/"
    name: billing
    upstream: "%BILLING%"
    allow: '"billing" in user.services || user.is_staff'
    identity_headers: {fields: [services, tenant, plan]}
  - path: "/api/reports/"
    name: reports
    upstream: "%REPORTS%"
    allow: '"reports" in user.services'
    methods: [get, HEAD]
    strip_path: true
  - path: "/api/admin/"
    name: admin
    upstream: "%API%"
    allow: 'user.is_superuser || (user.is_staff && request.method in ["GET", "HEAD"])'
  - path: "/api/tenant/"
    name: tenant
    upstream: "%API%"
    allow: 'request.headers["x-tenant"] == user.tenant'
  - path: "/feed/"
    upstream: "%PUBLIC%"
    auth: optional
  - path: "/public/"
    upstream: "%PUBLIC%"
    auth: none
  - path: "/internal/"
    upstream: "%PUBLIC%"
    forward_token: false
`

type edgeEnv struct {
	gw                            *gateway
	fa                            *fakeauth.Server
	people                        edgePeople
	api, billing, reports, public *upstream
}

func startEdge(t *testing.T, routes string, extra ...string) *edgeEnv {
	t.Helper()
	e := &edgeEnv{api: startUpstream(t), billing: startUpstream(t), reports: startUpstream(t), public: startUpstream(t)}
	e.fa = fakeauth.Start(t, fakeauth.Options{})
	e.people = addEdgePeople(t, e.fa)
	yaml := fill(routes+strings.Join(extra, "\n"), "API", e.api.URL, "BILLING", e.billing.URL, "REPORTS", e.reports.URL, "PUBLIC", e.public.URL)
	e.gw = startGateway(t, yaml, e.fa.URL(), "", nil)
	return e
}

func (e *edgeEnv) hits() [4]int64 {
	return [4]int64{e.api.hits.Load(), e.billing.hits.Load(), e.reports.hits.Load(), e.public.hits.Load()}
}

func TestEdgeRoutingLongestPrefixAndStripPath(t *testing.T) {
	e := startEdge(t, edgeRoutes)
	p := e.people
	tests := []struct {
		name, path string
		up         **upstream
		wantPath   string
	}{
		{"catch-all", "/api/things/1?x=1", &e.api, "/api/things/1"},
		{"longer prefix wins", "/api/billing/invoices/7", &e.billing, "/api/billing/invoices/7"},
		{"prefix without slash", "/api/billing", &e.billing, "/api/billing"},
		{"segment boundary", "/api/billingx/1", &e.api, "/api/billingx/1"},
		{"strip_path", "/api/reports/daily?d=1", &e.reports, "/daily"},
		{"strip_path to root", "/api/reports/", &e.reports, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := p.carol // staff: billing allows; reports does not
			if strings.HasPrefix(tt.path, "/api/reports") {
				tok = p.bob
			}
			before := (*tt.up).hits.Load()
			r := get(t, e.gw.URL+tt.path, tok)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if got := (*tt.up).hits.Load(); got != before+1 {
				t.Fatalf("expected upstream hits %d, got %d", before+1, got)
			}
			if ec := r.echo(t); ec.Path != tt.wantPath {
				t.Fatalf("upstream saw path %q, want %q", ec.Path, tt.wantPath)
			}
		})
	}
	t.Run("query kept", func(t *testing.T) {
		if ec := get(t, e.gw.URL+"/api/things/1?x=1&y=%2F", p.alice).echo(t); ec.Query != "x=1&y=%2F" {
			t.Fatalf("upstream saw query %q", ec.Query)
		}
	})
}

func TestEdgeDenyByDefault(t *testing.T) {
	e := startEdge(t, edgeRoutes)
	for _, path := range []string{"/", "/other/", "/apix", "/auth/", "/auth/token/x", "/.well-known/jwks.json"} {
		wantError(t, get(t, e.gw.URL+path, e.people.carol), http.StatusNotFound, "not_found")
	}
	if h := e.hits(); h != [4]int64{} {
		t.Fatalf("unrouted requests reached upstreams: %v", h)
	}
}

func TestEdgeMethods(t *testing.T) {
	e := startEdge(t, edgeRoutes)
	for _, m := range []string{http.MethodPost, http.MethodDelete, http.MethodPatch, "PROPFIND"} {
		r := call(t, m, e.gw.URL+"/api/reports/x", "", "", "Authorization", "Bearer "+e.people.bob)
		wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
		if got := r.Header.Get("Allow"); got != "GET, HEAD" {
			t.Fatalf("%s: Allow %q, want \"GET, HEAD\"", m, got)
		}
	}
	if n := e.reports.hits.Load(); n != 0 {
		t.Fatalf("405s reached the upstream %d times", n)
	}
	if r := call(t, http.MethodHead, e.gw.URL+"/api/reports/x", "", "", "Authorization", "Bearer "+e.people.bob); r.Status != http.StatusOK {
		t.Fatalf("HEAD: %d", r.Status)
	}
	// A route without methods takes any.
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, "PROPFIND"} {
		r := call(t, m, e.gw.URL+"/api/things", "text/plain", "hello", "Authorization", "Bearer "+e.people.alice)
		if r.Status != http.StatusOK || r.echo(t).Method != m {
			t.Fatalf("%s on /api/things: %d %s", m, r.Status, r.Body)
		}
	}
}

// Allow rules per service, staff and superuser flags, request method and
// headers, for users with different services.
func TestEdgeAllowRules(t *testing.T) {
	e := startEdge(t, edgeRoutes)
	p := e.people
	tests := []struct {
		name, method, path, token string
		hdr                       []string
		want                      int
	}{
		{"alice uses billing", "GET", "/api/billing/invoices", p.alice, nil, 200},
		{"bob does not use billing", "GET", "/api/billing/invoices", p.bob, nil, 403},
		{"staff carol reads billing", "GET", "/api/billing/invoices", p.carol, nil, 200},
		{"superuser dave is not staff", "GET", "/api/billing/invoices", p.dave, nil, 403},
		{"erin has no services field", "GET", "/api/billing/invoices", p.erin, nil, 403},
		{"bob uses reports", "GET", "/api/reports/daily", p.bob, nil, 200},
		{"alice does not use reports", "GET", "/api/reports/daily", p.alice, nil, 403},
		{"staff is not enough for reports", "GET", "/api/reports/daily", p.carol, nil, 403},
		{"staff reads admin", "GET", "/api/admin/users", p.carol, nil, 200},
		{"staff may not write admin", "DELETE", "/api/admin/users/1", p.carol, nil, 403},
		{"superuser writes admin", "DELETE", "/api/admin/users/1", p.dave, nil, 200},
		{"plain user no admin", "GET", "/api/admin/users", p.alice, nil, 403},
		{"tenant header matches", "GET", "/api/tenant/x", p.alice, []string{"X-Tenant", "acme"}, 200},
		{"tenant header of another", "GET", "/api/tenant/x", p.alice, []string{"X-Tenant", "globex"}, 403},
		{"tenant header missing", "GET", "/api/tenant/x", p.bob, nil, 403},
		{"empty rule: any active user", "GET", "/api/anything", p.erin, nil, 200},
		{"no token on required route", "GET", "/api/billing/invoices", "", nil, 401},
		{"garbage token", "GET", "/api/anything", "not.a.jwt", nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.hits()
			hdr := tt.hdr
			if tt.token != "" {
				hdr = append(slices.Clone(hdr), "Authorization", "Bearer "+tt.token)
			}
			r := call(t, tt.method, e.gw.URL+tt.path, "", "", hdr...)
			switch tt.want {
			case 200:
				if r.Status != 200 {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
			case 403:
				wantError(t, r, 403, "permission_denied")
			case 401:
				if r.Status != 401 {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
			}
			if tt.want != 200 && e.hits() != before {
				t.Fatalf("a refused request reached an upstream")
			}
		})
	}
}

// A rule cannot be dodged by spelling the path differently: the gateway
// decides and forwards on the cleaned, percent-decoded path.
func TestEdgePathTricks(t *testing.T) {
	e := startEdge(t, edgeRoutes)
	p := e.people
	tests := []struct {
		name, path, token string
		want              int
		wantPath          string // what the upstream sees when allowed
	}{
		{"dot-dot", "/api/reports/../billing/", p.bob, 403, ""},
		{"encoded dot-dot", "/api/reports/%2e%2e/billing/", p.bob, 403, ""},
		{"upper-case encoded dot-dot", "/api/reports/%2E%2E/billing/", p.bob, 403, ""},
		{"double slash", "/api/reports//../billing/", p.bob, 403, ""},
		{"leading double slash", "//api//billing/x", p.bob, 403, ""},
		{"encoded slash", "/api/reports%2F..%2Fbilling/", p.bob, 403, ""},
		{"dot segment", "/api/./billing/x", p.bob, 403, ""},
		{"alice into reports via billing", "/api/billing/../reports/daily", p.alice, 403, ""},
		{"alice stays in billing", "/api/billing/x/../y", p.alice, 200, "/api/billing/y"},
		{"encoded slash inside billing", "/api/billing/a%2Fb", p.alice, 200, "/api/billing/a/b"},
		{"bob escapes to catch-all", "/api/reports/../other", p.bob, 200, "/api/other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.hits()
			r := get(t, e.gw.URL+tt.path, tt.token)
			if tt.want == 403 {
				wantError(t, r, 403, "permission_denied")
				if e.hits() != before {
					t.Fatal("a refused request reached an upstream")
				}
				return
			}
			if r.Status != tt.want {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if got := r.echo(t).Path; got != tt.wantPath {
				t.Fatalf("upstream saw %q, want %q", got, tt.wantPath)
			}
		})
	}
}

func TestEdgeOptionalAndNoneAuth(t *testing.T) {
	e := startEdge(t, edgeRoutes)
	p := e.people

	anon := get(t, e.gw.URL+"/feed/latest", "")
	if anon.Status != 200 {
		t.Fatalf("optional, anonymous: %d %s", anon.Status, anon.Body)
	}
	if ih := identityHeaders(anon.echo(t).Headers); len(ih) != 0 {
		t.Fatalf("anonymous request carried identity %v", ih)
	}
	withTok := get(t, e.gw.URL+"/feed/latest", p.alice)
	if withTok.Status != 200 || withTok.echo(t).Headers.Get("X-User-Id") != p.aliceID {
		t.Fatalf("optional with token: %d, X-User-Id %q", withTok.Status, withTok.echo(t).Headers.Get("X-User-Id"))
	}
	wantError(t, get(t, e.gw.URL+"/feed/latest", "not.a.jwt"), 401, "token_not_valid")
	expired := e.fa.NewClaims(1, "access")
	expired["exp"] = 1
	wantError(t, get(t, e.gw.URL+"/feed/latest", e.fa.Sign(expired)), 401, "token_not_valid")

	// auth: none never looks at the token: a garbage one passes, untouched, and no call home is made.
	calls := e.fa.TotalCalls()
	for _, tok := range []string{"", "not.a.jwt", p.alice} {
		r := get(t, e.gw.URL+"/public/x", tok)
		if r.Status != 200 {
			t.Fatalf("none with token %q: %d %s", tok, r.Status, r.Body)
		}
		ec := r.echo(t)
		if ih := identityHeaders(ec.Headers); len(ih) != 0 {
			t.Fatalf("auth none sent identity %v", ih)
		}
		if tok != "" && ec.Headers.Get("Authorization") != "Bearer "+tok {
			t.Fatalf("auth none: Authorization %q not forwarded", ec.Headers.Get("Authorization"))
		}
	}
	if n := e.fa.TotalCalls() - calls; n != 0 {
		t.Fatalf("auth none called the auth service %d times", n)
	}
}

func TestEdgeIdentityHeadersAndForwardToken(t *testing.T) {
	e := startEdge(t, edgeRoutes)
	p := e.people
	ec := get(t, e.gw.URL+"/api/billing/x", p.alice).echo(t)
	want := map[string]string{
		"X-User-Id": p.aliceID, "X-User-Email": "alice@example.com", "X-User-Username": "alice",
		"X-User-Is-Staff": "false", "X-User-Is-Superuser": "false",
		"X-User-Services": `["billing"]`, "X-User-Tenant": "acme", "X-User-Plan": `{"tier":"gold"}`,
		"Authorization": "Bearer " + p.alice,
	}
	for k, v := range want {
		if got := ec.Headers.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("upstream %s = %q, want %q", k, got, v)
		}
	}
	// Fields are per route: the catch-all lists none.
	ec = get(t, e.gw.URL+"/api/x", p.carol).echo(t)
	if ec.Headers.Get("X-User-Is-Staff") != "true" || ec.Headers.Get("X-User-Services") != "" {
		t.Errorf("catch-all: staff %q services %q", ec.Headers.Get("X-User-Is-Staff"), ec.Headers.Get("X-User-Services"))
	}
	// A listed field the user lacks is simply not sent.
	ec = get(t, e.gw.URL+"/api/billing/x", p.carol).echo(t)
	if _, ok := ec.Headers["X-User-Tenant"]; ok {
		t.Errorf("carol has no tenant, yet X-User-Tenant = %q", ec.Headers.Get("X-User-Tenant"))
	}
	// forward_token: false drops Authorization but still identifies the caller.
	ec = get(t, e.gw.URL+"/internal/x", p.alice).echo(t)
	if _, ok := ec.Headers["Authorization"]; ok {
		t.Errorf("forward_token false: Authorization still forwarded")
	}
	if ec.Headers.Get("X-User-Id") != p.aliceID {
		t.Errorf("forward_token false: X-User-Id %q", ec.Headers.Get("X-User-Id"))
	}
}

// spoofVariants are client-sent headers in the identity namespace, in every
// spelling an upstream could read as one of ours.
var spoofVariants = []string{
	"X-User-Id", "x-user-id", "X_User_Id", "X.User.Id", "X-USER-EMAIL", "X-User-Token",
	"x_USER-iD", "X-user_Is.Staff", "X-User-Is-Superuser", "X-User-Services", "X-User-Anything",
}

// Every spoofing variant is removed on every auth mode, anonymous or not:
// the upstream sees only what the gateway set.
func TestEdgeSpoofedIdentityStripped(t *testing.T) {
	e := startEdge(t, edgeRoutes)
	p := e.people
	cases := []struct {
		name, path, token string
		wantID            string // "" means no identity at all
	}{
		{"required", "/api/billing/x", p.alice, p.aliceID},
		{"required, other service", "/api/reports/x", p.bob, p.bobID},
		{"optional with token", "/feed/x", p.bob, p.bobID},
		{"optional anonymous", "/feed/x", "", ""},
		{"none with token", "/public/x", p.alice, ""},
		{"none anonymous", "/public/x", "", ""},
		{"forward_token false", "/internal/x", p.carol, p.carolID},
	}
	for _, c := range cases {
		for _, v := range spoofVariants {
			t.Run(c.name+"/"+v, func(t *testing.T) {
				r := do(t, nil, http.MethodGet, e.gw.URL+c.path, c.token, map[string]string{v: "1; is_staff=true"})
				if r.Status != 200 {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
				ih := identityHeaders(r.echo(t).Headers)
				for k, vals := range ih {
					for _, val := range vals {
						if strings.Contains(val, "is_staff=true") {
							t.Fatalf("spoofed %s reached the upstream as %s: %q", v, k, val)
						}
					}
				}
				if c.wantID == "" && len(ih) != 0 {
					t.Fatalf("identity headers on an unauthenticated request: %v", ih)
				}
				if c.wantID != "" && (len(ih["x-user-id"]) != 1 || ih["x-user-id"][0] != c.wantID) {
					t.Fatalf("x-user-id = %v, want [%s]", ih["x-user-id"], c.wantID)
				}
			})
		}
	}
	// All variants at once, mixed with the real credential.
	raw := map[string]string{}
	for _, v := range spoofVariants {
		raw[v] = "666"
	}
	ec := do(t, nil, http.MethodGet, e.gw.URL+"/api/billing/x", p.alice, raw).echo(t)
	got, _ := json.Marshal(identityHeaders(ec.Headers))
	if strings.Contains(string(got), "666") {
		t.Fatalf("a spoofed value survived: %s", got)
	}
}
