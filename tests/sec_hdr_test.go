package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// hdrRoutes: 127.0.0.3 is a trusted proxy, 127.0.0.1 and 127.0.0.2 are
// clients. Every route sends to the same upstream; /tenant/ has a rule that
// reads a request header.
const hdrRoutes = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
trusted_proxies: ["127.0.0.3/32"]
identity_token: {enabled: true, algorithm: ES256, key_file: "%KEY%"}
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
  - path: "/internal/"
    upstream: "%UPSTREAM%"
    forward_token: false
  - path: "/public/"
    upstream: "%UPSTREAM%"
    auth: none
  - path: "/tenant/"
    upstream: "%UPSTREAM%"
    allow: 'request.headers["x-tenant"] == user.tenant'
`

// hdrEnv is a gateway in front of one upstream, with alice (tenant acme)
// and nameless (no username, no email) and their tokens.
type hdrEnv struct {
	gw                *gateway
	addr              string // host:port of the gateway
	alice, aliceID    string
	nameless, namesID string
}

func hdrStart(t *testing.T, upstreamURL string) *hdrEnv {
	t.Helper()
	fa, id := newFake(t, fakeauth.Options{})
	alice, _ := fa.IssuePair(id)
	nu := fa.AddUser(fakeauth.User{Email: "", Username: "", Password: "pw", IsActive: true})
	nameless, _ := fa.IssuePair(nu.ID)
	yaml := fill(hdrRoutes, "KEY", filepath.Join(t.TempDir(), "identity.pem"))
	gw := startGateway(t, yaml, fa.URL(), upstreamURL, nil)
	return &hdrEnv{gw: gw, addr: strings.TrimPrefix(gw.URL, "http://"), alice: alice, aliceID: itoa(id), nameless: nameless, namesID: itoa(nu.ID)}
}

// hdrAnswer is one answer read off a raw connection.
type hdrAnswer struct {
	status int
	header http.Header
	body   []byte
}

// hdrRaw writes a hand-made request from a given loopback address and
// reads one answer; every step is bounded by a deadline.
func hdrRaw(t *testing.T, from, addr string, payload []byte) hdrAnswer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := conn.Write(payload); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return hdrAnswer{status: resp.StatusCode, header: resp.Header, body: b}
}

// hdrGet is a raw GET of path with a bearer token ("" for none) and the
// given header lines, written verbatim.
func hdrGet(path, token string, lines ...string) []byte {
	if token != "" {
		lines = append([]string{"Authorization: Bearer " + token}, lines...)
	}
	return rawRequest(http.MethodGet, path, lines, "")
}

// A client's Connection header names the headers the gateway adds; the
// upstream (a real one, over raw sockets) still gets every one of them, with
// the gateway's values: identity, identity token, the forwarded token,
// X-Request-Id, X-Forwarded-For/-Host/-Proto and a trusted proxy's X-Real-IP.
func TestSecHdrConnectionCannotStripGatewayHeaders(t *testing.T) {
	up := startUpstream(t)
	e := hdrStart(t, up.URL)
	all := "X-User-Id, X-User-Email, X-User-Username, X-User-Is-Staff, X-User-Is-Superuser, X-User-Token, " +
		"Authorization, X-Request-Id, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, X-Real-IP, Forwarded"
	tests := []struct {
		name, from, path string
		lines            []string
		trusted          bool
	}{
		{"identity listed", "127.0.0.1", "/api/x", []string{"Connection: X-User-Id, X-User-Email, X-User-Token"}, false},
		{"close then a name", "127.0.0.1", "/api/x", []string{"Connection: close, X-User-Id"}, false},
		{"two Connection headers", "127.0.0.1", "/api/x", []string{"Connection: keep-alive, X-User-Username", "Connection: X-User-Is-Staff, X-User-Is-Superuser"}, false},
		{"lower case", "127.0.0.1", "/api/x", []string{"connection: x-user-id, x-user-token, authorization, x-request-id"}, false},
		{"upper case", "127.0.0.1", "/api/x", []string{"CONNECTION: X-USER-ID, X-USER-EMAIL, AUTHORIZATION"}, false},
		{"Keep-Alive and Upgrade tokens", "127.0.0.1", "/api/x", []string{"Connection: Keep-Alive, Upgrade, X-Request-Id, X-User-Id", "Keep-Alive: timeout=5", "Upgrade: websocket"}, false},
		{"underscore names", "127.0.0.1", "/api/x", []string{"Connection: X_User_Id, X_User_Token, X_Request_Id, X.User.Email"}, false},
		{"empty and padded items", "127.0.0.1", "/api/x", []string{"Connection: ,X-User-Id ,  ,\tx-USER-email,,"}, false},
		{"everything the gateway adds", "127.0.0.1", "/api/x", []string{"Connection: " + all}, false},
		{"everything, forward_token false", "127.0.0.1", "/internal/x", []string{"Connection: " + all}, false},
		{"trusted proxy lists its own headers", "127.0.0.3", "/api/x", []string{
			"X-Forwarded-For: 203.0.113.7", "X-Real-IP: 203.0.113.7", "X-Forwarded-Host: shop.example", "X-Forwarded-Proto: https",
			"X-Forwarded-Port: 443", "X-Forwarded-Prefix: /shop",
			"Connection: " + all + ", X-Forwarded-Port", "Connection: x-forwarded-prefix",
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := hdrRaw(t, tt.from, e.addr, hdrGet(tt.path, e.alice, tt.lines...))
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			var ec echo
			if err := json.Unmarshal(a.body, &ec); err != nil {
				t.Fatalf("not the upstream's echo: %v: %s", err, a.body)
			}
			h := ec.Headers
			want := map[string]string{
				"X-User-Id": e.aliceID, "X-User-Email": "alice@example.com", "X-User-Username": "alice",
				"X-User-Is-Staff": "false", "X-User-Is-Superuser": "false",
				"X-Request-Id":      a.header.Get("X-Request-Id"),
				"X-Forwarded-For":   tt.from,
				"X-Forwarded-Host":  "gateway",
				"X-Forwarded-Proto": "http",
				"Authorization":     "Bearer " + e.alice,
			}
			if tt.trusted {
				want["X-Forwarded-For"] = "203.0.113.7, 127.0.0.3"
				want["X-Forwarded-Host"] = "shop.example"
				want["X-Forwarded-Proto"] = "https"
				want["X-Real-Ip"] = "203.0.113.7"
				want["X-Forwarded-Port"] = "443"
				want["X-Forwarded-Prefix"] = "/shop"
			}
			if tt.path == "/internal/x" {
				delete(want, "Authorization")
				if v, ok := h["Authorization"]; ok {
					t.Errorf("forward_token false, yet Authorization %q", v)
				}
			}
			for k, v := range want {
				if got := h.Values(k); len(got) != 1 || got[0] != v || v == "" {
					t.Errorf("upstream %s = %q, want [%q]", k, got, v)
				}
			}
			if got := h.Values("X-User-Token"); len(got) != 1 || strings.Count(got[0], ".") != 2 {
				t.Errorf("upstream X-User-Token = %q, want one signed token", got)
			}
			if !tt.trusted {
				if v, ok := h["X-Real-Ip"]; ok {
					t.Errorf("X-Real-IP %q from an untrusted client", v)
				}
			}
		})
	}
	// On an auth: none route the gateway's own headers survive too.
	a := hdrRaw(t, "127.0.0.1", e.addr, hdrGet("/public/x", "", "Connection: "+all))
	var ec echo
	if a.status != http.StatusOK || json.Unmarshal(a.body, &ec) != nil {
		t.Fatalf("public: %d %s", a.status, a.body)
	}
	if ec.Headers.Get("X-Request-Id") != a.header.Get("X-Request-Id") || ec.Headers.Get("X-Forwarded-For") != "127.0.0.1" || ec.Headers.Get("X-Forwarded-Proto") != "http" {
		t.Fatalf("public route lost the gateway's headers: %v", ec.Headers)
	}
}

// A rule never sees a header the client names in Connection (the upstream
// would not get it): X-Tenant listed in Connection is invisible to the rule.
func TestSecHdrRuleDoesNotSeeConnectionListedHeader(t *testing.T) {
	up := startUpstream(t)
	e := hdrStart(t, up.URL)
	before := up.hits.Load()
	a := hdrRaw(t, "127.0.0.1", e.addr, hdrGet("/tenant/x", e.alice, "X-Tenant: acme", "Connection: X-Tenant"))
	if a.status != http.StatusForbidden {
		t.Fatalf("status %d, want 403 (the rule must not approve on a header the upstream never gets): %s", a.status, a.body)
	}
	if up.hits.Load() != before {
		t.Fatal("the refused request reached the upstream")
	}
	if a := hdrRaw(t, "127.0.0.1", e.addr, hdrGet("/tenant/x", e.alice, "X-Tenant: acme")); a.status != http.StatusOK {
		t.Fatalf("plain X-Tenant: %d %s", a.status, a.body)
	}
}

// Forward-auth: the 200 answer's identity headers are the gateway's,
// whatever the check request names in Connection or spoofs; two spellings
// of one header are refused 403 (a proxy's auth hook knows only 2xx/401/403).
func TestSecHdrForwardAuthIdentity(t *testing.T) {
	up := startUpstream(t)
	e := hdrStart(t, up.URL)
	check := func(token string, lines ...string) hdrAnswer {
		t.Helper()
		base := []string{"X-Original-URI: /tenant/x", "X-Original-Method: GET"}
		return hdrRaw(t, "127.0.0.3", e.addr, hdrGet("/auth/check", token, append(base, lines...)...))
	}
	a := check(e.alice, "X-Tenant: acme", "Connection: X-User-Id, X-User-Email, X-User-Token, Authorization",
		"X-User-Id: 666", "X_User_Email: evil@example.com", "X.User.Token: forged")
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if a.header.Get("X-User-Id") != e.aliceID || a.header.Get("X-User-Email") != "alice@example.com" || strings.Count(a.header.Get("X-User-Token"), ".") != 2 {
		t.Fatalf("answer's identity: %v", a.header)
	}
	for _, tt := range []struct {
		name  string
		lines []string
	}{
		{"dash and underscore", []string{"X-Tenant: acme", "X_Tenant: globex"}},
		{"dash and dot", []string{"X-Tenant: acme", "X.Tenant: acme"}},
		{"underscore and dot", []string{"x_tenant: acme", "X.TENANT: acme"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := check(e.alice, tt.lines...)
			if a.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", a.status, a.body)
			}
			if a.header.Get("X-User-Id") != "" {
				t.Fatalf("a refusal carries identity: %v", a.header)
			}
		})
	}
}

// An identity header whose value is empty is left out, and the client's
// header of that name is still removed.
func TestSecHdrEmptyIdentityHeadersOmitted(t *testing.T) {
	up := startUpstream(t)
	e := hdrStart(t, up.URL)
	a := hdrRaw(t, "127.0.0.1", e.addr, hdrGet("/api/x", e.nameless, "X-User-Username: spoofed", "X_User_Email: spoofed"))
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var ec echo
	if err := json.Unmarshal(a.body, &ec); err != nil {
		t.Fatal(err)
	}
	ih := identityHeaders(ec.Headers)
	for _, k := range []string{"x-user-username", "x-user-email"} {
		if v, ok := ih[k]; ok {
			t.Errorf("%s sent as %q, want it left out", k, v)
		}
	}
	if v := ih["x-user-id"]; len(v) != 1 || v[0] != e.namesID {
		t.Errorf("x-user-id %q, want [%s]", v, e.namesID)
	}
	// The check answer leaves them out too (nginx then sets nothing).
	c := hdrRaw(t, "127.0.0.3", e.addr, hdrGet("/auth/check", e.nameless, "X-Original-URI: /api/x", "X-Original-Method: GET"))
	if c.status != http.StatusOK {
		t.Fatalf("check: %d %s", c.status, c.body)
	}
	if _, ok := c.header["X-User-Username"]; ok {
		t.Errorf("check answer has an empty X-User-Username")
	}
}

// hdrWSGI starts the WSGI echo app (tests/wsgiecho) under gunicorn on a
// free loopback port until the test ends and returns its URL.
func hdrWSGI(t *testing.T) string {
	t.Helper()
	const bin = "/usr/bin/gunicorn"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("gunicorn is not installed (tests/setup.sh installs it): %v", err)
	}
	dir, err := filepath.Abs("wsgiecho")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // a free port can be taken between probe and bind
		addr := freePort(t)
		var out bytes.Buffer
		cmd := exec.Command(bin, "--bind", addr, "--workers", "1", "--chdir", dir, "--log-level", "warning", "echo:app")
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start gunicorn: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			select {
			case err := <-exited:
				exited <- err
			default:
			}
			if len(exited) > 0 {
				break
			}
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				_ = c.Close()
				t.Cleanup(stop)
				return "http://" + addr
			}
		}
		if len(exited) == 0 {
			stop()
			t.Fatalf("gunicorn did not listen on %s within 20s: %s", addr, out.String())
		}
		<-exited
		if !strings.Contains(out.String(), "in use") {
			t.Fatalf("gunicorn exited: %s", out.String())
		}
	}
	t.Fatal("gunicorn: no free port after 3 attempts")
	return ""
}

// hdrWSGIEcho is what the WSGI app answers.
type hdrWSGIEcho struct {
	WSGI    bool              `json:"wsgi"`
	Environ map[string]string `json:"environ"`
}

// folded returns the environ with '.' read as '_' too, as some stacks do;
// two keys folding together are reported.
func (w hdrWSGIEcho) folded(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range w.Environ {
		f := strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(k))
		if prev, dup := out[f]; dup {
			t.Errorf("the upstream reads %s twice: %q and %q", f, prev, v)
		}
		out[f] = v
	}
	return out
}

// hdrAliases returns a header name in the spellings a WSGI upstream reads
// as the same variable: '_' and '.' for '-', mixed, in several cases.
func hdrAliases(name string) []string {
	under := strings.ReplaceAll(name, "-", "_")
	dot := strings.ReplaceAll(name, "-", ".")
	mixed := []byte(name)
	for i, n := 0, 0; i < len(mixed); i++ {
		if mixed[i] == '-' {
			mixed[i] = "_."[n%2]
			n++
		}
	}
	return []string{under, strings.ToLower(under), strings.ToUpper(under), dot, strings.ToLower(dot), string(mixed)}
}

// Every alias spelling of every header the gateway sets or interprets is
// removed before a WSGI upstream (real gunicorn) sees it; the gateway's own
// value arrives once. Clients are untrusted (127.0.0.1) and a trusted proxy
// (127.0.0.3), whose dash-spelled forwarded headers are kept.
func TestSecHdrAliasSpellingsToWSGI(t *testing.T) {
	wsgi := hdrWSGI(t)
	e := hdrStart(t, wsgi)
	owned := []string{
		"X-Real-IP", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port",
		"X-Forwarded-Prefix", "X-Forwarded-Uri", "X-Request-Id", "X-Original-URI", "X-User-Id", "X-User-Token",
		"X-User-Is-Staff", "X-Forwarded-Ssl",
	}
	for _, from := range []string{"127.0.0.1", "127.0.0.3"} {
		trusted := from == "127.0.0.3"
		for _, name := range owned {
			for _, alias := range hdrAliases(name) {
				t.Run(from+"/"+alias, func(t *testing.T) {
					lines := []string{alias + ": evil"}
					if trusted {
						lines = append(lines, "X-Forwarded-For: 203.0.113.7", "X-Real-IP: 203.0.113.7")
					}
					a := hdrRaw(t, from, e.addr, hdrGet("/api/x", e.alice, lines...))
					if a.status != http.StatusOK {
						t.Fatalf("status %d: %s", a.status, a.body)
					}
					var w hdrWSGIEcho
					if err := json.Unmarshal(a.body, &w); err != nil || !w.WSGI {
						t.Fatalf("not the WSGI echo: %v: %s", err, a.body)
					}
					env := w.folded(t)
					for k, v := range env {
						if strings.Contains(v, "evil") {
							t.Fatalf("%s: evil reached the upstream as %s=%q", alias, k, v)
						}
					}
					want := map[string]string{
						"HTTP_X_USER_ID": e.aliceID, "HTTP_X_REQUEST_ID": a.header.Get("X-Request-Id"),
						"HTTP_X_FORWARDED_FOR": from, "HTTP_X_FORWARDED_PROTO": "http", "HTTP_X_FORWARDED_HOST": "gateway",
					}
					if trusted {
						want["HTTP_X_FORWARDED_FOR"] = "203.0.113.7, 127.0.0.3"
						want["HTTP_X_REAL_IP"] = "203.0.113.7"
					} else if v, ok := env["HTTP_X_REAL_IP"]; ok {
						t.Errorf("X-Real-IP %q from an untrusted client", v)
					}
					for k, v := range want {
						if env[k] != v {
							t.Errorf("%s = %q, want %q", k, env[k], v)
						}
					}
				})
			}
		}
	}
	// Every alias of every owned header at once, with the dash spellings.
	lines := []string{"Forwarded: for=evil", "forwarded: host=evil"}
	for _, name := range owned {
		lines = append(lines, name+": evil")
		for _, alias := range hdrAliases(name) {
			lines = append(lines, alias+": evil")
		}
	}
	a := hdrRaw(t, "127.0.0.1", e.addr, hdrGet("/api/x", e.alice, lines...))
	if a.status != http.StatusOK || strings.Contains(string(a.body), "evil") {
		t.Fatalf("all at once: %d %s", a.status, a.body)
	}
}

// The token header (auth.header_name) is the gateway's too: with
// X-Api-Token, X_Api_Token and X.Api.Token never reach a WSGI upstream
// beside it (which one would it read?).
func TestSecHdrTokenHeaderAliasesToWSGI(t *testing.T) {
	wsgi := hdrWSGI(t)
	fa, id := newFake(t, fakeauth.Options{})
	access, _ := fa.IssuePair(id)
	gw := startGateway(t, `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
