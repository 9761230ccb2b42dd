package tests

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fwdNginxBin is where tests/setup.sh installs nginx.
const fwdNginxBin = "/usr/sbin/nginx"

// fwdStartNginx runs nginx with the forward-auth snippet at snippet in
// front of the gateway at gwURL and the app at appURL; serverExtra goes
// into the server {} block. It returns nginx's address.
func fwdStartNginx(t *testing.T, gwURL, appURL, snippet, serverExtra string) string {
	t.Helper()
	if _, err := os.Stat(fwdNginxBin); err != nil {
		t.Fatalf("nginx is not installed (tests/setup.sh installs it): %v", err)
	}
	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must reach the temp dirs in t.TempDir()
	}
	return startNginx(t, fwdNginxBin, dir, func(addr string) string {
		return fmt.Sprintf(`daemon off;
%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    upstream jwtgate { server %[3]s; }
    upstream app { server %[4]s; }
    server {
        listen %[5]s;
        %[7]s
        include %[6]s;
    }
}
`, user, dir, strings.TrimPrefix(gwURL, "http://"), strings.TrimPrefix(appURL, "http://"), addr, snippet, serverExtra)
	})
}

// fwdOldSnippet writes the README snippet without the lines that blank
// X-Forwarded-* (the snippet as it was before), and returns its path.
func fwdOldSnippet(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(edgeNginxSnippet)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `proxy_set_header X-Forwarded-`) || strings.HasPrefix(strings.TrimSpace(l), "# An empty value") || strings.HasPrefix(strings.TrimSpace(l), "# never reach") {
			continue
		}
		keep = append(keep, l)
	}
	old := strings.Join(keep, "\n")
	if strings.Contains(old, "X-Forwarded-") {
		t.Fatalf("old snippet still mentions X-Forwarded-:\n%s", old)
	}
	p := filepath.Join(t.TempDir(), "old-forward-auth.conf")
	if err := os.WriteFile(p, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fwdRaw sends a raw HTTP/1.1 request to addr and returns the status code
// of the answer (0 when none came within 10s).
func fwdRaw(t *testing.T, addr, request string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// fwdNginxCase is one request through nginx: who sends it, where to, the
// client's own (spoofed) headers, and what the client must get.
type fwdNginxCase struct {
	name, method, path, token string
	hdr                       fwdHdr
	want                      int    // 0: anything but 200
	wantID                    string // on 200: the identity the app sees ("" anonymous)
}

// fwdRunNginx sends each case through nginx at addr and checks that a
// refused request never reaches the app.
func fwdRunNginx(t *testing.T, addr string, app *upstream, cases []fwdNginxCase) {
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
					t.Fatal("nginx passed a refused request to the app")
				}
				return
			}
			ec := r.echo(t)
			if ec.Path != strings.SplitN(tc.path, "?", 2)[0] {
				t.Fatalf("app saw path %q, want %q", ec.Path, tc.path)
			}
			if got := ec.Headers.Get("X-User-Id"); got != tc.wantID {
				t.Fatalf("app saw X-User-Id %q, want %q", got, tc.wantID)
			}
		})
	}
}

