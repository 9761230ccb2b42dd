package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/tests/fakeauth"
)

// TestLoginMirrorsUser: the login answer is the auth service's, byte for
// byte, and the user is upserted by id with every field kept.
func TestLoginMirrorsUser(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	gw := startGateway(t, "", fa.URL(), up.URL, nil)
	fa.UpdateUser(id, func(u *fakeauth.User) { u.IsStaff = true })

	direct := call(t, http.MethodPost, fa.URL()+"/auth/token/", "application/json", `{"email":"alice@example.com","password":"wrong"}`)
	via := call(t, http.MethodPost, gw.URL+"/auth/token/", "application/json", `{"email":"alice@example.com","password":"wrong"}`)
	if via.Status != direct.Status || string(via.Body) != string(direct.Body) {
		t.Fatalf("wrong password: via gateway %d %s, direct %d %s", via.Status, via.Body, direct.Status, direct.Body)
	}
	if via.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password status %d", via.Status)
	}

	r := login(t, gw.URL, "alice@example.com", "alice-pw")
	access, refresh := tokens(t, r)
	if refresh == "" {
		t.Fatal("no refresh token passed through")
	}
	u, err := gw.GW.Store.User(t.Context(), strconv.FormatInt(id, 10))
	if err != nil {
		t.Fatalf("user not mirrored after login: %v", err)
	}
	if u.Email != "alice@example.com" || u.Username != "alice" || u.FirstName != "Alice" || !u.IsActive || !u.IsStaff || u.IsSuperuser {
		t.Fatalf("mirrored user = %+v", u)
	}
	if u.DateJoined == nil || u.LastLogin == nil {
		t.Fatalf("dates not mirrored: joined %v, last login %v", u.DateJoined, u.LastLogin)
	}
	if u.Fields["tenant"] != "acme" || fmt.Sprint(u.Fields["services"]) != "[billing]" {
		t.Fatalf("extra fields not kept: %v", u.Fields)
	}
	if fa.Calls("/auth/users/"+strconv.FormatInt(id, 10)+"/") != 1 {
		t.Fatalf("user endpoint calls = %v", fa.CallCounts())
	}

	// A second login with changed email and name updates the same row.
	fa.UpdateUser(id, func(u *fakeauth.User) { u.Email = "alice@new.example.com"; u.FirstName = "Alicia" })
	tokens(t, login(t, gw.URL, "alice@new.example.com", "alice-pw"))
	users, err := gw.GW.Store.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Email != "alice@new.example.com" || users[0].FirstName != "Alicia" {
		t.Fatalf("after email change the mirror holds %+v", users)
	}
	if r := get(t, gw.URL+"/api/x", access); r.Status != http.StatusOK {
		t.Fatalf("API call with login token: %d %s", r.Status, r.Body)
	}
	if strings.Contains(gw.Logs.String(), access) || strings.Contains(gw.Logs.String(), "alice-pw") {
		t.Fatal("a token or password appears in the log")
	}
}

