package tests

import (
	"net/http"
	"strings"
	"testing"

	"jwtgate/models"
	"jwtgate/tests/djangoauth"
)

// reloadLimits is a gateway with every count a reload could reset: a
// per-user and a per-client route limit, and the failed-login throttle.
// %EXTRA% is a change elsewhere in the file.
const reloadLimits = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
throttle:
  failures_per_account: "%FAILS%"
  calls_home_per_client: "%CALLS%"
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
    rate_limit: {per_user: "%LIMIT%"}
  - path: "/open/"
    upstream: "%UPSTREAM%"
    auth: none
    rate_limit: {per_client: "%LIMIT%"}
%EXTRA%
`

// A caller at its limit stays there across reloads: route limits per user
// and per client, and failed logins per account. A reload with the same
// settings, or with changes elsewhere (a new route, another
// calls_home_per_client), keeps every count; changing a limit starts that
// limit afresh with the new numbers.
func TestReloadKeepsRateLimitState(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	dj.CreateUser(t, "alice@example.com", "alice-pw", nil, false)
	dj.CreateUser(t, "bob@example.com", "bob-pw", nil, false)
	up := startUpstream(t)
	yaml := func(limit, fails, calls, extra string) string {
		return fill(reloadLimits, "LIMIT", limit, "FAILS", fails, "CALLS", calls, "EXTRA", extra)
	}
	gw := startGateway(t, yaml("2/hour", "2/hour", "100/minute", ""), dj.URL, up.URL, nil)
	reload := func(t *testing.T, y string) {
		t.Helper()
		y = strings.NewReplacer("%AUTH%", dj.URL, "%UPSTREAM%", up.URL, "%DB%", gw.DBDSN).Replace(y)
		if err := gw.GW.Reload(t.Context(), func() (models.Settings, error) {
			return models.LoadSettings(strings.NewReader(y), func(string) string { return "" })
		}); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	alice, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	// Each count, by what spends one: an API call of alice's, an
	// anonymous request, a failed login of bob's.
	counts := []struct {
		name  string
		spend func(t *testing.T) reply
	}{
		{"per_user", func(t *testing.T) reply { return get(t, gw.URL+"/api/x", alice) }},
		{"per_client", func(t *testing.T) reply { return get(t, gw.URL+"/open/x", "") }},
		{"failures_per_account", func(t *testing.T) reply { return login(t, gw.URL, "bob@example.com", "wrong") }},
	}
	var throttled func(t *testing.T) // every count at its limit
	// allowed spends n requests that must all pass (a failed login is
	// relayed: Django's 401), then one more that must be throttled.
	allowed := func(t *testing.T, n int) {
		t.Helper()
		for _, c := range counts {
			for i := range n {
				if r := c.spend(t); r.Status == http.StatusTooManyRequests {
					t.Fatalf("%s: request %d of %d throttled: %s", c.name, i+1, n, r.Body)
				}
			}
		}
		throttled(t)
	}
	throttled = func(t *testing.T) {
		t.Helper()
		for _, c := range counts {
			wantError(t, c.spend(t), http.StatusTooManyRequests, "throttled")
		}
	}
	allowed(t, 2)

	steps := []struct {
		name, yaml string
		check      func(t *testing.T)
	}{
		{"same settings", yaml("2/hour", "2/hour", "100/minute", ""), throttled},
		{"changes elsewhere", yaml("2/hour", "2/hour", "50/minute", `  - path: "/new/"
    upstream: "`+up.URL+`"`), throttled},
		// A changed limit is a new bucket: 3 more, then throttled.
		{"limits changed", yaml("3/hour", "3/hour", "50/minute", ""), func(t *testing.T) { allowed(t, 3) }},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			reload(t, st.yaml)
			st.check(t)
		})
	}
}
