package tests

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"jwtgate/tests/djangoauth"
)

// browserConfig is browser mode with the access cookie, over plain http
// (secure: false), one listed foreign origin, logout revoking at the edge,
// and a WebSocket route.
const browserConfig = baseConfig + `  - path: "/ws/"
    upstream: "%WS%"
  - path: "/public/"
    upstream: "%UPSTREAM%"
    auth: none
auth:
  revoke_on_logout: true
browser:
  enabled: true
  allowed_origins: ["http://app.example.test"]
  refresh_cookie: {secure: false}
  access_cookie: true
`

const browserListed = "http://app.example.test"

// browserJar is the cookies a browser would hold, by name.
type browserJar map[string]*http.Cookie

// take applies r's Set-Cookie headers.
func (j browserJar) take(r reply) {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.MaxAge < 0 {
			delete(j, c.Name)
			continue
		}
		j[c.Name] = c
	}
}

// header is the Cookie header for path (cookies whose Path prefixes it), plus extra.
func (j browserJar) header(path string, extra ...string) string {
	var parts []string
	for _, c := range j {
		if c.Path == "" || strings.HasPrefix(path, c.Path) {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	return strings.Join(append(parts, extra...), "; ")
}

// browserSetCookie returns r's Set-Cookie named name (fails when missing).
func browserSetCookie(t *testing.T, r reply, name string) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no Set-Cookie %s in %v", name, r.Header.Values("Set-Cookie"))
	return nil
}

// browserLogin logs in as a same-origin browser page and returns its cookies.
func browserLogin(t *testing.T, gwURL, email, pw string) browserJar {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	r := call(t, http.MethodPost, gwURL+"/auth/token/", "application/json", string(body), "Origin", gwURL)
	if r.Status != http.StatusOK {
		t.Fatalf("browser login: %d %s", r.Status, r.Body)
	}
	j := browserJar{}
	j.take(r)
	return j
}

func TestSecBrowserCookieSessions(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	alice := dj.CreateUser(t, "alice@example.com", "alice-pw", []string{"billing"}, false)
	sid := strconv.FormatInt(alice, 10)
	up := startUpstream(t)
	ws := browserStartWSUpstream(t)
	cfg := strings.ReplaceAll(browserConfig, "%WS%", ws.URL)
	gw := startGateway(t, cfg, dj.URL, up.URL, nil)
	self := gw.URL
	const evil = "http://127.0.0.2:8080"

	t.Run("csrf cookie", func(t *testing.T) {
		r := call(t, http.MethodGet, gw.URL+"/auth/csrf/", "", "")
		if r.Status != http.StatusOK || r.json(t)["detail"] != "CSRF cookie set." {
			t.Fatalf("GET /auth/csrf/: %d %s", r.Status, r.Body)
		}
		c := browserSetCookie(t, r, "csrftoken")
		if c.HttpOnly || c.SameSite != http.SameSiteLaxMode || len(c.Value) < 32 || c.Path != "/" {
			t.Fatalf("csrf cookie %+v", c)
		}
		if c2 := browserSetCookie(t, call(t, http.MethodGet, gw.URL+"/auth/csrf/", "", ""), "csrftoken"); c2.Value == c.Value {
			t.Fatal("two CSRF cookies with the same value")
		}
	})

	t.Run("login", func(t *testing.T) {
		// Without Origin (curl, mobile apps): tokens in the body, no cookies.
		r := login(t, gw.URL, "alice@example.com", "alice-pw")
		if a, rf := tokens(t, r); a == "" || rf == "" || len(r.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("non-browser login: %s %v", r.Body, r.Header.Values("Set-Cookie"))
		}
		// With Origin: tokens only in HttpOnly cookies; the body names the user.
		body := `{"email":"alice@example.com","password":"alice-pw"}`
		r = call(t, http.MethodPost, gw.URL+"/auth/token/", "application/json", body, "Origin", self)
		if r.Status != http.StatusOK || strings.Contains(string(r.Body), "refresh") || strings.Contains(string(r.Body), "access") {
			t.Fatalf("browser login body: %d %s", r.Status, r.Body)
		}
		u, _ := r.json(t)["user"].(map[string]any)
		if u["email"] != "alice@example.com" || u["id"] != sid {
			t.Fatalf("login body user: %s", r.Body)
		}
		rc := browserSetCookie(t, r, "refresh_token")
		if !rc.HttpOnly || rc.Path != "/auth/" || rc.SameSite != http.SameSiteLaxMode || rc.Secure || rc.MaxAge < 86000 || rc.MaxAge > 86400 {
			t.Fatalf("refresh cookie %+v", rc)
		}
		ac := browserSetCookie(t, r, "access_token")
		if !ac.HttpOnly || ac.Path != "/" || ac.MaxAge < 290 || ac.MaxAge > 300 {
			t.Fatalf("access cookie %+v", ac)
		}
		if c := browserSetCookie(t, r, "csrftoken"); c.HttpOnly {
			t.Fatal("csrf cookie must be readable by the page")
		}
		// Listed origin: allowed, with CORS. Another origin: 403, no tokens.
		r = call(t, http.MethodPost, gw.URL+"/auth/token/", "application/json", body, "Origin", browserListed)
		if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != browserListed {
			t.Fatalf("listed origin login: %d %v", r.Status, r.Header)
		}
		for _, o := range []string{evil, "null", self + ".evil.test", strings.ToUpper(self), self + "/"} {
			r = call(t, http.MethodPost, gw.URL+"/auth/token/", "application/json", body, "Origin", o)
			wantError(t, r, http.StatusForbidden, "origin_not_allowed")
			if len(r.Header.Values("Set-Cookie")) != 0 || r.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("origin %q got cookies or CORS: %v", o, r.Header)
			}
		}
		if r := call(t, http.MethodPost, gw.URL+"/auth/token/", "application/json", `{"email":"alice@example.com","password":"nope"}`, "Origin", self); r.Status != http.StatusUnauthorized || len(r.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("failed browser login: %d %v", r.Status, r.Header)
		}
	})

	t.Run("api with access cookie", func(t *testing.T) {
		j := browserLogin(t, gw.URL, "alice@example.com", "alice-pw")
		csrf := j["csrftoken"].Value
		// Reads: the cookie authenticates; no token cookie reaches the upstream.
		for _, extra := range [][]string{nil, {"theme=dark"}, {"Access_Token=x", "theme=dark"}, {"__Host-access_token=x"}, {"__Secure-REFRESH_TOKEN=y"}} {
			r := call(t, http.MethodGet, gw.URL+"/api/billing/x", "", "", "Cookie", j.header("/api/", extra...))
			if r.Status != http.StatusOK {
				t.Fatalf("GET with cookie %v: %d %s", extra, r.Status, r.Body)
			}
			e := r.echo(t)
			if e.Headers.Get("X-User-Id") != sid {
				t.Fatalf("identity: %v", e.Headers)
			}
			fwd := strings.ToLower(strings.Join(e.Headers.Values("Cookie"), ";"))
			if strings.Contains(fwd, "access_token") || strings.Contains(fwd, "refresh_token") || strings.Contains(fwd, j["access_token"].Value[:20]) {
				t.Fatalf("token cookie forwarded upstream: %q", fwd)
			}
			if len(extra) > 0 && strings.Contains(strings.Join(extra, ";"), "theme") && !strings.Contains(fwd, "theme=dark") {
				t.Fatalf("other cookies dropped: %q", fwd)
			}
		}
		// A second Cookie header line (HTTP/2 style) is read and stripped too.
		r := call(t, http.MethodGet, gw.URL+"/api/x", "", "", "Cookie", "theme=dark", "Cookie", "access_token="+j["access_token"].Value)
		if r.Status != http.StatusOK || strings.Contains(strings.Join(r.echo(t).Headers.Values("Cookie"), ";"), "access_token") {
			t.Fatalf("two Cookie lines: %d %s", r.Status, r.Body)
		}
		// The cookie twice (a cookie planted for another path or domain): 400.
		wantError(t, call(t, http.MethodGet, gw.URL+"/api/x", "", "", "Cookie", j.header("/api/", "access_token=planted")), http.StatusBadRequest, "bad_request")
		// Only the exact name authenticates.
		wantError(t, call(t, http.MethodGet, gw.URL+"/api/x", "", "", "Cookie", "Access_Token="+j["access_token"].Value), http.StatusUnauthorized, "not_authenticated")
		// The Authorization header wins over the cookie: a bad header is 401 even with a good cookie.
		wantError(t, call(t, http.MethodGet, gw.URL+"/api/x", "", "", "Cookie", j.header("/api/"), "Authorization", "Bearer bad.bad.bad"), http.StatusUnauthorized, "token_not_valid")
		// auth: none routes ignore the cookie, but never forward it.
		r = call(t, http.MethodPost, gw.URL+"/public/x", "text/plain", "x", "Cookie", j.header("/public/", "theme=dark"), "Origin", evil)
		if fwd := strings.Join(r.echo(t).Headers.Values("Cookie"), ";"); r.Status != http.StatusOK || strings.Contains(fwd, "access_token") || !strings.Contains(fwd, "theme=dark") {
			t.Fatalf("public route: %d %s", r.Status, r.Body)
		}

		// Writes: CSRF header = CSRF cookie, and an allowed Origin (or Referer).
		post := func(hdr ...string) reply {
			return call(t, http.MethodPost, gw.URL+"/api/x", "application/json", "{}", append([]string{"Cookie", j.header("/api/")}, hdr...)...)
		}
		if r := post("Origin", self, "X-CSRFToken", csrf); r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != sid {
			t.Fatalf("POST with CSRF: %d %s", r.Status, r.Body)
		}
		if r := post("Referer", self+"/app/page", "X-CSRFToken", csrf); r.Status != http.StatusOK {
			t.Fatalf("POST with Referer: %d %s", r.Status, r.Body)
		}
		if r := post("Origin", browserListed, "X-CSRFToken", csrf); r.Status != http.StatusOK {
			t.Fatalf("POST from listed origin: %d %s", r.Status, r.Body)
		}
		for name, hdr := range map[string][]string{
			"no csrf header":   {"Origin", self},
			"wrong csrf":       {"Origin", self, "X-CSRFToken", otherLast(csrf)},
			"csrf case":        {"Origin", self, "X-CSRFToken", strings.ToUpper(csrf)},
			"csrf twice":       {"Origin", self, "X-CSRFToken", csrf, "X-CSRFToken", csrf},
			"empty csrf":       {"Origin", self, "X-CSRFToken", ""},
			"underscore spell": {"Origin", self, "X_CSRFToken", csrf},
		} {
			if r := post(hdr...); r.Status != http.StatusForbidden || r.json(t)["code"] != "csrf_failed" {
				t.Fatalf("%s: %d %s", name, r.Status, r.Body)
			}
		}
		for name, hdr := range map[string][]string{
			"evil origin":          {"Origin", evil, "X-CSRFToken", csrf},
			"null origin":          {"Origin", "null", "X-CSRFToken", csrf},
			"no origin no referer": {"X-CSRFToken", csrf},
			"evil referer":         {"Referer", evil + "/", "X-CSRFToken", csrf},
			"two origins":          {"Origin", self, "Origin", self, "X-CSRFToken", csrf},
		} {
			if r := post(hdr...); r.Status != http.StatusForbidden || r.json(t)["code"] != "origin_not_allowed" {
				t.Fatalf("%s: %d %s", name, r.Status, r.Body)
			}
		}
		// The CSRF cookie twice: refused.
		r = call(t, http.MethodPost, gw.URL+"/api/x", "application/json", "{}", "Cookie", j.header("/api/", "csrftoken=planted"), "Origin", self, "X-CSRFToken", "planted")
		wantError(t, r, http.StatusForbidden, "csrf_failed")
		// Authorization-header requests need no CSRF token, from anywhere.
		access, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
		if r := call(t, http.MethodPost, gw.URL+"/api/x", "application/json", "{}", "Authorization", "Bearer "+access, "Origin", evil); r.Status != http.StatusOK {
			t.Fatalf("bearer POST: %d %s", r.Status, r.Body)
		}
		// A state-changing request whose header token is present but another scheme falls back to the cookie and is guarded.
		if r := post("Authorization", "Basic dTpw"); r.Status != http.StatusForbidden {
			t.Fatalf("Basic + cookie POST without CSRF: %d %s", r.Status, r.Body)
		}
		// /auth/users/me/ authenticates from the cookie too.
		if r := call(t, http.MethodGet, gw.URL+"/auth/users/me/", "", "", "Cookie", j.header("/auth/users/")); r.Status != http.StatusOK || r.json(t)["email"] != "alice@example.com" {
			t.Fatalf("users/me with cookie: %d %s", r.Status, r.Body)
		}
	})

	t.Run("refresh", func(t *testing.T) {
		j := browserLogin(t, gw.URL, "alice@example.com", "alice-pw")
		csrf := j["csrftoken"].Value
		old := j["refresh_token"].Value
		wantError(t, call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", "", "Cookie", j.header("/auth/"), "Origin", evil, "X-CSRFToken", csrf), http.StatusForbidden, "origin_not_allowed")
		wantError(t, call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", "", "Cookie", j.header("/auth/"), "Origin", self), http.StatusForbidden, "csrf_failed")
		r := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", "", "Cookie", j.header("/auth/"), "Origin", self, "X-CSRFToken", csrf)
		if r.Status != http.StatusOK || strings.Contains(string(r.Body), "\"access\"") || strings.Contains(string(r.Body), "\"refresh\"") {
			t.Fatalf("refresh: %d %s", r.Status, r.Body)
		}
		if rc := browserSetCookie(t, r, "refresh_token"); rc.Value == old || !rc.HttpOnly {
			t.Fatalf("rotation did not rewrite the cookie: %+v", rc)
		}
		browserSetCookie(t, r, "access_token")
		j.take(r)
		if r := call(t, http.MethodGet, gw.URL+"/api/x", "", "", "Cookie", j.header("/api/")); r.Status != http.StatusOK {
			t.Fatalf("new access cookie: %d %s", r.Status, r.Body)
		}
		// The rotated-out refresh token is refused by the auth service; its cookie is cleared.
		r = call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", "", "Cookie", "refresh_token="+old+"; csrftoken="+csrf, "Origin", self, "X-CSRFToken", csrf)
		if r.Status != http.StatusUnauthorized || browserSetCookie(t, r, "refresh_token").MaxAge >= 0 {
			t.Fatalf("old refresh: %d %s %v", r.Status, r.Body, r.Header.Values("Set-Cookie"))
		}
		// No cookie: 401 not_authenticated; a body token from a browser is not used.
		r = call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+j["refresh_token"].Value+`"}`, "Cookie", "csrftoken="+csrf, "Origin", self, "X-CSRFToken", csrf)
		wantError(t, r, http.StatusUnauthorized, "not_authenticated")
		if r.json(t)["detail"] != "No refresh token provided." {
			t.Fatalf("detail: %s", r.Body)
		}
		wantError(t, call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", "", "Cookie", j.header("/auth/", "refresh_token=x"), "Origin", self, "X-CSRFToken", csrf), http.StatusBadRequest, "bad_request")
		// Non-browser clients keep the body.
		_, rf := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
		if a, r2 := tokens(t, call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+rf+`"}`)); a == "" || r2 == "" {
			t.Fatal("non-browser refresh lost its tokens")
		}
	})

	t.Run("logout", func(t *testing.T) {
		j := browserLogin(t, gw.URL, "alice@example.com", "alice-pw")
		csrf, access, refresh := j["csrftoken"].Value, j["access_token"].Value, j["refresh_token"].Value
		wantError(t, call(t, http.MethodPost, gw.URL+"/auth/token/logout/", "", "", "Cookie", j.header("/auth/"), "Origin", evil, "X-CSRFToken", csrf), http.StatusForbidden, "origin_not_allowed")
		wantError(t, call(t, http.MethodPost, gw.URL+"/auth/token/logout/", "", "", "Cookie", j.header("/auth/"), "Origin", self), http.StatusForbidden, "csrf_failed")
		wantError(t, call(t, http.MethodPost, gw.URL+"/auth/token/logout/", "", "", "Cookie", j.header("/auth/")), http.StatusForbidden, "origin_not_allowed")
		if r := get(t, gw.URL+"/api/x", access); r.Status != http.StatusOK {
			t.Fatalf("refused logouts logged out: %d", r.Status)
		}
		for i := range 2 { // idempotent
			r := call(t, http.MethodPost, gw.URL+"/auth/token/logout/", "", "", "Cookie", j.header("/auth/"), "Origin", self, "X-CSRFToken", csrf)
			if r.Status != http.StatusOK || r.json(t)["detail"] != "Logged out." {
				t.Fatalf("logout %d: %d %s", i, r.Status, r.Body)
			}
			for _, n := range []string{"refresh_token", "access_token", "csrftoken"} {
				if c := browserSetCookie(t, r, n); c.MaxAge >= 0 || c.Value != "" {
					t.Fatalf("logout did not clear %s: %+v", n, c)
				}
			}
		}
		wantError(t, get(t, gw.URL+"/api/x", access), http.StatusUnauthorized, "token_not_valid")
		wantError(t, call(t, http.MethodGet, gw.URL+"/api/x", "", "", "Cookie", "access_token="+access), http.StatusUnauthorized, "token_not_valid")
		if r := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+refresh+`"}`); r.Status != http.StatusUnauthorized {
			t.Fatalf("blacklisted refresh: %d %s", r.Status, r.Body)
		}
		// Non-browser logout: {"refresh"} in the body, access token in the header.
		a, rf := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
		r := call(t, http.MethodPost, gw.URL+"/auth/token/logout/", "application/json", `{"refresh":"`+rf+`"}`, "Authorization", "Bearer "+a)
		if r.Status != http.StatusOK || r.json(t)["detail"] != "Logged out." {
			t.Fatalf("non-browser logout: %d %s", r.Status, r.Body)
		}
		wantError(t, get(t, gw.URL+"/api/x", a), http.StatusUnauthorized, "token_not_valid")
		if r := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+rf+`"}`); r.Status != http.StatusUnauthorized {
			t.Fatalf("blacklisted refresh: %d %s", r.Status, r.Body)
		}
		// Nothing to log out: still 200.
		if r := call(t, http.MethodPost, gw.URL+"/auth/token/logout/", "", ""); r.Status != http.StatusOK {
			t.Fatalf("empty logout: %d %s", r.Status, r.Body)
		}
	})

	t.Run("cors", func(t *testing.T) {
		pre := func(origin string) reply {
			return call(t, http.MethodOptions, gw.URL+"/api/x", "", "", "Origin", origin, "Access-Control-Request-Method", "POST",
				"Access-Control-Request-Headers", "content-type, x-csrftoken")
		}
		r := pre(browserListed)
		if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != browserListed ||
			r.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "x-csrftoken") ||
			!strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Origin") {
			t.Fatalf("listed preflight: %d %v", r.Status, r.Header)
		}
		hits := up.hits.Load()
		for _, o := range []string{evil, "null", "*", browserListed + ".evil.test", self} {
			r := pre(o)
			if r.Status != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("preflight from %q: %d %v", o, r.Status, r.Header)
			}
		}
		if up.hits.Load() != hits {
			t.Fatal("a preflight reached the upstream")
		}
		j := browserLogin(t, gw.URL, "alice@example.com", "alice-pw")
		r = call(t, http.MethodGet, gw.URL+"/api/x", "", "", "Cookie", j.header("/api/"), "Origin", evil)
		if r.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Origin") {
			t.Fatalf("answer readable by %s: %v", evil, r.Header)
		}
		r = call(t, http.MethodGet, gw.URL+"/api/x", "", "", "Cookie", j.header("/api/"), "Origin", browserListed)
		if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != browserListed || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("listed origin answer: %d %v", r.Status, r.Header)
		}
	})

	t.Run("websocket", func(t *testing.T) {
		access, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
		entry := "base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(access))
		st, h := browserWSHandshake(t, gw.URL, "/ws/chat", "Sec-WebSocket-Protocol: echo, "+entry, "Origin: "+evil)
		if st != http.StatusSwitchingProtocols || h.Get("Sec-WebSocket-Protocol") != "echo" {
			t.Fatalf("subprotocol token: %d %v", st, h)
		}
		seen := ws.last()
		if seen.Get("X-User-Id") != sid || seen.Get("Sec-WebSocket-Protocol") != "echo" {
			t.Fatalf("upstream saw %v", seen)
		}
		// Prefix in another case is still ours (removed, used).
		upper := "Base64url.Bearer.Authorization.K8s.Io." + base64.RawURLEncoding.EncodeToString([]byte(access))
		if st, _ := browserWSHandshake(t, gw.URL, "/ws/chat", "Sec-WebSocket-Protocol: echo, "+upper); st != http.StatusSwitchingProtocols || strings.Contains(ws.last().Get("Sec-WebSocket-Protocol"), "k8s") {
			t.Fatalf("upper-case prefix: %d %v", st, ws.last())
		}
		for name, lines := range map[string][]string{
			"bad token":         {"Sec-WebSocket-Protocol: echo, base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte("x.y.z"))},
			"not base64":        {"Sec-WebSocket-Protocol: echo, base64url.bearer.authorization.k8s.io.***"},
			"no token":          {"Sec-WebSocket-Protocol: echo"},
			"two tokens":        {"Sec-WebSocket-Protocol: " + entry + ", " + entry},
			"two header lines":  {"Sec-WebSocket-Protocol: " + entry, "Sec-WebSocket-Protocol: " + entry},
			"token and header":  {"Sec-WebSocket-Protocol: echo, " + entry, "Authorization: Bearer " + access},
			"cookie, evil":      {"Cookie: access_token=" + access, "Origin: " + evil},
			"cookie, no origin": {"Cookie: access_token=" + access},
		} {
			st, _ := browserWSHandshake(t, gw.URL, "/ws/chat", lines...)
			want := map[string]int{"bad token": 401, "not base64": 401, "no token": 401, "two tokens": 400, "two header lines": 400,
				"token and header": 400, "cookie, evil": 403, "cookie, no origin": 403}[name]
			if st != want {
				t.Fatalf("%s: %d, want %d", name, st, want)
			}
		}
		if st, _ := browserWSHandshake(t, gw.URL, "/ws/chat", "Cookie: access_token="+access, "Origin: "+self); st != http.StatusSwitchingProtocols || ws.last().Get("X-User-Id") != sid || strings.Contains(ws.last().Get("Cookie"), "access_token") {
			t.Fatalf("cookie upgrade: %d %v", st, ws.last())
		}
	})

	t.Run("password change", func(t *testing.T) {
		dj.CreateUser(t, "carol@example.com", "carol-pw", nil, false)
		j := browserLogin(t, gw.URL, "carol@example.com", "carol-pw")
		csrf, access := j["csrftoken"].Value, j["access_token"].Value
		const body = `{"email":"carol@example.com","password":"carol-pw","new_password":"carol-pw-2"}`
		wantError(t, call(t, http.MethodPost, gw.URL+"/auth/password-change/", "application/json", body, "Cookie", j.header("/auth/"), "Origin", evil, "X-CSRFToken", csrf), http.StatusForbidden, "origin_not_allowed")
		wantError(t, call(t, http.MethodPost, gw.URL+"/auth/password-change/", "application/json", body, "Cookie", j.header("/auth/"), "Origin", self), http.StatusForbidden, "csrf_failed")
		r := call(t, http.MethodPost, gw.URL+"/auth/password-change/", "application/json", strings.Replace(body, `"carol-pw"`, `"wrong"`, 1), "Cookie", j.header("/auth/"), "Origin", self, "X-CSRFToken", csrf)
		if r.Status != http.StatusUnauthorized || r.json(t)["detail"] != "No active account found with the given credentials" {
			t.Fatalf("wrong password passed back: %d %s", r.Status, r.Body)
		}
		r = call(t, http.MethodPost, gw.URL+"/auth/password-change/", "application/json", `{}`, "Cookie", j.header("/auth/"), "Origin", self, "X-CSRFToken", csrf)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "new_password") {
			t.Fatalf("missing fields passed back: %d %s", r.Status, r.Body)
		}
		r = call(t, http.MethodPost, gw.URL+"/auth/password-change/", "application/json", body, "Cookie", j.header("/auth/"), "Origin", self, "X-CSRFToken", csrf)
		if r.Status != http.StatusOK || r.json(t)["detail"] != "Password changed." {
			t.Fatalf("password change: %d %s", r.Status, r.Body)
		}
		wantError(t, call(t, http.MethodGet, gw.URL+"/api/x", "", "", "Cookie", "access_token="+access), http.StatusUnauthorized, "token_not_valid")
		if r := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+j["refresh_token"].Value+`"}`); r.Status != http.StatusUnauthorized {
			t.Fatalf("old refresh after password change: %d", r.Status)
		}
		if r := login(t, gw.URL, "carol@example.com", "carol-pw"); r.Status != http.StatusUnauthorized {
			t.Fatalf("old password: %d", r.Status)
		}
		tokens(t, login(t, gw.URL, "carol@example.com", "carol-pw-2"))
	})

	t.Run("password reset off", func(t *testing.T) {
		wantError(t, call(t, http.MethodGet, gw.URL+"/auth/password-reset/", "", ""), http.StatusNotFound, "not_found")
	})
}

