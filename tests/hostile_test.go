package tests

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// hostileConfig serves a protected and an open route; the open one lets a
// hostile request reach the proxy without a token.
const hostileConfig = `
auth_service:
  url: "%AUTH%"
  timeout: 2s
database:
  dsn: "%DB%"
log:
  level: warn
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
  - path: "/open/"
    upstream: "%UPSTREAM%"
    auth: none
`

// exchange is what came back on one raw connection.
type exchange struct {
	status int    // of the first answer; 0 when the connection closed without one
	body   string // its start
	second int    // status of a second answer on the same connection; 0 when none came
	closed bool   // the gateway closed the connection after the first answer
}

// rawExchange writes payload on a fresh TCP connection and reads what
// comes back: the first answer and, with probe, whether a second answer
// follows or the connection is closed. Every read is bounded by a deadline.
func rawExchange(t *testing.T, addr string, payload []byte, probe bool) exchange {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	// Write in the background: the gateway may answer and close before it
	// has read a large payload, which must not fail the test.
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		werr <- err
	}()
	defer func() { <-werr }()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return exchange{body: err.Error()}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	ex := exchange{status: resp.StatusCode, body: string(b[:min(len(b), 300)])}
	if !probe {
		return ex
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if next, err := http.ReadResponse(br, nil); err == nil {
		ex.second = next.StatusCode
		next.Body.Close()
	} else {
		var ne net.Error
		ex.closed = !(errors.As(err, &ne) && ne.Timeout()) // EOF or reset, not a silent open connection
	}
	return ex
}

