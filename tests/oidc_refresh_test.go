package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"jwtgate/tests/djangoauth"
)

// oidcSession logs account in through the gateway's provider login and
// returns the session's cookies by name, as the callback set them.
func (e *oidcBrowserEnv) session(t *testing.T, account string) map[string]string {
	t.Helper()
	cb, c := e.callback(t, account, "/app/")
	r := send(t, c, cb.String())
	if r.Status != http.StatusFound {
		t.Fatalf("callback: %d %s", r.Status, r.Body)
	}
	out := map[string]string{}
	for _, name := range []string{"access_token", "refresh_token", "csrftoken"} {
		ck := cookieOf(r, name)
		if ck == nil || ck.Value == "" {
			t.Fatalf("callback set no %s: %v", name, r.Header.Values("Set-Cookie"))
		}
		out[name] = ck.Value
	}
	return out
}

// refresh posts /auth/token/refresh/ as the gateway's own page would: the
// refresh cookie (and, when access is not "", the access cookie), the CSRF
// cookie repeated in X-CSRFToken, Origin the gateway's; hdr pairs replace
// those headers.
func (e *oidcBrowserEnv) refresh(t *testing.T, refresh, access string, hdr ...string) reply {
	t.Helper()
	ck := "refresh_token=" + refresh + "; csrftoken=k"
	if access != "" {
		ck += "; access_token=" + access
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.gw.URL+"/auth/token/refresh/", nil)
	req.Header.Set("Cookie", ck)
	req.Header.Set("Origin", e.gw.URL)
	req.Header.Set("X-CSRFToken", "k")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	return callReq(t, nil, req, "", "", nil)
}

// wantCleared fails unless r deletes the refresh and access cookies.
func wantCleared(t *testing.T, r reply) {
	t.Helper()
	for _, name := range []string{"refresh_token", "access_token"} {
		if ck := cookieOf(r, name); ck == nil || ck.MaxAge >= 0 {
			t.Fatalf("%s not cleared: %v", name, r.Header.Values("Set-Cookie"))
		}
	}
}

// TestOIDCBrowserRefresh refreshes sessions the provider login made
// through the real provider (refresh_token grant, rotation on every use),
// beside a real SimpleJWT service whose sessions keep refreshing there.
func TestOIDCBrowserRefresh(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	dj.CreateUser(t, "carol@example.com", "carol-pw", nil, false)
	e := oidcBrowserStartAuth(t, "http://127.0.0.1:1", dj.URL)
	_, djRefresh := tokens(t, login(t, dj.URL, "carol@example.com", "carol-pw"))

	t.Run("renews the session; the new access cookie works", func(t *testing.T) {
		s := e.session(t, "alice")
		if !strings.HasPrefix(s["refresh_token"], "oidc:") {
			t.Fatalf("the callback's refresh cookie is not marked: %q", s["refresh_token"])
		}
		r := e.refresh(t, s["refresh_token"], s["access_token"])
		if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != "{}" {
			t.Fatalf("refresh: %d %s", r.Status, r.Body)
		}
		a, rt := cookieOf(r, "access_token"), cookieOf(r, "refresh_token")
		if a == nil || a.Value == s["access_token"] || !a.HttpOnly || a.Path != "/" || a.MaxAge <= 0 {
			t.Fatalf("new access cookie: %+v", a)
		}
		if rt == nil || !strings.HasPrefix(rt.Value, "oidc:") || rt.Value == s["refresh_token"] || !rt.HttpOnly {
			t.Fatalf("rotated refresh cookie: %+v", rt)
		}
		api := send(t, http.DefaultClient, e.gw.URL+"/api/billing", "Cookie", "access_token="+a.Value)
		if api.Status != http.StatusOK || api.echo(t).Headers.Get("X-User-Id") != "alice" {
			t.Fatalf("API call with the new access cookie: %d %s", api.Status, api.Body)
		}
		if r2 := e.refresh(t, rt.Value, a.Value); r2.Status != http.StatusOK {
			t.Fatalf("second refresh with the rotated token: %d %s", r2.Status, r2.Body)
		}
		// The first refresh token was rotated away: reusing it is refused
		// (and the provider ends the grant), the browser's cookies cleared.
		old := e.refresh(t, s["refresh_token"], "")
		wantError(t, old, http.StatusUnauthorized, "token_not_valid")
		wantCleared(t, old)
	})

	// Every refusal answers as browser-mode refresh does for SimpleJWT.
	revoked := e.session(t, "alice")
	_, revokedRaw := oidcStampParts(t, revoked["refresh_token"])
	form := url.Values{"token": {revokedRaw}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.p.URL+"/token/revocation", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("jwtgate-browser", "browser-secret")
	if r := callReq(t, nil, req, "", "", nil); r.Status != http.StatusOK {
		t.Fatalf("revocation at the provider: %d %s", r.Status, r.Body)
	}
	alice, bob := e.session(t, "alice"), e.session(t, "bob")
	guarded := e.session(t, "alice")
	tests := []struct {
		name            string
		refresh, access string
		hdr             []string
		status          int
		code            string
		cleared         bool
	}{
		{"revoked at the provider", revoked["refresh_token"], "", nil, http.StatusUnauthorized, "token_not_valid", true},
		{"a SimpleJWT refresh token marked as the provider's", "oidc:" + djRefresh, "", nil, http.StatusUnauthorized, "token_not_valid", true},
		{"the provider's refresh token unmarked (to SimpleJWT)", strings.TrimPrefix(alice["refresh_token"], "oidc:"), "", nil, http.StatusUnauthorized, "token_not_valid", true},
		{"another user's access cookie beside it", bob["refresh_token"], alice["access_token"], nil, http.StatusUnauthorized, "token_not_valid", true},
		{"no CSRF header", guarded["refresh_token"], "", []string{"X-CSRFToken", ""}, http.StatusForbidden, "csrf_failed", false},
		{"another site's origin", guarded["refresh_token"], "", []string{"Origin", "http://evil.example"}, http.StatusForbidden, "origin_not_allowed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.refresh(t, tt.refresh, tt.access, tt.hdr...)
			wantError(t, r, tt.status, tt.code)
			if tt.cleared {
				wantCleared(t, r)
			} else if len(r.Header.Values("Set-Cookie")) > 0 {
				t.Fatalf("a refused request changed cookies: %v", r.Header.Values("Set-Cookie"))
			}
		})
	}

	t.Run("SimpleJWT sessions still refresh at the auth service", func(t *testing.T) {
		r := e.refresh(t, djRefresh, "")
		if r.Status != http.StatusOK || cookieOf(r, "access_token") == nil {
			t.Fatalf("SimpleJWT refresh: %d %s %v", r.Status, r.Body, r.Header.Values("Set-Cookie"))
		}
	})

	t.Run("provider down: 503, cookies kept", func(t *testing.T) {
		s := e.session(t, "alice")
		e.p.Stop()
		r := e.refresh(t, s["refresh_token"], s["access_token"])
		wantError(t, r, http.StatusServiceUnavailable, "auth_service_unavailable")
		if len(r.Header.Values("Set-Cookie")) > 0 {
			t.Fatalf("cookies changed while the provider is down: %v", r.Header.Values("Set-Cookie"))
		}
	})
}
