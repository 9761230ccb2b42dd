package tests

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"jwtgate/remote"
	"jwtgate/tests/fakeauth"
)

// opsConfig is baseConfig plus the keys the operations tests turn.
func opsConfig(extra string) string {
	return `
listen: "127.0.0.1:0"
readiness_interval: 300ms
auth_service:
  url: "%AUTH%"
  timeout: 500ms
  circuit:
    failures: 3
    cool_down: 1s
auth:
  cache:
    ttl: 30s
` + extra + `
database:
  driver: sqlite
  dsn: "%DB%"
log:
  level: debug
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
`
}

// series is one scrape of /metrics: "name{sorted labels}" -> value.
type series map[string]float64

func scrape(t testing.TB, url string) series {
	t.Helper()
	r := get(t, url, "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, r.Status, r.Body)
	}
	out := series{}
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// get returns the value of name with exactly these labels ("k=v" pairs, any order).
func (s series) get(name string, labels ...string) float64 {
	want := make([]string, len(labels))
	for i, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		want[i] = k + `="` + v + `"`
	}
	for key, v := range s {
		n, rest, _ := strings.Cut(key, "{")
		if n != name {
			continue
		}
		have := strings.Split(strings.TrimSuffix(rest, "}"), ",")
		if rest == "" {
			have = nil
		}
		if len(have) != len(want) {
			continue
		}
		all := true
		for _, w := range want {
			found := false
			for _, h := range have {
				found = found || h == w
			}
			all = all && found
		}
		if all {
			return v
		}
	}
	return -1
}

// eventually polls f every 50ms until it returns "" or the bound passes.
func eventually(t testing.TB, bound time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", bound, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReadyzFlipsWhenAuthServiceStops(t *testing.T) {
	fa, _ := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	gw := startGateway(t, opsConfig(""), fa.URL(), up.URL, nil)

	if r := get(t, gw.URL+"/healthz", ""); r.Status != http.StatusOK {
		t.Fatalf("/healthz %d", r.Status)
	}
	ready := func(want int) func() string {
		return func() string {
			r := get(t, gw.URL+"/readyz", "")
			if r.Status != want {
				return fmt.Sprintf("/readyz %d %s, want %d", r.Status, r.Body, want)
			}
			return ""
		}
	}
	eventually(t, 5*time.Second, ready(http.StatusOK))

	fa.Stop()
	eventually(t, 5*time.Second, ready(http.StatusServiceUnavailable))
	r := get(t, gw.URL+"/readyz", "")
	body := r.json(t)
	if down := fmt.Sprint(body["down"]); down != "[auth_service]" {
		t.Fatalf("down = %s, want [auth_service]; body %s", down, r.Body)
	}
	if r := get(t, gw.URL+"/healthz", ""); r.Status != http.StatusOK {
		t.Fatalf("/healthz while the auth service is down: %d, want 200 (the process serves)", r.Status)
	}
	if m := scrape(t, miscMetricsURL(t, gw)); m.get("jwtgate_ready", "check=auth_service") != 0 || m.get("jwtgate_ready", "check=database") != 1 {
		t.Fatalf("jwtgate_ready: auth_service %v database %v, want 0 and 1",
			m.get("jwtgate_ready", "check=auth_service"), m.get("jwtgate_ready", "check=database"))
	}

	fa.Restart()
	eventually(t, 5*time.Second, ready(http.StatusOK))
}