// rawRequest is an HTTP/1.1 request written by hand: request line, Host,
// the given header lines, a blank line and body as is.
func rawRequest(method, target string, headers []string, body string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: gateway\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

// TestHostileRequests: each hostile request gets a 4xx (never a 5xx or a
// dropped connection), nothing hostile reaches the upstream, and the
// gateway keeps serving: a health check and a warm authenticated call
// succeed after every case, and no panic is logged.
func TestHostileRequests(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	p := startProcess(t, hostileConfig, fa.URL(), up.URL, "")
	addr := strings.TrimPrefix(p.URL, "http://")
	access, _ := fa.IssuePair(id)
	if r := get(t, p.URL+"/api/warm", access); r.Status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", r.Status, r.Body)
	}

	manyHeaders := make([]string, 10000)
	for i := range manyHeaders {
		manyHeaders[i] = "X-H-" + strconv.Itoa(i) + ": v"
	}
	deepJSON := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepUnderCap := strings.Repeat(`{"a":`, 6000) + "1" + strings.Repeat("}", 6000) // 36 KB, under the 64 KiB cap
	smuggled := "GET /open/smuggled HTTP/1.1\r\nHost: gateway\r\n\r\n"
	dots := "Authorization: Bearer " + strings.Repeat(".", 10000)
	dotsSmall := "Authorization: Bearer " + strings.Repeat("a.", 3000) + "a"
	deepRefresh := `{"refresh":` + tokensDeepArray(1500) + `}`
	bearer := func(tok string) []string { return []string{"Authorization: Bearer " + tok} }

	// want is the exact status; 0 means any 4xx. 501 appears only where
	// net/http itself refuses a transfer coding it does not implement, before
	// any gateway code runs, as RFC 9112 §6.1 asks ("SHOULD respond with 501").
	// closes: the gateway must close the connection after answering, so the
	// bytes after the body are never served as a request of their own.
	tests := []struct {
		name     string
		payload  []byte
		want     int
		closes   bool
		streamed bool // the body is malformed only after the upstream got the headers
	}{
		{"1 MB header", rawRequest("GET", "/open/x", []string{"X-Big: " + strings.Repeat("a", 1<<20)}, ""), http.StatusRequestHeaderFieldsTooLarge, true, false},
		{"1 MB URL", rawRequest("GET", "/open/"+strings.Repeat("a", 1<<20), nil, ""), http.StatusRequestHeaderFieldsTooLarge, true, false},
		{"10 000 headers", rawRequest("GET", "/open/x", manyHeaders, ""), http.StatusRequestHeaderFieldsTooLarge, true, false},

		// Transfer-Encoding and Content-Length together: TE wins (RFC 9112
		// §6.3), the upstream gets the chunked body re-framed, and the
		// connection is closed, so the smuggled request is never served.
		{"TE and CL", rawRequest("POST", "/open/x", []string{"Content-Length: 5", "Transfer-Encoding: chunked"}, "0\r\n\r\n"+smuggled), http.StatusOK, true, false},
		{"CL and TE", rawRequest("POST", "/open/x", []string{"Transfer-Encoding: chunked", "Content-Length: 50"}, "0\r\n\r\n"+smuggled), http.StatusOK, true, false},
		{"TE and CL to token endpoint", rawRequest("POST", "/auth/token/", []string{"Content-Type: application/json", "Content-Length: 5", "Transfer-Encoding: chunked"}, "0\r\n\r\n"+smuggled), 0, true, false},
		{"TE folded onto the next line", rawRequest("POST", "/open/x", []string{"Transfer-Encoding:", " chunked", "Content-Length: 5"}, "0\r\n\r\n"+smuggled), http.StatusOK, true, false},
		{"TE with space before colon", rawRequest("POST", "/open/x", []string{"Transfer-Encoding : chunked", "Content-Length: 5"}, "0\r\n\r\n"+smuggled), http.StatusBadRequest, true, false},
		{"double TE header", rawRequest("POST", "/open/x", []string{"Transfer-Encoding: chunked", "Transfer-Encoding: chunked"}, "0\r\n\r\n"+smuggled), http.StatusNotImplemented, true, false},
		{"TE chunked, chunked", rawRequest("POST", "/open/x", []string{"Transfer-Encoding: chunked, chunked"}, "0\r\n\r\n"+smuggled), http.StatusNotImplemented, true, false},
		{"TE identity, chunked", rawRequest("POST", "/open/x", []string{"Transfer-Encoding: identity, chunked"}, "0\r\n\r\n"+smuggled), http.StatusNotImplemented, true, false},
		{"TE xchunked with CL", rawRequest("POST", "/open/x", []string{"Transfer-Encoding: xchunked", "Content-Length: 5"}, "0\r\n\r\n"+smuggled), http.StatusNotImplemented, true, false},

		// Chunked bodies with bad sizes: the client's fault, so 400, not a 502
		// blamed on the upstream or a 500.
		{"chunk size not hex", rawRequest("POST", "/open/x", []string{"Transfer-Encoding: chunked"}, "zz\r\nhello\r\n0\r\n\r\n"), http.StatusBadRequest, true, true},
		{"chunk size overflow", rawRequest("POST", "/open/x", []string{"Transfer-Encoding: chunked"}, "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), http.StatusBadRequest, true, true},
		{"chunk size negative", rawRequest("POST", "/open/x", []string{"Transfer-Encoding: chunked"}, "-5\r\nhello\r\n0\r\n\r\n"), http.StatusBadRequest, true, true},
		{"chunk longer than its size", rawRequest("POST", "/open/x", []string{"Transfer-Encoding: chunked"}, "5\r\nhello world\r\n0\r\n\r\n"+smuggled), http.StatusBadRequest, true, true},
		{"chunk size not hex to token endpoint", rawRequest("POST", "/auth/token/", []string{"Content-Type: application/json", "Transfer-Encoding: chunked"}, "zz\r\n{}\r\n0\r\n\r\n"), http.StatusBadRequest, true, false},
		{"chunk size not hex to refresh endpoint", rawRequest("POST", "/auth/token/refresh/", []string{"Content-Type: application/json", "Transfer-Encoding: chunked"}, "2\r\n{}\r\nzz\r\n"), http.StatusBadRequest, true, false},

		// Paths another stack resolves differently: refused with 400 before
		// authentication, on an open route too (see tests/sec_paths_test.go).
		{"invalid UTF-8 raw in path", rawRequest("GET", "/api/\xff\xfe/x", nil, ""), http.StatusBadRequest, false, false},
		{"invalid UTF-8 escaped in path", rawRequest("GET", "/api/%ff%fe/x", nil, ""), http.StatusBadRequest, false, false},
		{"overlong UTF-8 slash in path", rawRequest("GET", "/api/%c0%af../x", nil, ""), http.StatusBadRequest, false, false},
		{"NUL escaped in path", rawRequest("GET", "/api/%00/x", nil, ""), http.StatusBadRequest, false, false},
		{"dot-dot-semicolon in path", rawRequest("GET", "/open/..;/api/x", nil, ""), http.StatusBadRequest, false, false},
		{"encoded dot-dot-semicolon in path", rawRequest("GET", "/open/%2e%2e;/api/x", nil, ""), http.StatusBadRequest, false, false},
		{"backslash in path", rawRequest("GET", "/open/..\\api/x", nil, ""), http.StatusBadRequest, false, false},
		{"encoded backslash in path", rawRequest("GET", "/open/..%5Capi/x", nil, ""), http.StatusBadRequest, false, false},
		{"double-encoded dot-dot in path", rawRequest("GET", "/open/%252e%252e/api/x", nil, ""), http.StatusBadRequest, false, false},
		{"fullwidth dots in path", rawRequest("GET", "/open/%EF%BC%8E%EF%BC%8E/api/x", nil, ""), http.StatusBadRequest, false, false},
		{"path parameter on a route prefix", rawRequest("GET", "/open;x=1/x", nil, ""), 0, false, false},
		{"invalid escape in path", rawRequest("GET", "/api/%zz/x", nil, ""), http.StatusBadRequest, true, false},
		{"token with 10 000 dots", rawRequest("GET", "/api/x", []string{dots}, ""), http.StatusUnauthorized, false, false},
		// The WebSocket subprotocol token (issue 11): two, or one with a header, are two credentials; junk is 401.
		{"subprotocol token twice", rawRequest("GET", "/api/x", []string{"Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.YS5iLmM, BASE64URL.bearer.authorization.k8s.io.YS5iLmM"}, ""), http.StatusBadRequest, false, false},
		{"subprotocol token and Authorization", rawRequest("GET", "/api/x", []string{"Sec-WebSocket-Protocol: echo, base64url.bearer.authorization.k8s.io.YS5iLmM", "Authorization: Bearer a.b.c"}, ""), http.StatusBadRequest, false, false},
		{"subprotocol token not base64url", rawRequest("GET", "/api/x", []string{"Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.%%%"}, ""), http.StatusUnauthorized, false, false},
		{"subprotocol token of 10 000 dots", rawRequest("GET", "/api/x", []string{"Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat(".", 10000)))}, ""), http.StatusUnauthorized, false, false},
		{"token with 3 000 dots", rawRequest("GET", "/api/x", []string{dotsSmall}, ""), http.StatusUnauthorized, false, false},
		{"two Authorization headers", rawRequest("GET", "/api/x", []string{"Authorization: Bearer " + access, "authorization: Bearer " + access}, ""), http.StatusBadRequest, false, false},
		{"a list of credentials in one header", rawRequest("GET", "/api/x", []string{"Authorization: Bearer a.b.c, Bearer " + access}, ""), http.StatusBadRequest, false, false},
		{"tab after Bearer", rawRequest("GET", "/api/x", []string{"Authorization: Bearer\t" + access}, ""), http.StatusUnauthorized, false, false},
		{"JSON nested 100 000 deep", rawRequest("POST", "/auth/token/", []string{"Content-Type: application/json", "Content-Length: " + strconv.Itoa(len(deepJSON))}, deepJSON), http.StatusRequestEntityTooLarge, false, false},
		{"JSON nested 100 000 deep, chunked", rawRequest("POST", "/auth/token/", []string{"Content-Type: application/json", "Transfer-Encoding: chunked"}, fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(deepJSON), deepJSON)), http.StatusRequestEntityTooLarge, true, false},
		{"JSON nested 6 000 deep under the cap", rawRequest("POST", "/auth/token/", []string{"Content-Type: application/json", "Content-Length: " + strconv.Itoa(len(deepUnderCap))}, deepUnderCap), http.StatusBadRequest, false, false},
		{"JSON nested 1 500 deep to refresh", rawRequest("POST", "/auth/token/refresh/", []string{"Content-Type: application/json", "Content-Length: " + strconv.Itoa(len(deepRefresh))}, deepRefresh), http.StatusBadRequest, false, false},
		// Refresh bodies the gateway cannot read as Django REST framework
		// would (it checks the refresh token against the user's cutoff).
		{"refresh as multipart", rawRequest("POST", "/auth/token/refresh/", []string{"Content-Type: multipart/form-data; boundary=b", "Content-Length: 63"}, "--b\r\nContent-Disposition: form-data; name=\"refresh\"\r\n\r\nx\r\n--b--"), http.StatusBadRequest, false, false},
		{"refresh JSON with NaN", rawRequest("POST", "/auth/token/refresh/", []string{"Content-Type: application/json", "Content-Length: 26"}, `{"refresh":"x","n":NaN}   `), http.StatusBadRequest, false, false},
		{"JSON nested 9 deep labelled text/plain", rawRequest("POST", "/auth/token/refresh/", []string{"Content-Type: text/plain", "Content-Length: 18"}, tokensDeepArray(9)), http.StatusBadRequest, false, false},
		{"JSON nested 1 500 deep without a content type", rawRequest("POST", "/auth/token/blacklist/", []string{"Content-Length: " + strconv.Itoa(len(deepRefresh))}, deepRefresh), http.StatusBadRequest, false, false},
		{"token with a 1 500 deep header", rawRequest("GET", "/api/x", bearer(tokensForged(`,"x":`+tokensDeepArray(1500), "")), ""), http.StatusUnauthorized, false, false},
		{"token with 1 500 deep claims", rawRequest("GET", "/api/x", bearer(tokensForged("", `,"x":`+tokensDeepArray(1500))), ""), http.StatusUnauthorized, false, false},
		{"token with a crit header", rawRequest("GET", "/api/x", bearer(tokensForged(`,"crit":["exp"]`, "")), ""), http.StatusUnauthorized, false, false},
		{"token with duplicate claim names", rawRequest("GET", "/api/x", bearer(tokensForged("", `,"user_id":2`)), ""), http.StatusUnauthorized, false, false},
		{"token with a non-canonical signature", rawRequest("GET", "/api/x", bearer(tokensSpellings(t, access)[0]), ""), http.StatusUnauthorized, false, false},
		{"token with padding", rawRequest("GET", "/api/x", bearer(access+"="), ""), http.StatusUnauthorized, false, false},
		{"NUL in header value", rawRequest("GET", "/open/x", []string{"X-A: a\x00b"}, ""), http.StatusBadRequest, true, false},
		{"header name with space", rawRequest("GET", "/open/x", []string{"X A: b"}, ""), http.StatusBadRequest, true, false},
		{"two Host headers", rawRequest("GET", "/open/x", []string{"Host: other"}, ""), http.StatusBadRequest, true, false},
		{"Content-Length twice, different", rawRequest("POST", "/open/x", []string{"Content-Length: 1", "Content-Length: 2"}, "ab"), http.StatusBadRequest, true, false},
		{"Content-Length negative", rawRequest("POST", "/open/x", []string{"Content-Length: -1"}, ""), http.StatusBadRequest, true, false},
		{"HTTP/0.9 request line", []byte("GET /open/x\r\n\r\n"), 0, true, false},
		{"identity headers without a token", rawRequest("GET", "/api/x", []string{"X-User-Id: 1", "X_User_Is_Staff: true"}, ""), http.StatusUnauthorized, false, false},
		// /metrics is served on metrics_listen only: refusal reasons stay private.
		{"metrics on the public listener", rawRequest("GET", "/metrics", nil, ""), http.StatusNotFound, false, false},
		{"metrics escaped on the public listener", rawRequest("GET", "/%6d%65trics?x=1", nil, ""), http.StatusNotFound, false, false},
		{"one header in two spellings", rawRequest("GET", "/open/x", []string{"X-Tenant: a", "X_Tenant: b"}, ""), http.StatusBadRequest, false, false},
		{"dash and dot spellings", rawRequest("GET", "/open/x", []string{"X.Tenant: a", "x-tenant: b"}, ""), http.StatusBadRequest, false, false},
		{"Connection names the gateway's headers", rawRequest("GET", "/open/x", []string{"Connection: close, X-Request-Id, X-Forwarded-For, X-User-Id, Authorization"}, ""), http.StatusOK, false, false},
		{"alias spellings of forwarded headers", rawRequest("GET", "/open/x", []string{"X_Real_IP: 6.6.6.6", "X.Forwarded.Host: evil", "X_Forwarded_For: 6.6.6.6"}, ""), http.StatusOK, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.hits.Load()
			ex := rawExchange(t, addr, tt.payload, tt.closes)
			switch {
			case tt.want != 0 && ex.status != tt.want:
				t.Errorf("status %d, want %d; body %q", ex.status, tt.want, ex.body)
			case tt.want == 0 && (ex.status < 400 || ex.status > 499):
				t.Errorf("status %d, want a 4xx; body %q", ex.status, ex.body)
			}
			if tt.closes && !ex.closed {
				t.Errorf("the connection stayed open after the answer (second answer: %d)", ex.second)
			}
			// A refused request never reaches the upstream, except one whose
			// body turns out malformed while it is being streamed there.
			got, want := up.hits.Load()-before, int64(0)
			if tt.want == http.StatusOK {
				want = 1
			}
			if got != want && !(tt.streamed && got == 1) {
				t.Errorf("the upstream got %d requests, want %d", got, want)
			}
			if up.sawPath("smuggled") {
				t.Fatal("a smuggled request reached the upstream")
			}
			stillServes(t, p, access)
		})
	}
	if out := p.output.String(); strings.Contains(out, "panic") {
		t.Fatalf("the gateway logged a panic:\n%s", out)
	}
}

// stillServes checks that the gateway process answers a health check and a
// warm authenticated call.
func stillServes(t *testing.T, p *process, access string) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("the gateway exited: %v\n%s", err, p.output.String())
	default:
	}
	if r := get(t, p.URL+"/healthz", ""); r.Status != http.StatusOK {
		t.Fatalf("healthz after the request: %d %s", r.Status, r.Body)
	}
	if r := get(t, p.URL+"/api/after", access); r.Status != http.StatusOK {
		t.Fatalf("warm call after the request: %d %s", r.Status, r.Body)
	}
}
