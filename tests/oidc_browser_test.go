package tests

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"jwtgate/handlers"
	"jwtgate/models"
)

// oidcBrowserConfig is browser mode with the login through the real
// provider (client jwtgate-browser), users from the access token's claims
// and routes whose rules read the claim-mapped roles.
const oidcBrowserConfig = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
auth:
  verify: local
  local: {discovery_url: "%DISCOVERY%", audience: urn:my-api}
users:
  source: claims
  claims: {id: sub, email: email, username: preferred_username}
  is_staff: '"staff" in (claims.realm_access?.roles ?? [])'
  fields:
    services: 'claims.resource_access?.["my-api"]?.roles ?? []'
browser:
  enabled: true
  allowed_origins: ["http://allowed.example"]
  refresh_cookie: {secure: false}
  access_cookie: true
oidc:
  discovery_url: "%DISCOVERY%"
  client_id: jwtgate-browser
  client_secret: "env:OIDC_SECRET"
  redirect_url: "%GW%/auth/oidc/callback"
  post_logout_redirect_url: "%GW%/app/bye"
routes:
  - {path: /app/, upstream: "%SPA%", auth: none}
  - {path: /api/, upstream: "%UPSTREAM%", allow: '"billing" in user.services', identity_headers: {fields: [services]}}
