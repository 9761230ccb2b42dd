package tests

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// platformsSystemdAnalyze is where Debian's systemd package (tests/setup.sh)
// installs systemd-analyze.
const platformsSystemdAnalyze = "systemd-analyze"

// platformsUnit returns the unit `jwtgate systemd-unit` prints, from the
// built binary.
func platformsUnit(t *testing.T) []byte {
	t.Helper()
	out, err := exec.Command(gatewayBinary(t), "systemd-unit").Output()
	if err != nil {
		t.Fatalf("jwtgate systemd-unit: %v", err)
	}
	return out
}

// The unit `jwtgate systemd-unit` prints passes systemd-analyze verify
// without a single warning (an unknown or misspelt option is only a
// warning there), with ExecStart pointing at the built binary, and
// systemd-analyze security rates its exposure 2.0 or better.
func TestPlatformsSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath(platformsSystemdAnalyze)
	if err != nil {
		t.Fatalf("systemd-analyze is not installed (tests/setup.sh installs systemd): %v", err)
	}
	unit := platformsUnit(t)
	const exec0 = "/usr/local/bin/jwtgate "
	if !bytes.Contains(unit, []byte("\nExecStart="+exec0)) {
		t.Fatalf("unit does not start %s:\n%s", exec0, unit)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "jwtgate")
	b, err := os.ReadFile(gatewayBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "jwtgate.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte(exec0), []byte(bin+" ")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
	}
	t.Logf("%s", platformsLastLine(out))

	// The checks above catch a broken unit: an unknown option is a warning.
	broken := bytes.Replace(unit, []byte("ProtectSystem=strict"), []byte("ProtectSystem=strict\nProtectSytem=full"), 1)
	if err := os.WriteFile(path, bytes.ReplaceAll(broken, []byte(exec0), []byte(bin+" ")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(analyze, "verify", path).CombinedOutput(); !bytes.Contains(out, []byte("ProtectSytem")) {
		t.Fatalf("systemd-analyze verify did not report an unknown option: %s", out)
	}
}

func platformsLastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// The README quotes the unit `jwtgate systemd-unit` prints, byte for byte.
func TestPlatformsReadmeQuotesSystemdUnit(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if unit := platformsUnit(t); !bytes.Contains(readme, unit) {
		t.Fatalf("README.md does not quote the output of jwtgate systemd-unit (handlers/cli/jwtgate.service) verbatim")
	}
}

// `jwtgate version` names the versions of gin, gorm and the JWT library
// the binary was built with.
func TestPlatformsVersionNamesDependencies(t *testing.T) {
	out, err := exec.Command(gatewayBinary(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range []string{"github.com/gin-gonic/gin", "gorm.io/gorm", "github.com/golang-jwt/jwt/v5", "gorm.io/driver/sqlite", "gorm.io/driver/postgres"} {
		if !regexp.MustCompile(`\n\s+` + regexp.QuoteMeta(dep) + ` v\d+\.\d+\.\d+`).Match(out) {
			t.Errorf("version does not name %s's version:\n%s", dep, out)
		}
	}
}

// platformsDockerfile is a parsed Dockerfile: its instructions with line
// continuations joined, in order.
type platformsDockerfile []platformsInstr

// platformsInstr is one Dockerfile instruction.
type platformsInstr struct{ cmd, args string }

func platformsParseDockerfile(t *testing.T, path string) platformsDockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out platformsDockerfile
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur != "" && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		out = append(out, platformsInstr{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur = ""
	}
	if cur != "" {
		t.Fatalf("Dockerfile ends inside a continued line: %q", cur)
	}
	return out
}

// final returns the instructions of the last stage (after the last FROM).
func (d platformsDockerfile) final() platformsDockerfile {
	for i := len(d) - 1; i >= 0; i-- {
		if d[i].cmd == "FROM" {
			return d[i:]
		}
	}
	return nil
}

func (d platformsDockerfile) all(cmd string) []string {
	var out []string
	for _, in := range d {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// The Dockerfile cannot be built here (no container engine, no base-image
// pulls): check what it says instead. A Go build stage, then a runtime
// stage that is not the Go image, holds the binary and the default
// settings.yaml, runs as a non-root user, exposes the default port the
// settings listen on, and checks health with jwtgate itself.
func TestPlatformsDockerfile(t *testing.T) {
	d := platformsParseDockerfile(t, "../Dockerfile")
	known := map[string]bool{"FROM": true, "WORKDIR": true, "COPY": true, "RUN": true, "ARG": true, "ENV": true, "USER": true,
		"EXPOSE": true, "HEALTHCHECK": true, "ENTRYPOINT": true, "CMD": true, "VOLUME": true, "LABEL": true}
	for _, in := range d {
		if !known[in.cmd] {
			t.Errorf("unknown instruction %s %s", in.cmd, in.args)
		}
	}
	froms := d.all("FROM")
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:") || !strings.Contains(froms[0], " AS ") {
		t.Fatalf("want a multi-stage build from a golang builder, got FROM %q", froms)
	}
	build := strings.Fields(froms[0])[2]
	final := d.final()
	if strings.HasPrefix(final[0].args, "golang:") {
		t.Fatalf("the runtime stage is the Go image: %s", final[0].args)
	}
	var bin, settings bool
	for _, c := range final.all("COPY") {
		f := strings.Fields(c)
		if len(f) < 3 || f[0] != "--from="+build {
			continue
		}
		src, dst := f[len(f)-2], f[len(f)-1]
		bin = bin || (strings.HasSuffix(src, "/jwtgate") && dst == "/usr/local/bin/jwtgate")
		settings = settings || (strings.HasSuffix(src, "/settings.yaml") && dst == "/etc/jwtgate/settings.yaml")
	}
	if !bin || !settings {
		t.Fatalf("the runtime stage lacks the binary (%v) or the default settings.yaml (%v): %q", bin, settings, final.all("COPY"))
	}
	if !platformsHasPrefix(d.all("COPY"), "go.mod go.sum") {
		t.Errorf("the builder does not copy go.mod and go.sum first (module cache layer)")
	}
	users := final.all("USER")
	if len(users) == 0 {
		t.Fatal("the runtime stage sets no USER: it would run as root")
	}
	if u := strings.Split(users[len(users)-1], ":")[0]; u == "root" || u == "0" {
		t.Fatalf("runs as root: USER %s", users[len(users)-1])
	}
	env := strings.Join(final.all("ENV"), " ")
	if !strings.Contains(env, "JWTGATE_CONFIG=/etc/jwtgate/settings.yaml") {
		t.Errorf("JWTGATE_CONFIG does not name the copied settings: ENV %s", env)
	}
	m := regexp.MustCompile(`JWTGATE_LISTEN=0\.0\.0\.0:(\d+)`).FindStringSubmatch(env)
	if m == nil {
		t.Fatalf("the gateway would listen on loopback only inside the container: ENV %s", env)
	}
	if exp := final.all("EXPOSE"); len(exp) != 1 || exp[0] != m[1] {
		t.Fatalf("EXPOSE %q, but the gateway listens on %s", exp, m[1])
	}
	hc := final.all("HEALTHCHECK")
	if len(hc) != 1 || !strings.Contains(hc[0], `CMD ["/usr/local/bin/jwtgate", "healthcheck"]`) {
		t.Fatalf("HEALTHCHECK %q, want the binary's healthcheck command", hc)
	}
	if ep := final.all("ENTRYPOINT"); len(ep) != 1 || ep[0] != `["/usr/local/bin/jwtgate"]` {
		t.Fatalf("ENTRYPOINT %q", ep)
	}
	// The commands the image runs exist in this binary.
	for _, cmd := range []string{"serve", "healthcheck"} {
		if out, err := exec.Command(gatewayBinary(t), cmd, "--help").Output(); err != nil || !strings.Contains(string(out), "usage: jwtgate "+cmd) {
			t.Fatalf("jwtgate %s --help: %v %s", cmd, err, out)
		}
	}
}

func platformsHasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// `jwtgate healthcheck`, the image's HEALTHCHECK, exits 0 while the built
// binary serves on JWTGATE_LISTEN and 1 once it has stopped.
func TestPlatformsHealthcheckAgainstTheBinary(t *testing.T) {
	fa, _ := newFake(t, fakeauth.Options{})
	up := startUpstream(t)
	p := startProcess(t, baseConfig, fa.URL(), up.URL, "")
	cfg := filepath.Join(t.TempDir(), "settings.yaml")
	yaml := strings.NewReplacer("%AUTH%", fa.URL(), "%UPSTREAM%", up.URL, "%DB%", filepath.Join(t.TempDir(), "x.db")).Replace(baseConfig)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	health := func() (string, error) {
		cmd := exec.Command(gatewayBinary(t), "healthcheck", "--config", cfg)
		cmd.Env = append(os.Environ(), "JWTGATE_LISTEN="+strings.TrimPrefix(p.URL, "http://"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := health(); err != nil || !strings.Contains(out, "ok: "+p.URL+"/healthz") {
		t.Fatalf("healthcheck of a serving gateway: %v\n%s", err, out)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("gateway exited %d", code)
	}
	out, err := health()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("healthcheck of a stopped gateway: %v, want exit status 1\n%s", err, out)
	}
}
