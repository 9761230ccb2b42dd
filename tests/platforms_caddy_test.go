package tests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// platformsCaddyBin is where Debian's caddy package (tests/setup.sh)
// installs Caddy.
const platformsCaddyBin = "/usr/bin/caddy"

// platformsCaddySnippet is the forward-auth snippet README quotes.
const platformsCaddySnippet = "caddy/Caddyfile"

// platformsStartCaddy runs Caddy with the README's snippet imported into a
// loopback site, in front of the gateway at gwURL and the app at appURL,
// until the test ends; it returns Caddy's address. The admin endpoint is
// off and Caddy's config and data directories are the test's own.
func platformsStartCaddy(t *testing.T, gwURL, appURL string) string {
	t.Helper()
	if _, err := os.Stat(platformsCaddyBin); err != nil {
		t.Fatalf("caddy is not installed (tests/setup.sh installs it): %v", err)
	}
	snippet, err := filepath.Abs(platformsCaddySnippet)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		addr := freePort(t)
		_, port, _ := net.SplitHostPort(addr)
		cfg := filepath.Join(dir, "Caddyfile")
		conf := fmt.Sprintf(`{
	admin off
	auto_https off
}
http://:%s {
	bind 127.0.0.1
	import %s
}
`, port, snippet)
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(platformsCaddyBin, "run", "--config", cfg, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(),
			"HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir,
			"JWTGATE_ADDR="+strings.TrimPrefix(gwURL, "http://"),
			"APP_ADDR="+strings.TrimPrefix(appURL, "http://"))
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start caddy: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case err := <-exited:
				if strings.Contains(out.String(), "address already in use") {
					goto retry
				}
				t.Fatalf("caddy exited: %v\n%s", err, out.String())
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				_ = c.Close()
				t.Cleanup(stop)
				return addr
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		t.Fatalf("caddy did not listen on %s within 15s:\n%s", addr, out.String())
	retry:
	}
	t.Fatal(errors.New("caddy: no free port after 3 attempts"))
	return ""
}

// platformsSpoofedIdentity is the client's own identity headers, in every
// spelling an upstream may fold into X-User-*.
var platformsSpoofedIdentity = fwdHdr{
	{"X-User-Id", "666"}, {"x-user-id", "666"}, {"X_User_Id", "666"}, {"X.User.Id", "666"},
	{"x_user.id", "666"}, {"X-User_Id", "666"}, {"X.USER-ID", "666"},
	{"X-USER-EMAIL", "evil@example.com"}, {"x_user_email", "evil@example.com"},
	{"X-User-Username", "root"}, {"X.User.Username", "root"},
	{"X-User-Is-Staff", "true"}, {"x_user_is_staff", "true"}, {"X-User-Is-Superuser", "true"}, {"X.User.Is.Superuser", "true"},
	{"X-User-Token", "forged"}, {"X_User_Token", "forged"}, {"X-User-Services", `["billing"]`},
}

// platformsWho is the identity an app must see: the edge people's id,
// username and staff flag (their email is username@example.com).
type platformsWho struct {
	id, username string
	staff        bool
}

// platformsWantIdentity checks the identity headers the app saw: exactly
// who's (nil: none at all), never a forged value nor Caddy's placeholder
// text.
func platformsWantIdentity(t *testing.T, h http.Header, who *platformsWho) {
	t.Helper()
	ih := identityHeaders(h)
	for name, vals := range ih {
		for _, v := range vals {
			if strings.Contains(v, "{") || strings.Contains(v, "reverse_proxy") {
				t.Fatalf("app saw %s: %q, Caddy's placeholder text (all: %v)", name, v, ih)
			}
		}
	}
	if who == nil {
		if len(ih) != 0 {
			t.Fatalf("anonymous request reached the app with identity %v", ih)
		}
		return
	}
	want := map[string]string{
		"x-user-id": who.id, "x-user-email": who.username + "@example.com", "x-user-username": who.username,
		"x-user-is-staff": fmt.Sprint(who.staff), "x-user-is-superuser": "false",
	}
	for name, v := range want {
		if got := ih[name]; len(got) != 1 || got[0] != v {
			t.Fatalf("app saw %s %q, want [%s] (all: %v)", name, got, v, ih)
		}
	}
	for name := range ih {
		if _, ok := want[name]; !ok {
			t.Fatalf("app saw an identity header jwtgate did not send: %s (all: %v)", name, ih)
		}
	}
}