// Through a real nginx with the README's snippet (gateway in auto mode):
// a client's own X-Forwarded-* (and X-Original-*, in any spelling, twice)
// never change the decision: nginx does not send the blanked family, so
// the request is decided on the URI and method nginx saw.
func TestSecFwdThroughNginxReadmeSnippet(t *testing.T) {
	e := startEdge(t, checkRoutes)
	p := e.people
	app := startUpstream(t)
	snippet, err := filepath.Abs(edgeNginxSnippet)
	if err != nil {
		t.Fatal(err)
	}
	addr := fwdStartNginx(t, e.gw.URL, app.URL, snippet, "")
	toPublic := fwdHdr{{"X-Forwarded-Uri", "/public/x"}, {"X-Forwarded-Method", "GET"}}
	cases := []fwdNginxCase{
		{"spoofed X-Forwarded-Uri to a public path", "GET", "/api/billing/invoices", "", toPublic, http.StatusUnauthorized, ""},
		{"spoofed X-Forwarded-Uri to another route", "GET", "/api/billing/invoices", p.bob, fwdHdr{{"X-Forwarded-Uri", "/api/reports/x"}}, http.StatusForbidden, ""},
		{"spoofed X-Forwarded-Uri on no route", "GET", "/nowhere/x", p.carol, fwdHdr{{"X-Forwarded-Uri", "/api/x"}}, http.StatusForbidden, ""},
		{"spoofed X-Forwarded-Method", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"X-Forwarded-Method", "GET"}}, http.StatusForbidden, ""},
		{"spoofed lower-case x-forwarded-uri", "GET", "/api/billing/invoices", "", fwdHdr{{"x-forwarded-uri", "/public/x"}}, http.StatusUnauthorized, ""},
		{"spoofed X_Forwarded_Uri", "GET", "/api/billing/invoices", "", fwdHdr{{"X_Forwarded_Uri", "/public/x"}}, http.StatusUnauthorized, ""},
		{"spoofed X.Forwarded.Uri", "GET", "/api/billing/invoices", "", fwdHdr{{"X.Forwarded.Uri", "/public/x"}}, http.StatusUnauthorized, ""},
		{"spoofed X-Forwarded-Uri twice", "GET", "/api/billing/invoices", "", fwdHdr{{"X-Forwarded-Uri", "/public/x"}, {"X-Forwarded-Uri", "/public/y"}}, http.StatusUnauthorized, ""},
		{"spoofed X-Original-URI", "GET", "/api/billing/invoices", "", fwdHdr{{"X-Original-URI", "/public/x"}}, http.StatusUnauthorized, ""},
		{"spoofed X-Original-URI twice", "GET", "/api/billing/invoices", "", fwdHdr{{"X-Original-URI", "/public/x"}, {"x-original-uri", "/public/y"}}, http.StatusUnauthorized, ""},
		{"spoofed X_Original_URI", "GET", "/api/billing/invoices", "", fwdHdr{{"X_Original_URI", "/public/x"}}, http.StatusUnauthorized, ""},
		{"spoofed X-Original-Method", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"X-Original-Method", "GET"}}, http.StatusForbidden, ""},
		{"X-HTTP-Method-Override", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"X-HTTP-Method-Override", "GET"}}, http.StatusForbidden, ""},
		{"spoofed X-Forwarded-Host and -Proto", "GET", "/api/billing/invoices", "", fwdHdr{{"X-Forwarded-Host", "public.example"}, {"X-Forwarded-Proto", "https"}}, http.StatusUnauthorized, ""},
		{"two Authorization headers", "GET", "/api/billing/invoices", p.bob, fwdHdr{{"Authorization", "Bearer " + p.alice}}, 0, ""},
		{"a list of credentials", "GET", "/api/billing/invoices", "", fwdHdr{{"Authorization", "Bearer " + p.bob + ", Bearer " + p.alice}}, 0, ""},
		// Allowed requests stay allowed with the spoof: proof that nginx
		// sent no X-Forwarded-* at all (auto would refuse both families).
		{"allowed despite a spoofed X-Forwarded-Uri", "GET", "/api/billing/invoices", p.alice, toPublic, http.StatusOK, p.aliceID},
		{"allowed despite spoofed X-Forwarded-Host, empty -Proto", "GET", "/api/billing/invoices", p.alice, fwdHdr{{"X-Forwarded-Host", "x"}, {"X-Forwarded-Proto", ""}}, http.StatusOK, p.aliceID},
		{"public despite a spoofed X-Forwarded-Uri to billing", "GET", "/public/x", "", fwdHdr{{"X-Forwarded-Uri", "/api/billing/x"}}, http.StatusOK, ""},
	}
	fwdRunNginx(t, addr, app, cases)

	// Request targets a client writes by hand.
	raw := []struct{ name, line string }{
		{"absolute-form", "GET http://" + addr + "/api/billing/invoices HTTP/1.1"},
		{"absolute-form, other host", "GET http://public.example/api/billing/invoices HTTP/1.1"},
		{"fragment", "GET /public/x#/../../api/billing/ HTTP/1.1"},
		{"encoded dot-dot", "GET /public/%2e%2e/api/billing/ HTTP/1.1"},
	}
	for _, rq := range raw {
		t.Run("raw "+rq.name, func(t *testing.T) {
			before := app.hits.Load()
			st := fwdRaw(t, addr, rq.line+"\r\nHost: "+addr+"\r\nX-Forwarded-Uri: /public/x\r\nConnection: close\r\n\r\n")
			t.Logf("%q: %d", rq.line, st)
			if st == http.StatusOK {
				// Allowed only if the app was asked for a public path.
				if !app.sawPath("/public/") || app.hits.Load() != before+1 {
					t.Fatalf("200 for %q", rq.line)
				}
				app.mu.Lock()
				last := app.paths[len(app.paths)-1]
				app.mu.Unlock()
				if !strings.HasPrefix(last, "/public/") || strings.Contains(last, "billing") {
					t.Fatalf("200 for %q; the app saw %q", rq.line, last)
				}
				return
			}
			if app.hits.Load() != before {
				t.Fatalf("%q: status %d, but the app was called", rq.line, st)
			}
		})
	}
}

