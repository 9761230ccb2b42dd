package tests

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"jwtgate/tests/djangoauth"
)

// browserChromiumConfig serves the demo SPA (tests/browser) at /app/, an
// echo API at /api/ and a WebSocket echo at /ws/, in browser mode with the
// access cookie, over plain http.
const browserChromiumConfig = `
listen: "127.0.0.1:0"
auth_service:
  url: "%AUTH%"
  timeout: 5s
database:
  driver: sqlite
  dsn: "%DB%"
auth:
  revoke_on_logout: true
browser:
  enabled: true
  refresh_cookie: {secure: false}
  access_cookie: true
routes:
  - path: "/app/"
    upstream: "%SPA%"
    auth: none
  - path: "/api/"
    upstream: "%UPSTREAM%"
  - path: "/ws/"
    upstream: "%WS%"
`

// browserResult is what window.app's calls resolve to.
type browserResult struct {
	Status    int            `json:"status"`
	Body      map[string]any `json:"body"`
	Refreshed bool           `json:"refreshed"`
}

// browserWSResult is what window.app.ws resolves to.
type browserWSResult struct {
	OK       bool     `json:"ok"`
	Why      string   `json:"why"`
	Protocol string   `json:"protocol"`
	Msgs     []string `json:"msgs"`
}

// browserPageGlobals are the objects the test pages' scripts define
// (tests/browser/app.js: app; attacker.html: attack).
var browserPageGlobals = []string{"app", "attack"}