func TestMetricsCountersMove(t *testing.T) {
	fa, aliceID := newFake(t, fakeauth.Options{})
	bob := fa.AddUser(fakeauth.User{Email: "bob@example.com", Password: "bob-pw", IsActive: true})
	up := startUpstream(t)
	gw := startGateway(t, opsConfig(""), fa.URL(), up.URL, nil)

	access, refresh := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	for range 2 { // hits: the login through the gateway cached alice's token as verified
		if r := get(t, gw.URL+"/api/things", access); r.Status != http.StatusOK {
			t.Fatalf("GET /api/things: %d %s", r.Status, r.Body)
		}
	}
	bobAccess, _ := fa.IssuePair(bob.ID) // never logged in through the gateway: fetched on first use
	if r := get(t, gw.URL+"/api/things", bobAccess); r.Status != http.StatusOK {
		t.Fatalf("bob: %d %s", r.Status, r.Body)
	}
	expired := fa.NewClaims(aliceID, "access")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	wantError(t, get(t, gw.URL+"/api/things", fa.Sign(expired)), http.StatusUnauthorized, "token_not_valid")
	wantError(t, get(t, gw.URL+"/api/things", refresh), http.StatusUnauthorized, "token_not_valid")
	wantError(t, get(t, gw.URL+"/nowhere", ""), http.StatusNotFound, "not_found")

	m := scrape(t, miscMetricsURL(t, gw))
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"jwtgate_http_requests_total", []string{"route=api", "method=GET", "status=200"}, 3},
		{"jwtgate_http_requests_total", []string{"route=api", "method=GET", "status=401"}, 2},
		{"jwtgate_http_requests_total", []string{"route=/auth/token/", "method=POST", "status=200"}, 1},
		{"jwtgate_http_requests_total", []string{"route=unmatched", "method=GET", "status=404"}, 1},
		{"jwtgate_http_request_duration_seconds_count", []string{"route=api"}, 5},
		{"jwtgate_upstream_request_duration_seconds_count", []string{"route=api", "outcome=2xx"}, 3},
		{"jwtgate_auth_service_call_duration_seconds_count", []string{"endpoint=token", "outcome=2xx"}, 1},
		{"jwtgate_auth_service_call_duration_seconds_count", []string{"endpoint=verify", "outcome=2xx"}, 1}, // bob's only
		{"jwtgate_auth_service_call_duration_seconds_count", []string{"endpoint=user", "outcome=2xx"}, 2},
		{"jwtgate_verify_cache_hits_total", nil, 2},
		{"jwtgate_verify_cache_misses_total", nil, 3},
		{"jwtgate_verify_cache_entries", nil, 2},
		{"jwtgate_auth_refusals_total", []string{"reason=expired"}, 1},
		{"jwtgate_auth_refusals_total", []string{"reason=wrong_token_type"}, 1},
		{"jwtgate_user_fetches_total", []string{"outcome=ok"}, 1},
		{"jwtgate_mirror_writes_total", []string{"result=ok"}, 2},
		{"jwtgate_auth_circuit_state", []string{"state=closed"}, 1},
	} {
		if got := m.get(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for key := range m {
		if strings.Contains(key, "/api/things") || strings.Contains(key, "/nowhere") {
			t.Errorf("raw path in a label: %s", key)
		}
	}
}

func TestMetricsListenServesMetricsElsewhere(t *testing.T) {
	fa, _ := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	gw := startGateway(t, opsConfig("")+"metrics_listen: \"127.0.0.1:1\"\n", fa.URL(), up.URL, nil)
	wantError(t, get(t, gw.URL+"/metrics", ""), http.StatusNotFound, "not_found")
	srv := httptest.NewServer(gw.GW.Metrics)
	defer srv.Close()
	if m := scrape(t, srv.URL); m.get("jwtgate_auth_circuit_state", "state=closed") != 1 {
		t.Fatalf("metrics handler does not serve jwtgate's registry")
	}
}

// recordingAuth sits between the gateway and the fake auth service and
// records the X-Request-Id of every call home by path, readiness probes
// left out.
type recordingAuth struct {
	*httptest.Server
	mu  sync.Mutex
	ids map[string][]string
}

func startRecordingAuth(t testing.TB, target string) *recordingAuth {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ra := &recordingAuth{ids: map[string][]string{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	ra.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-Request-Id"); id != remote.ProbeRequestID {
			ra.mu.Lock()
			ra.ids[r.URL.Path] = append(ra.ids[r.URL.Path], id)
			ra.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ra.Close)
	return ra
}

func (ra *recordingAuth) idsFor(path string) []string {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	return append([]string(nil), ra.ids[path]...)
}

func TestRequestIDReachesUpstreamAndAuthService(t *testing.T) {
	fa, _ := newFake(t, fakeauth.Options{})
	bob := fa.AddUser(fakeauth.User{Email: "bob@example.com", Password: "bob-pw", IsActive: true})
	ra := startRecordingAuth(t, fa.URL())
	up := startUpstream(t)
	gw := startGateway(t, opsConfig(""), ra.URL, up.URL, nil)

	access, _ := fa.IssuePair(bob.ID) // uncached token, unmirrored user: verify and user calls
	r := get(t, gw.URL+"/api/x", access, "X-Request-Id", "trace-42.a_b")
	if r.Status != http.StatusOK {
		t.Fatalf("GET: %d %s", r.Status, r.Body)
	}
	if got := r.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "trace-42.a_b" {
		t.Fatalf("response X-Request-Id %q, want the client's [trace-42.a_b]", got)
	}
	if got := r.echo(t).Headers.Get("X-Request-Id"); got != "trace-42.a_b" {
		t.Fatalf("upstream got X-Request-Id %q", got)
	}
	for _, p := range []string{fakeauth.PathVerify, fmt.Sprintf("%s%d/", fakeauth.PathUsers, bob.ID)} {
		if got := ra.idsFor(p); len(got) != 1 || got[0] != "trace-42.a_b" {
			t.Fatalf("auth service %s got X-Request-Id %q, want [trace-42.a_b]", p, got)
		}
	}
	login(t, gw.URL, "bob@example.com", "bob-pw")
	if got := ra.idsFor(fakeauth.PathObtain); len(got) != 1 || len(got[0]) < 16 {
		t.Fatalf("login relayed X-Request-Id %q, want a generated id", got)
	}

	for _, bad := range []string{"has space", strings.Repeat("a", 129), "semi;colon", "new\u2028line"} {
		r := get(t, gw.URL+"/api/x", access, "X-Request-Id", bad)
		got := r.Header.Get("X-Request-Id")
		if got == bad || got == "" || strings.ContainsAny(got, " ;") {
			t.Fatalf("client id %q: response id %q, want a generated one", bad, got)
		}
		if e := r.echo(t).Headers.Get("X-Request-Id"); e != got {
			t.Fatalf("upstream got %q, client got %q", e, got)
		}
	}
}

func TestAccessLogNeverLeaksSecrets(t *testing.T) {
	fa, aliceID := newFake(t, fakeauth.Options{Rotate: true})
	up := startUpstream(t)
	gw := startGateway(t, opsConfig(""), fa.URL(), up.URL, nil)

	access, refresh := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	bad := login(t, gw.URL, "alice@example.com", "wrong-password-xyzzy")
	if bad.Status != http.StatusUnauthorized {
		t.Fatalf("bad login: %d", bad.Status)
	}
	rr := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/?token="+access, "application/json", `{"refresh":"`+refresh+`"}`)
	if rr.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", rr.Status, rr.Body)
	}
	newAccess := rr.json(t)["access"].(string)
	newRefresh := rr.json(t)["refresh"].(string)
	if r := get(t, gw.URL+"/api/things?api_key=query-secret-123", newAccess, "Cookie", "session=cookie-secret-456", "X-Request-Id", "req-api-1"); r.Status != http.StatusOK {
		t.Fatalf("API: %d %s", r.Status, r.Body)
	}
	wantError(t, get(t, gw.URL+"/api/things", "garbage."+access), http.StatusUnauthorized, "token_not_valid")
	call(t, http.MethodPost, gw.URL+"/auth/token/blacklist/", "application/json", `{"refresh":"`+newRefresh+`"}`)
	fa.Stop() // errors on the way home are logged too
	call(t, http.MethodPost, gw.URL+"/auth/token/", "application/x-www-form-urlencoded", "email=alice%40example.com&password=down-pw-777")
	get(t, gw.URL+"/api/things", fa.Sign(fa.NewClaims(aliceID, "access")))

	logs := gw.Logs.String()
	for _, secret := range []string{access, refresh, newAccess, newRefresh, "alice-pw", "wrong-password-xyzzy", "down-pw-777",
		"query-secret-123", "cookie-secret-456", strings.Split(access, ".")[2]} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret %.20q...", secret)
		}
	}
	var apiLine string
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, "msg=request") && strings.Contains(line, "request_id=req-api-1") {
			apiLine = line
		}
	}
	for _, want := range []string{"method=GET", "route=api", "path=/api/things", "status=200", "duration=", fmt.Sprintf("user_id=%d", aliceID)} {
		if !strings.Contains(apiLine, want) {
			t.Errorf("access line %q lacks %s", apiLine, want)
		}
	}
	for _, route := range []string{"route=/auth/token/ ", "route=/auth/token/refresh/ ", "route=/auth/token/blacklist/ "} {
		if !strings.Contains(logs, route) {
			t.Errorf("no access line with %s", route)
		}
	}
}

