package tests

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/models"
	"jwtgate/tests/djangoauth"
)

// usersAge makes a mirrored record due for a re-fetch: its fetched_at goes
// back by age in the database and the gateway's cached copy is dropped, so
// the next request loads it from the mirror, finds it stale and asks the
// auth service with the request's token.
func usersAge(t testing.TB, gw *gateway, id string, age time.Duration) {
	t.Helper()
	u, err := gw.GW.Store.User(t.Context(), id)
	if err != nil {
		t.Fatalf("user %s not mirrored: %v", id, err)
	}
	if err := gw.GW.Store.DB().Model(&models.User{}).Where("issuer = ? AND id = ?", "", id).
		Update("fetched_at", u.FetchedAt.Add(-age)).Error; err != nil {
		t.Fatal(err)
	}
	gw.GW.Auth.ForgetUser(id)
}

// usersMirrored returns the mirrored record of the auth service's user id.
func usersMirrored(t testing.TB, gw *gateway, id string) models.User {
	t.Helper()
	u, err := gw.GW.Store.User(t.Context(), id)
	if err != nil {
		t.Fatalf("user %s not mirrored: %v", id, err)
	}
	return u
}

// usersWaitRefused polls the auth service's own verify endpoint until it
// refuses token (it expired there), for at most 10 seconds.
func usersWaitRefused(t testing.TB, authURL, token string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r := call(t, http.MethodPost, authURL+"/auth/token/verify/", "application/json", `{"token":"`+token+`"}`)
		if r.Status == http.StatusUnauthorized {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the auth service still accepts the token after 10 s")
}

// TestSecUsersDjangoTokenExpiringDuringRefetch: the auth service refuses
// the caller's token at the user endpoint because it just expired (remote
// mode: between the gateway's check and the call; local mode: inside
// auth.local.leeway). The request is refused with 401 token_not_valid and
// nothing about the user changes: the mirror still says active, and the
// user's fresh token works at once. The old code marked the user inactive
// and answered 403 user_inactive to every token until refresh_after.
func TestSecUsersDjangoTokenExpiringDuringRefetch(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{AccessTTL: 3 * time.Second})
	alice := dj.CreateUser(t, "alice@example.com", "alice-pw", []string{"billing"}, false)
	sid := strconv.FormatInt(alice, 10)
	up := startUpstream(t)

	check := func(t *testing.T, gw *gateway, expiring string) {
		t.Helper()
		before := usersMirrored(t, gw, sid)
		hits := up.hits.Load()
		for i := range 3 { // again and again: never a lock-out
			wantError(t, get(t, gw.URL+"/api/billing/x", expiring), http.StatusUnauthorized, "token_not_valid")
			after := usersMirrored(t, gw, sid)
			if !after.IsActive || !after.FetchedAt.Equal(before.FetchedAt) {
				t.Fatalf("attempt %d: the mirror changed after a refused token: active %t, fetched_at %v (was %v)", i, after.IsActive, after.FetchedAt, before.FetchedAt)
			}
		}
		if up.hits.Load() != hits {
			t.Fatal("a refused request reached the upstream")
		}
		// A fresh token (what the client gets by refreshing) works at once.
		fresh, _ := tokens(t, login(t, dj.URL, "alice@example.com", "alice-pw"))
		r := get(t, gw.URL+"/api/billing/x", fresh)
		if r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != sid {
			t.Fatalf("fresh token after the refused one: %d %s", r.Status, r.Body)
		}
		if u := usersMirrored(t, gw, sid); !u.IsActive {
			t.Fatal("mirror says inactive after a successful re-fetch")
		}
	}

	t.Run("remote, expired between the gateway's check and the call", func(t *testing.T) {
		clk := newClock() // frozen: the gateway's cached verdict stays valid
		cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 5s\nauth:\n  cache:\n    ttl: 1h\nusers:\n  refresh_after: 1m", 1)
		gw := startGateway(t, cfg, dj.URL, up.URL, clk.Now)
		access, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
		if r := get(t, gw.URL+"/api/billing/x", access); r.Status != http.StatusOK {
			t.Fatalf("valid token: %d %s", r.Status, r.Body)
		}
		usersWaitRefused(t, dj.URL, access) // three seconds later it has expired at the service
		usersAge(t, gw, sid, 2*time.Minute)
		check(t, gw, access)
	})

	t.Run("local, inside auth.local.leeway", func(t *testing.T) {
		t.Setenv("JWTGATE_TEST_SIGNING_KEY", dj.SigningKey())
		clk := newClock()
		cfg := localConfig("local", "    keys: [\"env:JWTGATE_TEST_SIGNING_KEY\"]\n    algorithms: [HS256]\n    leeway: 30s\n") +
			"users:\n  refresh_after: 1m\n"
		gw := startGateway(t, cfg, dj.URL, up.URL, clk.Now)
		access, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
		usersAge(t, gw, sid, 2*time.Minute)
		// Signed with the service's key, expired 5 s ago: the gateway's
		// leeway accepts it, SimpleJWT (no leeway) does not.
		expired := clk.Now().Add(-5 * time.Second).Unix()
		expiring := resign(t, access, jwt.SigningMethodHS256, []byte(dj.SigningKey()), "", map[string]any{"exp": expired, "iat": expired - 1})
		check(t, gw, expiring)
	})
}