// TestTokenEndpointsPassThrough: refresh, verify and blacklist answer
// exactly what the auth service answers, for JSON and form bodies, and
// never look at the request's own Authorization header.
func TestTokenEndpointsPassThrough(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{Rotate: true})
	gw := startGateway(t, "", fa.URL(), startUpstream(t).URL, nil)
	access, refresh := fa.IssuePair(id)
	stale := "Bearer " + fa.Sign(jwt.MapClaims{"token_type": "access", "user_id": id, "exp": time.Now().Add(-time.Hour).Unix(), "jti": "x"})

	tests := []struct {
		name, path, ctype, body string
		want                    int
	}{
		{"refresh json", "/auth/token/refresh/", "application/json", `{"refresh":"` + refresh + `"}`, 200},
		{"refresh again after rotation", "/auth/token/refresh/", "application/json", `{"refresh":"` + refresh + `"}`, 401},
		{"verify access form", "/auth/token/verify/", "application/x-www-form-urlencoded", "token=" + url.QueryEscape(access), 200},
		{"verify charset", "/auth/token/verify/", "application/json; charset=utf-8", `{"token":"` + access + `"}`, 200},
		{"verify garbage", "/auth/token/verify/", "application/json", `{"token":"garbage"}`, 401},
		{"verify missing field", "/auth/token/verify/", "application/json", `{}`, 400},
		{"malformed json login", "/auth/token/", "application/json", `{"email": `, 400},
		{"blacklist bad", "/auth/token/blacklist/", "application/json", `{"refresh":"nope"}`, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, http.MethodPost, gw.URL+tt.path, tt.ctype, tt.body, "Authorization", stale)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.want, r.Body)
			}
			if r.Header.Get("Content-Type") == "" {
				t.Fatal("content type not passed through")
			}
		})
	}
	// The body is the auth service's, unchanged: compare with a direct call.
	_, refresh2 := fa.IssuePair(id)
	direct := call(t, http.MethodPost, fa.URL()+"/auth/token/verify/", "application/json", `{"token":"`+refresh2+`x"}`)
	via := call(t, http.MethodPost, gw.URL+"/auth/token/verify/", "application/json", `{"token":"`+refresh2+`x"}`)
	if direct.Status != via.Status || string(direct.Body) != string(via.Body) {
		t.Fatalf("verify differs: direct %d %s, via %d %s", direct.Status, direct.Body, via.Status, via.Body)
	}
	r := call(t, http.MethodPost, gw.URL+"/auth/token/blacklist/", "application/json", `{"refresh":"`+refresh2+`"}`)
	if r.Status != 200 || string(r.Body) != "{}" {
		t.Fatalf("blacklist: %d %s", r.Status, r.Body)
	}
	if !fa.Blacklisted(refresh2) {
		t.Fatal("auth service did not blacklist the token")
	}
}

// TestTokenEndpointBodyCap: bodies over 64 KiB are refused with 413 and
// never reach the auth service.
func TestTokenEndpointBodyCap(t *testing.T) {
	fa, _ := newFake(t, fakeauth.Options{})
	gw := startGateway(t, "", fa.URL(), startUpstream(t).URL, nil)
	big := `{"email":"` + strings.Repeat("a", 65*1024) + `","password":"x"}`
	wantError(t, call(t, http.MethodPost, gw.URL+"/auth/token/", "application/json", big), http.StatusRequestEntityTooLarge, "payload_too_large")
	if n := fa.TotalCalls(); n != 0 {
		t.Fatalf("%d calls home for an oversized body", n)
	}
}

// TestAPICallVerifiesOnceAndForwardsIdentity: the first call with a token
// makes one verify call; later calls make none; the upstream receives the
// caller's identity and never the client's spoofed one.
func TestAPICallVerifiesOnceAndForwardsIdentity(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{StringUserID: true})
	up := startUpstream(t)
	gw := startGateway(t, "", fa.URL(), up.URL, nil)
	access, _ := fa.IssuePair(id)

	for i := range 20 {
		r := get(t, gw.URL+"/api/orders/7?x=1", access, "X-User-Id", "999", "X_User_Email", "evil@example.com", "x-user-is-staff", "true")
		if r.Status != http.StatusOK {
			t.Fatalf("call %d: %d %s", i, r.Status, r.Body)
		}
		e := r.echo(t)
		if got := e.Headers.Get("X-User-Id"); got != strconv.FormatInt(id, 10) {
			t.Fatalf("X-User-Id = %q", got)
		}
		if got := e.Headers.Values("X-User-Email"); len(got) != 1 || got[0] != "alice@example.com" {
			t.Fatalf("X-User-Email = %q", got)
		}
		for k, vs := range e.Headers {
			for _, v := range vs {
				if v == "evil@example.com" || v == "999" || (v == "true" && k != "X-User-Is-Staff") {
					t.Fatalf("spoofed header %s: %s reached the upstream", k, v)
				}
			}
		}
		if e.Headers.Get("X-User-Is-Staff") != "false" {
			t.Fatalf("X-User-Is-Staff = %q", e.Headers.Get("X-User-Is-Staff"))
		}
		if e.Path != "/api/orders/7" || e.Query != "x=1" {
			t.Fatalf("forwarded %s?%s", e.Path, e.Query)
		}
	}
	if n := fa.Calls("/auth/token/verify/"); n != 1 {
		t.Fatalf("verify calls = %d, want 1", n)
	}
	if n := fa.Calls("/auth/users/" + strconv.FormatInt(id, 10) + "/"); n != 1 {
		t.Fatalf("user fetches = %d, want 1", n)
	}
}