// browserWaitGlobal waits, bounded by 20 s, until the page in the tab has
// defined the global name: a page's body can be ready while its script is
// still loading, and a call into it then fails with "app is not defined".
// Each try is its own evaluation, so a navigation still committing (its
// execution context replaced) is only a failed try.
func browserWaitGlobal(t *testing.T, tab context.Context, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof `+name+` !== "undefined"`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var loc string
			lctx, lcancel := context.WithTimeout(tab, 2*time.Second)
			loc, _ = chromedp.Run(lctx, chromedp.Evaluate[string](`location.href`))
			lcancel()
			t.Fatalf("the page at %q did not define %s within 20s (last error: %v)", loc, name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// browserEval evaluates expr in the tab (awaiting a promise) into out,
// bounded by 20 s. An expression calling into a page's script (app.…,
// attack.…) first waits for the script to have defined it.
func browserEval(t *testing.T, tab context.Context, expr string, out any) {
	t.Helper()
	if name, _, ok := strings.Cut(expr, "."); ok && slices.Contains(browserPageGlobals, name) {
		browserWaitGlobal(t, tab, name)
	}
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("evaluate %s: %v: %s", expr, err, raw)
	}
}

// browserNavigate opens u in the tab and waits for its body, bounded by 20 s.
func browserNavigate(t *testing.T, tab context.Context, u string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		t.Fatalf("navigate %s: %v", u, err)
	}
}

// browserCookies returns the browser's cookies for u by name, HttpOnly ones
// included (read through the DevTools protocol, not the page).
func browserCookies(t *testing.T, tab context.Context, u string) map[string]*network.Cookie {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	res, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	})
	if err != nil {
		t.Fatalf("cookies: %v", err)
	}
	out := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		out[c.Name] = c
	}
	return out
}

// browserStart starts headless Chromium with a fresh profile and returns a tab.
func browserStart(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (bash tests/setup.sh installs Debian's chromium): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
		// Loopback only: a page's outside fetch (oidc-provider's pages import
		// a web font) fails at once instead of going out.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	}
	// The whole browser lives at most 2 minutes; chromedp wants the first
	// Run on the tab's own context (a timeout there would stop the browser).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}

// browserCount counts access-log lines of method on path answered status.
func browserCount(logs, method, path string, status int) int {
	re := regexp.MustCompile(`method=` + method + ` route=\S* path=` + regexp.QuoteMeta(path) + ` status=` + strconv.Itoa(status) + `\b`)
	return len(re.FindAllStringIndex(logs, -1))
}

// TestBrowserChromium drives the demo SPA in headless Chromium against the
// gateway and the real Django SimpleJWT service, with a page on another
// origin (another loopback port: same site, so its requests carry the
// victim's SameSite=Lax cookies) as the attacker.
func TestBrowserChromium(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{AccessTTL: 3 * time.Second})
	alice := dj.CreateUser(t, "alice@example.com", "alice-pw", nil, false)
	sid := strconv.FormatInt(alice, 10)
	api := startUpstream(t)
	ws := browserStartWSUpstream(t)
	spa := httptest.NewServer(http.StripPrefix("/app/", http.FileServer(http.Dir("browser"))))
	t.Cleanup(spa.Close)
	cfg := strings.NewReplacer("%SPA%", spa.URL, "%WS%", ws.URL).Replace(browserChromiumConfig)
	gw := startGateway(t, cfg, dj.URL, api.URL, nil)
	attacker := httptest.NewServer(http.FileServer(http.Dir("browser")))
	t.Cleanup(attacker.Close)

	tab := browserStart(t)
	browserNavigate(t, tab, gw.URL+"/app/index.html")

	// 1. Login from the page: tokens in HttpOnly cookies, invisible to JavaScript.
	var r browserResult
	browserEval(t, tab, `app.csrf()`, &r)
	browserEval(t, tab, `app.login("alice@example.com", "alice-pw")`, &r)
	if r.Status != http.StatusOK {
		t.Fatalf("login: %+v", r)
	}
	if u, _ := r.Body["user"].(map[string]any); u["email"] != "alice@example.com" || r.Body["access"] != nil || r.Body["refresh"] != nil {
		t.Fatalf("login body: %+v", r.Body)
	}
	jar := browserCookies(t, tab, gw.URL+"/auth/")
	access, refresh := jar["access_token"], jar["refresh_token"]
	if access == nil || refresh == nil || !access.HTTPOnly || !refresh.HTTPOnly {
		t.Fatalf("token cookies: %+v", jar)
	}
	var docCookie string
	browserEval(t, tab, `app.cookies()`, &docCookie)
	if !strings.Contains(docCookie, "csrftoken=") || strings.Contains(docCookie, "_token") ||
		strings.Contains(docCookie, access.Value) || strings.Contains(docCookie, refresh.Value) {
		t.Fatalf("document.cookie shows %q", docCookie)
	}
	// The API call: identity at the upstream, no token cookie forwarded.
	browserEval(t, tab, `app.get("/api/me")`, &r)
	if r.Status != http.StatusOK {
		t.Fatalf("API call: %+v", r)
	}
	hdrs, _ := r.Body["headers"].(map[string]any)
	if id, _ := hdrs["X-User-Id"].([]any); len(id) != 1 || id[0] != sid || strings.Contains(strings.ToLower(hdrsString(hdrs["Cookie"])), "_token") {
		t.Fatalf("upstream saw %v", hdrs)
	}
	browserEval(t, tab, `app.post("/api/orders", {"n": 1})`, &r)
	if r.Status != http.StatusOK {
		t.Fatalf("state-changing API call with the CSRF header: %+v", r)
	}

	// 3. Another origin cannot refresh, log out or call a state-changing
	// API with the victim's cookies (403), nor read any answer (CORS).
	browserNavigate(t, tab, attacker.URL+"/attacker.html?gw="+gw.URL)
	before := gw.Logs.String()
	for _, a := range []struct{ fn, method, path string }{
		{"refresh", "POST", "/auth/token/refresh/"}, {"logout", "POST", "/auth/token/logout/"}, {"post", "POST", "/api/transfer"},
	} {
		var got string
		browserEval(t, tab, `attack.`+a.fn+`()`, &got)
		if got != "blocked" {
			t.Fatalf("attacker %s read the answer: %q", a.fn, got)
		}
		if browserCount(gw.Logs.String(), a.method, a.path, 403)-browserCount(before, a.method, a.path, 403) != 1 {
			t.Fatalf("attacker %s was not refused 403; logs:\n%s", a.fn, gw.Logs.String())
		}
	}
	for _, fn := range []string{"read", "postWithHeader"} {
		var got string
		browserEval(t, tab, `attack.`+fn+`()`, &got)
		if got != "blocked" {
			t.Fatalf("attacker %s: %q", fn, got)
		}
	}
	var wsGot string
	browserEval(t, tab, `attack.ws()`, &wsGot)
	if wsGot != "error" || api.sawPath("/api/transfer") {
		t.Fatalf("attacker WebSocket %q, transfer reached upstream %v", wsGot, api.sawPath("/api/transfer"))
	}
	if after := browserCookies(t, tab, gw.URL+"/auth/"); after["refresh_token"] == nil || after["refresh_token"].Value != refresh.Value {
		t.Fatal("the attacker changed the victim's session")
	}

	// 2. The access token expires; the page refreshes through the cookie.
	browserNavigate(t, tab, gw.URL+"/app/index.html")
	deadline := time.Now().Add(20 * time.Second)
	for {
		browserEval(t, tab, `app.api("/api/me")`, &r)
		if r.Refreshed || time.Now().After(deadline) {
			break
		}
		if r.Status != http.StatusOK {
			t.Fatalf("API call before expiry: %+v", r)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !r.Refreshed || r.Status != http.StatusOK {
		t.Fatalf("refresh after expiry: %+v", r)
	}
	jar = browserCookies(t, tab, gw.URL+"/auth/")
	if jar["refresh_token"] == nil || jar["refresh_token"].Value == refresh.Value || jar["access_token"] == nil {
		t.Fatalf("refresh did not rotate the cookies: %+v", jar)
	}

	// 5. WebSockets: by cookie, then by subprotocol token; both echo.
	var wr browserWSResult
	browserEval(t, tab, `app.ws("/ws/chat", ["echo"])`, &wr)
	if !wr.OK || len(wr.Msgs) != 2 || wr.Msgs[1] != "ping" || !strings.Contains(wr.Msgs[0], `"X-User-Id":["`+sid+`"]`) || strings.Contains(wr.Msgs[0], "access_token") {
		t.Fatalf("WebSocket by cookie: %+v", wr)
	}

	// 4. Logout clears the cookies; the old access token is refused.
	old := browserCookies(t, tab, gw.URL+"/auth/")["access_token"].Value
	browserEval(t, tab, `app.logout()`, &r)
	if r.Status != http.StatusOK || r.Body["detail"] != "Logged out." {
		t.Fatalf("logout: %+v", r)
	}
	if jar := browserCookies(t, tab, gw.URL+"/auth/"); len(jar) != 0 {
		t.Fatalf("cookies after logout: %+v", jar)
	}
	wantError(t, get(t, gw.URL+"/api/me", old), http.StatusUnauthorized, "token_not_valid")
	browserEval(t, tab, `app.get("/api/me")`, &r)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("API call after logout: %+v", r)
	}

	// 5b. Subprotocol token (no cookies left): the page offers echo and the token.
	fresh, _ := tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	proto := "base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(fresh))
	pj, _ := json.Marshal([]string{"echo", proto})
	browserEval(t, tab, `app.ws("/ws/chat", `+string(pj)+`)`, &wr)
	if !wr.OK || wr.Protocol != "echo" || len(wr.Msgs) != 2 || !strings.Contains(wr.Msgs[0], `"X-User-Id":["`+sid+`"]`) || strings.Contains(wr.Msgs[0], "k8s.io") {
		t.Fatalf("WebSocket by subprotocol: %+v", wr)
	}

	// 6. Password change through the gateway; the session's tokens are refused.
	browserEval(t, tab, `app.login("alice@example.com", "alice-pw")`, &r)
	jar = browserCookies(t, tab, gw.URL+"/auth/")
	oldAccess, oldRefresh := jar["access_token"].Value, jar["refresh_token"].Value
	browserEval(t, tab, `app.passwordChange("alice@example.com", "alice-pw", "alice-pw-2")`, &r)
	if r.Status != http.StatusOK {
		t.Fatalf("password change: %+v", r)
	}
	wantError(t, get(t, gw.URL+"/api/me", oldAccess), http.StatusUnauthorized, "token_not_valid")
	if rr := call(t, http.MethodPost, gw.URL+"/auth/token/refresh/", "application/json", `{"refresh":"`+oldRefresh+`"}`); rr.Status != http.StatusUnauthorized {
		t.Fatalf("old refresh token after password change: %d %s", rr.Status, rr.Body)
	}
	browserEval(t, tab, `app.login("alice@example.com", "alice-pw-2")`, &r)
	if r.Status != http.StatusOK {
		t.Fatalf("login with the new password: %+v", r)
	}
}

// hdrsString joins a JSON header value ([]any of strings).
func hdrsString(v any) string {
	vs, _ := v.([]any)
	var out []string
	for _, x := range vs {
		s, _ := x.(string)
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}