// TestSecUsersDjangoDeactivatedDeleted: what does change a user is the auth
// service's word about the user: deactivated (401 user_inactive) gives 403
// user_inactive and marks the mirror inactive; deleted (401 user_not_found)
// is refused too, mirrored or not; reactivated, the user gets in again.
func TestSecUsersDjangoDeactivatedDeleted(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	ids := map[string]int64{}
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		ids[name] = dj.CreateUser(t, name+"@example.com", name+"-pw", []string{"billing"}, false)
	}
	sid := func(name string) string { return strconv.FormatInt(ids[name], 10) }
	up := startUpstream(t)
	// Real time, not a test clock: a re-fetch that finds a user inactive
	// sets the user's cutoff to the gateway's now, which must be the
	// clock Django's iat is compared with.
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 5s\nusers:\n  refresh_after: 2s", 1)
	gw := startGateway(t, cfg, dj.URL, up.URL, nil)

	// alice and bob are mirrored by their logins; carol and dave only have
	// tokens from the service itself.
	access := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		access[name], _ = tokens(t, login(t, gw.URL, name+"@example.com", name+"-pw"))
		usersMirrored(t, gw, sid(name))
	}
	for _, name := range []string{"carol", "dave"} {
		access[name], _ = tokens(t, login(t, dj.URL, name+"@example.com", name+"-pw"))
	}
	dj.SetActive(t, ids["alice"], false)
	dj.DeleteUser(t, ids["bob"])
	dj.DeleteUser(t, ids["carol"])
	dj.SetActive(t, ids["dave"], false)
	time.Sleep(2100 * time.Millisecond) // past refresh_after: the mirrored records are re-fetched

	hits := up.hits.Load()
	for _, name := range []string{"alice", "bob"} {
		for i := range 2 { // the second answer comes from the cache
			wantError(t, get(t, gw.URL+"/api/billing/x", access[name]), http.StatusForbidden, "user_inactive")
			if u := usersMirrored(t, gw, sid(name)); u.IsActive {
				t.Fatalf("%s, attempt %d: the mirror still says active", name, i)
			}
		}
	}
	r := get(t, gw.URL+"/api/billing/x", access["carol"]) // deleted, never mirrored
	wantError(t, r, http.StatusUnauthorized, "token_not_valid")
	if d := r.json(t)["detail"]; d != "User not found" {
		t.Fatalf("carol: detail %v", d)
	}
	wantError(t, get(t, gw.URL+"/api/billing/x", access["dave"]), http.StatusForbidden, "user_inactive") // inactive, never mirrored
	if up.hits.Load() != hits {
		t.Fatal("a refused user reached the upstream")
	}
	for _, name := range []string{"carol", "dave"} {
		if _, err := gw.GW.Store.User(t.Context(), sid(name)); err == nil {
			t.Fatalf("%s was mirrored from a refusal", name)
		}
	}

	// Reactivated at the service: the next login mirrors the active record.
	dj.SetActive(t, ids["alice"], true)
	fresh, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	if r := get(t, gw.URL+"/api/billing/x", fresh); r.Status != http.StatusOK {
		t.Fatalf("reactivated alice: %d %s", r.Status, r.Body)
	}
	if u := usersMirrored(t, gw, sid("alice")); !u.IsActive {
		t.Fatal("reactivated alice still inactive in the mirror")
	}
	// The deactivation seen at the re-fetch set her cutoff: the token from
	// before it stays refused.
	wantError(t, get(t, gw.URL+"/api/billing/x", access["alice"]), http.StatusUnauthorized, "token_not_valid")
}

// usersTwoIssuers is the README's two-issuer example: the auth service
// (Django, RS256, JWKS) and a legacy HS256 issuer, with a staff-only route
// and a route for the auth service's users only.
const usersTwoIssuers = `
listen: "127.0.0.1:0"
trusted_proxies: ["127.0.0.1"]
auth_service:
  url: "%AUTH%"
  timeout: 5s
auth:
  verify: %MODE%
  local:
    algorithms: [RS256, HS256]
    audience: "` + djAudience + `"
    leeway: 0s
    issuers:
      - issuer: "` + djIssuer + `"
        jwks_url: "%AUTH%` + pathJWKS + `"
        user_endpoint: true
%LEGACY%
database:
  driver: sqlite
  dsn: "%DB%"
users:
  refresh_after: 1m
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
  - path: "/api/staff/"
    upstream: "%UPSTREAM%"
    allow: 'user.is_staff'
  - path: "/api/a-only/"
    upstream: "%UPSTREAM%"
    allow: 'user.issuer == "` + djIssuer + `"'
`