// platformsCaddyCase is one request through Caddy.
type platformsCaddyCase struct {
	name, method, path, token string
	hdr                       fwdHdr
	want                      int           // 0: anything but 200
	who                       *platformsWho // on 200: the identity the app sees (nil: anonymous)
	code                      string        // the JSON error code a refusal carries ("" any)
}

// platformsRunCaddy sends each case through Caddy at addr: a refusal never
// reaches the app and carries the gateway's JSON error; an allowed request
// reaches it with exactly the gateway's identity.
func platformsRunCaddy(t *testing.T, addr string, app *upstream, cases []platformsCaddyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.hdr
			if tc.token != "" {
				h = fwdWith(fwdBearer(tc.token), h)
			}
			before := app.hits.Load()
			r := fwdSend(t, tc.method, "http://"+addr+tc.path, h)
			switch {
			case tc.want == 0 && r.Status == http.StatusOK:
				t.Fatalf("200 for a request the rules refuse: %s", r.Body)
			case tc.want != 0 && r.Status != tc.want:
				t.Fatalf("status %d, want %d: %s", r.Status, tc.want, r.Body)
			}
			if r.Status != http.StatusOK {
				if app.hits.Load() != before {
					t.Fatal("Caddy passed a refused request to the app")
				}
				if tc.code != "" {
					wantError(t, r, tc.want, tc.code)
				}
				return
			}
			if app.hits.Load() != before+1 {
				t.Fatalf("200, but the app was called %d times", app.hits.Load()-before)
			}
			ec := r.echo(t)
			if want := strings.SplitN(tc.path, "?", 2)[0]; ec.Path != want {
				t.Fatalf("app saw path %q, want %q", ec.Path, want)
			}
			if ec.Method != tc.method {
				t.Fatalf("app saw method %q, want %q", ec.Method, tc.method)
			}
			if got := ec.Headers.Get("Authorization"); tc.token != "" && got != "Bearer "+tc.token {
				t.Fatalf("Authorization %q not passed on", got)
			}
			platformsWantIdentity(t, ec.Headers, tc.who)
		})
	}
}

