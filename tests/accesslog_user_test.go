package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"jwtgate/tests/fakeauth"
)

// TestAccessLogNamesRefusedUser: a request refused by the route's allow
// rule (403) comes from a known user, and the access log says who — on the
// proxy and on forward-auth — instead of user_id="".
func TestAccessLogNamesRefusedUser(t *testing.T) {
	fa, aliceID := newFake(t, fakeauth.Options{}) // alice is not staff: the staff-only rule refuses her
	cfg := strings.NewReplacer("log:\n", "trusted_proxies: [\"127.0.0.1/32\"]\nlog:\n", `'"billing" in user.services || user.is_staff'`, `'user.is_staff'`).Replace(baseConfig)
	gw := startGateway(t, cfg, fa.URL(), startUpstream(t).URL, nil)
	access, _ := fa.IssuePair(aliceID)

	cases := []struct {
		name, id string
		do       func() reply
	}{
		{"proxy", "req-refused-proxy", func() reply {
			return get(t, gw.URL+"/api/billing/x", access, "X-Request-Id", "req-refused-proxy")
		}},
		{"forward-auth", "req-refused-check", func() reply {
			return get(t, gw.URL+"/auth/check", access, "X-Request-Id", "req-refused-check",
				"X-Original-URI", "/api/billing/x", "X-Original-Method", "GET")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := tc.do(); r.Status != http.StatusForbidden {
				t.Fatalf("status %d, want 403; %s", r.Status, r.Body)
			}
			var line string
			for l := range strings.SplitSeq(gw.Logs.String(), "\n") {
				if strings.Contains(l, "msg=request") && strings.Contains(l, "request_id="+tc.id) {
					line = l
				}
			}
			if want := fmt.Sprintf("user_id=%d", aliceID); !strings.Contains(line, want) || !strings.Contains(line, "status=403") {
				t.Errorf("access line %q lacks %s and status=403", line, want)
			}
		})
	}
}