const usersLegacyIssuer = `      - issuer: "legacy"
        keys: ["env:JWTGATE_TEST_LEGACY_KEY"]
        audience: "legacy"`

// usersLegacyKey is the legacy issuer's HS256 secret (at least 32 bytes).
const usersLegacyKey = "legacy-monolith-secret-0123456789abcdef"

// usersLegacyToken mints a legacy access token; mod edits its claims (nil deletes).
func usersLegacyToken(t testing.TB, mod map[string]any) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"token_type": "access", "iss": "legacy", "aud": "legacy", "user_id": 1,
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": "legacy-" + strconv.FormatInt(now.UnixNano(), 10)}
	for k, v := range mod {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(usersLegacyKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSecUsersTwoIssuersNamespaces: with two issuers, a legacy token whose
// user_id is the auth service's staff user's id is not that user: refused
// (403, the legacy issuer has no user endpoint) on every route and at
// /auth/check, never given her identity headers, never mirrored, and never
// able to deactivate her by being sent to the user endpoint. The old code
// answered 200 on the staff route with her identity, and marked her
// inactive when her record was re-fetched with the legacy token.
func TestSecUsersTwoIssuersNamespaces(t *testing.T) {
	_, keyPEM, _ := rsaKeyPEM(t)
	dj := djangoauth.Start(t, djangoauth.Options{Algorithm: "RS256", SigningKeyPEM: keyPEM, Issuer: djIssuer, Audience: djAudience})
	ann := dj.CreateUser(t, "ann@example.com", "ann-pw", nil, true) // staff
	annID := strconv.FormatInt(ann, 10)
	t.Setenv("JWTGATE_TEST_LEGACY_KEY", usersLegacyKey)
	up := startUpstream(t)

	for _, mode := range []string{"local", "hybrid"} {
		t.Run(mode, func(t *testing.T) {
			cfg := fill(usersTwoIssuers, "MODE", mode, "LEGACY", usersLegacyIssuer)
			gw := startGateway(t, cfg, dj.URL, up.URL, nil)
			access, _ := tokens(t, login(t, gw.URL, "ann@example.com", "ann-pw"))

			// Ann, the auth service's user: staff, her issuer in the headers and rules.
			for _, path := range []string{"/api/staff/x", "/api/a-only/x"} {
				r := get(t, gw.URL+path, access, "X-User-Issuer", "legacy", "X-User-Id", "999")
				if r.Status != http.StatusOK {
					t.Fatalf("ann on %s: %d %s", path, r.Status, r.Body)
				}
				h := r.echo(t).Headers
				if h.Get("X-User-Id") != annID || h.Get("X-User-Is-Staff") != "true" || len(h.Values("X-User-Issuer")) != 1 || h.Get("X-User-Issuer") != djIssuer {
					t.Fatalf("ann's identity on %s: %v", path, h)
				}
			}

			r := call(t, http.MethodGet, gw.URL+"/auth/check", "", "", "Authorization", "Bearer "+access,
				"X-Original-URI", "/api/staff/x", "X-Original-Method", "GET")
			if r.Status != http.StatusOK || r.Header.Get("X-User-Id") != annID || r.Header.Get("X-User-Issuer") != djIssuer {
				t.Fatalf("ann at /auth/check: %d %v", r.Status, r.Header)
			}

			// The legacy issuer's user with ann's id, in every spelling of the
			// id. local: 403, the legacy issuer has no user endpoint; hybrid:
			// the auth service's verify endpoint refuses a token it did not
			// issue before that (401).
			status, code := http.StatusForbidden, "permission_denied"
			if mode == "hybrid" {
				status, code = http.StatusUnauthorized, "token_not_valid"
			}
			hits := up.hits.Load()
			for name, tok := range map[string]string{
				"number id":       usersLegacyToken(t, map[string]any{"user_id": ann}),
				"string id":       usersLegacyToken(t, map[string]any{"user_id": annID}),
				"id with sub too": usersLegacyToken(t, map[string]any{"user_id": ann, "sub": annID}),
			} {
				for _, path := range []string{"/api/staff/x", "/api/a-only/x", "/api/x", "/auth/users/me/", "/auth/users/" + annID + "/"} {
					wantError(t, get(t, gw.URL+path, tok), status, code)
				}
				r := call(t, http.MethodGet, gw.URL+"/auth/check", "", "", "Authorization", "Bearer "+tok,
					"X-Original-URI", "/api/staff/x", "X-Original-Method", "GET")
				if r.Status != status || r.json(t)["code"] != code || r.Header.Get("X-User-Id") != "" || r.Header.Get("X-User-Token") != "" {
					t.Fatalf("%s at /auth/check: %d %v", name, r.Status, r.Header)
				}
			}
			// Tokens that pretend to be the auth service's, or name no
			// trusted issuer: refused as tokens.
			for name, tok := range map[string]string{
				"legacy key, auth service's iss": usersLegacyToken(t, map[string]any{"iss": djIssuer, "aud": djAudience, "user_id": ann}),
				"iss in another case":            usersLegacyToken(t, map[string]any{"iss": "Legacy", "user_id": ann}),
				"iss with a space":               usersLegacyToken(t, map[string]any{"iss": "legacy ", "user_id": ann}),
				"iss as a list":                  usersLegacyToken(t, map[string]any{"iss": []string{"legacy"}, "user_id": ann}),
				"no iss":                         usersLegacyToken(t, map[string]any{"iss": nil, "user_id": ann}),
				"wrong audience":                 usersLegacyToken(t, map[string]any{"aud": djAudience, "user_id": ann}),
			} {
				if r := get(t, gw.URL+"/api/staff/x", tok); r.Status != http.StatusUnauthorized {
					t.Fatalf("%s: %d %s", name, r.Status, r.Body)
				}
			}
			if up.hits.Load() != hits {
				t.Fatal("a legacy token reached the upstream")
			}

			// Ann's record due for a re-fetch: legacy tokens still change nothing.
			usersAge(t, gw, annID, 2*time.Minute)
			wantError(t, get(t, gw.URL+"/api/staff/x", usersLegacyToken(t, map[string]any{"user_id": ann})), status, code)
			us, err := gw.GW.Store.Users(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(us) != 1 || us[0].Issuer != "" || us[0].ID != annID || !us[0].IsActive {
				t.Fatalf("mirror after legacy tokens: %+v", us)
			}
			if r := get(t, gw.URL+"/api/staff/x", access); r.Status != http.StatusOK {
				t.Fatalf("ann after legacy tokens: %d %s", r.Status, r.Body)
			}
			if logs := gw.Logs.String(); strings.Contains(logs, access) || strings.Contains(logs, usersLegacyKey) {
				t.Fatal("a token or secret appears in the log")
			}
		})
	}
}

// TestSecUsersOneIssuerUnchanged: with one issuer (one entry, or none in
// remote mode) the mirror key is the plain id as before, no X-User-Issuer
// header is sent, and user.issuer names the configured issuer.
func TestSecUsersOneIssuerUnchanged(t *testing.T) {
	_, keyPEM, _ := rsaKeyPEM(t)
	dj := djangoauth.Start(t, djangoauth.Options{Algorithm: "RS256", SigningKeyPEM: keyPEM, Issuer: djIssuer, Audience: djAudience})
	ann := dj.CreateUser(t, "ann@example.com", "ann-pw", nil, true)
	annID := strconv.FormatInt(ann, 10)
	up := startUpstream(t)
	for name, cfg := range map[string]string{
		"one entry in issuers": fill(usersTwoIssuers, "MODE", "local", "LEGACY", ""),
		"remote":               fill(usersTwoIssuers, "MODE", "remote", "LEGACY", ""),
	} {
		t.Run(name, func(t *testing.T) {
			gw := startGateway(t, cfg, dj.URL, up.URL, nil)
			access, _ := tokens(t, login(t, gw.URL, "ann@example.com", "ann-pw"))
			r := get(t, gw.URL+"/api/staff/x", access, "X-User-Issuer", "spoofed")
			if r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != annID {
				t.Fatalf("ann: %d %s", r.Status, r.Body)
			}
			if v := r.echo(t).Headers.Values("X-User-Issuer"); len(v) != 0 {
				t.Fatalf("X-User-Issuer %q with one issuer", v)
			}
			u := usersMirrored(t, gw, annID)
			if u.Issuer != "" || u.ID != annID {
				t.Fatalf("mirror key (%q, %q), want the plain id", u.Issuer, u.ID)
			}
			want := http.StatusOK // user.issuer is the configured issuer
			if name == "remote" {
				want = http.StatusForbidden // remote mode configures no issuer: user.issuer is ""
			}
			if r := get(t, gw.URL+"/api/a-only/x", access); r.Status != want {
				t.Fatalf("a-only route: %d, want %d: %s", r.Status, want, r.Body)
			}
		})
	}
}