// TestConcurrentMissesMakeOneCall: 30 concurrent first requests with one
// new token make exactly one verify call and one user fetch.
func TestConcurrentMissesMakeOneCall(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{})
	gw := startGateway(t, "", fa.URL(), startUpstream(t).URL, nil)
	access, _ := fa.IssuePair(id)
	fa.SetDelay(150 * time.Millisecond) // keep the first call in flight while the others arrive
	var ok atomic.Int64
	parallel(30, func(int) {
		if r := get(t, gw.URL+"/api/x", access); r.Status == http.StatusOK {
			ok.Add(1)
		}
	})
	if ok.Load() != 30 {
		t.Fatalf("%d of 30 succeeded", ok.Load())
	}
	if n := fa.Calls("/auth/token/verify/"); n != 1 {
		t.Fatalf("verify calls = %d, want 1", n)
	}
	if n := fa.Calls("/auth/users/" + strconv.FormatInt(id, 10) + "/"); n != 1 {
		t.Fatalf("user fetches = %d, want 1", n)
	}
}

// TestBadTokensRefusedWithoutCallingHome covers the pre-checks: none of
// these tokens reaches the auth service.
func TestBadTokensRefusedWithoutCallingHome(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{})
	gw := startGateway(t, "", fa.URL(), startUpstream(t).URL, nil)
	_, refresh := fa.IssuePair(id)
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) string {
		c := fa.NewClaims(id, "access")
		edit(c)
		return fa.Sign(c)
	}
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, fa.NewClaims(id, "access")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	tests := []struct {
		name, header string
		code         string
	}{
		{"no header", "", "not_authenticated"},
		{"basic", "Basic YWxpY2U6cHc=", "not_authenticated"},
		{"bearer without token", "Bearer", "token_not_valid"},
		{"garbage", "Bearer garbage", "token_not_valid"},
		{"two segments", "Bearer aaa.bbb", "token_not_valid"},
		{"10000 dots", "Bearer " + strings.Repeat(".", 10000), "token_not_valid"},
		{"alg none", "Bearer " + noneTok, "token_not_valid"},
		{"refresh token as access", "Bearer " + refresh, "token_not_valid"},
		{"expired", "Bearer " + claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), "token_not_valid"},
		{"no exp", "Bearer " + claims(func(c jwt.MapClaims) { delete(c, "exp") }), "token_not_valid"},
		{"no user id", "Bearer " + claims(func(c jwt.MapClaims) { delete(c, "user_id") }), "token_not_valid"},
		{"user id is an object", "Bearer " + claims(func(c jwt.MapClaims) { c["user_id"] = map[string]any{"a": 1} }), "token_not_valid"},
		{"over 8 KiB", "Bearer " + claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 9000) }), "token_not_valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.header != "" {
				hdr = []string{"Authorization", tt.header}
			}
			wantError(t, call(t, http.MethodGet, gw.URL+"/api/x", "", "", hdr...), http.StatusUnauthorized, tt.code)
		})
	}
	if n := fa.TotalCalls(); n != 0 {
		t.Fatalf("calls home: %v", fa.CallCounts())
	}
}

// TestRejectedTokenIsNegativelyCached: a forged token costs one verify
// call, then is refused from the cache until negative_ttl passes.
func TestRejectedTokenIsNegativelyCached(t *testing.T) {
	clk := newClock()
	fa, id := newFake(t, fakeauth.Options{Now: clk.Now})
	gw := startGateway(t, "", fa.URL(), startUpstream(t).URL, clk.Now)
	access, _ := fa.IssuePair(id)
	forged := access[:len(access)-4] + "AAAA"
	for range 5 {
		wantError(t, get(t, gw.URL+"/api/x", forged), http.StatusUnauthorized, "token_not_valid")
	}
	if n := fa.Calls("/auth/token/verify/"); n != 1 {
		t.Fatalf("verify calls = %d, want 1", n)
	}
	clk.Advance(6 * time.Second) // negative_ttl is 5s
	wantError(t, get(t, gw.URL+"/api/x", forged), http.StatusUnauthorized, "token_not_valid")
	if n := fa.Calls("/auth/token/verify/"); n != 2 {
		t.Fatalf("verify calls after negative_ttl = %d, want 2", n)
	}
}

