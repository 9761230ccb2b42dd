package tests

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"jwtgate/models"
)

// oidcStampParts splits a provider session's refresh cookie
// ("oidc:v1.<start>.<user>.<mac>:<token>") into its stamp fields and the
// provider's token, failing the test when it has no stamp.
func oidcStampParts(t *testing.T, v string) (fields []string, token string) {
	t.Helper()
	stamp, token, ok := strings.Cut(strings.TrimPrefix(v, "oidc:"), ":")
	fields = strings.Split(stamp, ".")
	if !strings.HasPrefix(v, "oidc:") || !ok || len(fields) != 4 {
		t.Fatalf("the refresh cookie carries no session stamp: %q", v)
	}
	return fields, token
}

// oidcStampJoin is oidcStampParts' inverse.
func oidcStampJoin(fields []string, token string) string {
	return "oidc:" + strings.Join(fields, ".") + ":" + token
}

// oidcProviderRefresh refreshes token at the provider directly, as the
// gateway's client, and returns the provider's status.
func (e *oidcBrowserEnv) oidcProviderRefresh(t *testing.T, token string) int {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.p.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("jwtgate-browser", "browser-secret")
	return callReq(t, nil, req, "", "", nil).Status
}

// wantRevoked fails unless r is the session's end: 401 token_not_valid
// "Token has been revoked" with the refresh and access cookies cleared.
func wantRevoked(t *testing.T, r reply) {
	t.Helper()
	wantError(t, r, http.StatusUnauthorized, "token_not_valid")
	if d, _ := r.json(t)["detail"].(string); d != "Token has been revoked" {
		t.Fatalf("detail %q, want %q", d, "Token has been revoked")
	}
	wantCleared(t, r)
}

// TestOIDCSessionCutoff: a per-user cutoff (logout-all, the operator's
// revoke, deactivation) ends the browser sessions the provider login made,
// although their refresh tokens are opaque and the provider would happily
// refresh them: the gateway refuses before asking the provider, clears the
// cookies and revokes the token at the provider. A session started after
// the cutoff (in its very second too) refreshes; a session stamp the page
// altered is refused.
func TestOIDCSessionCutoff(t *testing.T) {
	e := oidcBrowserStart(t, "http://127.0.0.1:1")
	for _, acct := range []string{"carol", "dave", "erin"} {
		e.p.SetAccount(t, acct, map[string]any{"email": acct + "@example.test", "preferred_username": acct})
	}

	t.Run("logout-all with the session ends it; a new login refreshes", func(t *testing.T) {
		s := e.session(t, "carol")
		revokeNextSecond() // the cutoff is whole seconds: this session started in an earlier one
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.gw.URL+"/auth/token/logout-all/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cookie", "access_token="+s["access_token"]+"; csrftoken=k")
		req.Header.Set("X-CSRFToken", "k")
		req.Header.Set("Origin", e.gw.URL)
		if r := callReq(t, nil, req, "", "", nil); r.Status != http.StatusOK {
			t.Fatalf("logout-all: %d %s", r.Status, r.Body)
		}
		wantRevoked(t, e.refresh(t, s["refresh_token"], ""))
		_, raw := oidcStampParts(t, s["refresh_token"])
		if st := e.oidcProviderRefresh(t, raw); st != http.StatusBadRequest {
			t.Fatalf("the refused session's token still refreshes at the provider: %d", st)
		}

		// A login right after the cutoff (same second, most likely) works.
		s2 := e.session(t, "carol")
		r := e.refresh(t, s2["refresh_token"], s2["access_token"])
		if r.Status != http.StatusOK {
			t.Fatalf("a session started after logout-all: %d %s", r.Status, r.Body)
		}
		// The stamp rides along unchanged on the rotated token.
		f1, _ := oidcStampParts(t, s2["refresh_token"])
		f2, _ := oidcStampParts(t, cookieOf(r, "refresh_token").Value)
		if f1[1] != f2[1] || f1[2] != f2[2] {
			t.Fatalf("refresh moved the stamp: %v -> %v", f1, f2)
		}
	})

	t.Run("the operator's revoke and deactivate end the session", func(t *testing.T) {
		revoked, inactive := e.session(t, "dave"), e.session(t, "erin")
		revokeNextSecond()
		if err := e.gw.GW.Auth.RevokeUser(t.Context(), models.UserKey{ID: "dave"}, "test"); err != nil {
			t.Fatal(err)
		}
		wantRevoked(t, e.refresh(t, revoked["refresh_token"], revoked["access_token"]))

		if err := e.gw.GW.Auth.SetUserActive(t.Context(), models.UserKey{ID: "erin"}, false, "test"); err != nil {
			t.Fatal(err)
		}
		r := e.refresh(t, inactive["refresh_token"], inactive["access_token"])
		wantError(t, r, http.StatusForbidden, "user_inactive")
		wantCleared(t, r)
	})

	t.Run("an altered stamp is refused", func(t *testing.T) {
		alice, bob := e.session(t, "alice"), e.session(t, "bob")
		fa, ta := oidcStampParts(t, alice["refresh_token"])
		fb, tb := oidcStampParts(t, bob["refresh_token"])
		later := append([]string(nil), fa...)
		later[1] = strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
		other := append([]string(nil), fa...)
		u, _ := json.Marshal([]string{"", "bob"})
		other[2] = base64.RawURLEncoding.EncodeToString(u)
		tests := []struct{ name, cookie string }{
			{"start moved later", oidcStampJoin(later, ta)},
			{"another user", oidcStampJoin(other, ta)},
			{"the stamp moved onto another session's token", oidcStampJoin(fa, tb)},
			{"bob's stamp with alice's token", oidcStampJoin(fb, ta)},
			{"no stamp (a cookie from before stamps)", "oidc:" + ta},
			{"MAC removed", "oidc:" + strings.Join(fa[:3], ".") + ".:" + ta},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { wantRevoked(t, e.refresh(t, tt.cookie, "")) })
		}
	})
}
