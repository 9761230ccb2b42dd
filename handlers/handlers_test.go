package handlers

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"jwtgate/models"
)

func TestCredentialsExtract(t *testing.T) {
	bearer := credentials{header: "Authorization", types: []string{"Bearer", "JWT"}}
	bare := credentials{header: "X-Token"}
	tests := []struct {
		name    string
		cr      credentials
		header  string
		value   string
		raw     string
		present bool
		invalid bool
	}{
		{"bearer", bearer, "Authorization", "Bearer a.b.c", "a.b.c", true, false},
		{"case-insensitive scheme", bearer, "Authorization", "bearer a.b.c", "a.b.c", true, false},
		{"second scheme", bearer, "Authorization", "JWT a.b.c", "a.b.c", true, false},
		{"missing", bearer, "Authorization", "", "", false, false},
		{"basic is not ours", bearer, "Authorization", "Basic dXNlcjpwdw==", "", false, false},
		{"bearer alone", bearer, "Authorization", "Bearer", "", true, true},
		{"three parts", bearer, "Authorization", "Bearer a b", "", true, true},
		{"huge", bearer, "Authorization", "Bearer " + strings.Repeat("a", 9000), "", true, true},
		{"bare header", bare, "X-Token", "a.b.c", "a.b.c", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.value != "" {
				h.Set(tt.header, tt.value)
			}
			raw, present, err := tt.cr.extract(h)
			if raw != tt.raw || present != tt.present || (err != nil) != tt.invalid {
				t.Fatalf("got %q %v %v", raw, present, err)
			}
			if err != nil && !errors.Is(err, models.ErrTokenInvalid) {
				t.Fatalf("error %v is not a token error", err)
			}
		})
	}
}

// TestIdentityStripsEverySpelling: any case, '_' or '.' for '-'.
func TestIdentityStripsEverySpelling(t *testing.T) {
	idn := newIdentity("X-User-")
	spoofs := []string{"X-User-Id", "x-user-id", "X_User_Id", "x_user_id", "X.User.Id", "X-USER-EMAIL", "X-User-Token", "X_USER-Is_Staff", "x.user_superuser", "X-User-"}
	keep := []string{"X-Username", "X-Users", "X-Request-Id", "Authorization", "X-Use-Id"}
	h := http.Header{}
	for _, k := range append(spoofs, keep...) {
		h[k] = []string{"v"}
	}
	idn.strip(h)
	for _, k := range spoofs {
		if _, ok := h[k]; ok {
			t.Errorf("%s not stripped", k)
		}
	}
	for _, k := range keep {
		if _, ok := h[k]; !ok {
			t.Errorf("%s stripped", k)
		}
	}
}

func TestRouteMatching(t *testing.T) {
	rs := []models.Route{
		{Name: "api", Path: "/api/", Upstream: "http://127.0.0.1:1"},
		{Name: "billing", Path: "/api/billing/", Upstream: "http://127.0.0.1:2"},
		{Name: "exact", Path: "/status", Upstream: "http://127.0.0.1:3"},
	}
	table, err := newRouteTable(settingsCompiled(rs), http.DefaultTransport, nil, nil, newIdentity("X-User-"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{"/api/billing/x", "billing"},
		{"/api/billing", "billing"},
		{"/api/billingx", "api"},
		{"/api/billing/../reports/", "api"},
		{"/api/reports/../billing/x", "billing"},
		{"/api//billing/x", "billing"},
		{"/api/./billing/", "billing"},
		{"/status", "exact"},
		{"/status/sub", "exact"},
		{"/statusx", ""},
		{"/", ""},
		{"/../api/x", "api"},
		{"/other", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := table.match(models.CleanPath(tt.path))
			got := ""
			if r != nil {
				got = r.Name
			}
			if got != tt.want {
				t.Fatalf("route %q, want %q (clean %q)", got, tt.want, models.CleanPath(tt.path))
			}
		})
	}
}
