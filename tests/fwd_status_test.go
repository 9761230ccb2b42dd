package tests

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"jwtgate/tests/djangoauth"
)

// fwdStatusRoutes is a gateway in front of the real Django auth service
// with a rate-limited public route, for the statuses a forward-auth proxy
// must pass on besides 200, 401 and 403.
const fwdStatusRoutes = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
trusted_proxies: ["127.0.0.1"]
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
  - path: "/api/billing/"
    upstream: "%UPSTREAM%"
    allow: '"billing" in user.services'
  - path: "/limited/"
    upstream: "%UPSTREAM%"
    auth: none
    rate_limit: {per_client: "2/hour"}
`

// fwdStatusCase is one request through a proxy: the status and JSON code
// the client must see, and whether the app may see it.
type fwdStatusCase struct {
	name, path, token string
	want              int
	code              string            // "": no JSON body expected (the proxy's own 401/403 page)
	raw               map[string]string // more header lines, names as written
}

// fwdStatusRun sends each case through the proxy at base and checks what
// the client sees: the gateway's status, its JSON code, Retry-After on 429
// (whole seconds, at least 1), and a refused request never reaching app.
func fwdStatusRun(t *testing.T, base string, app *upstream, cases []fwdStatusCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := app.hits.Load()
			r := do(t, nil, http.MethodGet, base+tc.path, tc.token, tc.raw)
			if r.Status != tc.want {
				t.Fatalf("status %d, want %d; headers %v; body %s", r.Status, tc.want, r.Header, r.Body)
			}
			if tc.want == http.StatusOK {
				if app.hits.Load() != before+1 {
					t.Fatalf("200, but the app was called %d times", app.hits.Load()-before)
				}
				return
			}
			if app.hits.Load() != before {
				t.Fatal("a refused request reached the app")
			}
			if tc.code != "" {
				wantError(t, r, tc.want, tc.code)
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Fatalf("Content-Type %q, want application/json", ct)
				}
			}
			if tc.want == http.StatusTooManyRequests {
				if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 1 {
					t.Fatalf("429 with Retry-After %q, want whole seconds >= 1 (headers %v)", r.Header.Get("Retry-After"), r.Header)
				}
			}
		})
	}
}

// A client behind nginx (the README's snippet) or Caddy (the README's
// snippet) sees the gateway's 429 throttled with Retry-After and its 503
// auth_service_unavailable, not a bare 500; 401 and 403 are unchanged.
// With the real Django stopped, a token the gateway has not cached yet
// gets 503, never 401. nginx that cannot reach the gateway at all answers
// 503 auth_service_unavailable too.
func TestFwdStatusThroughNginxAndCaddy(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	dj.CreateUser(t, "alice@example.com", "alice-pw", []string{"billing"}, false)
	dj.CreateUser(t, "bob@example.com", "bob-pw", nil, false)
	dj.CreateUser(t, "dave@example.com", "dave-pw", nil, false)
	alice, _ := tokens(t, login(t, dj.URL, "alice@example.com", "alice-pw"))
	bob, _ := tokens(t, login(t, dj.URL, "bob@example.com", "bob-pw"))
	// dave's token is used only once Django is down: no gateway has its
	// verdict cached, so each must call home for it.
	dave, _ := tokens(t, login(t, dj.URL, "dave@example.com", "dave-pw"))

	snippet, err := filepath.Abs(edgeNginxSnippet)
	if err != nil {
		t.Fatal(err)
	}
	type proxy struct {
		name string
		base string
		app  *upstream
	}
	var proxies []proxy
	{
		app := startUpstream(t)
		gw := startGateway(t, fwdStatusRoutes, dj.URL, app.URL, nil)
		proxies = append(proxies, proxy{"nginx", "http://" + fwdStartNginx(t, gw.URL, app.URL, snippet, ""), app})
	}
	{
		app := startUpstream(t)
		gw := startGateway(t, fwdStatusRoutes+"forward_auth: {headers: traefik}\n", dj.URL, app.URL, nil)
		proxies = append(proxies, proxy{"caddy", "http://" + platformsStartCaddy(t, gw.URL, app.URL), app})
	}

	up := []fwdStatusCase{
		{"allowed", "/api/billing/x", alice, http.StatusOK, "", nil},
		{"forbidden", "/api/billing/x", bob, http.StatusForbidden, "", nil},
		{"anonymous on required", "/api/billing/x", "", http.StatusUnauthorized, "", nil},
		{"limited 1", "/limited/x", "", http.StatusOK, "", nil},
		{"limited 2", "/limited/x", "", http.StatusOK, "", nil},
		{"throttled", "/limited/x", "", http.StatusTooManyRequests, "throttled", nil},
		// nginx itself refuses a second Authorization line; a list in one is
		// the gateway's to refuse.
		{"two tokens in one header", "/api/x", "", http.StatusBadRequest, "bad_request", map[string]string{"Authorization": "Bearer " + alice + ", Bearer " + bob}},
	}
	for _, p := range proxies {
		t.Run(p.name+"/auth service up", func(t *testing.T) { fwdStatusRun(t, p.base, p.app, up) })
	}

	dj.Stop(t)
	down := []fwdStatusCase{
		{"uncached token", "/api/x", dave, http.StatusServiceUnavailable, "auth_service_unavailable", nil},
		{"anonymous on required", "/api/billing/x", "", http.StatusUnauthorized, "", nil},
		{"still throttled", "/limited/x", "", http.StatusTooManyRequests, "throttled", nil},
	}
	for _, p := range proxies {
		t.Run(p.name+"/auth service down", func(t *testing.T) { fwdStatusRun(t, p.base, p.app, down) })
	}

	// nginx in front of a gateway that is not there (a closed port).
	app := startUpstream(t)
	gone := "http://" + fwdStartNginx(t, "http://"+freePort(t), app.URL, snippet, "")
	fwdStatusRun(t, gone, app, []fwdStatusCase{
		{"gateway unreachable", "/api/x", alice, http.StatusServiceUnavailable, "auth_service_unavailable", nil},
	})
}
