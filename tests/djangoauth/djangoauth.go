// Package djangoauth runs a real Django REST framework + SimpleJWT 5.2.2 auth
// service for jwtgate's tests, so they check the gateway against the wire
// format it meets in production rather than against a fake's idea of it.
//
// The Django project lives in ./project (see README.md for its URLs and
// environment variables). It needs Debian's python3-django,
// python3-djangorestframework, python3-djangorestframework-simplejwt and
// gunicorn, run with /usr/bin/python3.
package djangoauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultSigningKey is the HS256 secret the service signs with when
// Options.SigningKeyPEM is empty. It must match DEFAULT_SIGNING_KEY in
// project/djangoauth_project/settings.py.
const DefaultSigningKey = "jwtgate-djangoauth-test-signing-key-not-a-secret"

// python is the interpreter the service runs under. Debian's, not one found on
// PATH: a pyenv python3 there has no Django.
const python = "/usr/bin/python3"

const (
	installHint  = "install with: apt-get install -y python3-django python3-djangorestframework python3-djangorestframework-simplejwt gunicorn"
	readyTimeout = 90 * time.Second
	stopTimeout  = 15 * time.Second // gunicorn drains in 4s; a loaded 2-core machine needs more to exit
	// commandTimeout bounds migrate and the user commands; each takes under a second.
	commandTimeout = 60 * time.Second
)

// Options configures the auth service. The zero value gives HS256 with
// DefaultSigningKey, no issuer or audience, 5-minute access tokens and
// 1-day refresh tokens.
type Options struct {
	// Algorithm is SimpleJWT's ALGORITHM: HS256 (default), RS256, ES256, ...
	Algorithm string
	// SigningKeyPEM is the HMAC secret for HS* (default DefaultSigningKey) or
	// the PEM private key for RS*/ES* (required).
	SigningKeyPEM string
	// VerifyingKeyPEM is the PEM public key for RS*/ES*; the service derives
	// it from SigningKeyPEM when empty.
	VerifyingKeyPEM string
	// Issuer and Audience, when set, become the iss and aud claims and are
	// checked on every token the service decodes.
	Issuer, Audience string
	// Kid, when set, goes into every issued token's header and names the key
	// in /.well-known/jwks.json. When empty, tokens carry no kid (as stock
	// SimpleJWT 5.2.2's do) and the JWKS names its key "k1".
	Kid string
	// AccessTTL and RefreshTTL are the token lifetimes, in whole seconds
	// (defaults 5m and 24h).
	AccessTTL, RefreshTTL time.Duration
}

// Service is a running auth service, stopped by the test's cleanup.
type Service struct {
	// URL is the service's base URL, http://127.0.0.1:PORT, without a trailing slash.
	URL string

	project    string   // directory holding manage.py
	env        []string // environment for manage.py and gunicorn
	signingKey string
	logs       *tailBuffer
	proc       *process // the gunicorn master; Stop ends it
}

// Available reports whether the service can run here: nil if /usr/bin/python3
// imports django, rest_framework, rest_framework_simplejwt and gunicorn,
// otherwise an error that says which apt packages to install.
func Available() error { return available() }

var available = sync.OnceValue(func() error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c",
		"import django, rest_framework, rest_framework_simplejwt, gunicorn")
	cmd.Env = pythonEnv(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("djangoauth: %s cannot import django, rest_framework, rest_framework_simplejwt and gunicorn (%v: %s); %s",
			python, err, lastLine(out), installHint)
	}
	return nil
})