// Through a real Caddy with the README's snippet and the mode the README
// tells Caddy users to set (forward_auth.headers: traefik): allowed,
// forbidden, anonymous, and a client's own forwarding and identity headers
// in every spelling, which never make a refused request pass nor reach the
// app as an identity.
func TestPlatformsCaddyForwardAuth(t *testing.T) {
	e := startEdge(t, checkRoutes, "forward_auth: {headers: traefik}")
	p := e.people
	app := startUpstream(t)
	addr := platformsStartCaddy(t, e.gw.URL, app.URL)
	toPublic := fwdHdr{{"X-Forwarded-Uri", "/public/x"}, {"X-Forwarded-Method", "GET"}}
	origPublic := fwdHdr{{"X-Original-URI", "/public/x"}, {"X-Original-Method", "GET"}}
	alice := &platformsWho{p.aliceID, "alice", false}
	bob := &platformsWho{p.bobID, "bob", false}
	carol := &platformsWho{p.carolID, "carol", true}
	cases := []platformsCaddyCase{
		{"allowed", "GET", "/api/billing/invoices?x=1", p.alice, nil, 200, alice, ""},
		{"allowed POST", "POST", "/api/billing/invoices", p.alice, nil, 200, alice, ""},
		{"forbidden", "GET", "/api/billing/invoices", p.bob, nil, 403, nil, "permission_denied"},
		{"forbidden via dot-dot", "GET", "/api/reports/../billing/x", p.bob, nil, 403, nil, ""},
		{"forbidden via encoded dot-dot", "GET", "/api/reports/%2e%2e/billing/", p.bob, nil, 403, nil, ""},
		{"forbidden via encoded slash", "GET", "/api/reports/..%2fbilling/", p.bob, nil, 0, nil, ""},
		{"method not allowed on route", "DELETE", "/api/reports/x", p.bob, nil, 403, nil, "permission_denied"},
		{"anonymous on required", "GET", "/api/billing/invoices", "", nil, 401, nil, "not_authenticated"},
		{"bad token", "GET", "/api/x", "not.a.jwt", nil, 401, nil, "token_not_valid"},
		{"no route", "GET", "/nowhere/x", p.carol, nil, 403, nil, "permission_denied"},
		{"anonymous on optional", "GET", "/feed/x", "", nil, 200, nil, ""},
		{"token on optional", "GET", "/feed/x", p.bob, nil, 200, bob, ""},
		{"public", "GET", "/public/x", "", nil, 200, nil, ""},

		// Caddy replaces the client's X-Forwarded-Method and -Uri (and
		// -Host, -Proto); the gateway ignores X-Original-* in traefik mode
		// and refuses an alias spelling of the family it reads.
		{"spoofed X-Forwarded-Uri to a public path", "GET", "/api/billing/invoices", "", toPublic, 401, nil, "not_authenticated"},
		{"spoofed X-Forwarded-Uri to another route", "GET", "/api/billing/invoices", p.bob, fwdHdr{{"X-Forwarded-Uri", "/api/reports/x"}}, 403, nil, "permission_denied"},
		{"spoofed X-Forwarded-Uri on no route", "GET", "/nowhere/x", p.carol, fwdHdr{{"X-Forwarded-Uri", "/api/x"}}, 403, nil, "permission_denied"},
		{"spoofed X-Forwarded-Method", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"X-Forwarded-Method", "GET"}}, 403, nil, "permission_denied"},
		{"spoofed x-forwarded-method lower case", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"x-forwarded-method", "GET"}}, 403, nil, "permission_denied"},
		{"spoofed X-Forwarded-Uri twice", "GET", "/api/billing/invoices", "", fwdHdr{{"X-Forwarded-Uri", "/public/x"}, {"x-forwarded-uri", "/public/y"}}, 401, nil, "not_authenticated"},
		{"spoofed X-Forwarded-Uri with ; and \\", "GET", "/api/billing/invoices", "", fwdHdr{{"X-Forwarded-Uri", `/public/x;/..\..\api`}}, 401, nil, "not_authenticated"},
		{"spoofed X_Forwarded_Uri", "GET", "/api/billing/invoices", "", fwdHdr{{"X_Forwarded_Uri", "/public/x"}}, 0, nil, ""},
		{"spoofed X.Forwarded.Uri", "GET", "/api/billing/invoices", "", fwdHdr{{"X.Forwarded.Uri", "/public/x"}}, 0, nil, ""},
		{"spoofed x_forwarded_method", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"x_forwarded_method", "GET"}}, 403, nil, "permission_denied"},
		{"spoofed X-Forwarded-Host and -Proto", "GET", "/api/billing/invoices", "", fwdHdr{{"X-Forwarded-Host", "public.example"}, {"X-Forwarded-Proto", "https"}}, 401, nil, "not_authenticated"},
		{"spoofed X-Original-URI", "GET", "/api/billing/invoices", "", origPublic, 401, nil, "not_authenticated"},
		{"spoofed X-Original-URI twice", "GET", "/api/billing/invoices", "", fwdHdr{{"X-Original-URI", "/public/x"}, {"x-original-uri", "/public/y"}}, 401, nil, "not_authenticated"},
		{"spoofed X_Original_URI", "GET", "/api/billing/invoices", "", fwdHdr{{"X_Original_URI", "/public/x"}}, 401, nil, "not_authenticated"},
		{"spoofed X-Original-Method", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"X-Original-Method", "GET"}}, 403, nil, "permission_denied"},
		{"X-HTTP-Method-Override", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"X-HTTP-Method-Override", "GET"}}, 403, nil, "permission_denied"},
		{"spoofed identity, anonymous on required", "GET", "/api/billing/invoices", "", platformsSpoofedIdentity, 401, nil, "not_authenticated"},
		{"spoofed identity, forbidden", "GET", "/api/billing/invoices", p.bob, platformsSpoofedIdentity, 403, nil, "permission_denied"},
		{"two Authorization headers", "GET", "/api/billing/invoices", p.bob, fwdHdr{{"Authorization", "Bearer " + p.alice}}, 0, nil, ""},
		{"a list of credentials", "GET", "/api/billing/invoices", "", fwdHdr{{"Authorization", "Bearer " + p.bob + ", Bearer " + p.alice}}, 0, nil, ""},

		// Allowed requests stay allowed, with jwtgate's identity only.
		{"allowed despite spoofed X-Forwarded-* and X-Original-*", "GET", "/api/billing/invoices", p.alice, fwdWith(toPublic, origPublic), 200, alice, ""},
		{"Connection lists identity headers", "GET", "/api/billing/invoices", p.alice, fwdHdr{{"Connection", "X-User-Id, X-User-Email, X-User-Is-Staff"}}, 200, alice, ""},
		{"Connection lists X_User_Id and the token", "GET", "/api/billing/invoices", p.alice, fwdHdr{{"Connection", "keep-alive"}, {"connection", "X_User_Id, X-User-Token, x-user-username"}}, 200, alice, ""},
		{"Connection lists Authorization", "GET", "/api/billing/invoices", p.alice, fwdHdr{{"Connection", "Authorization"}}, 200, alice, ""},
		{"Connection lists Authorization, forbidden", "GET", "/api/billing/invoices", p.bob, fwdHdr{{"Connection", "Authorization"}}, 403, nil, "permission_denied"},
		{"allowed, spoofed identity replaced", "GET", "/api/billing/invoices", p.alice, platformsSpoofedIdentity, 200, alice, ""},
		{"staff, spoofed identity replaced", "GET", "/api/billing/invoices", p.carol, platformsSpoofedIdentity, 200, carol, ""},
		{"anonymous on optional, spoofed identity removed", "GET", "/feed/x", "", platformsSpoofedIdentity, 200, nil, ""},
		{"public, spoofed identity removed", "GET", "/public/x", "", fwdWith(platformsSpoofedIdentity, fwdHdr{{"X-Forwarded-Uri", "/api/billing/x"}}), 200, nil, ""},
	}
	platformsRunCaddy(t, addr, app, cases)

	// Request targets a client writes by hand: never a 200 unless the app
	// was asked for a public path.
	raw := []struct{ name, line string }{
		{"absolute-form", "GET http://" + addr + "/api/billing/invoices HTTP/1.1"},
		{"absolute-form, other host", "GET http://public.example/api/billing/invoices HTTP/1.1"},
		{"fragment", "GET /public/x#/../../api/billing/ HTTP/1.1"},
		{"encoded dot-dot", "GET /public/%2e%2e/api/billing/ HTTP/1.1"},
		{"backslash", `GET /public/..\api\billing\ HTTP/1.1`},
		{"semicolon", "GET /public/x;/../../api/billing/ HTTP/1.1"},
	}
	for _, rq := range raw {
		t.Run("raw "+rq.name, func(t *testing.T) {
			before := app.hits.Load()
			st := fwdRaw(t, addr, rq.line+"\r\nHost: "+addr+"\r\nX-Forwarded-Uri: /public/x\r\nConnection: close\r\n\r\n")
			t.Logf("%q: %d", rq.line, st)
			if app.hits.Load() == before {
				if st == http.StatusOK {
					t.Fatalf("200 for %q, but the app was not called", rq.line)
				}
				return
			}
			app.mu.Lock()
			last := app.paths[len(app.paths)-1]
			app.mu.Unlock()
			if st != http.StatusOK || !strings.HasPrefix(last, "/public/") || strings.Contains(last, "billing") {
				t.Fatalf("%q: status %d; the app saw %q", rq.line, st, last)
			}
		})
	}
}

