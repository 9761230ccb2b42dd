package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"jwtgate/tests/fakeauth"
)

// waitLimit bounds every wait in these tests; nothing here should take
// more than a fraction of it.
const waitLimit = 10 * time.Second

const streamRoutes = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
routes:
  - path: "/events/"
    upstream: "%SSE%"
    timeout: 300ms
  - path: "/upload/"
    upstream: "%UPLOAD%"
  - path: "/ws/"
    upstream: "%WS%"
    timeout: 300ms
  - path: "/down/"
    upstream: "http://%DOWN%"
  - path: "/slow/"
    upstream: "%SLOW%"
    timeout: 200ms
`

type streamEnv struct {
	gw      *gateway
	token   string
	release chan struct{} // lets the SSE upstream send its last event
	sseDone atomic.Bool   // the SSE upstream's handler returned
	chunk   chan string   // what the upload upstream has read so far
}

func startStreamEnv(t *testing.T) *streamEnv {
	t.Helper()
	e := &streamEnv{release: make(chan struct{}), chunk: make(chan string, 1)}
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer e.sseDone.Store(true)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprint(w, "event: tick\ndata: 1\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-e.release:
		case <-r.Context().Done():
			return
		case <-time.After(waitLimit):
		}
		fmt.Fprint(w, "event: tick\ndata: 2\n\n")
	}))
	t.Cleanup(sse.Close)
	upload := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, len("first chunk;"))
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		e.chunk <- string(buf) // the rest of the body has not been sent yet
		rest, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s%s", buf, rest)
	}))
	t.Cleanup(upload.Close)
	ws := httptest.NewServer(websocket.Handler(func(c *websocket.Conn) {
		_, _ = io.Copy(c, c)
	}))
	t.Cleanup(ws.Close)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(waitLimit):
		}
	}))
	t.Cleanup(slow.Close)

	fa := fakeauth.Start(t, fakeauth.Options{})
	u := fa.AddUser(fakeauth.User{Email: "s@example.com", Username: "s", Password: "pw", IsActive: true})
	e.token, _ = fa.IssuePair(u.ID)
	yaml := fill(streamRoutes, "SSE", sse.URL, "UPLOAD", upload.URL, "WS", ws.URL, "DOWN", freePort(t), "SLOW", slow.URL)
	e.gw = startGateway(t, yaml, fa.URL(), "", nil)
	return e
}

// Server-sent events reach the client as the upstream flushes them, not
// when it finishes; the route timeout does not cut a started stream.
func TestEdgeSSEStreamsWithoutBuffering(t *testing.T) {
	e := startStreamEnv(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.gw.URL+"/events/feed", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(waitLimit):
			t.Fatal("no event line within the wait limit: the gateway buffers the stream")
		}
		return ""
	}
	if l := next(); l != "event: tick" {
		t.Fatalf("first line %q", l)
	}
	if l := next(); l != "data: 1" {
		t.Fatalf("second line %q", l)
	}
	if e.sseDone.Load() {
		t.Fatal("upstream already finished: the event was not streamed")
	}
	time.Sleep(500 * time.Millisecond) // past the route's 300ms timeout: a started stream must go on
	close(e.release)
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if got := strings.Join(rest, "|"); got != "|event: tick|data: 2|" {
		t.Fatalf("rest of the stream %q", got)
	}
}

// An upload reaches the upstream while the client is still sending it.
func TestEdgeRequestBodyStreamed(t *testing.T) {
	e := startStreamEnv(t)
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.gw.URL+"/upload/file", pr)
	req.Header.Set("Authorization", "Bearer "+e.token)
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := httpClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	if _, err := pw.Write([]byte("first chunk;")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-e.chunk:
		if got != "first chunk;" {
			t.Fatalf("upstream read %q", got)
		}
	case <-time.After(waitLimit):
		t.Fatal("upstream saw nothing while the upload was open: the gateway buffers request bodies")
	}
	_, _ = pw.Write([]byte("second chunk"))
	_ = pw.Close()
	select {
	case r := <-done:
		if r.err != nil || r.body != "first chunk;second chunk" {
			t.Fatalf("answer %q, %v", r.body, r.err)
		}
	case <-time.After(waitLimit):
		t.Fatal("no answer")
	}
}

// A WebSocket upgrade passes through the gateway (authenticated), and the
// connection outlives the route's timeout.
func TestEdgeWebSocketEcho(t *testing.T) {
	e := startStreamEnv(t)
	wsURL := "ws" + strings.TrimPrefix(e.gw.URL, "http") + "/ws/echo"
	dial := func(token string) (*websocket.Conn, error) {
		cfg, err := websocket.NewConfig(wsURL, e.gw.URL)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			cfg.Header.Set("Authorization", "Bearer "+token)
		}
		ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
		defer cancel()
		return cfg.DialContext(ctx)
	}
	if _, err := dial(""); err == nil {
		t.Fatal("upgrade without a token was let through")
	}
	c, err := dial(e.token)
	if err != nil {
		t.Fatalf("dial through the gateway: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitLimit))
	for i, msg := range []string{"hello", "through", "jwtgate"} {
		if i == 2 {
			time.Sleep(500 * time.Millisecond) // past the route's 300ms timeout
		}
		if err := websocket.Message.Send(c, msg); err != nil {
			t.Fatalf("send %q: %v", msg, err)
		}
		var got string
		if err := websocket.Message.Receive(c, &got); err != nil {
			t.Fatalf("receive: %v", err)
		}
		if got != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
}

func TestEdgeUpstreamDownAndSlow(t *testing.T) {
	e := startStreamEnv(t)
	r := get(t, e.gw.URL+"/down/x", e.token)
	wantError(t, r, http.StatusBadGateway, "upstream_unavailable")
	r = get(t, e.gw.URL+"/slow/x", e.token)
	wantError(t, r, http.StatusGatewayTimeout, "upstream_timeout")
	if strings.Contains(string(r.Body), "127.0.0.1") {
		t.Fatalf("error leaks the upstream address: %s", r.Body)
	}
}