// TestVerdictNeverOutlivesToken: a cached verdict ends at the token's exp
// even when cache.ttl is longer.
func TestVerdictNeverOutlivesToken(t *testing.T) {
	clk := newClock()
	fa, id := newFake(t, fakeauth.Options{Now: clk.Now, AccessTTL: 10 * time.Second})
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 500ms\nauth:\n  cache:\n    ttl: 1h", 1)
	gw := startGateway(t, cfg, fa.URL(), startUpstream(t).URL, clk.Now)
	access, _ := fa.IssuePair(id)
	if r := get(t, gw.URL+"/api/x", access); r.Status != 200 {
		t.Fatalf("fresh token: %d %s", r.Status, r.Body)
	}
	clk.Advance(11 * time.Second)
	wantError(t, get(t, gw.URL+"/api/x", access), http.StatusUnauthorized, "token_not_valid")
}

// TestAuthServiceOutageIs503NotA401: down, failing and slow auth services
// answer 503 for uncached tokens (never cached), while cached tokens keep
// working.
func TestAuthServiceOutageIs503NotA401(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{})
	gw := startGateway(t, "", fa.URL(), startUpstream(t).URL, nil)
	warm, _ := fa.IssuePair(id)
	if r := get(t, gw.URL+"/api/x", warm); r.Status != 200 {
		t.Fatalf("warm-up: %d %s", r.Status, r.Body)
	}
	cases := []struct {
		name  string
		setup func()
		undo  func()
	}{
		{"500", func() { fa.SetFailure(fakeauth.Fail500) }, func() { fa.SetFailure(fakeauth.FailNone) }},
		{"hang-up", func() { fa.SetFailure(fakeauth.FailHangup) }, func() { fa.SetFailure(fakeauth.FailNone) }},
		{"slow", func() { fa.SetDelay(5 * time.Second) }, func() { fa.SetDelay(0) }},
		{"down", fa.Stop, fa.Restart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			cold, _ := fa.IssuePair(id)
			start := time.Now()
			wantError(t, get(t, gw.URL+"/api/x", cold), http.StatusServiceUnavailable, "auth_service_unavailable")
			if d := time.Since(start); d > 3*time.Second { // auth_service.timeout is 500ms
				t.Fatalf("503 took %s: the timeout was not applied", d)
			}
			if r := get(t, gw.URL+"/api/x", warm); r.Status != 200 {
				t.Fatalf("cached token during outage: %d %s", r.Status, r.Body)
			}
			if r := login(t, gw.URL, "alice@example.com", "alice-pw"); c.name == "500" {
				// An answer, even a 500, is passed through unchanged.
				if r.Status != http.StatusInternalServerError {
					t.Fatalf("login during 500s: %d %s", r.Status, r.Body)
				}
			} else {
				wantError(t, r, http.StatusServiceUnavailable, "auth_service_unavailable")
			}
			c.undo()
			// Nothing was cached: the same token works once the service is back.
			if r := get(t, gw.URL+"/api/x", cold); r.Status != 200 {
				t.Fatalf("after recovery: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestUserRefreshAndDeactivation: a record older than refresh_after is
// re-fetched; a definitive refusal marks the user inactive (403); an
// unreachable auth service serves the stale record.
func TestUserRefreshAndDeactivation(t *testing.T) {
	clk := newClock()
	fa, id := newFake(t, fakeauth.Options{Now: clk.Now, AccessTTL: time.Hour})
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 500ms\nauth:\n  cache:\n    ttl: 1h\nusers:\n  refresh_after: 1m", 1)
	gw := startGateway(t, cfg, fa.URL(), startUpstream(t).URL, clk.Now)
	sid := strconv.FormatInt(id, 10)
	userPath := "/auth/users/" + sid + "/"
	access, _ := fa.IssuePair(id)
	if r := get(t, gw.URL+"/api/x", access); r.Status != 200 {
		t.Fatalf("first call: %d %s", r.Status, r.Body)
	}

	// Outage after refresh_after: the stale record is served.
	fa.UpdateUser(id, func(u *fakeauth.User) { u.FirstName = "Changed" })
	clk.Advance(2 * time.Minute)
	fa.Stop()
	if r := get(t, gw.URL+"/api/x", access); r.Status != 200 {
		t.Fatalf("stale record during outage: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(gw.Logs.String(), "serving stale user record") {
		t.Fatal("stale fallback not logged")
	}
	fa.Restart()

	// Back up and past the retry: the record is re-fetched.
	clk.Advance(2 * time.Minute)
	before := fa.Calls(userPath)
	if r := get(t, gw.URL+"/api/x", access); r.Status != 200 {
		t.Fatalf("after refresh_after: %d %s", r.Status, r.Body)
	}
	if fa.Calls(userPath) != before+1 {
		t.Fatalf("record not re-fetched: %d -> %d", before, fa.Calls(userPath))
	}
	if u, _ := gw.GW.Store.User(t.Context(), sid); u.FirstName != "Changed" {
		t.Fatalf("mirror not refreshed: %+v", u)
	}

	// Deactivated at the auth service: refused, and the mirror says inactive.
	fa.UpdateUser(id, func(u *fakeauth.User) { u.IsActive = false })
	clk.Advance(2 * time.Minute)
	wantError(t, get(t, gw.URL+"/api/x", access), http.StatusForbidden, "user_inactive")
	if u, _ := gw.GW.Store.User(t.Context(), sid); u.IsActive {
		t.Fatal("mirror still says active")
	}
	wantError(t, get(t, gw.URL+"/api/x", access), http.StatusForbidden, "user_inactive")
}

// TestUsersEndpoints: /auth/users/me/ and the caller's own id return the
// auth service's record; another id is 403 without a call home unless the
// caller is staff.
func TestUsersEndpoints(t *testing.T) {
	fa, alice := newFake(t, fakeauth.Options{})
	bob := fa.AddUser(fakeauth.User{Email: "bob@example.com", Password: "bob-pw"}).ID
	boss := fa.AddUser(fakeauth.User{Email: "boss@example.com", Password: "boss-pw", IsStaff: true}).ID
	gw := startGateway(t, "", fa.URL(), startUpstream(t).URL, nil)
	aliceTok, _ := fa.IssuePair(alice)
	bossTok, _ := fa.IssuePair(boss)

	me := get(t, gw.URL+"/auth/users/me/", aliceTok)
	direct := get(t, fa.URL()+"/auth/users/"+strconv.FormatInt(alice, 10)+"/", aliceTok)
	if me.Status != 200 || string(me.Body) != string(direct.Body) {
		t.Fatalf("me: %d %s; direct %s", me.Status, me.Body, direct.Body)
	}
	if r := get(t, gw.URL+"/auth/users/"+strconv.FormatInt(alice, 10)+"/", aliceTok); r.Status != 200 {
		t.Fatalf("own id: %d %s", r.Status, r.Body)
	}
	fa.ResetCalls()
	wantError(t, get(t, gw.URL+"/auth/users/"+strconv.FormatInt(bob, 10)+"/", aliceTok), http.StatusForbidden, "permission_denied")
	if n := fa.TotalCalls(); n != 0 {
		t.Fatalf("another user's id made %d calls home", n)
	}
	if r := get(t, gw.URL+"/auth/users/"+strconv.FormatInt(bob, 10)+"/", bossTok); r.Status != 200 || r.json(t)["email"] != "bob@example.com" {
		t.Fatalf("staff reading bob: %d %s", r.Status, r.Body)
	}
	wantError(t, get(t, gw.URL+"/auth/users/me/", ""), http.StatusUnauthorized, "not_authenticated")
}

// TestUserPathWithoutID: with user_path "/auth/user/" (django-easyjwt >= 0.6)
// logins and API calls fetch the caller's record from it.
func TestUserPathWithoutID(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{})
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 500ms\n  user_path: \"/auth/user/\"", 1)
	gw := startGateway(t, cfg, fa.URL(), startUpstream(t).URL, nil)
	access, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	if fa.Calls("/auth/user/") != 1 {
		t.Fatalf("calls: %v", fa.CallCounts())
	}
	if _, err := gw.GW.Store.User(t.Context(), strconv.FormatInt(id, 10)); err != nil {
		t.Fatalf("not mirrored: %v", err)
	}
	if r := get(t, gw.URL+"/auth/users/me/", access); r.Status != 200 || r.json(t)["email"] != "alice@example.com" {
		t.Fatalf("me: %d %s", r.Status, r.Body)
	}
}

// TestAllowRule: the route's rule sees the mirrored extra fields.
func TestAllowRule(t *testing.T) {
	fa, alice := newFake(t, fakeauth.Options{})
	bob := fa.AddUser(fakeauth.User{Email: "bob@example.com", Password: "pw", Extra: map[string]any{"services": []string{"reports"}}}).ID
	gw := startGateway(t, "", fa.URL(), startUpstream(t).URL, nil)
	a, _ := fa.IssuePair(alice)
	b, _ := fa.IssuePair(bob)
	if r := get(t, gw.URL+"/api/billing/invoices", a); r.Status != 200 {
		t.Fatalf("alice on billing: %d %s", r.Status, r.Body)
	}
	wantError(t, get(t, gw.URL+"/api/billing/invoices", b), http.StatusForbidden, "permission_denied")
	wantError(t, get(t, gw.URL+"/api/reports/../billing/invoices", b), http.StatusForbidden, "permission_denied")
	if r := get(t, gw.URL+"/api/reports", b); r.Status != 200 {
		t.Fatalf("bob on reports: %d %s", r.Status, r.Body)
	}
	wantError(t, get(t, gw.URL+"/nothing/here", b), http.StatusNotFound, "not_found")
}

// TestBlacklistDropsCachedToken: tokens named in a successful blacklist
// call are dropped from the verify cache, so the next use asks again
// (with revoke_on_logout off; on, the default, the access token is refused
// without asking: tests/sec_revoke_test.go).
func TestBlacklistDropsCachedToken(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{})
	gw := startGateway(t, baseConfig+"auth:\n  revoke_on_logout: false\n", fa.URL(), startUpstream(t).URL, nil)
	access, refresh := fa.IssuePair(id)
	get(t, gw.URL+"/api/x", access)
	get(t, gw.URL+"/api/x", access)
	if n := fa.Calls("/auth/token/verify/"); n != 1 {
		t.Fatalf("verify calls = %d", n)
	}
	r := call(t, http.MethodPost, gw.URL+"/auth/token/blacklist/", "application/json", `{"refresh":"`+refresh+`","access":"`+access+`"}`)
	if r.Status != 200 {
		t.Fatalf("blacklist: %d %s", r.Status, r.Body)
	}
	get(t, gw.URL+"/api/x", access)
	if n := fa.Calls("/auth/token/verify/"); n != 2 {
		t.Fatalf("verify calls after blacklist = %d, want 2", n)
	}
}

// TestConcurrentLoginsSQLite: 40 users logging in at once (twice each) all
// get their tokens and all end up in the mirror once.
func TestConcurrentLoginsSQLite(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	const n = 40
	for i := range n {
		fa.AddUser(fakeauth.User{Email: fmt.Sprintf("u%d@example.com", i), Password: "pw"})
	}
	// 80 logins from one client address: above the default login throttle.
	yaml := baseConfig + "throttle: {login_rate: \"off\"}\n"
	gw := startGateway(t, yaml, fa.URL(), startUpstream(t).URL, nil)
	var failed atomic.Int64
	parallel(2*n, func(i int) {
		if r := login(t, gw.URL, fmt.Sprintf("u%d@example.com", i%n), "pw"); r.Status != 200 {
			failed.Add(1)
		}
	})
	if failed.Load() != 0 {
		t.Fatalf("%d logins failed", failed.Load())
	}
	users, err := gw.GW.Store.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != n {
		t.Fatalf("mirror has %d users, want %d", len(users), n)
	}
	if strings.Contains(gw.Logs.String(), "locked") {
		t.Fatalf("database lock errors logged:\n%s", gw.Logs.String())
	}
}
