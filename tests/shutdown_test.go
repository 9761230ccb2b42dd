package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// buildBinary builds jwtgate into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "jwtgate")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-tags", releaseBuildTags, "-o", bin, ".")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestSIGTERMFinishesInFlightRequestsAndExitsZero(t *testing.T) {
	bin := buildBinary(t)
	fa, aliceID := newFake(t, fakeauth.Options{})
	started := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(3 * time.Second)
		_, _ = io.WriteString(w, "slow answer")
	}))
	t.Cleanup(slow.Close)

	dir := t.TempDir()
	db := filepath.Join(dir, "jwtgate.db")
	cfg := filepath.Join(dir, "settings.yaml")
	yaml := fmt.Sprintf(`
listen: "127.0.0.1:0"
metrics_listen: "127.0.0.1:0"
shutdown_timeout: 10s
auth_service:
  url: %q
database:
  dsn: %q
routes:
  - path: "/api/slow/"
    upstream: %q
`, fa.URL(), db, slow.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "serve", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var logMu sync.Mutex
	var logs strings.Builder
	listening := make(chan string, 1)
	shutting := make(chan struct{})
	go func() {
		listenRE := regexp.MustCompile(`jwtgate serving"? listen=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			logs.WriteString(line + "\n")
			logMu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				listening <- m[1]
			}
			if strings.Contains(line, "shutting down") {
				close(shutting)
			}
		}
	}()
	logged := func() string { logMu.Lock(); defer logMu.Unlock(); return logs.String() }
	var addr string
	select {
	case addr = <-listening:
	case <-time.After(15 * time.Second):
		t.Fatalf("jwtgate did not start:\n%s", logged())
	}

	access, _ := fa.IssuePair(aliceID)
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/slow/x", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatalf("the slow request did not reach the upstream:\n%s", logged())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-shutting:
	case <-time.After(5 * time.Second):
		t.Fatalf("no shutdown after SIGTERM:\n%s", logged())
	}
	// Stop accepting: new connections are refused while the slow request
	// runs (the listener closes just after the "shutting down" line).
	refused := false
	for range 40 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			refused = true
			break
		}
		c.Close()
		time.Sleep(25 * time.Millisecond)
	}
	select {
	case r := <-done:
		t.Fatalf("the slow request ended (%v) before new connections were refused", r)
	default:
	}
	if !refused {
		t.Fatal("new connections are still accepted during shutdown")
	}

	select {
	case r := <-done:
		if r.err != nil || r.status != http.StatusOK || r.body != "slow answer" {
			t.Fatalf("in-flight request: status %d body %q err %v, want 200 \"slow answer\"\n%s", r.status, r.body, r.err, logged())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the in-flight request never finished")
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit: %v, want status 0\n%s", err, logged())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("jwtgate did not exit:\n%s", logged())
	}
	if !strings.Contains(logged(), "msg=stopped") {
		t.Fatalf("no clean stop logged:\n%s", logged())
	}
	// SQLite removes the WAL file when the last connection closes cleanly.
	if _, err := os.Stat(db + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("%s-wal still exists (stat: %v): the database was not closed", db, err)
	}
}
