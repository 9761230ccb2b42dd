package tests

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"jwtgate/tests/djangoauth"
)

// TestDjangoSimpleJWTFlow runs login → API call → refresh → blacklist
// through the gateway against a real Django REST framework + SimpleJWT
// service (Debian's packages under gunicorn).
func TestDjangoSimpleJWTFlow(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	alice := dj.CreateUser(t, "alice@example.com", "alice-pw", []string{"billing"}, false)
	bob := dj.CreateUser(t, "bob@example.com", "bob-pw", nil, false)
	clk := newClock()
	up := startUpstream(t)
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 5s\nauth:\n  cache:\n    ttl: 1h\nusers:\n  refresh_after: 1m", 1)
	gw := startGateway(t, cfg, dj.URL, up.URL, clk.Now)
	sid := strconv.FormatInt(alice, 10)

	// Login: Django's answer, and alice mirrored with her services.
	access, refresh := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	u, err := gw.GW.Store.User(t.Context(), sid)
	if err != nil {
		t.Fatalf("alice not mirrored: %v", err)
	}
	if u.Email != "alice@example.com" || !u.IsActive || u.LastLogin == nil || u.DateJoined == nil {
		t.Fatalf("mirrored %+v", u)
	}
	if svc, _ := u.Fields["services"].([]any); len(svc) != 1 || svc[0] != "billing" {
		t.Fatalf("services not mirrored: %v", u.Fields)
	}
	wrong := login(t, gw.URL, "alice@example.com", "nope")
	if wrong.Status != http.StatusUnauthorized || wrong.json(t)["detail"] != "No active account found with the given credentials" {
		t.Fatalf("wrong password: %d %s", wrong.Status, wrong.Body)
	}
	form := call(t, http.MethodPost, gw.URL+"/auth/token/", "application/x-www-form-urlencoded", "email=bob%40example.com&password=bob-pw")
	bobAccess, _ := tokens(t, form)

	// API calls: identity forwarded, allow rule applied with Django's services field.
	r := get(t, gw.URL+"/api/billing/invoices", access)
	if r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != sid || r.echo(t).Headers.Get("X-User-Email") != "alice@example.com" {
		t.Fatalf("alice on billing: %d %s", r.Status, r.Body)
	}
	wantError(t, get(t, gw.URL+"/api/billing/invoices", bobAccess), http.StatusForbidden, "permission_denied")
	if r := get(t, gw.URL+"/api/other", bobAccess); r.Status != http.StatusOK {
		t.Fatalf("bob on /api/other: %d %s", r.Status, r.Body)
	}
	// The verify endpoint accepts refresh tokens; the gateway does not.
	if r := call(t, http.MethodPost, gw.URL+"/auth/token/verify/", "application/json", `{"token":"`+refresh+`"}`); r.Status != http.StatusOK {
		t.Fatalf("verify passthrough of a refresh token: %d %s", r.Status, r.Body)
	}
	wantError(t, get(t, gw.URL+"/api/other", refresh), http.StatusUnauthorized, "token_not_valid")

	// Users endpoints.
	if r := get(t, gw.URL+"/auth/users/me/", access); r.Status != http.StatusOK || r.json(t)["email"] != "alice@example.com" {
		t.Fatalf("me: %d %s", r.Status, r.Body)
	}
	wantError(t, get(t, gw.URL+"/auth/users/"+strconv.FormatInt(bob, 10)+"/", access), http.StatusForbidden, "permission_denied")

	// Refresh with rotation, sending a stale Authorization header that must be ignored.
	rr := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+refresh+`"}`, "Authorization", "Bearer expired.garbage.token")
	newAccess, newRefresh := tokens(t, rr)
	if newRefresh == "" || newRefresh == refresh {
		t.Fatalf("rotation did not return a new refresh token: %s", rr.Body)
	}
	old := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+refresh+`"}`)
	if old.Status != http.StatusUnauthorized || old.json(t)["code"] != "token_not_valid" {
		t.Fatalf("rotated-out refresh token: %d %s", old.Status, old.Body)
	}
	if r := get(t, gw.URL+"/api/billing/x", newAccess); r.Status != http.StatusOK {
		t.Fatalf("refreshed access token: %d %s", r.Status, r.Body)
	}

	// Blacklist (logout), form-encoded: Django's answer, and the token is dead.
	bl := call(t, http.MethodPost, gw.URL+"/auth/token/blacklist/", "application/x-www-form-urlencoded", "refresh="+url.QueryEscape(newRefresh))
	if bl.Status != http.StatusOK || string(bl.Body) != "{}" {
		t.Fatalf("blacklist: %d %s", bl.Status, bl.Body)
	}
	if r := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+newRefresh+`"}`); r.Status != http.StatusUnauthorized {
		t.Fatalf("blacklisted refresh token: %d %s", r.Status, r.Body)
	}

	// Deactivated in Django: once the record is re-fetched, refused and marked inactive.
	dj.SetActive(t, alice, false)
	clk.Advance(2 * time.Minute)
	wantError(t, get(t, gw.URL+"/api/billing/x", newAccess), http.StatusForbidden, "user_inactive")
	if u, _ := gw.GW.Store.User(t.Context(), sid); u.IsActive {
		t.Fatal("mirror still says alice is active")
	}
	for _, secret := range []string{access, refresh, newAccess, newRefresh, "alice-pw", "bob-pw"} {
		if strings.Contains(gw.Logs.String(), secret) {
			t.Fatal("a token or password appears in the log")
		}
	}
}

// TestDjangoUserPathWithoutID: django-easyjwt >= 0.6's /auth/user/ form.
func TestDjangoUserPathWithoutID(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	id := dj.CreateUser(t, "carol@example.com", "carol-pw", []string{"billing"}, false)
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 5s\n  user_path: \"/auth/user/\"", 1)
	gw := startGateway(t, cfg, dj.URL, startUpstream(t).URL, nil)
	access, _ := tokens(t, login(t, gw.URL, "carol@example.com", "carol-pw"))
	if _, err := gw.GW.Store.User(t.Context(), strconv.FormatInt(id, 10)); err != nil {
		t.Fatalf("carol not mirrored via /auth/user/: %v", err)
	}
	if r := get(t, gw.URL+"/api/billing/x", access); r.Status != http.StatusOK {
		t.Fatalf("API call: %d %s", r.Status, r.Body)
	}
}
