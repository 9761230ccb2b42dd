package tests

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// 127.0.0.3 is the trusted proxy; 127.0.0.1 and 127.0.0.2 are clients.
const trustRoutes = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
trusted_proxies: ["127.0.0.3/32", "10.0.0.0/8"]
throttle: {login_rate: "1/hour", login_burst: 3}
routes:
  - path: "/public/"
    upstream: "%UPSTREAM%"
    auth: none
`

// X-Forwarded-* and X-Real-IP are the gateway's own unless the peer is a
// trusted proxy, whose chain is kept and extended.
func TestEdgeForwardedHeadersTrust(t *testing.T) {
	up := startUpstream(t)
	fa := fakeauth.Start(t, fakeauth.Options{})
	gw := startGateway(t, trustRoutes, fa.URL(), up.URL, nil)
	spoof := map[string]string{
		"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
		"X-Real-IP": "6.6.6.6", "Forwarded": "for=6.6.6.6",
	}
	tests := []struct {
		name, from                   string
		wantXFF, wantHost, wantProto string
		wantRealIP                   string
	}{
		{"untrusted client", "127.0.0.2", "127.0.0.2", "", "http", ""},
		{"trusted proxy", "127.0.0.3", "6.6.6.6, 127.0.0.3", "evil.example", "https", "6.6.6.6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, clientFrom(t, tt.from), http.MethodGet, gw.URL+"/public/x", "", spoof)
			h := r.echo(t).Headers
			wantHost := tt.wantHost
			if wantHost == "" {
				wantHost = gw.URL[len("http://"):]
			}
			if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != tt.wantXFF {
				t.Errorf("X-Forwarded-For %q, want %q", got, tt.wantXFF)
			}
			if got := h.Get("X-Forwarded-Host"); got != wantHost {
				t.Errorf("X-Forwarded-Host %q, want %q", got, wantHost)
			}
			if got := h.Get("X-Forwarded-Proto"); got != tt.wantProto {
				t.Errorf("X-Forwarded-Proto %q, want %q", got, tt.wantProto)
			}
			if got := h.Get("X-Real-Ip"); got != tt.wantRealIP {
				t.Errorf("X-Real-IP %q, want %q", got, tt.wantRealIP)
			}
			if got := h.Get("Forwarded"); got != "" {
				t.Errorf("Forwarded %q passed through", got)
			}
		})
	}
}

// Logins are limited per client address with 429 throttled and
// Retry-After; a forged X-Forwarded-For does not buy a fresh bucket, a
// trusted proxy's does, and the bucket refills with time.
func TestEdgeLoginThrottle(t *testing.T) {
	clk := newClock()
	fa := fakeauth.Start(t, fakeauth.Options{Now: clk.Now})
	fa.AddUser(fakeauth.User{Email: "t@example.com", Username: "t", Password: "pw", IsActive: true})
	gw := startGateway(t, trustRoutes, fa.URL(), "http://127.0.0.1:9", clk.Now)
	body, _ := json.Marshal(map[string]string{"email": "t@example.com", "password": "wrong"})
	post := func(from string, hdr map[string]string) reply {
		t.Helper()
		return callReq(t, clientFrom(t, from), mustReq(t, http.MethodPost, gw.URL+"/auth/token/"), "application/json", string(body), hdr)
	}
	for i := range 3 { // the burst: wrong passwords are answered by the auth service
		if r := post("127.0.0.2", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("login %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	r := post("127.0.0.2", map[string]string{"X-Forwarded-For": "198.51.100.1"})
	wantError(t, r, http.StatusTooManyRequests, "throttled")
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 3600 {
		t.Fatalf("Retry-After %q, want 1..3600 seconds", r.Header.Get("Retry-After"))
	}
	if n := fa.Calls(fakeauth.PathObtain); n != 3 {
		t.Fatalf("auth service saw %d logins, want 3 (a throttled login is not relayed)", n)
	}
	// Another client address has its own bucket.
	if r := post("127.0.0.1", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("other client: %d %s", r.Status, r.Body)
	}
	// Behind a trusted proxy every forwarded client has its own bucket...
	for i := range 3 {
		if r := post("127.0.0.3", map[string]string{"X-Forwarded-For": "203.0.113.9"}); r.Status != http.StatusUnauthorized {
			t.Fatalf("proxied client A login %d: %d", i+1, r.Status)
		}
	}
	wantError(t, post("127.0.0.3", map[string]string{"X-Forwarded-For": "203.0.113.9"}), http.StatusTooManyRequests, "throttled")
	if r := post("127.0.0.3", map[string]string{"X-Forwarded-For": "203.0.113.10"}); r.Status != http.StatusUnauthorized {
		t.Fatalf("proxied client B: %d", r.Status)
	}
	// ...and a chain is read from the right: the client cannot prepend its way out.
	wantError(t, post("127.0.0.3", map[string]string{"X-Forwarded-For": "1.2.3.4, 203.0.113.9"}), http.StatusTooManyRequests, "throttled")
	// The bucket refills at the configured rate.
	clk.Advance(time.Duration(secs) * time.Second)
	if r := post("127.0.0.2", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("after Retry-After: %d %s", r.Status, r.Body)
	}
	// Other endpoints are not login-throttled.
	for range 5 {
		r := callReq(t, clientFrom(t, "127.0.0.2"), mustReq(t, http.MethodPost, gw.URL+"/auth/token/refresh/"), "application/json", `{"refresh":"x"}`, nil)
		if r.Status == http.StatusTooManyRequests {
			t.Fatal("refresh is throttled")
		}
	}
}

func mustReq(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
