package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/tests/djangoauth"
	"jwtgate/tests/fakeauth"
)

// warmVerifyCalls is what the gateway's own metrics say about verify calls
// home (any outcome).
func warmVerifyCalls(t *testing.T, metricsURL string) float64 {
	t.Helper()
	m := scrape(t, metricsURL)
	var n float64
	for key, v := range m {
		if strings.HasPrefix(key, "jwtgate_auth_service_call_duration_seconds_count{") && strings.Contains(key, `endpoint="verify"`) {
			n += v
		}
	}
	return n
}

// warmAPI calls an API route with tok and wants 200 for user id.
func warmAPI(t *testing.T, gwURL, tok string, id int64, step string) {
	t.Helper()
	r := get(t, gwURL+"/api/billing/x", tok)
	if r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != strconv.FormatInt(id, 10) {
		t.Fatalf("%s: %d %s", step, r.Status, r.Body)
	}
}

// TestWarmDjangoLoginRefresh: with the real Django SimpleJWT service, a
// client that logs in and refreshes through the gateway (JSON and form
// bodies) causes zero verify calls, counted at the auth service (a counting
// proxy) and in the gateway's call metrics, in remote and hybrid mode. Only
// the exact text the auth service issued is trusted: a token obtained from
// the auth service directly, another spelling, a tampered copy and a token
// signed with another secret are checked as before; a logout at the edge
// still refuses a warmed token.
func TestWarmDjangoLoginRefresh(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	carol := dj.CreateUser(t, "carol@example.com", "carol-pw", []string{"billing"}, false)
	t.Setenv("JWTGATE_TEST_SIGNING_KEY", dj.SigningKey())
	proxy := startAuthProxy(t, dj.URL)
	up := startUpstream(t)
	for _, mode := range []string{"remote", "hybrid"} {
		t.Run(mode, func(t *testing.T) {
			cfg := localConfig(mode, "    keys: [\"env:JWTGATE_TEST_SIGNING_KEY\"]\n    algorithms: [HS256]\n")
			if mode == "remote" {
				cfg = strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 5s\nauth:\n", 1)
			}
			cfg = strings.Replace(cfg, "auth:\n", "auth:\n  revoke_on_logout: true\n", 1)
			gw := startGateway(t, cfg, proxy.URL, up.URL, nil)
			metrics := miscMetricsURL(t, gw)
			before := proxy.count(pathVerify)

			// Login (JSON and form) → API calls → refresh (JSON and form) → API calls.
			access, refresh := tokens(t, login(t, gw.URL, "carol@example.com", "carol-pw"))
			formAccess, _ := tokens(t, call(t, http.MethodPost, gw.URL+"/auth/token/", "application/x-www-form-urlencoded", "email=carol%40example.com&password=carol-pw"))
			for range 2 {
				warmAPI(t, gw.URL, access, carol, "after login")
				warmAPI(t, gw.URL, formAccess, carol, "after form login")
			}
			access2, refresh2 := tokens(t, call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+refresh+`"}`))
			access3, refresh3 := tokens(t, call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/x-www-form-urlencoded", "refresh="+url.QueryEscape(refresh2)))
			for range 2 {
				warmAPI(t, gw.URL, access2, carol, "after refresh")
				warmAPI(t, gw.URL, access3, carol, "after form refresh")
			}
			if n := proxy.count(pathVerify) - before; n != 0 {
				t.Fatalf("%d verify calls at the auth service for tokens issued through the gateway, want 0", n)
			}
			if n := warmVerifyCalls(t, metrics); n != 0 {
				t.Fatalf("gateway metrics: %v verify calls, want 0", n)
			}

			// A token the client got from the auth service directly is
			// verified as before (remote: one call; hybrid: one call too).
			direct, _ := tokens(t, call(t, http.MethodPost, proxy.URL+"/auth/token/", "application/json", `{"email":"carol@example.com","password":"carol-pw"}`))
			warmAPI(t, gw.URL, direct, carol, "token from the auth service directly")
			if n := proxy.count(pathVerify) - before; n != 1 {
				t.Fatalf("%d verify calls after a token not issued through the gateway, want 1", n)
			}

			// Other spellings and forgeries of a warmed token are not warm.
			parts := strings.Split(access3, ".")
			for name, tok := range map[string]string{
				"padded payload":  parts[0] + "." + parts[1] + "=." + parts[2],
				"padded header":   parts[0] + "=." + parts[1] + "." + parts[2],
				"std alphabet":    strings.NewReplacer("-", "+", "_", "/").Replace(access3),
				"tampered claims": tamper(t, access3, map[string]any{"user_id": "7"}),
				"other secret":    resign(t, access3, jwt.SigningMethodHS256, []byte(dj.SigningKey()+"-not"), "", map[string]any{"jti": "w"}),
				"trailing dot":    access3 + ".",
				"alg none":        algNone(t, access3),
			} {
				if tok == access3 {
					continue // the alphabet swap changed nothing in this token
				}
				if r := get(t, gw.URL+"/api/billing/x", tok); r.Status != http.StatusUnauthorized {
					t.Fatalf("%s of a warmed token: %d %s", name, r.Status, r.Body)
				}
			}

			// Logout at the edge still refuses a warmed token.
			bl := call(t, http.MethodPost, gw.URL+"/auth/token/blacklist/", "application/json", `{"refresh":"`+refresh3+`","access":"`+access3+`"}`)
			if bl.Status != http.StatusOK {
				t.Fatalf("blacklist: %d %s", bl.Status, bl.Body)
			}
			wantError(t, get(t, gw.URL+"/api/billing/x", access3), http.StatusUnauthorized, "token_not_valid")

			// A failed login or refresh warms nothing and changes nothing.
			if r := login(t, gw.URL, "carol@example.com", "wrong"); r.Status != http.StatusUnauthorized {
				t.Fatalf("wrong password: %d %s", r.Status, r.Body)
			}
			if r := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+refresh3+`"}`); r.Status != http.StatusUnauthorized {
				t.Fatalf("blacklisted refresh: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestWarmRefreshAheadGateway: through the wired gateway (fake auth service,
// the gateway's clock stepped by hand), a token used every 100 ms for
// 3 × cache.ttl (10 s) costs ⌈3 / 0.8⌉ = 4 verify calls: the first sight,
// then one background revalidation per 8 s; every request is answered
// 200. Before refresh-ahead it was 3, each one a request waiting for it.
func TestWarmRefreshAheadGateway(t *testing.T) {
	fa, aliceID := newFake(t, fakeauth.Options{})
	clk := newClock()
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 5s\nauth:\n  cache:\n    ttl: 10s\nusers:\n  refresh_after: 1h", 1)
	gw := startGateway(t, cfg, fa.URL(), startUpstream(t).URL, clk.Now)
	access, _ := fa.IssuePair(aliceID) // not issued through the gateway: not pre-warmed
	for i := range 300 {
		if r := get(t, gw.URL+"/api/x", access); r.Status != http.StatusOK {
			t.Fatalf("request %d (%s into the run): %d %s", i, time.Duration(i)*100*time.Millisecond, r.Status, r.Body)
		}
		want := int64(1 + i/80) // a revalidation starts at 8 s, 16 s, 24 s
		eventually(t, 10*time.Second, func() string {
			if n := fa.Calls(fakeauth.PathVerify); n != want {
				return fmt.Sprintf("request %d: %d verify calls, want %d", i, n, want)
			}
			return ""
		})
		clk.Advance(100 * time.Millisecond)
	}
	if n := fa.Calls(fakeauth.PathVerify); n != 4 {
		t.Fatalf("%d verify calls over 3 × ttl, want 4", n)
	}
}
