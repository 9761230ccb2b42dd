package tests

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// pathsConfig: open routes, so that only the path decides. /api/billing/
// has its own upstream next to the /api/ catch-all; /legacy/ opts out of
// the path refusal.
const pathsConfig = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
trusted_proxies: ["127.0.0.1"]
routes:
  - path: "/api/"
    upstream: "%API%"
    auth: none
  - path: "/api/billing/"
    name: billing
    upstream: "%BILLING%"
    auth: none
  - path: "/legacy/"
    upstream: "%LEGACY%"
    auth: none
    allow_unusual_paths: true
`

// pathsUnusual are path tails that Tomcat, Spring, IIS, Windows or a
// double-decoding upstream resolve differently from the gateway, written
// as a client sends them on the request line.
var pathsUnusual = []string{
	"..;/reports/x",
	".;/x",
	"..;jsessionid=x/reports/x",
	"x/..;/..;/reports/x",
	"%2e%2e;/reports/x",
	"%2E%2e;x=1/reports/x",
	".%2e;/reports/x",
	`..\reports\x`,
	`x\..\..\reports`,
	"..%5Creports/x",
	"..%5creports/x",
	"%5C",
	"%00/x",
	"x%00.json",
	"%0a",
	"%0d%0aX-Injected:%201",
	"%09",
	"%7f",
	"%1b%5b31m",
	"%c2%85", // NEL, a C1 control
	"..%20/reports/x",
	".../x",
	"%252e%252e/reports/x",
	"%252E%252E%253B/reports/x",
	"..%255creports/x",
	"%2500",
	"%2525252e%2525252e/x",
	"%E2%80%A4%E2%80%A4/reports/x", // U+2024 ONE DOT LEADER
	"%EF%BC%8E%EF%BC%8E/reports/x", // U+FF0E FULLWIDTH FULL STOP
	"\xef\xbc\x8e\xef\xbc\x8e/reports/x",
	"%E3%80%82%E3%80%82/reports/x", // U+3002 IDEOGRAPHIC FULL STOP
	"%E2%80%A5/reports/x",          // U+2025 TWO DOT LEADER
	"..%EF%BC%8Freports/x",         // U+FF0F FULLWIDTH SOLIDUS
	"..%EF%BC%BCreports/x",         // U+FF3C FULLWIDTH REVERSE SOLIDUS
	"%c0%ae%c0%ae/reports/x",       // overlong "."
	"%c0%af",                       // overlong "/"
	"%ff%fe/x",
	"\xff\xfe/x",
	"caf%E9", // Latin-1
}

// pathsOtherRoute are whole paths that fall under /api/ as the gateway
// matches them, but under /api/billing/ for a stack that drops path
// parameters, ignores case, trims trailing dots and spaces, or decodes
// twice.
var pathsOtherRoute = []string{
	"/api/billing;v=1/x",
	"/api/billing;jsessionid=x/x",
	"/API/BILLING/x",
	"/api/Billing/x",
	"/api/billing./x",
	"/api/billing%20/x",
	"/api%252Fbilling/x",
	"/api/billing%E2%88%95x", // U+2215 DIVISION SLASH
}

// pathsOrdinary are paths that must keep working, and what the upstream sees.
var pathsOrdinary = []struct{ target, upstream string }{
	{"/api/billing/x", "/api/billing/x"},
	{"/api/billing/x;v=1", "/api/billing/x;v=1"},
	{"/api/billing/x;v=1/y", "/api/billing/x;v=1/y"},
	{"/api/billing/a%20b", "/api/billing/a b"},
	{"/api/billing/caf%C3%A9", "/api/billing/café"},
	{"/api/billing/%E6%97%A5%E6%9C%AC%E3%80%82txt", "/api/billing/日本。txt"},
	{"/api/billing/a%2Fb", "/api/billing/a/b"},
	{"/api/billing/100%25", "/api/billing/100%"},
	{"/api/billing/.well-known/x", "/api/billing/.well-known/x"},
	{"/api/billing/a.b..c", "/api/billing/a.b..c"},
	{"/api/billing/x/../y", "/api/billing/y"},
	{"/api/billing/%2e%2e/billing/y", "/api/billing/y"},
	{"/api/other/BILLING", "/api/other/BILLING"},
}

type pathsEnv struct {
	gw                   *gateway
	addr                 string
	api, billing, legacy *upstream
}

func pathsStart(t *testing.T) *pathsEnv {
	t.Helper()
	e := &pathsEnv{api: startUpstream(t), billing: startUpstream(t), legacy: startUpstream(t)}
	fa := fakeauth.Start(t, fakeauth.Options{})
	yaml := fill(pathsConfig, "API", e.api.URL, "BILLING", e.billing.URL, "LEGACY", e.legacy.URL)
	e.gw = startGateway(t, yaml, fa.URL(), "", nil)
	e.addr = strings.TrimPrefix(e.gw.URL, "http://")
	return e
}

func (e *pathsEnv) hits() int64 {
	return e.api.hits.Load() + e.billing.hits.Load() + e.legacy.hits.Load()
}

// pathsWantRefused checks a 400 bad_request JSON answer.
func pathsWantRefused(t *testing.T, ex exchange, status int, code string) {
	t.Helper()
	if ex.status != status {
		t.Fatalf("status %d, want %d; body %q", ex.status, status, ex.body)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(ex.body), &m); err != nil || m["code"] != code || m["detail"] == "" {
		t.Fatalf("body %q, want a JSON error with code %q and a detail (%v)", ex.body, code, err)
	}
}

// TestSecPathsRefusedByProxy: every unusual path under /api/billing/, and
// every path another stack would place under another route, is answered
// 400 bad_request over a raw socket, and no upstream is called.
func TestSecPathsRefusedByProxy(t *testing.T) {
	e := pathsStart(t)
	var targets []string
	for _, tail := range pathsUnusual {
		targets = append(targets, "/api/billing/"+tail)
	}
	targets = append(targets, pathsOtherRoute...)
	for _, target := range targets {
		t.Run(strconv.Quote(target), func(t *testing.T) {
			before := e.hits()
			for _, method := range []string{"GET", "POST"} {
				ex := rawExchange(t, e.addr, rawRequest(method, target, []string{"Content-Length: 2"}, "{}"), false)
				pathsWantRefused(t, ex, http.StatusBadRequest, "bad_request")
			}
			if got := e.hits() - before; got != 0 {
				t.Fatalf("an upstream got %d requests", got)
			}
		})
	}
}

// TestSecPathsRefusedByCheck: /auth/check refuses the same paths, given
// as X-Original-URI, with 403 (all a proxy's auth hook understands).
func TestSecPathsRefusedByCheck(t *testing.T) {
	e := pathsStart(t)
	check := func(t *testing.T, uri string) exchange {
		t.Helper()
		return rawExchange(t, e.addr, rawRequest("GET", "/auth/check", []string{"X-Original-Method: GET", "X-Original-URI: " + uri}, ""), false)
	}
	for _, tail := range pathsUnusual {
		uri := "/api/billing/" + tail
		if strings.ContainsAny(uri, "\x00\r\n") {
			continue // a header value cannot carry them raw; the escaped forms are in the list
		}
		t.Run(strconv.Quote(uri), func(t *testing.T) {
			pathsWantRefused(t, check(t, uri), http.StatusForbidden, "permission_denied")
			if legacy := check(t, "/legacy/"+tail); legacy.status != http.StatusOK {
				t.Fatalf("/legacy/ (allow_unusual_paths) answered %d: %s", legacy.status, legacy.body)
			}
		})
	}
	for _, uri := range pathsOtherRoute {
		t.Run(strconv.Quote(uri), func(t *testing.T) {
			pathsWantRefused(t, check(t, uri), http.StatusForbidden, "permission_denied")
		})
	}
	for _, tt := range pathsOrdinary {
		if ex := check(t, tt.target); ex.status != http.StatusOK {
			t.Errorf("%s: %d %s", tt.target, ex.status, ex.body)
		}
	}
}

// TestSecPathsOptOutAndOrdinary: a route with allow_unusual_paths gets
// the same unusual tails forwarded; ordinary paths with ";" in a non-dot
// segment, escapes and UTF-8 names keep working everywhere.
func TestSecPathsOptOutAndOrdinary(t *testing.T) {
	e := pathsStart(t)
	for _, tail := range pathsUnusual {
		target := "/legacy/" + tail
		t.Run(strconv.Quote(target), func(t *testing.T) {
			before := e.legacy.hits.Load()
			ex := rawExchange(t, e.addr, rawRequest("GET", target, nil, ""), false)
			if ex.status != http.StatusOK || e.legacy.hits.Load() != before+1 {
				t.Fatalf("status %d (legacy upstream hits +%d); body %q", ex.status, e.legacy.hits.Load()-before, ex.body)
			}
		})
	}
	for _, tt := range pathsOrdinary {
		t.Run(strconv.Quote(tt.target), func(t *testing.T) {
			ex := rawExchange(t, e.addr, rawRequest("GET", tt.target, nil, ""), false)
			if ex.status != http.StatusOK {
				t.Fatalf("status %d; body %q", ex.status, ex.body)
			}
			var got echo
			if err := json.Unmarshal([]byte(ex.body), &got); err != nil || got.Path != tt.upstream {
				t.Fatalf("upstream saw %q, want %q (%v)", got.Path, tt.upstream, err)
			}
		})
	}
}

// pathsBodyConfig: /slow/ bounds request bodies at 300ms, /unbounded/
// turns the bound off, and the token endpoints are bounded at 300ms.
const pathsBodyConfig = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s, body_timeout: 300ms}
database: {driver: sqlite, dsn: "%DB%"}
routes:
  - path: "/slow/"
    upstream: "%UP%"
    auth: none
    body_timeout: 300ms
  - path: "/unbounded/"
    upstream: "%UP%"
    auth: none
    body_timeout: 0s
`

