package cli

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// `jwtgate systemd-unit` prints jwtgate.service byte for byte: a dedicated
// user, everything read-only but the state directory, reload by SIGHUP.
func TestPlatformsSystemdUnitCommand(t *testing.T) {
	want, err := os.ReadFile("jwtgate.service")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "systemd-unit")
	if err != nil || out != string(want) {
		t.Fatalf("systemd-unit: %v; output differs from jwtgate.service:\n%s", err, out)
	}
	for _, line := range []string{
		"ExecStart=/usr/local/bin/jwtgate serve --config /etc/jwtgate/settings.yaml\n",
		"ExecReload=/bin/kill -HUP $MAINPID\n", "DynamicUser=yes\n", "User=jwtgate\n",
		"ProtectSystem=strict\n", "StateDirectory=jwtgate\n", "WorkingDirectory=/var/lib/jwtgate\n",
		"NoNewPrivileges=yes\n", "CapabilityBoundingSet=\n",
	} {
		if !strings.Contains(out, "\n"+line) {
			t.Errorf("unit lacks the line %q", strings.TrimSpace(line))
		}
	}
	if _, _, err := runCLI(t, "systemd-unit", "extra"); err == nil {
		t.Fatal("systemd-unit extra: no error")
	}
	if out, _, err := runCLI(t, "systemd-unit", "--help"); err != nil || !strings.Contains(out, "usage: jwtgate systemd-unit") {
		t.Fatalf("systemd-unit --help: %v %q", err, out)
	}
	if out, _, _ := runCLI(t, "--help"); !strings.Contains(out, "systemd-unit") {
		t.Fatalf("--help does not list systemd-unit:\n%s", out)
	}
}

// platformsHealthConfig writes settings whose listen address is listen.
func platformsHealthConfig(t *testing.T, listen string) string {
	t.Helper()
	return writeConfig(t, "listen: \""+listen+"\"\ndatabase: {dsn: \""+filepath.Join(t.TempDir(), "m.db")+"\"}\n")
}

// `jwtgate healthcheck` succeeds only when /healthz on the configured listen
// address answers 200; a wildcard listen address is asked on loopback.
func TestPlatformsHealthcheck(t *testing.T) {
	var mu sync.Mutex
	status := http.StatusOK
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		paths = append(paths, r.URL.Path)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	for _, listen := range []string{strings.TrimPrefix(srv.URL, "http://"), "0.0.0.0:" + port, ":" + port} {
		out, _, err := runCLI(t, "healthcheck", "--config", platformsHealthConfig(t, listen))
		if err != nil || !strings.HasPrefix(out, "ok: http://127.0.0.1:"+port+"/healthz") {
			t.Fatalf("listen %s: healthcheck: %v %q", listen, err, out)
		}
	}
	mu.Lock()
	if len(paths) != 3 || paths[0] != "/healthz" {
		t.Fatalf("the gateway was asked for %v", paths)
	}
	status = http.StatusServiceUnavailable
	mu.Unlock()
	if _, _, err := runCLI(t, "healthcheck", "--config", platformsHealthConfig(t, strings.TrimPrefix(srv.URL, "http://"))); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("503: err %v", err)
	}
	srv.Close()
	if _, _, err := runCLI(t, "healthcheck", "--config", platformsHealthConfig(t, "127.0.0.1:"+port)); err == nil {
		t.Fatal("nothing listening: no error")
	}
	if _, _, err := runCLI(t, "healthcheck", "extra"); err == nil {
		t.Fatal("healthcheck extra: no error")
	}
	if u, err := healthURL("[::]:8001"); err != nil || u != "http://[::1]:8001/healthz" {
		t.Fatalf("[::]:8001: %q %v", u, err)
	}
}