// Start migrates a fresh SQLite database in a temporary directory and serves
// the auth service from gunicorn on a free 127.0.0.1 port. It returns once the
// service answers HTTP, and fails the test if the dependencies are missing or
// the service does not come up within 30 seconds. The test's cleanup stops
// gunicorn (SIGTERM, then SIGKILL after 5 seconds) and removes the directory.
func Start(t testing.TB, opt Options) *Service {
	t.Helper()
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	project, err := projectDir()
	if err != nil {
		t.Fatalf("djangoauth: %v", err)
	}
	env, signingKey, err := opt.environ()
	if err != nil {
		t.Fatalf("djangoauth: %v", err)
	}
	// Registered before the stop cleanup below, so removed after gunicorn exits.
	dir := t.TempDir()
	s := &Service{
		project:    project,
		env:        pythonEnv(append(env, "DJANGOAUTH_DB="+filepath.Join(dir, "auth.sqlite3"))),
		signingKey: signingKey,
		logs:       &tailBuffer{max: 64 << 10},
	}
	// Migrate while gunicorn boots: booting touches no database, and neither
	// does the readiness probe (an unauthenticated GET is refused before any
	// query). This saves about half a second per Start.
	var migrateErr error
	migrated := make(chan struct{})
	go func() {
		defer close(migrated)
		_, migrateErr = s.manage("migrate", "--no-input", "-v", "0")
	}()
	// Runs before TempDir's removal, so manage.py never writes into a
	// directory being deleted, even when Start fails.
	t.Cleanup(func() { <-migrated })

	p, err := s.serve()
	if err != nil {
		t.Fatalf("djangoauth: %v; gunicorn's stderr:\n%s", err, s.logs)
	}
	s.proc = p
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("djangoauth: stop gunicorn: %v\n%s", err, s.logs)
		}
	})
	<-migrated
	if migrateErr != nil {
		t.Fatalf("djangoauth: migrate: %v", migrateErr)
	}
	return s
}

// serve starts gunicorn on a free port, sets s.URL and waits until it answers.
// The port can be taken between our probe and gunicorn's bind, so a bind
// failure gets one retry on a fresh port.
func (s *Service) serve() (*process, error) {
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		p, err := s.startGunicorn(port)
		if err != nil {
			return nil, fmt.Errorf("start gunicorn: %w", err)
		}
		s.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		err = s.waitReady(p)
		if err == nil {
			return p, nil
		}
		_ = p.stop()
		if !errors.Is(err, errPortInUse) || attempt == 2 {
			return nil, err
		}
	}
}

// CreateUser creates an active user who logs in with email and password, may
// use the given services, and is staff when staff is true. It returns the
// user's id.
func (s *Service) CreateUser(t testing.TB, email, password string, services []string, staff bool) int64 {
	t.Helper()
	args := []string{"createtestuser", "--email", email, "--password", password,
		"--services", strings.Join(services, ",")}
	if staff {
		args = append(args, "--staff")
	}
	out, err := s.manage(args...)
	if err != nil {
		// err never holds the arguments, so the password stays out of the log.
		t.Fatalf("djangoauth: createtestuser --email %s: %v", email, err)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("djangoauth: createtestuser --email %s printed %q, want an id", email, out)
	}
	return id
}

// SetActive sets the user's is_active flag, as an admin deactivating an
// account would.
func (s *Service) SetActive(t testing.TB, id int64, active bool) {
	t.Helper()
	if _, err := s.manage("setactive", "--id", strconv.FormatInt(id, 10),
		"--active", strconv.FormatBool(active)); err != nil {
		t.Fatalf("djangoauth: setactive --id %d --active %t: %v", id, active, err)
	}
}

// SigningKey returns the key the service signs tokens with: the HMAC secret
// for HS* algorithms, so tests can mint their own tokens, or the private key
// PEM for RS*/ES*.
func (s *Service) SigningKey() string { return s.signingKey }

// Logs returns the tail of gunicorn's and Django's stderr, for failure
// messages. Neither logs request bodies or headers.
func (s *Service) Logs() string { return s.logs.String() }

// environ turns the options into the DJANGOAUTH_* variables settings.py reads.
func (o Options) environ() (env []string, signingKey string, err error) {
	alg := o.Algorithm
	if alg == "" {
		alg = "HS256"
	}
	asymmetric := strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "ES")
	signingKey = o.SigningKeyPEM
	switch {
	case asymmetric && signingKey == "":
		err = errors.Join(err, fmt.Errorf("algorithm %s needs SigningKeyPEM (a PEM private key)", alg))
	case !asymmetric && signingKey == "":
		signingKey = DefaultSigningKey
	}
	if !asymmetric && o.VerifyingKeyPEM != "" {
		err = errors.Join(err, fmt.Errorf("VerifyingKeyPEM is for RS*/ES* algorithms, not %s", alg))
	}
	env = []string{"DJANGOAUTH_ALGORITHM=" + alg, "DJANGOAUTH_SIGNING_KEY=" + signingKey}
	for _, kv := range []struct{ name, value string }{
		{"DJANGOAUTH_VERIFYING_KEY", o.VerifyingKeyPEM},
		{"DJANGOAUTH_ISSUER", o.Issuer},
		{"DJANGOAUTH_AUDIENCE", o.Audience},
		{"DJANGOAUTH_KID", o.Kid},
	} {
		if kv.value != "" {
			env = append(env, kv.name+"="+kv.value)
		}
	}
	for _, ttl := range []struct {
		name string
		d    time.Duration
	}{{"DJANGOAUTH_ACCESS_TTL_SECONDS", o.AccessTTL}, {"DJANGOAUTH_REFRESH_TTL_SECONDS", o.RefreshTTL}} {
		switch {
		case ttl.d == 0:
		case ttl.d < time.Second || ttl.d%time.Second != 0:
			// Token exp and iat are whole seconds; anything finer would be silently rounded.
			err = errors.Join(err, fmt.Errorf("%s: %v is not a positive whole number of seconds", ttl.name, ttl.d))
		default:
			env = append(env, fmt.Sprintf("%s=%d", ttl.name, ttl.d/time.Second))
		}
	}
	return env, signingKey, err
}

