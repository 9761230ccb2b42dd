package tests

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserWaitURL waits, bounded by 20 s, until the tab's location starts
// with prefix, and returns it.
func browserWaitURL(t *testing.T, tab context.Context, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var loc string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		loc, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
		cancel()
		if strings.HasPrefix(loc, prefix) {
			return loc
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the tab is at %q, want %s...", loc, prefix)
	return ""
}

// browserDo runs actions in the tab, bounded by 20 s.
func browserDo(t *testing.T, tab context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestOIDCBrowserChromium is the whole code flow in headless Chromium
// against the real provider: the gateway's login sends the browser to the
// provider's login and consent pages, the callback ends in browser mode's
// cookie session on /app/, the page's API call is authorized by a
// claim-mapped role, and logout goes through the provider's end-session
// page back to the gateway with every session cookie gone. In between,
// the page's refresh renews the session through the provider.
func TestOIDCBrowserChromium(t *testing.T) {
	spa := httptest.NewServer(http.StripPrefix("/app/", http.FileServer(http.Dir("browser"))))
	t.Cleanup(spa.Close)
	e := oidcBrowserStart(t, spa.URL)
	tab := browserStart(t)

	browserNavigate(t, tab, e.gw.URL+"/auth/oidc/login?next=/app/")
	browserWaitURL(t, tab, e.p.URL+"/interaction/")
	browserDo(t, tab, "provider login form",
		chromedp.SendKeys(chromedp.CSS(`input[name=login]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "any"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)))
	browserDo(t, tab, "provider consent form",
		chromedp.WaitReady(chromedp.CSS(`input[name=prompt][value=consent]`)),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)))
	browserWaitURL(t, tab, e.gw.URL+"/app/")
	browserWaitGlobal(t, tab, "app")

	jar := browserCookies(t, tab, e.gw.URL+"/auth/")
	if a := jar["access_token"]; a == nil || !a.HTTPOnly || jar["refresh_token"] == nil || jar["csrftoken"] == nil {
		t.Fatalf("session cookies after the login: %+v", jar)
	}
	if id := browserCookies(t, tab, e.gw.URL+"/auth/oidc/logout")["oidc_id_token"]; id == nil || !id.HTTPOnly {
		t.Fatalf("ID token cookie: %+v", id)
	}
	var docCookie string
	browserEval(t, tab, `app.cookies()`, &docCookie)
	if strings.Contains(docCookie, "_token") || strings.Contains(docCookie, jar["access_token"].Value) {
		t.Fatalf("document.cookie shows a token: %q", docCookie)
	}
	var r browserResult
	browserEval(t, tab, `app.get("/api/billing/invoices")`, &r)
	hdrs, _ := r.Body["headers"].(map[string]any)
	if id, _ := hdrs["X-User-Id"].([]any); r.Status != http.StatusOK || len(id) != 1 || id[0] != "alice" {
		t.Fatalf("API call from the page: %+v", r)
	}

	// The page renews the session (fetch with the CSRF header): the refresh
	// goes to the provider; new access and rotated refresh cookies.
	browserEval(t, tab, `app.refresh()`, &r)
	renewed := browserCookies(t, tab, e.gw.URL+"/auth/")
	if a, rt := renewed["access_token"], renewed["refresh_token"]; r.Status != http.StatusOK || a == nil || rt == nil ||
		a.Value == jar["access_token"].Value || rt.Value == jar["refresh_token"].Value {
		t.Fatalf("refresh from the page: %+v, cookies %+v", r, renewed)
	}
	if browserEval(t, tab, `app.get("/api/billing/invoices")`, &r); r.Status != http.StatusOK {
		t.Fatalf("API call after the refresh: %+v", r)
	}

	// Logout from a link on the page: the provider asks, then sends the
	// browser back to the gateway's post-logout page.
	browserDo(t, tab, "logout link", chromedp.Evaluate[chromedp.Void](`location.href = "/auth/oidc/logout"`))
	browserWaitURL(t, tab, e.p.URL+"/session/end")
	browserDo(t, tab, "provider logout page", chromedp.Click(chromedp.CSS(`#logout-yes`)))
	browserWaitURL(t, tab, e.gw.URL+"/app/bye")
	jar = browserCookies(t, tab, e.gw.URL+"/auth/oidc/logout")
	for _, name := range []string{"access_token", "refresh_token", "oidc_id_token"} {
		if jar[name] != nil {
			t.Fatalf("cookie %s survived the logout: %+v", name, jar[name])
		}
	}
	browserNavigate(t, tab, e.gw.URL+"/app/")
	browserWaitGlobal(t, tab, "app")
	browserEval(t, tab, `app.get("/api/billing/invoices")`, &r)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("API call after logout: %+v", r)
	}
}
