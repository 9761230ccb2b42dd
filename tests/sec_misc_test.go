package tests

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"jwtgate/models"
	"jwtgate/tests/fakeauth"
)

// miscMetricsURL serves a gateway's /metrics handler (what metrics_listen
// serves) on its own loopback server for the test, and returns its URL.
func miscMetricsURL(t testing.TB, gw *gateway) string {
	t.Helper()
	srv := httptest.NewServer(gw.GW.Metrics)
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// /metrics is not on the public listener, whatever metrics_listen says
// (default, "" and an address): a client cannot read the refusal counters
// that say its token was revoked. The refusal itself is the same generic
// 401 for a revoked, expired, forged and unknown token.
func TestSecMiscMetricsOffThePublicListener(t *testing.T) {
	for name, extra := range map[string]string{
		"default":     "",
		"empty":       "metrics_listen: \"\"\n",
		"own address": "metrics_listen: \"127.0.0.1:0\"\n",
		"loopback v6": "metrics_listen: \"[::1]:0\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			fa, _ := newFake(t, fakeauth.Options{})
			up := startUpstream(t)
			gw := startGateway(t, opsConfig("")+extra, fa.URL(), up.URL, nil)
			for _, p := range []string{"/metrics", "/metrics/", "/METRICS", "/metrics?format=text", "//metrics", "/./metrics", "/%6detrics"} {
				r := get(t, gw.URL+p, "")
				if r.Status == http.StatusOK || strings.Contains(string(r.Body), "jwtgate_") {
					t.Errorf("GET %s on the public listener: %d %.200s", p, r.Status, r.Body)
				}
			}
		})
	}
	if d := models.DefaultSettings(); d.MetricsListen != "127.0.0.1:9090" {
		t.Fatalf("default metrics_listen %q, want 127.0.0.1:9090", d.MetricsListen)
	}
}

// A client learns nothing about why its token was refused: revoked,
// expired, forged, a refresh token and garbage get one status, one body
// and one challenge, while the (private) metrics do tell them apart.
func TestSecMiscRefusalReasonNotVisibleToClient(t *testing.T) {
	fa, aliceID := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	gw := startGateway(t, opsConfig("  revoke_on_logout: true\n"), fa.URL(), up.URL, nil)

	revoked, refresh := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	if r := get(t, gw.URL+"/api/x", revoked); r.Status != http.StatusOK {
		t.Fatalf("before logout: %d %s", r.Status, r.Body)
	}
	body := `{"refresh":"` + refresh + `","access":"` + revoked + `"}`
	if r := call(t, http.MethodPost, gw.URL+"/auth/token/blacklist/", "application/json", body); r.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	expired := fa.NewClaims(aliceID, "access")
	expired["exp"] = int64(1)
	_, refreshOnly := fa.IssuePair(aliceID)
	fresh, _ := fa.IssuePair(aliceID)
	forged := fresh[:strings.LastIndexByte(fresh, '.')+1] + strings.Repeat("A", 43)
	// A revoked token's refusal says so (issue 12: the client should log in
	// again); every other refusal is one answer that names no reason.
	rv := get(t, gw.URL+"/api/x", revoked)
	wantError(t, rv, http.StatusUnauthorized, "token_not_valid")
	if rv.json(t)["detail"] != "Token has been revoked" {
		t.Errorf("revoked: %s", rv.Body)
	}
	var first reply
	for i, tok := range []string{fa.Sign(expired), forged, refreshOnly, "not.a.token"} {
		r := get(t, gw.URL+"/api/x", tok)
		if i == 0 {
			first = r
			wantError(t, r, http.StatusUnauthorized, "token_not_valid")
			if r.Header.Get("WWW-Authenticate") != rv.Header.Get("WWW-Authenticate") {
				t.Errorf("WWW-Authenticate differs from the revoked token's: %q vs %q", r.Header.Get("WWW-Authenticate"), rv.Header.Get("WWW-Authenticate"))
			}
			continue
		}
		if r.Status != first.Status || string(r.Body) != string(first.Body) || r.Header.Get("WWW-Authenticate") != first.Header.Get("WWW-Authenticate") {
			t.Errorf("refusal %d differs from the expired token's: %d %s %q vs %d %s %q", i, r.Status, r.Body,
				r.Header.Get("WWW-Authenticate"), first.Status, first.Body, first.Header.Get("WWW-Authenticate"))
		}
	}
	if b := strings.ToLower(string(first.Body)); strings.Contains(b, "expired.") || strings.Contains(b, "signature") || strings.Contains(b, "refresh") {
		t.Errorf("the refusal names the reason: %s", first.Body)
	}
	if m := scrape(t, miscMetricsURL(t, gw)); m.get("jwtgate_auth_refusals_total", "reason=revoked") < 1 {
		t.Errorf("metrics do not count the revocation: the test did not exercise it")
	}
}

// A rule that exceeds its budget on a request's data denies that request
// with 403 and a logged warning; the gateway keeps serving. A rule that
// cannot be bounded at all stops startup naming routes[N].allow.
func TestSecMiscRuleOverBudgetDenies(t *testing.T) {
	fa, aliceID := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	cfg := strings.Replace(opsConfig(""), `    upstream: "%UPSTREAM%"`, `    upstream: "%UPSTREAM%"
    allow: 'len(request.headers["x-big"] + request.headers["x-big"]) < 200000 && user.is_active'`, 1)
	gw := startGateway(t, cfg, fa.URL(), up.URL, nil)
	access, _ := fa.IssuePair(aliceID)
	if r := do(t, nil, http.MethodGet, gw.URL+"/api/x", access, map[string]string{"X-Big": "small"}); r.Status != http.StatusOK {
		t.Fatalf("small header: %d %s", r.Status, r.Body)
	}
	for _, n := range []int{33 << 10, 40 << 10, 60 << 10} {
		r := do(t, nil, http.MethodGet, gw.URL+"/api/x", access, map[string]string{"X-Big": strings.Repeat("a", n)})
		wantError(t, r, http.StatusForbidden, "permission_denied")
	}
	if logs := gw.Logs.String(); !strings.Contains(logs, "allow rule failed") || !strings.Contains(logs, "budget") {
		t.Errorf("no warning logged for the rule over budget:\n%s", logs)
	}
	if r := get(t, gw.URL+"/healthz", ""); r.Status != http.StatusOK {
		t.Fatalf("healthz after: %d", r.Status)
	}

	for _, allow := range []string{`reduce(1..100, #acc + #acc, "x") != ""`, `len(1..1000000000) > 0`, `repeat("ab", 999999) != ""`} {
		bad := strings.Replace(opsConfig(""), `    upstream: "%UPSTREAM%"`, "    upstream: \"http://127.0.0.1:9\"\n    allow: '"+allow+"'", 1)
		if _, err := models.LoadSettings(strings.NewReader(strings.NewReplacer("%AUTH%", fa.URL(), "%DB%", "x.db").Replace(bad)), func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "routes[0].allow") {
			t.Errorf("%s: %v; want an error naming routes[0].allow", allow, err)
		}
	}
}
