package tests

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// ratelimitRoutes: /api/ counts 3 requests a minute per user and 2 per
// anonymous client; /burst/ 60 a minute per user, 2 at once; /free/ has
// no limit. 127.0.0.1 is a trusted proxy.
const ratelimitRoutes = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
trusted_proxies: ["127.0.0.1"]
ext_authz: {grpc_listen: "127.0.0.1:0"}
routes:
  - path: "/api/"
    name: api
    upstream: "%UPSTREAM%"
    auth: optional
    rate_limit: {per_user: "3/minute", per_client: "2/minute"}
  - path: "/burst/"
    name: burst
    upstream: "%UPSTREAM%"
    rate_limit: {per_user: "60/minute", burst: 2}
  - path: "/free/"
    upstream: "%UPSTREAM%"
    auth: optional
`

// ratelimitEnv is a gateway with ratelimitRoutes on a settable clock.
type ratelimitEnv struct {
	gw     *gateway
	up     *upstream
	fa     *fakeauth.Server
	people edgePeople
	clk    *clock
}

func ratelimitStart(t *testing.T) *ratelimitEnv {
	t.Helper()
	e := &ratelimitEnv{up: startUpstream(t), fa: fakeauth.Start(t, fakeauth.Options{}), clk: newClock()}
	e.people = addEdgePeople(t, e.fa)
	e.gw = startGateway(t, ratelimitRoutes, e.fa.URL(), e.up.URL, e.clk.Now)
	return e
}

// ratelimitWant429 checks a 429 throttled answer and its headers.
func ratelimitWant429(t *testing.T, r reply, policy string, q, w, wait int) {
	t.Helper()
	wantError(t, r, http.StatusTooManyRequests, "throttled")
	if got := r.Header.Get("Retry-After"); got != strconv.Itoa(wait) {
		t.Errorf("Retry-After %q, want %d", got, wait)
	}
	if got, want := r.Header.Get("RateLimit-Policy"), `"`+policy+`";q=`+strconv.Itoa(q)+";w="+strconv.Itoa(w); got != want {
		t.Errorf("RateLimit-Policy %q, want %q", got, want)
	}
	if got, want := r.Header.Get("RateLimit"), `"`+policy+`";r=0;t=`+strconv.Itoa(wait); got != want {
		t.Errorf("RateLimit %q, want %q", got, want)
	}
}

// Authenticated requests count per user, all of the user's tokens
// together, whatever address they come from; others are not affected; the
// bucket refills with time.
func TestSecRatelimitPerUser(t *testing.T) {
	e := ratelimitStart(t)
	p := e.people
	id, _ := strconv.ParseInt(p.aliceID, 10, 64)
	second, _ := e.fa.IssuePair(id)
	from := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	for i, tok := range []string{p.alice, second, p.alice} {
		if r := do(t, clientFrom(t, from[i]), "GET", e.gw.URL+"/api/x", tok, nil); r.Status != 200 {
			t.Fatalf("request %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	hits := e.up.hits.Load()
	r := do(t, clientFrom(t, "127.0.0.5"), "GET", e.gw.URL+"/api/x", second, nil)
	ratelimitWant429(t, r, "per_user", 3, 60, 20)
	if e.up.hits.Load() != hits {
		t.Fatal("a throttled request reached the upstream")
	}
	if r := get(t, e.gw.URL+"/api/x", p.bob); r.Status != 200 {
		t.Fatalf("bob throttled with alice: %d", r.Status)
	}
	if r := get(t, e.gw.URL+"/free/x", p.alice); r.Status != 200 {
		t.Fatalf("route without a limit throttled: %d", r.Status)
	}
	// Anonymous requests from the same address count apart.
	if r := do(t, clientFrom(t, "127.0.0.5"), "GET", e.gw.URL+"/api/x", "", nil); r.Status != 200 {
		t.Fatalf("anonymous after alice's limit: %d", r.Status)
	}
	e.clk.Advance(19 * time.Second)
	ratelimitWant429(t, get(t, e.gw.URL+"/api/x", p.alice), "per_user", 3, 60, 1)
	e.clk.Advance(time.Second)
	if r := get(t, e.gw.URL+"/api/x", p.alice); r.Status != 200 {
		t.Fatalf("after the refill: %d %s", r.Status, r.Body)
	}
	ratelimitWant429(t, get(t, e.gw.URL+"/api/x", second), "per_user", 3, 60, 20)

	m := httptest.NewRecorder()
	e.gw.GW.Metrics.ServeHTTP(m, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(m.Body)
	if !strings.Contains(string(b), `jwtgate_rate_limited_total{limit="per_user",route="api"} 3`) {
		t.Fatalf("metric:\n%s", ratelimitGrep(string(b), "jwtgate_rate_limited_total"))
	}
}

// Anonymous requests count per client address: the TCP peer, or the
// address a trusted proxy forwards; an untrusted client's X-Forwarded-For
// or X-Real-IP does not reset its count; an IPv6 client counts per /64.
func TestSecRatelimitPerClient(t *testing.T) {
	e := ratelimitStart(t)
	stranger := clientFrom(t, "127.0.0.2")
	for i := range 2 {
		if r := do(t, stranger, "GET", e.gw.URL+"/api/x", "", nil); r.Status != 200 {
			t.Fatalf("request %d: %d", i+1, r.Status)
		}
	}
	for _, spoof := range []map[string]string{
		nil,
		{"X-Forwarded-For": "198.51.100.1"},
		{"X-Real-IP": "198.51.100.2"},
		{"X_Forwarded_For": "198.51.100.3"},
		{"Forwarded": "for=198.51.100.4"},
	} {
		ratelimitWant429(t, do(t, stranger, "GET", e.gw.URL+"/api/x", "", spoof), "per_client", 2, 60, 30)
	}
	// Authenticated requests from that address count per user instead.
	if r := do(t, stranger, "GET", e.gw.URL+"/api/x", e.people.bob, nil); r.Status != 200 {
		t.Fatalf("bob from a throttled address: %d", r.Status)
	}
	if r := do(t, clientFrom(t, "127.0.0.3"), "GET", e.gw.URL+"/api/x", "", nil); r.Status != 200 {
		t.Fatalf("another client: %d", r.Status)
	}
	// Behind the trusted proxy, the forwarded client is counted.
	proxy := clientFrom(t, "127.0.0.1")
	xff := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	for _, ip := range []string{"203.0.113.7", "203.0.113.7"} {
		if r := do(t, proxy, "GET", e.gw.URL+"/api/x", "", xff(ip)); r.Status != 200 {
			t.Fatalf("forwarded %s: %d", ip, r.Status)
		}
	}
	ratelimitWant429(t, do(t, proxy, "GET", e.gw.URL+"/api/x", "", xff("203.0.113.7")), "per_client", 2, 60, 30)
	if r := do(t, proxy, "GET", e.gw.URL+"/api/x", "", xff("203.0.113.8")); r.Status != 200 {
		t.Fatalf("another forwarded client: %d", r.Status)
	}
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		if r := do(t, proxy, "GET", e.gw.URL+"/api/x", "", xff(ip)); r.Status != 200 {
			t.Fatalf("forwarded %s: %d", ip, r.Status)
		}
	}
	ratelimitWant429(t, do(t, proxy, "GET", e.gw.URL+"/api/x", "", xff("2001:db8:1:2::abcd")), "per_client", 2, 60, 30)
}

// burst bounds the requests let through at once; the rest come at the
// steady rate.
func TestSecRatelimitBurst(t *testing.T) {
	e := ratelimitStart(t)
	for i := range 2 {
		if r := get(t, e.gw.URL+"/burst/x", e.people.carol); r.Status != 200 {
			t.Fatalf("request %d: %d", i+1, r.Status)
		}
	}
	ratelimitWant429(t, get(t, e.gw.URL+"/burst/x", e.people.carol), "per_user", 60, 60, 1)
	e.clk.Advance(time.Second)
	if r := get(t, e.gw.URL+"/burst/x", e.people.carol); r.Status != 200 {
		t.Fatalf("after a second: %d", r.Status)
	}
}

// Forward-auth and gRPC ext_authz count against the same limit as the
// proxy: /auth/check answers 429 and Envoy gets DENIED 429 with the
// headers.
func TestSecRatelimitForwardAuthAndExtAuthz(t *testing.T) {
	e := ratelimitStart(t)
	p := e.people
	check := map[string]string{"X-Original-URI": "/api/x", "X-Original-Method": "GET"}
	for i := range 2 {
		if r := do(t, nil, "GET", e.gw.URL+"/auth/check", p.dave, check); r.Status != 200 {
			t.Fatalf("check %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if r := get(t, e.gw.URL+"/api/x", p.dave); r.Status != 200 {
		t.Fatalf("proxy: %d", r.Status)
	}
	ratelimitWant429(t, do(t, nil, "GET", e.gw.URL+"/auth/check", p.dave, check), "per_user", 3, 60, 20)

	srv := e.gw.GW.ExtAuthz
	ln := extauthzListen(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	cc := extauthzConn(t, ln.Addr().String(), "127.0.0.1")
	resp := extauthzCheck(t, cc, extauthzRequest("GET", "/api/x", "203.0.113.9", map[string]string{"authorization": "Bearer " + p.dave}))
	extauthzDenied(t, resp, 429, "throttled")
	hdr := map[string]string{}
	for _, o := range resp.GetDeniedResponse().GetHeaders() {
		hdr[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	if hdr["retry-after"] != "20" || hdr["ratelimit-policy"] != `"per_user";q=3;w=60` || hdr["ratelimit"] != `"per_user";r=0;t=20` {
		t.Fatalf("DENIED headers %v", hdr)
	}
	// Anonymous checks count per the CheckRequest's source address.
	for i := range 2 {
		resp := extauthzCheck(t, cc, extauthzRequest("GET", "/api/x", "198.51.100.50", nil))
		if resp.GetOkResponse() == nil {
			t.Fatalf("anonymous check %d: %s", i+1, resp.GetDeniedResponse().GetBody())
		}
	}
	extauthzDenied(t, extauthzCheck(t, cc, extauthzRequest("GET", "/api/x", "198.51.100.50", nil)), 429, "throttled")
	if resp := extauthzCheck(t, cc, extauthzRequest("GET", "/api/x", "198.51.100.51", nil)); resp.GetOkResponse() == nil {
		t.Fatalf("another source throttled: %s", resp.GetDeniedResponse().GetBody())
	}
}

// ratelimitGrep returns the lines of s containing sub.
func ratelimitGrep(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