// pathsBodyUpstream records every request body it read: its length and
// whether it arrived whole. A path ending in /wait answers 800ms after
// the body, longer than the body timeout.
type pathsBodyUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string // "n ok" or "n cut"
}

func pathsStartBodyUpstream(t *testing.T) *pathsBodyUpstream {
	u := &pathsBodyUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		outcome := "ok"
		if err != nil {
			outcome = "cut"
		}
		u.mu.Lock()
		u.bodies = append(u.bodies, strconv.Itoa(len(b))+" "+outcome)
		u.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/wait") {
			time.Sleep(800 * time.Millisecond)
		}
		_, _ = w.Write([]byte(`{"got":` + strconv.Itoa(len(b)) + `}`))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *pathsBodyUpstream) whole(n int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, b := range u.bodies {
		if b == strconv.Itoa(n)+" ok" {
			return true
		}
	}
	return false
}

// pathsTrickle sends a request head declaring a body of size bytes (or,
// with size < 0, a chunked body), then the body one byte per every (a
// one-byte chunk when chunked), for at most n bytes, and reads the answer.
// Every wait is bounded: the writer stops after n bytes or when the
// connection fails, the reader gives up after 10s.
func pathsTrickle(t *testing.T, addr, method, target string, extra []string, size, n int, every time.Duration) (exchange, bool) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	piece, framing := []byte("a"), "Content-Length: "+strconv.Itoa(size)
	if size < 0 {
		piece, framing = []byte("1\r\na\r\n"), "Transfer-Encoding: chunked"
	}
	head := rawRequest(method, target, append(extra, framing), "")
	if _, err := conn.Write(head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range n {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write(piece); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-wrote }()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err == nil && resp.StatusCode == http.StatusContinue {
		resp, err = http.ReadResponse(br, nil) // the final answer after "100 Continue"
	}
	if err != nil {
		t.Fatalf("no answer while the body trickled: %v", err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	ex := exchange{status: resp.StatusCode, body: string(b)}
	// Closed: the next read ends (EOF or reset) rather than waiting.
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	closed := err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return ex, closed
}

// TestSecPathsBodyTimeout: a body trickled at one byte per 200ms to a
// route with body_timeout: 300ms is answered 408 request_timeout and the
// connection closed, long before the body could finish; the upstream never
// gets it whole; another client is served meanwhile; a whole body followed
// by a slow upstream answer is not cut; body_timeout: 0s leaves a slow body
// alone; the token endpoints are bounded by auth_service.body_timeout.
func TestSecPathsBodyTimeout(t *testing.T) {
	up := pathsStartBodyUpstream(t)
	fa := fakeauth.Start(t, fakeauth.Options{})
	gw := startGateway(t, fill(pathsBodyConfig, "UP", up.URL), fa.URL(), "", nil)
	addr := strings.TrimPrefix(gw.URL, "http://")

	t.Run("trickled body to a route", func(t *testing.T) {
		done := make(chan string, 1)
		go func() {
			// Another client, while the trickle holds its connection.
			time.Sleep(100 * time.Millisecond)
			resp, err := httpClient.Post(gw.URL+"/slow/other", "text/plain", strings.NewReader("hello"))
			if err != nil {
				done <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			done <- strconv.Itoa(resp.StatusCode) + " " + string(b)
		}()
		ex, closed := pathsTrickle(t, addr, "POST", "/slow/x", nil, 100, 100, 200*time.Millisecond)
		pathsWantRefused(t, ex, http.StatusRequestTimeout, "request_timeout")
		if !closed {
			t.Error("the connection stayed open after the 408")
		}
		if up.whole(100) {
			t.Error("the upstream got the trickled body whole")
		}
		if r := <-done; r != `200 {"got":5}` || !up.whole(5) {
			t.Errorf("another client: %s", r)
		}
	})
	t.Run("trickled chunked body to a route", func(t *testing.T) {
		ex, closed := pathsTrickle(t, addr, "POST", "/slow/chunked", nil, -1, 100, 200*time.Millisecond)
		pathsWantRefused(t, ex, http.StatusRequestTimeout, "request_timeout")
		if !closed {
			t.Error("the connection stayed open after the 408")
		}
	})
	t.Run("trickled body with Expect: 100-continue", func(t *testing.T) {
		ex, _ := pathsTrickle(t, addr, "PUT", "/slow/expect", []string{"Expect: 100-continue"}, 100, 100, 200*time.Millisecond)
		pathsWantRefused(t, ex, http.StatusRequestTimeout, "request_timeout")
	})
	t.Run("whole body, slow upstream answer", func(t *testing.T) {
		r := call(t, http.MethodPost, gw.URL+"/slow/wait", "text/plain", "0123456789")
		if r.Status != http.StatusOK || string(r.Body) != `{"got":10}` {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("body_timeout 0s", func(t *testing.T) {
		ex, _ := pathsTrickle(t, addr, "POST", "/unbounded/x", nil, 4, 4, 200*time.Millisecond)
		if ex.status != http.StatusOK || ex.body != `{"got":4}` {
			t.Fatalf("%d %s", ex.status, ex.body)
		}
	})
	t.Run("trickled body to a token endpoint", func(t *testing.T) {
		for _, tt := range []struct {
			path string
			size int
		}{{"/auth/token/", 100}, {"/auth/token/refresh/", 100}, {"/auth/token/", -1}, {"/auth/token/verify/", -1}} {
			path := tt.path
			before := fa.Calls(path)
			ex, closed := pathsTrickle(t, addr, "POST", path, []string{"Content-Type: application/json"}, tt.size, 100, 200*time.Millisecond)
			pathsWantRefused(t, ex, http.StatusRequestTimeout, "request_timeout")
			if !closed {
				t.Error("the connection stayed open after the 408")
			}
			if fa.Calls(path) != before {
				t.Errorf("%s: the auth service was called", path)
			}
		}
	})
}