// pythonEnv is the parent's environment minus anything that would point
// Debian's python at another installation or configure the service, plus
// extra.
func pythonEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PYTHONPATH", name == "PYTHONHOME", name == "DJANGO_SETTINGS_MODULE",
			strings.HasPrefix(name, "DJANGOAUTH_"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"DJANGO_SETTINGS_MODULE=djangoauth_project.settings",
		"PYTHONDONTWRITEBYTECODE=1", // keep __pycache__ out of the source tree
		"PYTHONUNBUFFERED=1",
	)
	return append(env, extra...)
}

// projectDir finds the Django project next to this source file, so tests in
// any package can start the service whatever their working directory.
func projectDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the djangoauth package source")
	}
	dir := filepath.Join(filepath.Dir(file), "project")
	if _, err := os.Stat(filepath.Join(dir, "manage.py")); err != nil {
		return "", fmt.Errorf("the Django project is not next to %s (built with -trimpath?): %w", file, err)
	}
	return dir, nil
}

// manage runs manage.py with args and returns its stdout. The error carries
// the exit status and stderr but never args, which may hold a password.
func (s *Service) manage(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{"manage.py"}, args...)...)
	cmd.Dir = s.project
	cmd.Env = s.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// process is a running gunicorn master.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	once sync.Once
	err  error
}

func (s *Service) startGunicorn(port int) (*process, error) {
	cmd := exec.Command(python, "-m", "gunicorn",
		"--bind", "127.0.0.1:"+strconv.Itoa(port),
		// Two sync workers, gunicorn's default kind: they exit within a few
		// hundred milliseconds of SIGTERM, where a threaded worker idles in a
		// one-second poll first. Sync workers close the connection after each
		// response (no keep-alive).
		"--workers", "2",
		"--graceful-timeout", "4", // shorter than stopTimeout, so SIGTERM suffices
		"--chdir", s.project,
		"djangoauth_project.wsgi:application")
	cmd.Dir = s.project
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	cmd.SysProcAttr = sysProcAttr()
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// With Pdeathsig the kernel signals gunicorn when the thread that
		// started it exits, so keep that thread alive until gunicorn is
		// reaped: then a test binary that dies without cleanup (a -timeout
		// panic) still takes gunicorn down with it.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
		// Exit without UnlockOSThread: the runtime then retires this thread.
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// stop sends SIGTERM and, if gunicorn has not exited after stopTimeout,
// kills its whole process group.
func (p *process) stop() error {
	var err error
	p.once.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			killGroup(p.cmd.Process)
			<-p.done
			err = fmt.Errorf("no exit within %v of SIGTERM; killed", stopTimeout)
		}
	})
	return err
}

var errPortInUse = errors.New("port already in use")

// waitReady polls until the service answers. The probe, an unauthenticated
// GET of the user endpoint, loads the URL map and views, so a broken
// configuration shows up here as a 500 rather than in a later test.
func (s *Service) waitReady(p *process) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		if strings.Contains(s.logs.String(), "Connection in use") {
			return fmt.Errorf("bind %s: %w", s.URL, errPortInUse)
		}
		resp, err := client.Get(s.URL + "/auth/user/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("readiness probe GET /auth/user/ answered %s, want 401", resp.Status)
			}
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("gunicorn exited before serving (%v)", p.err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from %s within %v (last error: %v)", s.URL, readyTimeout, err)
		}
	}
}

// freePort returns a port that was free a moment ago on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it; gunicorn's output
// goroutines write while tests read.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