auth: {header_name: X-Api-Token, header_types: []}
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
`, fa.URL(), wsgi, nil)
	addr := strings.TrimPrefix(gw.URL, "http://")
	for _, alias := range hdrAliases("X-Api-Token") {
		t.Run(alias, func(t *testing.T) {
			a := hdrRaw(t, "127.0.0.1", addr, rawRequest(http.MethodGet, "/api/x", []string{"X-Api-Token: " + access, alias + ": evil"}, ""))
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			var w hdrWSGIEcho
			if err := json.Unmarshal(a.body, &w); err != nil {
				t.Fatal(err)
			}
			if got := w.folded(t)["HTTP_X_API_TOKEN"]; got != access {
				t.Fatalf("HTTP_X_API_TOKEN = %q, want the token the gateway checked", got)
			}
		})
	}
	// The alias alone is not a credential, and does not reach the upstream.
	a := hdrRaw(t, "127.0.0.1", addr, rawRequest(http.MethodGet, "/api/x", []string{"X_Api_Token: " + access}, ""))
	if a.status != http.StatusUnauthorized {
		t.Fatalf("alias alone: %d %s", a.status, a.body)
	}
}

// A rule reading request.headers["x-tenant"] and a WSGI upstream never
// disagree: two spellings of one header are refused 400 bad_request on
// every route, and on the rule's route a lone '_' or '.' spelling is
// neither seen by the rule nor forwarded.
func TestSecHdrRuleHeaderSpellingsWSGI(t *testing.T) {
	wsgi := hdrWSGI(t)
	e := hdrStart(t, wsgi)
	tests := []struct {
		name, path string
		lines      []string
		want       int
		wantTenant string // HTTP_X_TENANT the upstream reads on a 200; "" = none
	}{
		{"dash spelling", "/tenant/x", []string{"X-Tenant: acme"}, 200, "acme"},
		{"lower case", "/tenant/x", []string{"x-tenant: acme"}, 200, "acme"},
		{"other tenant", "/tenant/x", []string{"X-Tenant: globex"}, 403, ""},
		{"underscore alone", "/tenant/x", []string{"X_Tenant: acme"}, 403, ""},
		{"dot alone", "/tenant/x", []string{"X.Tenant: acme"}, 403, ""},
		{"dash acme, underscore globex", "/tenant/x", []string{"X-Tenant: acme", "X_Tenant: globex"}, 400, ""},
		{"underscore globex, dash acme", "/tenant/x", []string{"X_Tenant: globex", "X-Tenant: acme"}, 400, ""},
		{"dash and dot, same value", "/tenant/x", []string{"X-Tenant: acme", "X.Tenant: acme"}, 400, ""},
		{"underscore and dot", "/tenant/x", []string{"X_TENANT: acme", "x.tenant: acme"}, 400, ""},
		{"two on a route without a rule", "/api/x", []string{"X-Tenant: acme", "X_Tenant: globex"}, 400, ""},
		{"two on an auth none route", "/public/x", []string{"X-Tenant: acme", "X_tenant: globex"}, 400, ""},
		{"repeated dash spelling", "/tenant/x", []string{"X-Tenant: acme", "X-Tenant: globex"}, 403, ""},
		{"underscore alone, no rule", "/api/x", []string{"X_Tenant: acme"}, 200, "acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := hdrRaw(t, "127.0.0.1", e.addr, hdrGet(tt.path, e.alice, tt.lines...))
			if a.status != tt.want {
				t.Fatalf("status %d, want %d: %s", a.status, tt.want, a.body)
			}
			var w hdrWSGIEcho
			_ = json.Unmarshal(a.body, &w)
			if tt.want != 200 {
				if w.WSGI {
					t.Fatal("the refused request reached the upstream")
				}
				if tt.want == 400 {
					var m map[string]string
					if err := json.Unmarshal(a.body, &m); err != nil || m["code"] != "bad_request" || m["detail"] == "" {
						t.Fatalf("400 body %s, want our JSON error with code bad_request", a.body)
					}
				}
				return
			}
			env := w.folded(t)
			if env["HTTP_X_TENANT"] != tt.wantTenant {
				t.Fatalf("HTTP_X_TENANT = %q, want %q", env["HTTP_X_TENANT"], tt.wantTenant)
			}
		})
	}
}
