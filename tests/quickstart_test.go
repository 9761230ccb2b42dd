package tests

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"jwtgate/tests/djangoauth"
)

// quickstartMarker precedes the README's walk-through block.
const quickstartMarker = "<!-- quickstart-walkthrough"

// quickstartWalkthrough returns the shell commands of the README's
// walk-through: the first ```sh block after the marker comment.
func quickstartWalkthrough(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), quickstartMarker)
	if !ok {
		t.Fatalf("README.md has no %q comment before the walk-through", quickstartMarker)
	}
	m := regexp.MustCompile("(?s)\n```sh\n(.*?)\n```\n").FindStringSubmatch(after)
	if m == nil {
		t.Fatal("README.md: no ```sh block after the walk-through marker")
	}
	return m[1]
}

// quickstartRun is a running `bash tests/djangoauth/run.sh`.
type quickstartRun struct {
	cmd    *exec.Cmd
	output *logBuffer
	done   chan error
}

// quickstartStart runs tests/djangoauth/run.sh on free ports with its state
// in a temporary directory and waits (at most 90 s) until it says ready.
// The cleanup stops it with SIGINT, as Ctrl-C would, and checks that it
// stopped both servers.
func quickstartStart(t *testing.T, authAddr, upstreamAddr string) *quickstartRun {
	t.Helper()
	if err := djangoauth.Available(); err != nil {
		t.Fatal(err) // run bash tests/setup.sh (or run.sh once) first
	}
	q := &quickstartRun{output: &logBuffer{}, done: make(chan error, 1)}
	q.cmd = exec.Command("bash", "djangoauth/run.sh")
	q.cmd.Env = append(os.Environ(), "AUTH_LISTEN="+authAddr, "UPSTREAM_LISTEN="+upstreamAddr,
		"JWTGATE_DEMO_DIR="+t.TempDir())
	q.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the cleanup's fallback kills the group
	pr, pw := io.Pipe()
	q.cmd.Stdout, q.cmd.Stderr = pw, q.output
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			_, _ = q.output.Write([]byte(sc.Text() + "\n"))
			if strings.HasPrefix(sc.Text(), "quickstart: ready") {
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	if err := q.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { err := q.cmd.Wait(); _ = pw.Close(); q.done <- err }()
	t.Cleanup(func() { q.stop(t, authAddr, upstreamAddr) })
	select {
	case <-ready:
		return q
	case err := <-q.done:
		q.done <- err
		t.Fatalf("run.sh exited before it was ready: %v\n%s", err, q.output.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("run.sh not ready within 90s:\n%s", q.output.String())
	}
	return nil
}

// stop sends SIGINT to run.sh and expects it to stop both servers.
func (q *quickstartRun) stop(t *testing.T, addrs ...string) {
	_ = q.cmd.Process.Signal(os.Interrupt)
	select {
	case <-q.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-q.cmd.Process.Pid, syscall.SIGKILL)
		<-q.done
		t.Errorf("run.sh did not stop within 20s of SIGINT:\n%s", q.output.String())
		return
	}
	// Whatever happened, nothing of the group may outlive the test.
	defer func() { _ = syscall.Kill(-q.cmd.Process.Pid, syscall.SIGKILL) }()
	if !strings.Contains(q.output.String(), "quickstart: stopping") {
		t.Errorf("run.sh did not say it stopped its servers:\n%s", q.output.String())
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after run.sh stopped", a)
		}
	}
}

// The README's walk-through works as written: run.sh starts the example
// auth service and upstream, the gateway serves its default settings (the
// route's upstream moved to run.sh's port), and the README's commands log
// in, call the API, read the user's record, refresh, log out and show the
// effect of the logout. A README that drifts from what works fails here.
func TestQuickstartWalkthroughFromTheReadme(t *testing.T) {
	script := quickstartWalkthrough(t)
	for _, want := range []string{"bash tests/djangoauth/run.sh", "go run . serve"} {
		readme, _ := os.ReadFile("../README.md")
		section, _, _ := strings.Cut(string(readme), quickstartMarker)
		if !strings.Contains(section[max(strings.Index(section, "## Quickstart"), 0):], want) {
			t.Errorf("the walk-through does not start with %q", want)
		}
	}
	authAddr, upstreamAddr := freePort(t), freePort(t)
	quickstartStart(t, authAddr, upstreamAddr)

	// The gateway on the settings `jwtgate config` prints (the built-in
	// defaults), pointed at run.sh's ports as its printed hint says.
	bin := gatewayBinary(t)
	defaults, err := exec.Command(bin, "config").Output()
	if err != nil {
		t.Fatalf("jwtgate config: %v", err)
	}
	if !strings.Contains(string(defaults), `upstream: "http://127.0.0.1:9001"`) {
		t.Fatal(`the default settings' example route no longer sends to http://127.0.0.1:9001, which run.sh serves`)
	}
	cfg := strings.ReplaceAll(string(defaults), "http://127.0.0.1:9001", "http://"+upstreamAddr)
	cfg = regexp.MustCompile(`(?m)^metrics_listen: .*$`).ReplaceAllString(cfg, `metrics_listen: "127.0.0.1:0"`)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startProcess(t, cfg, "", "", filepath.Join(dir, "jwtgate.db"), "JWTGATE_AUTH_SERVICE_URL=http://"+authAddr)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+script)
	cmd.Env = append(os.Environ(), "GATEWAY="+gw.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's walk-through failed: %v\n--- output:\n%s\n--- gateway log:\n%s", err, out, gw.output.String())
	}
	got := string(out)
	for _, want := range []string{
		`"access":"ey`, // the login answer, echoed
		`"X-User-Email": "alice@example.com"`, `"method": "GET"`, `"path": "/api/billing/invoices"`,
		`"email":"alice@example.com"`, // the user's own record
	} {
		if !strings.Contains(got, want) {
			t.Errorf("walk-through output lacks %s:\n%s", want, got)
		}
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if n := len(lines); n < 3 || lines[n-3] != "{}" || lines[n-2] != "401" || lines[n-1] != "401" {
		t.Errorf("after logout: want {} (logout), 401 (the refresh token) and 401 (the access token, revoked at the edge) as the README says; output:\n%s", got)
	}
}

// The built binary prints its built-in settings file and its version in
// any directory, with --version and -v before anything else.
func TestQuickstartBinaryConfigAndVersion(t *testing.T) {
	bin := gatewayBinary(t)
	repo, err := os.ReadFile("../settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "config")
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	if err != nil || string(out) != string(repo) {
		t.Fatalf("jwtgate config in an empty directory: %v; output differs from settings.yaml", err)
	}
	for _, flag := range []string{"--version", "-v", "version"} {
		out, err := exec.Command(bin, flag).Output()
		if err != nil || !strings.HasPrefix(string(out), "jwtgate ") || !strings.Contains(string(out), "go:") ||
			!strings.Contains(string(out), "github.com/gin-gonic/gin v") {
			t.Errorf("jwtgate %s: %v\n%s", flag, err, out)
		}
	}
}