`

// oidcBrowserEnv is a gateway doing the browser login through a real
// provider, on a port both know before either starts.
type oidcBrowserEnv struct {
	p  *oidcProvider
	gw *gateway
}

// oidcBrowserStart reserves the gateway's port, starts the provider with
// the gateway's callback and post-logout URL registered, then the gateway.
func oidcBrowserStart(t *testing.T, spaURL string) *oidcBrowserEnv {
	t.Helper()
	return oidcBrowserStartAuth(t, spaURL, "http://127.0.0.1:1")
}

// oidcBrowserStartAuth is oidcBrowserStart with a SimpleJWT auth service
// at authURL beside the provider.
func oidcBrowserStartAuth(t *testing.T, spaURL, authURL string) *oidcBrowserEnv {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gwURL := "http://" + l.Addr().String()
	p := oidcStart(t, "OIDC_BROWSER_REDIRECTS="+gwURL+"/auth/oidc/callback", "OIDC_BROWSER_POST_LOGOUT="+gwURL+"/app/bye")
	up := startUpstream(t)
	db := filepath.Join(t.TempDir(), "jwtgate.db")
	yaml := fill(oidcBrowserConfig, "DISCOVERY", p.Discovery(), "GW", gwURL, "SPA", spaURL, "UPSTREAM", up.URL, "DB", db, "AUTH", authURL)
	env := func(k string) string {
		if k == "OIDC_SECRET" {
			return "browser-secret"
		}
		return ""
	}
	s, err := models.LoadSettings(strings.NewReader(yaml), env)
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := handlers.NewGateway(t.Context(), settingsRuntime(t, s), log, handlers.Options{Getenv: env})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	srv := httptest.NewUnstartedServer(g.Handler)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if err := g.Close(); err != nil {
			t.Errorf("close gateway: %v", err)
		}
	})
	return &oidcBrowserEnv{p: p, gw: &gateway{URL: gwURL, GW: g, Logs: logs, DBDSN: db}}
}

// callback runs a login from /auth/oidc/login?next=next up to the
// provider's redirect back, not followed: the callback URL and the
// browser (its jar holds the state cookie).
func (e *oidcBrowserEnv) callback(t *testing.T, account, next string) (*url.URL, *http.Client) {
	t.Helper()
	c := oidcBrowserClient()
	start := e.gw.URL + "/auth/oidc/login"
	if next != "" {
		start += "?next=" + url.QueryEscape(next)
	}
	return oidcAuthorize(t, c, start, e.gw.URL+"/auth/oidc/callback", account), c
}

// noFollow is c without following redirects.
func noFollow(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// send GETs u with c (redirects not followed), adding hdr pairs.
func send(t *testing.T, c *http.Client, u string, hdr ...string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return callReq(t, noFollow(c), req, "", "", nil)
}

// stateCookie returns the login's state cookie value from c's jar.
func stateCookie(t *testing.T, c *http.Client, cb *url.URL) string {
	t.Helper()
	for _, ck := range c.Jar.Cookies(cb) {
		if ck.Name == "oidc_login_"+cb.Query().Get("state") {
			return ck.Value
		}
	}
	t.Fatalf("no state cookie for %s", cb)
	return ""
}

// resealState rewrites a state cookie's payload with edit and signs it
// with the key the gateway derives from the client secret: what an
// attacker holding the secret could do, to reach the checks after the MAC.
func resealState(t *testing.T, value string, edit func(map[string]any)) string {
	t.Helper()
	p, _, _ := strings.Cut(value, ".")
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	edit(st)
	b, _ := json.Marshal(st)
	p = base64.RawURLEncoding.EncodeToString(b)
	k := hmac.New(sha256.New, []byte("browser-secret"))
	k.Write([]byte("jwtgate oidc login state v1"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// cookieOf returns the Set-Cookie of name in r, nil when absent.
func cookieOf(r reply, name string) *http.Cookie {
	resp := http.Response{Header: r.Header}
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestOIDCBrowserCallbackChecks(t *testing.T) {
	e := oidcBrowserStart(t, "http://127.0.0.1:1")
	otherState := strings.Repeat("A", 43)
	tests := []struct {
		name string
		// call answers the callback cb of a fresh login by browser c.
		call       func(t *testing.T, cb *url.URL, c *http.Client) reply
		status     int
		code, want string
	}{
		{"state matches: session and redirect", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			return send(t, c, cb.String())
		}, http.StatusFound, "", ""},
		{"state mismatch", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			q := cb.Query()
			q.Set("state", otherState)
			cb.RawQuery = q.Encode()
			return send(t, c, cb.String())
		}, http.StatusBadRequest, "bad_request", "state"},
		{"another login's cookie under this state's name", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			v := stateCookie(t, c, cb)
			q := cb.Query()
			q.Set("state", otherState)
			cb.RawQuery = q.Encode()
			return send(t, oidcBrowserClient(), cb.String(), "Cookie", "oidc_login_"+otherState+"="+v)
		}, http.StatusBadRequest, "bad_request", "state"},
		{"missing state cookie", func(t *testing.T, cb *url.URL, _ *http.Client) reply {
			return send(t, oidcBrowserClient(), cb.String())
		}, http.StatusBadRequest, "bad_request", "state"},
		{"forged state cookie (MAC)", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			v := stateCookie(t, c, cb)
			_, sig, _ := strings.Cut(v, ".")
			forged := resealState(t, v, func(m map[string]any) { m["r"] = "http://evil.example/" })
			fp, _, _ := strings.Cut(forged, ".") // another payload under the old MAC
			return send(t, oidcBrowserClient(), cb.String(), "Cookie", "oidc_login_"+cb.Query().Get("state")+"="+fp+"."+sig)
		}, http.StatusBadRequest, "bad_request", "state"},
		{"expired state cookie", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			v := resealState(t, stateCookie(t, c, cb), func(m map[string]any) { m["e"] = 1 })
			return send(t, oidcBrowserClient(), cb.String(), "Cookie", "oidc_login_"+cb.Query().Get("state")+"="+v)
		}, http.StatusBadRequest, "bad_request", "state"},
		{"replayed state cookie", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			v := stateCookie(t, c, cb)
			if r := send(t, c, cb.String()); r.Status != http.StatusFound {
				t.Fatalf("first callback: %d %s", r.Status, r.Body)
			}
			return send(t, oidcBrowserClient(), cb.String(), "Cookie", "oidc_login_"+cb.Query().Get("state")+"="+v)
		}, http.StatusBadRequest, "bad_request", "state"},
		{"wrong nonce", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			v := resealState(t, stateCookie(t, c, cb), func(m map[string]any) { m["n"] = "another-nonce" })
			return send(t, oidcBrowserClient(), cb.String(), "Cookie", "oidc_login_"+cb.Query().Get("state")+"="+v)
		}, http.StatusUnauthorized, "token_not_valid", "ID token"},
		{"wrong PKCE verifier", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			v := resealState(t, stateCookie(t, c, cb), func(m map[string]any) { m["v"] = strings.Repeat("x", 43) })
			return send(t, oidcBrowserClient(), cb.String(), "Cookie", "oidc_login_"+cb.Query().Get("state")+"="+v)
		}, http.StatusBadRequest, "bad_request", "invalid_grant"},
		{"provider error", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			return send(t, c, e.gw.URL+"/auth/oidc/callback?error=access_denied&state="+cb.Query().Get("state"))
		}, http.StatusBadRequest, "bad_request", "access_denied"},
		{"provider error text not echoed", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			return send(t, c, e.gw.URL+"/auth/oidc/callback?error=%3Cscript%3E&state="+cb.Query().Get("state"))
		}, http.StatusBadRequest, "bad_request", "did not log you in: error."},
		{"code twice", func(t *testing.T, cb *url.URL, c *http.Client) reply {
			return send(t, c, cb.String()+"&code=other")
		}, http.StatusBadRequest, "bad_request", "exactly one code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb, c := e.callback(t, "alice", "/app/x")
			r := tt.call(t, cb, c)
			if tt.status == http.StatusFound {
				if r.Status != http.StatusFound || r.Header.Get("Location") != "/app/x" {
					t.Fatalf("callback: %d %v %s", r.Status, r.Header, r.Body)
				}
				if a := cookieOf(r, "access_token"); a == nil || !a.HttpOnly || a.Path != "/" || a.MaxAge <= 0 {
					t.Fatalf("access cookie: %+v", a)
				}
				if cookieOf(r, "refresh_token") == nil || cookieOf(r, "csrftoken") == nil || cookieOf(r, "oidc_id_token") == nil {
					t.Fatalf("session cookies: %v", r.Header.Values("Set-Cookie"))
				}
				return
			}
			wantError(t, r, tt.status, tt.code)
			if !strings.Contains(string(r.Body), tt.want) {
				t.Fatalf("detail %s, want it to say %q", r.Body, tt.want)
			}
			if cookieOf(r, "access_token") != nil {
				t.Fatalf("refused callback set a session: %v", r.Header.Values("Set-Cookie"))
			}
		})
	}

	t.Run("provider down at callback", func(t *testing.T) {
		cb, c := e.callback(t, "alice", "/app/x")
		e.p.Stop()
		r := send(t, c, cb.String())
		wantError(t, r, http.StatusServiceUnavailable, "auth_service_unavailable")
	})
}

func TestOIDCBrowserNextRedirects(t *testing.T) {
	e := oidcBrowserStart(t, "http://127.0.0.1:1")
	tests := []struct{ next, want string }{
		{"/app/x?tab=2#top", "/app/x?tab=2#top"},
		{"http://allowed.example/after", "http://allowed.example/after"},
		{"", "/"},
		{"//evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"/%2F%2Fevil.example/", "/"},
		{"/%252F%252Fevil.example/", "/"},
		{"%2F%2Fevil.example/", "/"},
		{"https:evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"\t//evil.example/", "/"},
		{"/\t/evil.example/", "/"},
		{"http://allowed.example@evil.example/", "/"},
		{"http://allowed.example.evil.example/", "/"},
		{"https://evil.example/", "/"},
		{"/app/\r\nSet-Cookie: x=1", "/"},
		{"/app/%0d%0aSet-Cookie:%20x=1", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.next, func(t *testing.T) {
			cb, c := e.callback(t, "alice", tt.next)
			r := send(t, c, cb.String())
			if r.Status != http.StatusFound || r.Header.Get("Location") != tt.want {
				t.Fatalf("next %q: %d Location %q, want %q", tt.next, r.Status, r.Header.Get("Location"), tt.want)
			}
		})
	}
}

func TestOIDCBrowserLogout(t *testing.T) {
	e := oidcBrowserStart(t, "http://127.0.0.1:1")
	cb, c := e.callback(t, "alice", "/app/")
	if r := send(t, c, cb.String()); r.Status != http.StatusFound {
		t.Fatalf("callback: %d %s", r.Status, r.Body)
	}
	gw, _ := url.Parse(e.gw.URL)
	var access string
	for _, ck := range c.Jar.Cookies(gw) {
		if ck.Name == "access_token" {
			access = ck.Value
		}
	}
	if r := send(t, c, e.gw.URL+"/api/billing"); r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != "alice" {
		t.Fatalf("API call with the session cookie: %d %s", r.Status, r.Body)
	}

	// Another site's page cannot log the user out (an <img> or a link).
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site", "Referer", "http://evil.example/page"},
		{"Sec-Fetch-Site", "same-site", "Referer", "http://127.0.0.1:9/page"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Referer", "http://evil.example/page"},
	} {
		wantError(t, send(t, c, e.gw.URL+"/auth/oidc/logout", h...), http.StatusForbidden, "origin_not_allowed")
	}
	if r := send(t, c, e.gw.URL+"/api/billing"); r.Status != http.StatusOK {
		t.Fatalf("session ended by a refused logout: %d", r.Status)
	}

	r := send(t, c, e.gw.URL+"/auth/oidc/logout", "Sec-Fetch-Site", "same-origin")
	if r.Status != http.StatusFound {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	loc, _ := url.Parse(r.Header.Get("Location"))
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), e.p.URL+"/session/end") || q.Get("client_id") != "jwtgate-browser" ||
		q.Get("post_logout_redirect_uri") != e.gw.URL+"/app/bye" || strings.Count(q.Get("id_token_hint"), ".") != 2 {
		t.Fatalf("logout redirect: %s", loc)
	}
	for _, name := range []string{"access_token", "refresh_token", "csrftoken", "oidc_id_token"} {
		if ck := cookieOf(r, name); ck == nil || ck.MaxAge >= 0 {
			t.Fatalf("cookie %s not cleared: %v", name, r.Header.Values("Set-Cookie"))
		}
	}
	// The old access token is refused (auth.revoke_on_logout), and the
	// browser has no cookie left.
	wantError(t, get(t, e.gw.URL+"/api/billing", access), http.StatusUnauthorized, "token_not_valid")
	wantError(t, send(t, c, e.gw.URL+"/api/billing"), http.StatusUnauthorized, "not_authenticated")
}
