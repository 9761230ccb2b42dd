package tests

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"jwtgate/models"
	"jwtgate/tests/djangoauth"
)

// revokeIAT returns a token's iat (unverified: the test's own tokens).
func revokeIAT(t *testing.T, tok string) int64 {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ IAT int64 }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.IAT
}

// TestSecRevokeDjangoCutoff: with the real SimpleJWT service, logout-all
// refuses the caller's earlier access tokens and refresh tokens (a
// rotated refresh token would otherwise carry a fresh iat past the
// cutoff), a login right after it works (its iat, whole seconds, may equal
// the cutoff's second), and a re-fetch that finds the user inactive sets
// the cutoff by itself.
func TestSecRevokeDjangoCutoff(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	alice := dj.CreateUser(t, "alice@example.com", "alice-pw", nil, false)
	up := startUpstream(t)
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 5s\nusers:\n  refresh_after: 1s", 1)
	gw := startGateway(t, cfg, dj.URL, up.URL, nil)
	key := models.UserKey{ID: strconv.FormatInt(alice, 10)}

	a1, r1 := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	if r := get(t, gw.URL+"/api/x", a1); r.Status != http.StatusOK {
		t.Fatalf("before: %d %s", r.Status, r.Body)
	}
	revokeNextSecond()
	if r := revokePost(t, gw.URL+"/auth/token/logout-all/", a1); r.Status != http.StatusOK || r.json(t)["detail"] != "Logged out everywhere." {
		t.Fatalf("logout-all: %d %s", r.Status, r.Body)
	}
	a2, r2 := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	r := get(t, gw.URL+"/api/x", a1)
	wantError(t, r, http.StatusUnauthorized, "token_not_valid")
	if !strings.Contains(string(r.Body), "revoked") {
		t.Fatalf("refusal does not say revoked: %s", r.Body)
	}
	u, err := gw.GW.Store.UserByKey(t.Context(), key)
	if err != nil || u.TokensValidAfter == nil {
		t.Fatalf("cutoff not stored: %+v %v", u, err)
	}
	t.Logf("cutoff %d, new login's iat %d (same second: %t)", u.TokensValidAfter.Unix(), revokeIAT(t, a2), revokeIAT(t, a2) == u.TokensValidAfter.Unix())
	if r := get(t, gw.URL+"/api/x", a2); r.Status != http.StatusOK {
		t.Fatalf("login after logout-all: %d %s", r.Status, r.Body)
	}

	// The refresh token from before the cutoff is refused by the gateway
	// (Django would rotate it into a fresh-iat pair); the new one works.
	old := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+r1+`"}`)
	wantError(t, old, http.StatusUnauthorized, "token_not_valid")
	old = call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/x-www-form-urlencoded", "refresh="+r2+"&refresh="+r1)
	wantError(t, old, http.StatusUnauthorized, "token_not_valid")
	a3, _ := tokens(t, call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+r2+`"}`))
	if r := get(t, gw.URL+"/api/x", a3); r.Status != http.StatusOK {
		t.Fatalf("refreshed after logout-all: %d %s", r.Status, r.Body)
	}

	// Deactivated in Django: the next re-fetch sets the cutoff; after
	// reactivation the earlier tokens stay refused, a new login works.
	revokeNextSecond()
	dj.SetActive(t, alice, false)
	time.Sleep(1100 * time.Millisecond) // users.refresh_after
	if r := get(t, gw.URL+"/api/x", a3); r.Status == http.StatusOK {
		t.Fatalf("inactive user accepted: %s", r.Body)
	}
	u, err = gw.GW.Store.UserByKey(t.Context(), key)
	if err != nil || u.TokensValidAfter == nil || u.TokensValidAfter.Unix() <= revokeIAT(t, a3) {
		t.Fatalf("re-fetch did not set the cutoff: %+v %v", u.TokensValidAfter, err)
	}
	dj.SetActive(t, alice, true)
	a4, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	time.Sleep(1100 * time.Millisecond) // re-fetched as active
	if r := get(t, gw.URL+"/api/x", a4); r.Status != http.StatusOK {
		t.Fatalf("after reactivation: %d %s", r.Status, r.Body)
	}
	wantError(t, get(t, gw.URL+"/api/x", a3), http.StatusUnauthorized, "token_not_valid")
}
