package authn_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

func TestOIDCUserinfoFetch(t *testing.T) {
	m, probs := models.CompileUserMapping(models.Users{
		IsStaff: `"staff" in (claims.realm_access?.roles ?? [])`,
		Fields:  map[string]string{"services": `claims.resource_access?.["my-api"]?.roles ?? []`},
	})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	var gotAuth string
	status, body := http.StatusOK, `{"sub":"u1","email":"a@x","preferred_username":"alice","realm_access":{"roles":["staff"]},"resource_access":{"my-api":{"roles":["billing"]}}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	ui := authn.NewUserinfo(srv.URL, srv.Client(), m)
	now := time.Unix(1700000000, 0)

	u, err := ui.FetchUser(t.Context(), "tok", "u1", now)
	if err != nil || gotAuth != "Bearer tok" {
		t.Fatalf("fetch: %v, Authorization %q", err, gotAuth)
	}
	if u.ID != "u1" || u.Username != "alice" || !u.IsStaff || u.IsSuperuser || len(u.Fields["services"].([]any)) != 1 || !u.FetchedAt.Equal(now) {
		t.Fatalf("user %+v", u)
	}
	for _, tt := range []struct {
		status int
		body   string
		want   error
	}{
		{http.StatusUnauthorized, `{"error":"invalid_token"}`, models.ErrTokenInvalid},
		{http.StatusForbidden, `{}`, models.ErrPermissionDenied},
		{http.StatusBadGateway, ``, models.ErrAuthUnavailable},
		{http.StatusOK, `not json`, models.ErrAuthUnavailable},
		{http.StatusOK, `{"email":"no-sub@x"}`, models.ErrUserRejected},
	} {
		status, body = tt.status, tt.body
		if _, err := ui.FetchUser(t.Context(), "tok", "u1", now); !errors.Is(err, tt.want) {
			t.Errorf("status %d body %q: %v, want %v", tt.status, tt.body, err, tt.want)
		}
	}
	srv.Close()
	if _, err := ui.FetchUser(t.Context(), "tok", "u1", now); !errors.Is(err, models.ErrAuthUnavailable) {
		t.Errorf("provider down: %v", err)
	}
}