// platformsUpgradeApp is an app that switches protocols on "Upgrade:
// jwtgate-test" and then writes the X-User-Id it saw, as a WebSocket
// server would answer the handshake.
func platformsUpgradeApp(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "jwtgate-test" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: jwtgate-test\r\n\r\nuser=%s\n", r.Header.Get("X-User-Id"))
		_ = rw.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Through Caddy with the README's snippet, a protocol upgrade (what a
// WebSocket handshake is) still works and the app sees the caller's
// identity, even when the client's Connection header names X-User-Id; an
// anonymous upgrade on a required route is refused.
func TestPlatformsCaddyUpgrade(t *testing.T) {
	e := startEdge(t, checkRoutes, "forward_auth: {headers: traefik}")
	p := e.people
	app := platformsUpgradeApp(t)
	addr := platformsStartCaddy(t, e.gw.URL, app.URL)
	handshake := func(token, connection string) (int, string) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		req := "GET /api/billing/socket HTTP/1.1\r\nHost: " + addr + "\r\nConnection: " + connection + "\r\nUpgrade: jwtgate-test\r\n"
		if token != "" {
			req += "Authorization: Bearer " + token + "\r\n"
		}
		if _, err := c.Write([]byte(req + "\r\n")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to the handshake: %v", err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return resp.StatusCode, ""
		}
		line, _ := br.ReadString('\n')
		return resp.StatusCode, strings.TrimSpace(line)
	}
	for _, connection := range []string{"Upgrade", "upgrade, X-User-Id", "X-User-Id, Upgrade, X_User_Id"} {
		if st, line := handshake(p.alice, connection); st != http.StatusSwitchingProtocols || line != "user="+p.aliceID {
			t.Fatalf("Connection: %s: status %d, app said %q, want 101 and user=%s", connection, st, line, p.aliceID)
		}
	}
	if st, line := handshake("", "Upgrade"); st != http.StatusUnauthorized {
		t.Fatalf("anonymous upgrade: status %d (%q), want 401", st, line)
	}
	if st, _ := handshake(p.bob, "Upgrade"); st != http.StatusForbidden {
		t.Fatalf("forbidden upgrade: status %d, want 403", st)
	}
}