func TestCircuitBreakerOpensAndCloses(t *testing.T) {
	fa, aliceID := newFake(t, fakeauth.Options{})
	ra := startRecordingAuth(t, fa.URL())
	up := startUpstream(t)
	gw := startGateway(t, opsConfig(""), ra.URL, up.URL, nil)
	fresh := func() string { a, _ := fa.IssuePair(aliceID); return a }
	verifyCalls := func() int { return len(ra.idsFor(fakeauth.PathVerify)) }

	// A service that drops connections fails on its own; a 500 to a
	// client's token would not count (README: client-caused errors and the
	// circuit breaker).
	// The readiness probe (every 150 ms here) counts too, so the circuit may
	// open before the third call. openRefusals counts the calls refused
	// while open: the one after the loop, and one in it if it opened early.
	fa.SetFailure(fakeauth.FailHangup)
	openRefusals := 1.0
	for range 3 { // failures: 3
		r := get(t, gw.URL+"/api/x", fresh())
		wantError(t, r, http.StatusServiceUnavailable, "auth_service_unavailable")
		if r.Header.Get("Retry-After") != "" {
			openRefusals++
			break
		}
	}
	calls := verifyCalls()
	r := get(t, gw.URL+"/api/x", fresh())
	wantError(t, r, http.StatusServiceUnavailable, "auth_service_unavailable")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 1 {
		t.Fatalf("Retry-After %q, want 1 (cool_down 1s)", r.Header.Get("Retry-After"))
	}
	if got := verifyCalls(); got != calls {
		t.Fatalf("verify calls while open: %d, want %d (no call home)", got, calls)
	}
	m := scrape(t, miscMetricsURL(t, gw))
	if m.get("jwtgate_auth_circuit_state", "state=open") != 1 || m.get("jwtgate_auth_service_call_duration_seconds_count", "endpoint=verify", "outcome=circuit_open") != openRefusals {
		t.Fatalf("metrics: open=%v circuit_open calls=%v", m.get("jwtgate_auth_circuit_state", "state=open"),
			m.get("jwtgate_auth_service_call_duration_seconds_count", "endpoint=verify", "outcome=circuit_open"))
	}

	fa.SetFailure(fakeauth.FailNone)
	token := fresh()
	eventually(t, 5*time.Second, func() string {
		if r := get(t, gw.URL+"/api/x", token); r.Status != http.StatusOK {
			return fmt.Sprintf("after recovery: %d %s", r.Status, r.Body)
		}
		return ""
	})
	if got := verifyCalls(); got != calls+1 {
		t.Fatalf("verify calls after the cool-down: %d, want %d (one trial call)", got, calls+1)
	}
	if m := scrape(t, miscMetricsURL(t, gw)); m.get("jwtgate_auth_circuit_state", "state=closed") != 1 {
		t.Fatalf("circuit not closed after a successful trial call (open %v, half-open %v)",
			m.get("jwtgate_auth_circuit_state", "state=open"), m.get("jwtgate_auth_circuit_state", "state=half-open"))
	}
}

