package handlers

import (
	"slices"
	"testing"
)

// TestRevokeRefreshTokensIn: every spelling of a refresh body the auth
// service would read yields the token it would use (or all candidates);
// bodies it may read but the gateway cannot are refused.
func TestRevokeRefreshTokensIn(t *testing.T) {
	cases := []struct {
		name, ct, body string
		want           []string
		readable       bool
	}{
		{"json", "application/json", `{"refresh":"A"}`, []string{"A"}, true},
		{"json repeated: the last, as Python reads it", "application/json", `{"refresh":"A","refresh":"B"}`, []string{"B"}, true},
		{"json escaped", "application/json", `{"\u0072efresh":"\u0041"}`, []string{"A"}, true},
		{"json NaN (Python reads it, Go does not)", "application/json", `{"refresh":"A","x":NaN}`, nil, false},
		{"json not an object", "application/json", `["A"]`, nil, false},
		{"json without refresh", "application/json", `{"access":"A"}`, nil, true},
		{"form", "application/x-www-form-urlencoded", `refresh=A`, []string{"A"}, true},
		{"form repeated: all", "application/x-www-form-urlencoded", `refresh=A&refresh=B`, []string{"A", "B"}, true},
		{"form after a semicolon pair", "application/x-www-form-urlencoded", `x=1;y=2&refresh=A`, []string{"A"}, true},
		{"form percent-encoded name", "application/x-www-form-urlencoded", `%72efresh=A`, []string{"A"}, true},
		{"multipart", "multipart/form-data", "--b\r\n", nil, false},
		{"text/plain", "text/plain", `{"refresh":"A"}`, nil, false},
		{"no type", "", `{"refresh":"A"}`, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := refreshTokensIn(tc.ct, []byte(tc.body))
			if ok != tc.readable || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %t; want %q, %t", got, ok, tc.want, tc.readable)
			}
		})
	}
}
