package tests

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the gateway binary built for process tests.
// It also runs helper processes that tests start from the test binary itself
// (see runHelper).
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper(os.Args[1:]))
	}
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// releaseBuildTags are the build tags of the shipped binary (Dockerfile,
// README's Install, the load benchmark): nomsgpack leaves gin's MessagePack
// binding and its codec library (about 6 MB of code, resident in every
// process) out of a gateway that never reads or writes MessagePack.
const releaseBuildTags = "nomsgpack"

// gatewayBinary builds jwtgate once per test run, as it is shipped
// (releaseBuildTags), and returns its path.
func gatewayBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jwtgate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		binPath = filepath.Join(dir, "jwtgate")
		cmd := exec.Command("go", "build", "-tags", releaseBuildTags, "-o", binPath, ".")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort returns a loopback address nobody listens on right now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// process is a running gateway binary.
type process struct {
	cmd    *exec.Cmd
	URL    string
	output *logBuffer
	done   chan error
	config string // the settings file it serves with
}

// startProcess runs `jwtgate serve --config <file>` with the settings in
// yaml (placeholders as in startGateway) and waits until /healthz answers.
func startProcess(t testing.TB, yaml, authURL, upstreamURL, dbPath string, env ...string) *process {
	t.Helper()
	dir := t.TempDir()
	if dbPath == "" {
		dbPath = filepath.Join(dir, "jwtgate.db")
	}
	yaml = strings.NewReplacer("%AUTH%", authURL, "%UPSTREAM%", upstreamURL, "%DB%", dbPath).Replace(yaml)
	if !strings.Contains(yaml, "metrics_listen:") {
		yaml += "\nmetrics_listen: \"127.0.0.1:0\"\n" // not the default 9090: gateways run in parallel
	}
	cfg := filepath.Join(dir, "settings.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	p := &process{URL: "http://" + addr, output: &logBuffer{}, done: make(chan error, 1), config: cfg}
	p.cmd = exec.Command(gatewayBinary(t), "serve", "--config", cfg)
	p.cmd.Env = append(append(os.Environ(), "JWTGATE_LISTEN="+addr), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err // for the cleanup's receive
			t.Fatalf("gateway exited before serving: %v\n%s", err, p.output.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway did not answer /healthz within 20s:\n%s", p.output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *process) wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		p.done <- nil // let the cleanup's receive return
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("gateway did not exit within %s:\n%s", within, p.output.String())
		return -1
	}
}

// TestBinaryServesAndStops: the built binary serves a login and an API call
// on the address from JWTGATE_LISTEN, and exits 0 on SIGTERM.
func TestBinaryServesAndStops(t *testing.T) {
	fa, _ := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	p := startProcess(t, baseConfig, fa.URL(), up.URL, "")
	access, _ := tokens(t, login(t, p.URL, "alice@example.com", "alice-pw"))
	if r := get(t, p.URL+"/api/billing/x", access); r.Status != http.StatusOK {
		t.Fatalf("API call through the binary: %d %s", r.Status, r.Body)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.output.String())
	}
	if strings.Contains(p.output.String(), access) || strings.Contains(p.output.String(), "alice-pw") {
		t.Fatal("a token or password appears in the log")
	}
}

// TestBinaryRejectsBadSettings: a bad settings.yaml fails startup with exit
// 1 and a message that names the key.
func TestBinaryRejectsBadSettings(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "auth_service:\n  timout: 5s\n", `unknown key "timout"`},
		{"bad duration", "auth_service:\n  timeout: 5 sec\n", "Go duration"},
		{"bad url", "auth_service:\n  url: \"localhost:8000\"\n", "auth_service.url"},
		{"bad verify mode", "auth:\n  verify: maybe\n", "auth.verify"},
		{"allow does not compile", "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:1\n    allow: 'user.services in in'\n", "routes[0].allow"},
		{"bad route auth", "routes:\n  - path: /api/\n    upstream: http://127.0.0.1:1\n    auth: maybe\n", "routes[0].auth"},
	}
	bin := gatewayBinary(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "settings.yaml")
			if err := os.WriteFile(cfg, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			cmd := exec.Command(bin, "serve", "--config", cfg)
			cmd.Env = append(os.Environ(), "JWTGATE_LISTEN="+freePort(t))
			cmd.Stdout, cmd.Stderr = &out, &out
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("gateway kept running with bad settings")
			}
			if cmd.ProcessState.ExitCode() != 1 {
				t.Fatalf("exit code %d, want 1; output %s", cmd.ProcessState.ExitCode(), out.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Fatalf("message %q does not contain %q", out.String(), tt.want)
			}
		})
	}
}

// TestBinaryVersion: `jwtgate version` prints the version and exits 0.
func TestBinaryVersion(t *testing.T) {
	out, err := exec.Command(gatewayBinary(t), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "jwtgate ") {
		t.Fatalf("version: %v %q", err, out)
	}
}