// TestSecBrowserModeOff: without browser.enabled nothing changes for
// browsers (tokens in the body, no cookies, no CSRF endpoint), and the
// password-reset redirect works on its own.
func TestSecBrowserModeOff(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{AccessTTL: 2 * time.Minute})
	dj.CreateUser(t, "alice@example.com", "alice-pw", nil, false)
	up := startUpstream(t)
	ws := browserStartWSUpstream(t)
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 5s\n  password_reset_url: \"https://auth.example.test/reset/\"", 1) +
		"  - path: \"/ws/\"\n    upstream: \"" + ws.URL + "\"\n"
	gw := startGateway(t, cfg, dj.URL, up.URL, nil)
	r := call(t, http.MethodPost, gw.URL+"/auth/token/", "application/json", `{"email":"alice@example.com","password":"alice-pw"}`, "Origin", gw.URL)
	access, _ := tokens(t, r)
	if len(r.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("cookies with browser mode off: %v", r.Header.Values("Set-Cookie"))
	}
	wantError(t, call(t, http.MethodGet, gw.URL+"/auth/csrf/", "", ""), http.StatusNotFound, "not_found")
	wantError(t, call(t, http.MethodGet, gw.URL+"/api/x", "", "", "Cookie", "access_token="+access), http.StatusUnauthorized, "not_authenticated")
	nr := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := nr.Get(gw.URL + "/auth/password-reset/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://auth.example.test/reset/" {
		t.Fatalf("password reset: %d %v", resp.StatusCode, resp.Header)
	}
	// The WebSocket subprotocol token works without browser mode; the cookie does not.
	entry := "base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(access))
	if st, h := browserWSHandshake(t, gw.URL, "/ws/x", "Sec-WebSocket-Protocol: echo, "+entry); st != http.StatusSwitchingProtocols || h.Get("Sec-WebSocket-Protocol") != "echo" || ws.last().Get("Sec-WebSocket-Protocol") != "echo" {
		t.Fatalf("subprotocol token, browser mode off: %d %v", st, h)
	}
	if st, _ := browserWSHandshake(t, gw.URL, "/ws/x", "Cookie: access_token="+access, "Origin: "+gw.URL); st != http.StatusUnauthorized {
		t.Fatalf("cookie upgrade with browser mode off: %d", st)
	}
	// Logout works for non-browser clients with browser mode off.
	r = call(t, http.MethodPost, gw.URL+"/auth/token/logout/", "application/json", "{}", "Authorization", "Bearer "+access)
	if r.Status != http.StatusOK || len(r.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("logout, browser mode off: %d %v", r.Status, r.Header)
	}
}

// otherLast is s with its last character changed (a CSRF token that is
// wrong by one character, whatever the last one was).
func otherLast(s string) string {
	if strings.HasSuffix(s, "A") {
		return s[:len(s)-1] + "B"
	}
	return s[:len(s)-1] + "A"
}
