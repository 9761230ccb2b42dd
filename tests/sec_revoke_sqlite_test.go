package tests

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// revokeCLI runs the built jwtgate with args against cfg and returns its
// output; it fails the test on a non-zero exit.
func revokeCLI(t *testing.T, cfg string, args ...string) string {
	t.Helper()
	cmd := exec.Command(gatewayBinary(t), append(args, "--config", cfg)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jwtgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// revokeProcessStatus waits (bounded) until the gateway process answers
// token with want.
func revokeProcessStatus(t *testing.T, p *process, token string, want int, within time.Duration) {
	t.Helper()
	eventually(t, within, func() string {
		if r := get(t, p.URL+"/api/x", token); r.Status != want {
			return fmt.Sprintf("answers %d, want %d: %s", r.Status, want, r.Body)
		}
		return ""
	})
}

// TestSecRevokeSQLiteCLIAndRestart: on SQLite the CLI is another process;
// its users revoke / deactivate / activate reach the running gateway
// within a second or two (it polls the change table); a logout and a
// user's cutoff survive a restart; audit prints the CLI's actions; the
// admin API is off (404) without admin.allow.
func TestSecRevokeSQLiteCLIAndRestart(t *testing.T) {
	fa, aliceID := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "jwtgate.db")
	cfg := filepath.Join(dir, "cli.yaml")
	cliYAML := strings.NewReplacer("%AUTH%", fa.URL(), "%UPSTREAM%", up.URL, "%DB%", db).Replace(baseConfig)
	if err := os.WriteFile(cfg, []byte(cliYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, baseConfig, fa.URL(), up.URL, db)
	id := itoa(aliceID)

	old, _ := tokens(t, login(t, p.URL, "alice@example.com", "alice-pw"))
	out, outRefresh := tokens(t, login(t, p.URL, "alice@example.com", "alice-pw"))
	revokeProcessStatus(t, p, old, http.StatusOK, 0)
	wantError(t, get(t, p.URL+"/admin/users/", old), http.StatusNotFound, "not_found")
	wantError(t, call(t, http.MethodPost, p.URL+"/admin/users/"+id+"/revoke", "application/json", "{}", "Authorization", "Bearer "+old), http.StatusNotFound, "not_found")

	body := fmt.Sprintf(`{"refresh":%q,"access":%q}`, outRefresh, out)
	if r := call(t, http.MethodPost, p.URL+"/auth/token/blacklist/", "application/json", body); r.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	revokeProcessStatus(t, p, out, http.StatusUnauthorized, 0)

	revokeNextSecond()
	if o := revokeCLI(t, cfg, "users", "revoke", id); !strings.Contains(o, "revoked the tokens of user "+id) {
		t.Fatalf("users revoke: %s", o)
	}
	fresh, _ := tokens(t, login(t, p.URL, "alice@example.com", "alice-pw"))
	revokeProcessStatus(t, p, old, http.StatusUnauthorized, 3*time.Second)
	revokeProcessStatus(t, p, fresh, http.StatusOK, 0)

	revokeNextSecond()
	revokeCLI(t, cfg, "users", "deactivate", id)
	revokeProcessStatus(t, p, fresh, http.StatusForbidden, 3*time.Second)
	revokeCLI(t, cfg, "users", "activate", id)
	newest, _ := tokens(t, login(t, p.URL, "alice@example.com", "alice-pw"))
	revokeProcessStatus(t, p, newest, http.StatusOK, 3*time.Second)
	revokeProcessStatus(t, p, fresh, http.StatusUnauthorized, 0) // revoked by the deactivation

	a := revokeCLI(t, cfg, "audit")
	for _, action := range []string{"revoke", "deactivate", "activate"} {
		if !strings.Contains(a, "cli    "+action) && !strings.Contains(a, "cli  "+action) {
			t.Fatalf("audit has no %s by the CLI:\n%s", action, a)
		}
	}
	if a := revokeCLI(t, cfg, "audit", "--since", "2000-01-01T00:00:00Z"); !strings.Contains(a, id) {
		t.Fatalf("audit --since: %s", a)
	}

	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.output)
	}
	q := startProcess(t, baseConfig, fa.URL(), up.URL, db)
	revokeProcessStatus(t, q, out, http.StatusUnauthorized, 0) // the logout, from revoked_tokens
	revokeProcessStatus(t, q, old, http.StatusUnauthorized, 0) // the cutoff, from users
	revokeProcessStatus(t, q, newest, http.StatusOK, 0)
}