// Through a real nginx with the old snippet (X-Forwarded-* not blanked)
// and underscores and dots in header names let through: in auto mode the
// gateway refuses every request carrying the client's X-Forwarded-* (any
// spelling); with forward_auth.headers: nginx it decides on the real URI.
func TestSecFwdThroughNginxOldSnippet(t *testing.T) {
	lenient := "underscores_in_headers on; ignore_invalid_headers off;"
	toPublic := fwdHdr{{"X-Forwarded-Uri", "/public/x"}, {"X-Forwarded-Method", "GET"}}
	for _, mode := range []string{"auto", "nginx"} {
		t.Run(mode, func(t *testing.T) {
			e := startEdge(t, checkRoutes, "forward_auth: {headers: "+mode+"}")
			p := e.people
			app := startUpstream(t)
			addr := fwdStartNginx(t, e.gw.URL, app.URL, fwdOldSnippet(t), lenient)
			// What auto refuses outright, nginx mode decides on the real URI.
			refusedOr := func(status int) int {
				if mode == "auto" {
					return http.StatusForbidden
				}
				return status
			}
			allowedID := func(id string) string {
				if mode == "auto" {
					return ""
				}
				return id
			}
			cases := []fwdNginxCase{
				{"spoofed X-Forwarded-Uri to a public path", "GET", "/api/billing/invoices", "", toPublic, refusedOr(http.StatusUnauthorized), ""},
				{"spoofed X-Forwarded-Uri to another route", "GET", "/api/billing/invoices", p.bob, fwdHdr{{"X-Forwarded-Uri", "/api/reports/x"}}, http.StatusForbidden, ""},
				{"spoofed X-Forwarded-Method", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"X-Forwarded-Method", "GET"}}, http.StatusForbidden, ""},
				{"spoofed X_Forwarded_Uri", "GET", "/api/billing/invoices", "", fwdHdr{{"X_Forwarded_Uri", "/public/x"}}, refusedOr(http.StatusUnauthorized), ""},
				{"spoofed X.Forwarded.Uri", "GET", "/api/billing/invoices", "", fwdHdr{{"X.Forwarded.Uri", "/public/x"}}, refusedOr(http.StatusUnauthorized), ""},
				{"spoofed x_forwarded_method", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"x_forwarded_method", "GET"}}, http.StatusForbidden, ""},
				{"spoofed X_Original_URI", "GET", "/api/billing/invoices", "", fwdHdr{{"X_Original_URI", "/public/x"}}, http.StatusForbidden, ""},
				{"spoofed X.Original.Method", "DELETE", "/api/reports/x", p.bob, fwdHdr{{"X.Original.Method", "GET"}}, http.StatusForbidden, ""},
				{"spoofed X-Forwarded-Host", "GET", "/public/x", "", fwdHdr{{"X-Forwarded-Host", "x"}}, refusedOr(http.StatusOK), ""},
				{"allowed request with a spoofed X-Forwarded-Uri", "GET", "/api/billing/invoices", p.alice, toPublic, refusedOr(http.StatusOK), allowedID(p.aliceID)},
				{"allowed request without spoofing", "GET", "/api/billing/invoices", p.alice, nil, http.StatusOK, p.aliceID},
			}
			fwdRunNginx(t, addr, app, cases)
		})
	}
}
