package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/tests/djangoauth"
	"jwtgate/tests/fakeauth"
)

// throttleConfig trusts 127.0.0.1 as a proxy, so a test can play many
// client addresses through X-Forwarded-For; 127.0.0.2 and 127.0.0.3 are
// direct clients. %THROTTLE% is extra throttle settings.
const throttleConfig = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 5s}
database: {driver: sqlite, dsn: "%DB%"}
trusted_proxies: ["127.0.0.1/32"]
log: {level: debug}
throttle: {%THROTTLE%}
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
`

func throttleGateway(t *testing.T, authURL string, now func() time.Time, throttle string) *gateway {
	t.Helper()
	return startGateway(t, fill(throttleConfig, "THROTTLE", throttle), authURL, startUpstream(t).URL, now)
}

// throttleLogin posts a login body from client (a direct peer such as
// 127.0.0.2, or "via:ADDR" for a client behind the trusted proxy).
func throttleLogin(t *testing.T, gwURL, client, contentType, body string) reply {
	t.Helper()
	var hdr map[string]string
	c := httpClient
	if via, ok := strings.CutPrefix(client, "via:"); ok {
		hdr = map[string]string{"X-Forwarded-For": via}
	} else {
		c = clientFrom(t, client)
	}
	return callReq(t, c, mustReq(t, http.MethodPost, gwURL+"/auth/token/"), contentType, body, hdr)
}

func throttleJSON(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv[i])
		v, _ := json.Marshal(kv[i+1])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String()
}

// throttleWant429 asserts 429 throttled with a Retry-After in (0, max].
func throttleWant429(t *testing.T, r reply, max time.Duration) int {
	t.Helper()
	wantError(t, r, http.StatusTooManyRequests, "throttled")
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > max {
		t.Fatalf("Retry-After %q, want 1..%d seconds", r.Header.Get("Retry-After"), int(max.Seconds()))
	}
	return secs
}

// TestSecThrottleDjango runs the login throttles against the real Django
// SimpleJWT service (USERNAME_FIELD = email).
func TestSecThrottleDjango(t *testing.T) {
	dj := djangoauth.Start(t, djangoauth.Options{})
	dj.CreateUser(t, "alice@example.com", "alice-pw", nil, false)
	dj.CreateUser(t, "mallory@example.com", "mallory-pw", nil, false)

	// 30 wrong passwords for alice from 30 addresses, in every spelling
	// Django reads as alice (or as a case variant of her): the first 10
	// reach Django and get its 401, the rest 429 without reaching it.
	t.Run("one account from many addresses", func(t *testing.T) {
		clk := newClock()
		gw := throttleGateway(t, dj.URL, clk.Now, "")
		bodies := []struct{ ctype, body string }{
			{"application/json", throttleJSON("email", "alice@example.com", "password", "guess")},
			{"application/json", throttleJSON("email", "ALICE@Example.com", "password", "guess")},
			{"application/json", throttleJSON("email", "  alice@example.com\t", "password", "guess")},
			{"application/json", `{"email":"decoy@example.com","email":"alice@example.com","password":"guess"}`},
			{"application/json", `{"username":"decoy","email":"alice@example.com","password":"guess"}`},
			{"application/json", `{"em\u0061il":"alice@example.com","Email":"decoy","password":"guess"}`},
			{"application/json; charset=utf-8", throttleJSON("email", "alice@example.com", "password", "guess")},
			{"Application/JSON", throttleJSON("email", "ａｌｉｃｅ@example.com", "password", "guess")},
			{"application/x-www-form-urlencoded", "email=alice%40example.com&password=guess"},
			{"application/x-www-form-urlencoded", "email=decoy&email=+alice%40example.com+&password=guess"},
		}
		var first429 = -1
		for i := range 30 {
			b := bodies[i%len(bodies)]
			r := throttleLogin(t, gw.URL, fmt.Sprintf("via:198.51.100.%d", i+1), b.ctype, b.body)
			switch {
			case i < 10 && r.Status != http.StatusUnauthorized:
				t.Fatalf("attempt %d (%s %s): %d %s, want Django's 401", i+1, b.ctype, b.body, r.Status, r.Body)
			case i >= 10 && r.Status != http.StatusTooManyRequests:
				t.Fatalf("attempt %d (%s %s): %d %s, want 429", i+1, b.ctype, b.body, r.Status, r.Body)
			case r.Status == http.StatusTooManyRequests && first429 < 0:
				first429 = i
				throttleWant429(t, r, 15*time.Minute)
			}
		}
		// The right password is refused too until the window ends, from
		// any address; other accounts are not affected.
		throttleWant429(t, throttleLogin(t, gw.URL, "127.0.0.2", "application/json", throttleJSON("email", "alice@example.com", "password", "alice-pw")), 15*time.Minute)
		if r := throttleLogin(t, gw.URL, "127.0.0.2", "application/json", throttleJSON("email", "mallory@example.com", "password", "mallory-pw")); r.Status != http.StatusOK {
			t.Fatalf("another account: %d %s", r.Status, r.Body)
		}
		clk.Advance(14 * time.Minute)
		throttleWant429(t, throttleLogin(t, gw.URL, "127.0.0.2", "application/json", throttleJSON("email", "alice@example.com", "password", "alice-pw")), time.Minute)
		clk.Advance(time.Minute)
		if r := throttleLogin(t, gw.URL, "127.0.0.2", "application/json", throttleJSON("email", "alice@example.com", "password", "alice-pw")); r.Status != http.StatusOK {
			t.Fatalf("after the window: %d %s", r.Status, r.Body)
		}
	})

	// 60 users logging in from one address (an office behind one NAT):
	// successful logins are never throttled.
	t.Run("many users one address", func(t *testing.T) {
		const n = 60
		emails := make([]string, n)
		for i := range emails {
			emails[i] = fmt.Sprintf("office%d@example.com", i)
		}
		dj.ThrottleCreateUsers(t, emails, "pw")
		gw := throttleGateway(t, dj.URL, nil, "")
		for i := range n {
			r := throttleLogin(t, gw.URL, "127.0.0.2", "application/json", throttleJSON("email", emails[i], "password", "pw"))
			if r.Status != http.StatusOK {
				t.Fatalf("login %d from one address: %d %s", i+1, r.Status, r.Body)
			}
		}
	})

	// Failures per client address, for any accounts: past the limit the
	// address gets 429 even for a right password, and logging in to one's
	// own account does not reset it; other addresses are not affected.
	t.Run("per client", func(t *testing.T) {
		gw := throttleGateway(t, dj.URL, nil, `failures_per_client: "5/15m"`)
		for i := range 4 {
			r := throttleLogin(t, gw.URL, "via:203.0.113.7", "application/json", throttleJSON("email", fmt.Sprintf("nobody%d@example.com", i), "password", "x"))
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		if r := throttleLogin(t, gw.URL, "via:203.0.113.7", "application/json", throttleJSON("email", "mallory@example.com", "password", "mallory-pw")); r.Status != http.StatusOK {
			t.Fatalf("own account: %d %s", r.Status, r.Body)
		}
		// A 400 (no password field) counts as a failure too.
		if r := throttleLogin(t, gw.URL, "via:203.0.113.7", "application/json", throttleJSON("email", "nobody@example.com")); r.Status != http.StatusBadRequest {
			t.Fatalf("no password: %d %s", r.Status, r.Body)
		}
		throttleWant429(t, throttleLogin(t, gw.URL, "via:203.0.113.7", "application/json", throttleJSON("email", "mallory@example.com", "password", "mallory-pw")), 15*time.Minute)
		throttleWant429(t, throttleLogin(t, gw.URL, "via:203.0.113.7", "application/x-www-form-urlencoded", "email=alice%40example.com&password=alice-pw"), 15*time.Minute)
		if r := throttleLogin(t, gw.URL, "via:203.0.113.8", "application/json", throttleJSON("email", "alice@example.com", "password", "alice-pw")); r.Status != http.StatusOK {
			t.Fatalf("another address: %d %s", r.Status, r.Body)
		}
	})
}

// TestSecThrottleLoginNotRelayed: a throttled login never reaches the
// auth service, even when sent all at once; a body the gateway cannot read
// the login name from is refused before relaying.
func TestSecThrottleLoginNotRelayed(t *testing.T) {
	fa, _ := newFake(t, fakeauth.Options{})
	gw := throttleGateway(t, fa.URL(), nil, "")
	// 50 wrong passwords for one account at once, from 50 addresses.
	var throttled atomic.Int64
	parallel(50, func(i int) {
		r := throttleLogin(t, gw.URL, fmt.Sprintf("via:198.51.100.%d", i+1), "application/json", throttleJSON("email", "alice@example.com", "password", "x"))
		switch r.Status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			throttled.Add(1)
		default:
			t.Errorf("attempt %d: %d %s", i, r.Status, r.Body)
		}
	})
	if n := fa.Calls(fakeauth.PathObtain); n > 10 {
		t.Fatalf("auth service saw %d guesses for one account, want at most 10", n)
	}
	if throttled.Load() < 40 {
		t.Fatalf("%d of 50 throttled, want at least 40", throttled.Load())
	}
	// Bodies whose login name the gateway cannot read: refused, not relayed.
	before := fa.Calls(fakeauth.PathObtain)
	for _, ctype := range []string{"multipart/form-data; boundary=x", "text/plain", "application/*", "*/*", "", "application/vnd.api+json"} {
		r := throttleLogin(t, gw.URL, "127.0.0.2", ctype, throttleJSON("email", "alice@example.com", "password", "alice-pw"))
		if r.Status != http.StatusUnsupportedMediaType || r.json(t)["code"] != "unsupported_media_type" {
			t.Errorf("Content-Type %q: %d %s, want 415 unsupported_media_type", ctype, r.Status, r.Body)
		}
	}
	if n := fa.Calls(fakeauth.PathObtain); n != before {
		t.Fatalf("%d unreadable login bodies relayed", n-before)
	}
	// Another account is unaffected, and its body reaches the auth service
	// unchanged (form and JSON).
	fa.AddUser(fakeauth.User{Email: "bob@example.com", Password: "bob-pw"})
	if r := throttleLogin(t, gw.URL, "127.0.0.2", "application/x-www-form-urlencoded", "email=bob%40example.com&password=bob-pw"); r.Status != http.StatusOK {
		t.Fatalf("bob by form: %d %s", r.Status, r.Body)
	}
	if r := throttleLogin(t, gw.URL, "127.0.0.2", "application/json", `{"email": "bob@example.com", "password": "bob-pw"}`); r.Status != http.StatusOK {
		t.Fatalf("bob by JSON: %d %s", r.Status, r.Body)
	}
}

// throttleForged is a well-formed access token the auth service will not
// verify (signed with another key): it passes the pre-checks, so in remote
// mode it costs a call home.
func throttleForged(t *testing.T, i int, now time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"token_type": "access", "user_id": 1, "jti": fmt.Sprintf("forged-%d", i),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString([]byte("not the auth service's key"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSecThrottleCallsHome: one client sending 200 distinct forged tokens
// makes at most calls_home_per_client calls home, then gets 429 throttled;
// its cached token still works; another client at the same time is not
// affected. The gateway's clock stands still, so the budget never refills.
func TestSecThrottleCallsHome(t *testing.T) {
	clk := newClock()
	fa, id := newFake(t, fakeauth.Options{})
	gw := throttleGateway(t, fa.URL(), clk.Now, "") // the default: calls_home_per_client 20/second
	access, _ := fa.IssuePair(id)
	attacker, other := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
	if r := do(t, attacker, http.MethodGet, gw.URL+"/api/x", access, nil); r.Status != http.StatusOK {
		t.Fatalf("attacker's own token: %d %s", r.Status, r.Body)
	}
	fa.ResetCalls()

	var refused, throttled atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		sem := make(chan struct{}, 8)
		var inner sync.WaitGroup
		for i := range 200 {
			inner.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				r := do(t, attacker, http.MethodGet, gw.URL+"/api/x", throttleForged(t, i, clk.Now()), nil)
				switch r.Status {
				case http.StatusUnauthorized:
					refused.Add(1)
				case http.StatusTooManyRequests:
					throttled.Add(1)
					if r.Header.Get("Retry-After") == "" || r.json(t)["code"] != "throttled" {
						t.Errorf("429 without Retry-After or code: %v %s", r.Header, r.Body)
					}
				default:
					t.Errorf("forged token %d: %d %s", i, r.Status, r.Body)
				}
			})
		}
		inner.Wait()
	})
	// Meanwhile another client: its new tokens are verified, forged ones refused.
	wg.Go(func() {
		for i := range 10 {
			if r := do(t, other, http.MethodGet, gw.URL+"/api/x", throttleForged(t, 1000+i, clk.Now()), nil); r.Status != http.StatusUnauthorized {
				t.Errorf("other client's forged token: %d %s", r.Status, r.Body)
			}
			tok, _ := fa.IssuePair(id)
			if r := do(t, other, http.MethodGet, gw.URL+"/api/x", tok, nil); r.Status != http.StatusOK {
				t.Errorf("other client's new token: %d %s", r.Status, r.Body)
			}
		}
	})
	wg.Wait()
	// The budget is 20 calls home; the attacker spent one on its own token.
	if refused.Load() != 19 || throttled.Load() != 181 {
		t.Fatalf("attacker: %d refused by the auth service, %d throttled; want 19 and 181", refused.Load(), throttled.Load())
	}
	if n := fa.Calls(fakeauth.PathVerify); n > 19+20 {
		t.Fatalf("auth service saw %d verify calls, want at most 19 for the attacker and 20 for the other client", n)
	}
	// The attacker's cached token is never limited; the same forged token
	// again is a negative-cache hit, not a call home.
	if r := do(t, attacker, http.MethodGet, gw.URL+"/api/x", access, nil); r.Status != http.StatusOK {
		t.Fatalf("cached token after the budget: %d %s", r.Status, r.Body)
	}
	wantError(t, do(t, attacker, http.MethodGet, gw.URL+"/api/x", "not-a-jwt", nil), http.StatusUnauthorized, "token_not_valid")
	// Time refills the budget.
	clk.Advance(time.Second)
	if r := do(t, attacker, http.MethodGet, gw.URL+"/api/x", throttleForged(t, 5000, clk.Now()), nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("after a second: %d %s", r.Status, r.Body)
	}
}
