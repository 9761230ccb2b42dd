package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// secMiscServe runs serve with extra settings until the test ends and
// returns its log once it serves, or the error it stopped with.
func secMiscServe(t *testing.T, extra string) (*syncBuffer, error) {
	t.Helper()
	fa := fakeauth.Start(t, fakeauth.Options{})
	cfg := writeConfig(t, `
listen: "127.0.0.1:0"
`+extra+`
auth_service:
  url: "`+fa.URL()+`"
database:
  dsn: "`+filepath.Join(t.TempDir(), "m.db")+`"
`)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	errb := &syncBuffer{}
	go func() {
		done <- Run(ctx, []string{"serve", "--config", cfg}, func(string) string { return "" }, &bytes.Buffer{}, errb, "test")
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.After(10 * time.Second)
	for !strings.Contains(errb.String(), "jwtgate serving") {
		select {
		case err := <-done:
			done <- err // for the cleanup
			return errb, err
		case <-deadline:
			t.Fatalf("serve did not start:\n%s", errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errb, nil
}

func secMiscGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

var secMiscServing = regexp.MustCompile(`listen=(\S+) metrics_listen=(\S+)`)

// serve puts /metrics on metrics_listen and nowhere else; "" turns it off.
func TestSecMiscServeMetricsOnlyOnMetricsListen(t *testing.T) {
	logs, err := secMiscServe(t, `metrics_listen: "127.0.0.1:0"`)
	if err != nil {
		t.Fatal(err)
	}
	m := secMiscServing.FindStringSubmatch(logs.String())
	if m == nil || m[2] == "off" {
		t.Fatalf("serving line:\n%s", logs.String())
	}
	if code, body := secMiscGet(t, "http://"+m[1]+"/metrics"); code == http.StatusOK || strings.Contains(body, "jwtgate_") {
		t.Errorf("/metrics on listen: %d %.200s", code, body)
	}
	if code, body := secMiscGet(t, "http://"+m[2]+"/metrics"); code != http.StatusOK || !strings.Contains(body, "jwtgate_auth_refusals_total") {
		t.Errorf("/metrics on metrics_listen: %d %.200s", code, body)
	}

	logs, err = secMiscServe(t, `metrics_listen: ""`)
	if err != nil {
		t.Fatal(err)
	}
	m = secMiscServing.FindStringSubmatch(logs.String())
	if m == nil || m[2] != "off" {
		t.Fatalf("metrics_listen \"\": serving line:\n%s", logs.String())
	}
	if code, body := secMiscGet(t, "http://"+m[1]+"/metrics"); code == http.StatusOK || strings.Contains(body, "jwtgate_") {
		t.Errorf("/metrics on listen with metrics off: %d %.200s", code, body)
	}
}

// A busy metrics_listen (the default 9090 is Prometheus' own port) stops
// serve with an error that names the key and the way out.
func TestSecMiscServeMetricsListenBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = secMiscServe(t, `metrics_listen: "`+ln.Addr().String()+`"`)
	if err == nil || !strings.Contains(err.Error(), "metrics_listen") || !strings.Contains(err.Error(), `""`) {
		t.Fatalf("serve with a busy metrics_listen: %v", err)
	}
}