// With forward_auth.headers left at auto, Caddy passes a client's
// X-Original-* on next to its own X-Forwarded-*: the gateway refuses such a
// request outright, so the spoof still never passes (but the client's
// request fails, which is why the README says traefik).
func TestPlatformsCaddyAutoModeRefusesBothFamilies(t *testing.T) {
	e := startEdge(t, checkRoutes)
	p := e.people
	app := startUpstream(t)
	addr := platformsStartCaddy(t, e.gw.URL, app.URL)
	cases := []platformsCaddyCase{
		{"allowed", "GET", "/api/billing/invoices", p.alice, nil, 200, &platformsWho{p.aliceID, "alice", false}, ""},
		{"spoofed X-Original-URI to a public path", "GET", "/api/billing/invoices", "", fwdHdr{{"X-Original-URI", "/public/x"}}, 403, nil, "permission_denied"},
		{"spoofed X-Original-Method", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"X-Original-Method", "GET"}}, 403, nil, "permission_denied"},
		{"spoofed x_original_uri", "GET", "/api/billing/invoices", "", fwdHdr{{"x_original_uri", "/public/x"}}, 403, nil, "permission_denied"},
		{"allowed request with a spoofed X-Original-URI", "GET", "/api/billing/invoices", p.alice, fwdHdr{{"X-Original-URI", "/api/billing/invoices"}}, 403, nil, "permission_denied"},
	}
	platformsRunCaddy(t, addr, app, cases)
}

// The README quotes the Caddy snippet the tests run, byte for byte.
func TestPlatformsReadmeQuotesCaddySnippet(t *testing.T) {
	snippet, err := os.ReadFile(platformsCaddySnippet)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, snippet) {
		t.Fatalf("README.md does not quote tests/%s verbatim", platformsCaddySnippet)
	}
}
