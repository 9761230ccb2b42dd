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
	clk := newClock()
	up := startUpstream(t)
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 5s\nusers:\n  refresh_after: 1m", 1)
	gw := startGateway(t, cfg, dj.URL, up.URL, clk.Now)

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
	clk.Advance(2 * time.Minute) // past refresh_after: the mirrored records are re-fetched

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
}
