package tests

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkRoutes: the gateway decides for a proxy in front of it (127.0.0.1,
// where the test client and nginx connect from); 127.0.0.2 is a stranger.
const checkRoutes = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
trusted_proxies: ["127.0.0.1"]
routes:
  - path: "/api/"
    upstream: "%API%"
  - path: "/api/billing/"
    name: billing
    upstream: "%API%"
    allow: '"billing" in user.services || user.is_staff'
    identity_headers: {fields: [services]}
  - path: "/api/reports/"
    upstream: "%API%"
    methods: [GET]
  - path: "/public/"
    upstream: "%API%"
    auth: none
  - path: "/feed/"
    upstream: "%API%"
    auth: optional
`

func TestEdgeForwardAuthCheck(t *testing.T) {
	e := startEdge(t, checkRoutes)
	p := e.people
	check := func(from, token string, hdr map[string]string) reply {
		t.Helper()
		var c *http.Client
		if from != "" {
			c = clientFrom(t, from)
		}
		return do(t, c, http.MethodGet, e.gw.URL+"/auth/check", token, hdr)
	}
	orig := func(method, uri string) map[string]string {
		return map[string]string{"X-Original-Method": method, "X-Original-URI": uri}
	}
	fwd := func(method, uri string) map[string]string {
		return map[string]string{"X-Forwarded-Method": method, "X-Forwarded-Uri": uri}
	}
	tests := []struct {
		name, from, token string
		hdr               map[string]string
		want              int
		wantID            string
	}{
		{"allowed (nginx headers)", "", p.alice, orig("GET", "/api/billing/invoices?x=1"), 200, p.aliceID},
		{"allowed (Traefik headers)", "", p.alice, fwd("POST", "/api/billing/invoices"), 200, p.aliceID},
		{"staff allowed", "", p.carol, orig("GET", "/api/billing/"), 200, p.carolID},
		{"forbidden", "", p.bob, orig("GET", "/api/billing/invoices"), 403, ""},
		{"forbidden via dot-dot", "", p.bob, orig("GET", "/api/reports/../billing/"), 403, ""},
		{"forbidden via encoded dot-dot", "", p.bob, fwd("GET", "/api/reports/%2e%2e/billing/"), 403, ""},
		{"anonymous on required", "", "", orig("GET", "/api/billing/invoices"), 401, ""},
		{"bad token", "", "not.a.jwt", orig("GET", "/api/x"), 401, ""},
		{"anonymous on optional", "", "", orig("GET", "/feed/x"), 200, ""},
		{"token on optional", "", p.bob, orig("GET", "/feed/x"), 200, p.bobID},
		{"auth none", "", "not.a.jwt", orig("GET", "/public/x"), 200, ""},
		{"no route covers the path", "", p.carol, orig("GET", "/nowhere/"), 403, ""},
		{"method not allowed on route", "", p.bob, orig("DELETE", "/api/reports/x"), 403, ""},
		{"no URI", "", p.alice, map[string]string{"X-Original-Method": "GET"}, 403, ""},
		{"untrusted peer", "127.0.0.2", p.alice, orig("GET", "/api/billing/invoices"), 403, ""},
		{"untrusted peer, public path", "127.0.0.2", "", orig("GET", "/public/x"), 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A spoofed identity on the check request must never be echoed back.
			hdr := map[string]string{"X-User-Id": "666", "X_User_Email": "evil@example.com"}
			for k, v := range tt.hdr {
				hdr[k] = v
			}
			r := check(tt.from, tt.token, hdr)
			switch tt.want {
			case 200:
				if r.Status != 200 {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
			case 401:
				code := "token_not_valid"
				if tt.token == "" {
					code = "not_authenticated"
				}
				wantError(t, r, 401, code)
			case 403:
				wantError(t, r, 403, "permission_denied")
			}
			if got := r.Header.Get("X-User-Id"); got != tt.wantID {
				t.Fatalf("X-User-Id %q, want %q", got, tt.wantID)
			}
			if tt.wantID == p.aliceID && r.Header.Get("X-User-Services") != `["billing"]` {
				t.Fatalf("X-User-Services %q", r.Header.Get("X-User-Services"))
			}
		})
	}
	if h := e.hits(); h != [4]int64{} {
		t.Fatalf("forward-auth forwarded requests upstream: %v", h)
	}
	// Any method reaches /auth/check (nginx's subrequest may use the original one).
	for _, m := range []string{http.MethodPost, http.MethodDelete, http.MethodHead} {
		r := callReq(t, nil, mustReq(t, m, e.gw.URL+"/auth/check"), "", "", map[string]string{"X-Original-URI": "/public/", "X-Original-Method": m})
		if r.Status != 200 {
			t.Fatalf("%s /auth/check: %d", m, r.Status)
		}
	}
}

// edgeNginxSnippet is the forward-auth snippet README quotes.
const edgeNginxSnippet = "nginx/forward-auth.conf"

// The README quotes the nginx snippet the test runs, byte for byte.
func TestEdgeReadmeQuotesNginxSnippet(t *testing.T) {
	snippet, err := os.ReadFile(edgeNginxSnippet)
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{"../README.md"}
	if _, err := os.Stat("../docs-edge.md"); err == nil {
		docs = append(docs, "../docs-edge.md") // the section until it is merged into README.md
	}
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, snippet) {
			return
		}
	}
	t.Fatalf("no README quotes tests/%s verbatim (looked in %v)", edgeNginxSnippet, docs)
}

// Forward-auth through a real nginx: auth_request to the gateway,
// proxy_pass to a loopback app, with the README's snippet.
func TestEdgeForwardAuthThroughNginx(t *testing.T) {
	e := startEdge(t, checkRoutes)
	p := e.people
	app := startUpstream(t)
	snippet, err := filepath.Abs(edgeNginxSnippet)
	if err != nil {
		t.Fatal(err)
	}
	listen := fwdStartNginx(t, e.gw.URL, app.URL, snippet, "")
	base := "http://" + listen

	spoof := map[string]string{"X-User-Id": "666", "x-user-email": "evil@example.com", "X_User_Id": "666", "X.User.Id": "666", "X-User-Token": "forged"}
	tests := []struct {
		name, path, token string
		want              int
		wantID            string
	}{
		{"allowed", "/api/billing/invoices", p.alice, 200, p.aliceID},
		{"staff allowed", "/api/billing/invoices", p.carol, 200, p.carolID},
		{"forbidden", "/api/billing/invoices", p.bob, 403, ""},
		{"forbidden via dot-dot", "/api/reports/%2e%2e/billing/", p.bob, 403, ""},
		{"anonymous on required", "/api/billing/invoices", "", 401, ""},
		{"anonymous on optional", "/feed/x", "", 200, ""},
		{"public", "/public/x", "", 200, ""},
		{"no route", "/nowhere", p.carol, 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := app.hits.Load()
			r := do(t, nil, http.MethodGet, base+tt.path, tt.token, spoof)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.want, r.Body)
			}
			if tt.want == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without the gateway's WWW-Authenticate: %v", r.Header)
			}
			if tt.want != 200 {
				if app.hits.Load() != before {
					t.Fatal("nginx passed a refused request to the app")
				}
				return
			}
			h := r.echo(t).Headers
			ih := identityHeaders(h)
			if tt.wantID == "" && len(ih) != 0 {
				t.Fatalf("anonymous request reached the app with identity %v", ih)
			}
			if tt.wantID != "" && (len(ih["x-user-id"]) != 1 || ih["x-user-id"][0] != tt.wantID) {
				t.Fatalf("app saw x-user-id %v, want [%s] (all: %v)", ih["x-user-id"], tt.wantID, ih)
			}
			if got := h.Get("Authorization"); tt.token != "" && got != "Bearer "+tt.token {
				t.Fatalf("Authorization %q not passed on", got)
			}
			for _, vals := range ih {
				for _, v := range vals {
					if v == "666" || v == "evil@example.com" || v == "forged" {
						t.Fatalf("a spoofed identity reached the app: %v", ih)
					}
				}
			}
		})
	}
}

// startNginx writes the config conf(addr) into dir and runs nginx on a free
// loopback port until the test ends; it returns the address.
func startNginx(t *testing.T, bin, dir string, conf func(addr string) string) string {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		addr := freePort(t)
		cfg := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(cfg, []byte(conf(addr)), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(bin, "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log"))
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start nginx: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case err := <-exited:
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				if strings.Contains(string(log), "Address already in use") {
					goto retry
				}
				t.Fatalf("nginx exited: %v\n%s\n%s", err, out.String(), log)
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				_ = c.Close()
				t.Cleanup(func() {
					_ = cmd.Process.Signal(syscall.SIGQUIT)
					select {
					case <-exited:
					case <-time.After(10 * time.Second):
						_ = cmd.Process.Kill()
						<-exited
					}
				})
				return addr
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("nginx did not listen on %s within 10s: %s", addr, out.String())
	retry:
	}
	t.Fatal(errors.New("nginx: no free port after 3 attempts"))
	return ""
}