func TestStaleGraceServesCachedVerdictDuringOutage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace string
		want  []int // status at +40s, +80s, +100s past the first verify (ttl 30s)
	}{
		{"off", "0s", []int{503, 503, 503}},
		{"one minute", "1m", []int{200, 200, 503}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			fa, aliceID := newFake(t, fakeauth.Options{Now: clk.Now, AccessTTL: time.Hour})
			up := startUpstream(t)
			gw := startGateway(t, opsConfig("    stale_grace: "+tc.grace+"\n"), fa.URL(), up.URL, clk.Now)
			access, _ := fa.IssuePair(aliceID)
			if r := get(t, gw.URL+"/api/x", access); r.Status != http.StatusOK {
				t.Fatalf("warm-up: %d %s", r.Status, r.Body)
			}
			fa.Stop()
			for i, step := range []time.Duration{40 * time.Second, 40 * time.Second, 20 * time.Second} {
				clk.Advance(step)
				r := get(t, gw.URL+"/api/x", access)
				if r.Status != tc.want[i] {
					t.Fatalf("step %d: status %d, want %d; %s", i, r.Status, tc.want[i], r.Body)
				}
			}
			want := 0.0
			if tc.grace != "0s" {
				want = 2
			}
			if got := scrape(t, miscMetricsURL(t, gw)).get("jwtgate_verify_cache_stale_served_total"); got != want {
				t.Fatalf("stale served = %v, want %v", got, want)
			}
		})
	}
}

func TestRequestIDFromUntrustedClientIsReplaced(t *testing.T) {
	fa, _ := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	// Only 10.9.9.9 may set the id; the test client is 127.0.0.1.
	gw := startGateway(t, opsConfig("")+"trusted_proxies: [\"10.9.9.9\"]\n", fa.URL(), up.URL, nil)
	r := get(t, gw.URL+"/healthz", "", "X-Request-Id", "client-chosen-1")
	if got := r.Header.Get("X-Request-Id"); got == "client-chosen-1" || !regexp.MustCompile(`^[A-Za-z0-9._-]{16,128}$`).MatchString(got) {
		t.Fatalf("X-Request-Id %q: want a generated id, not the untrusted client's", got)
	}
}

func TestReadyzNamesJWKSWhenLocalKeysAreMissing(t *testing.T) {
	fa, _ := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	cfg := strings.Replace(opsConfig(""), "auth:\n", "auth:\n  verify: local\n  local:\n    jwks_url: \"http://127.0.0.1:1/jwks.json\"\n", 1)
	gw := startGateway(t, cfg, fa.URL(), up.URL, nil)
	eventually(t, 5*time.Second, func() string {
		r := get(t, gw.URL+"/readyz", "")
		if r.Status != http.StatusServiceUnavailable || fmt.Sprint(r.json(t)["down"]) != "[jwks]" {
			return fmt.Sprintf("/readyz %d %s, want 503 with down [jwks]", r.Status, r.Body)
		}
		return ""
	})
}
