// Package tests holds black-box tests of the wired gateway: real HTTP on
// loopback, a real SQLite file, the Go fake auth service (tests/fakeauth)
// and the real Django SimpleJWT service (tests/djangoauth).
package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"jwtgate/handlers"
	"jwtgate/models"
	"jwtgate/tests/fakeauth"
)

// clock is a settable clock shared by the gateway and the fake auth service.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// logBuffer collects the gateway's log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// upstream is a loopback API that echoes what it received.
type upstream struct {
	*httptest.Server
	hits  atomic.Int64
	mu    sync.Mutex
	last  *http.Request
	paths []string // every request's path, in order
}

// sawPath reports whether any request's path so far contains s.
func (u *upstream) sawPath(s string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range u.paths {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}

// echo is what the upstream answers: the request as it arrived.
type echo struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Headers http.Header `json:"headers"`
}

func startUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.last = r.Clone(r.Context())
		u.paths = append(u.paths, r.URL.Path)
		u.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Headers: r.Header})
	}))
	t.Cleanup(u.Close)
	return u
}

// gateway is a wired jwtgate served on a loopback socket.
type gateway struct {
	URL   string
	GW    *handlers.Gateway
	Logs  *logBuffer
	DBDSN string
}

// gatewayConfig is settings.yaml for a test; %AUTH%, %UPSTREAM% and %DB% are filled in.
const baseConfig = `
listen: "127.0.0.1:0"
auth_service:
  url: "%AUTH%"
  timeout: 500ms
database:
  driver: sqlite
  dsn: "%DB%"
log:
  level: debug
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
  - path: "/api/billing/"
    upstream: "%UPSTREAM%"
    allow: '"billing" in user.services || user.is_staff'
`

// startGateway wires a gateway from yaml (baseConfig when empty) against
// authURL and upstreamURL, with a fresh SQLite file, and serves it.
func startGateway(t testing.TB, yaml, authURL, upstreamURL string, now func() time.Time) *gateway {
	t.Helper()
	return startGatewayOpts(t, yaml, authURL, upstreamURL, handlers.Options{Now: now})
}

// startGatewayOpts is startGateway with the gateway's options.
func startGatewayOpts(t testing.TB, yaml, authURL, upstreamURL string, opt handlers.Options) *gateway {
	t.Helper()
	return startGatewayLevel(t, slog.LevelDebug, yaml, authURL, upstreamURL, opt)
}

// startGatewayAt is startGateway logging at level (the benchmarks use
// warn, as the load benchmark's gateways do: no access log line).
func startGatewayAt(t testing.TB, level slog.Level, yaml, authURL, upstreamURL string, now func() time.Time) *gateway {
	t.Helper()
	return startGatewayLevel(t, level, yaml, authURL, upstreamURL, handlers.Options{Now: now})
}

// startGatewayLevel is startGatewayOpts logging at level.
func startGatewayLevel(t testing.TB, level slog.Level, yaml, authURL, upstreamURL string, opt handlers.Options) *gateway {
	t.Helper()
	if yaml == "" {
		yaml = baseConfig
	}
	db := filepath.Join(t.TempDir(), "jwtgate.db")
	yaml = strings.NewReplacer("%AUTH%", authURL, "%UPSTREAM%", upstreamURL, "%DB%", db).Replace(yaml)
	s, err := models.LoadSettings(strings.NewReader(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	gw, err := handlers.NewGateway(t.Context(), settingsRuntime(t, s), log, opt)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	srv := httptest.NewServer(gw.Handler)
	t.Cleanup(func() {
		srv.Close()
		if err := gw.Close(); err != nil {
			t.Errorf("close gateway: %v", err)
		}
	})
	return &gateway{URL: srv.URL, GW: gw, Logs: logs, DBDSN: db}
}

// reply is an HTTP answer read whole.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

func (r reply) echo(t testing.TB) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("upstream echo: %v: %s", err, r.Body)
	}
	return e
}

var httpClient = &http.Client{Timeout: 15 * time.Second}

// call sends a request; hdr is a list of name, value pairs.
func call(t testing.TB, method, url, contentType, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// get calls an API path with a bearer token ("" for none).
func get(t testing.TB, url, token string, hdr ...string) reply {
	t.Helper()
	if token != "" {
		hdr = append(hdr, "Authorization", "Bearer "+token)
	}
	return call(t, http.MethodGet, url, "", "", hdr...)
}

// login posts credentials as JSON and returns the answer.
func login(t testing.TB, gatewayURL, email, password string) reply {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return call(t, http.MethodPost, gatewayURL+"/auth/token/", "application/json", string(body))
}

// tokens returns the access and refresh tokens of a successful login.
func tokens(t testing.TB, r reply) (access, refresh string) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("login: status %d: %s", r.Status, r.Body)
	}
	m := r.json(t)
	access, _ = m["access"].(string)
	refresh, _ = m["refresh"].(string)
	if access == "" {
		t.Fatalf("login: no access token: %s", r.Body)
	}
	return access, refresh
}

// wantError asserts one of our JSON errors.
func wantError(t testing.TB, r reply, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	m := r.json(t)
	if m["code"] != code {
		t.Fatalf("code %v, want %q; body %s", m["code"], code, r.Body)
	}
	if d, _ := m["detail"].(string); d == "" {
		t.Fatalf("no detail in %s", r.Body)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without WWW-Authenticate: Bearer; headers %v", r.Header)
	}
}

// newFake starts the Go fake auth service with one user, alice (services
// billing), and returns it with alice's id.
func newFake(t testing.TB, opt fakeauth.Options) (*fakeauth.Server, int64) {
	t.Helper()
	fa := fakeauth.Start(t, opt)
	u := fa.AddUser(fakeauth.User{
		Email: "alice@example.com", Username: "alice", Password: "alice-pw",
		FirstName: "Alice", Extra: map[string]any{"services": []string{"billing"}, "tenant": "acme"},
	})
	return fa, u.ID
}

// parallel runs f n times at once and waits, bounded by the test's deadline.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}
