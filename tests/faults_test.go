package tests

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "gorm.io/driver/sqlite" // registers the "sqlite3" database/sql driver for the lock helper and checks

	"jwtgate/tests/fakeauth"
)

// mirrorConfig serves one route; the login throttle is off for the many
// logins from one address.
const mirrorConfig = `
listen: "127.0.0.1:0"
auth_service:
  url: "%AUTH%"
auth:
  cache:
    ttl: 1h
database:
  dsn: "%DB%"
log:
  level: warn
throttle:
  login_rate: "off"
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
`

// faultConfig: a 1s call timeout and a circuit that opens after 3
// consecutive failures and lets a trial call through after 1s.
const faultConfig = `
listen: "127.0.0.1:0"
auth_service:
  url: "%AUTH%"
  timeout: 1s
  circuit:
    failures: 3
    cool_down: 1s
auth:
  cache:
    ttl: 1h
database:
  dsn: "%DB%"
log:
  level: warn
throttle:
  login_rate: "off"
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
`

// quietGoroutines closes the test client's idle connections and returns
// the goroutine count once it has stopped changing (bounded).
func quietGoroutines() int {
	httpClient.CloseIdleConnections()
	last := runtime.NumGoroutine()
	for range 40 {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == last {
			return n
		}
		last = n
	}
	return last
}

// settleGoroutines waits (bounded) until the goroutine count is back to at
// most limit, closing the test client's idle connections first, and returns
// the last count.
func settleGoroutines(limit int) int {
	n := 0
	for range 100 {
		httpClient.CloseIdleConnections()
		if n = runtime.NumGoroutine(); n <= limit {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n
}

// goroutineSlack is what may legitimately differ between two quiet moments:
// pooled keep-alive connections (two goroutines each side) and timers.
const goroutineSlack = 12

// TestAuthServiceFaults: the auth service turns slow (answers after 2×
// auth_service.timeout), then goes down (port closed), then flaps (every
// other call a 500), then comes back. Throughout, a cached token keeps
// working; uncached tokens get 503 auth_service_unavailable, never 401,
// and once the circuit is open they get it at once, with Retry-After; a
// token refused with 503 works once the service answers; afterwards
// everything works again and no goroutine is left behind.
func TestAuthServiceFaults(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{AccessTTL: time.Hour})
	gw := startGateway(t, faultConfig, fa.URL(), startUpstream(t).URL, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(gw.Logs.String())
		}
	})
	const timeout = time.Second // auth_service.timeout above
	cached, _ := fa.IssuePair(id)
	for _, tok := range []string{cached, fresh(fa, id)} { // a cached token, and a second verify call on the pool
		if r := get(t, gw.URL+"/api/warm", tok); r.Status != http.StatusOK {
			t.Fatalf("warm-up: %d %s", r.Status, r.Body)
		}
	}
	before := quietGoroutines()

	cachedWorks := func(t *testing.T) {
		t.Helper()
		if r := get(t, gw.URL+"/api/x", cached); r.Status != http.StatusOK {
			t.Fatalf("cached token: %d %s", r.Status, r.Body)
		}
	}
	// unavailable asserts a 503 for a never-seen token and returns how long
	// it took and whether it carried Retry-After.
	unavailable := func(t *testing.T) (time.Duration, bool) {
		t.Helper()
		start := time.Now()
		r := get(t, gw.URL+"/api/x", fresh(fa, id))
		took := time.Since(start)
		wantError(t, r, http.StatusServiceUnavailable, "auth_service_unavailable")
		ra := r.Header.Get("Retry-After")
		if ra != "" {
			if n, err := strconv.Atoi(ra); err != nil || n < 1 {
				t.Fatalf("Retry-After %q is not a positive number of seconds", ra)
			}
		}
		return took, ra != ""
	}
	// openCircuit sends uncached tokens until the circuit refuses at once.
	openCircuit := func(t *testing.T) {
		t.Helper()
		for i := range 8 {
			took, retryAfter := unavailable(t)
			if retryAfter && took < timeout/2 {
				if i > 3 {
					t.Fatalf("the circuit opened only after %d failed calls (circuit.failures is 3)", i)
				}
				return
			}
			cachedWorks(t)
		}
		t.Fatal("the circuit never opened: uncached tokens keep waiting for the auth service")
	}

	t.Run("slow", func(t *testing.T) {
		fa.SetDelay(2 * timeout)
		openCircuit(t)
		cachedWorks(t)
		for range 3 { // while open: at once, with Retry-After, without calling
			calls := fa.TotalCalls()
			took, retryAfter := unavailable(t)
			if !retryAfter || took > timeout/2 {
				t.Fatalf("open circuit: 503 after %s, Retry-After %v", took, retryAfter)
			}
			if fa.TotalCalls() != calls {
				t.Fatal("the open circuit let a call through")
			}
		}
		r := login(t, gw.URL, "alice@example.com", "alice-pw")
		wantError(t, r, http.StatusServiceUnavailable, "auth_service_unavailable")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("login refused by the open circuit without Retry-After")
		}
	})

	t.Run("down", func(t *testing.T) {
		fa.SetDelay(0)
		fa.Stop()
		time.Sleep(1100 * time.Millisecond) // past the cool-down: the next call is a trial, refused by the closed port
		cachedWorks(t)
		openCircuit(t)
		cachedWorks(t)
	})

	t.Run("flapping", func(t *testing.T) {
		fa.Restart()
		fa.SetFailure(fakeauth.FailFlapping)
		for i := range 6 {
			tok := fresh(fa, id)
			ok := false
			for try := 0; try < 40 && !ok; try++ {
				r := get(t, gw.URL+"/api/x", tok)
				switch r.Status {
				case http.StatusOK:
					ok = true
				case http.StatusServiceUnavailable:
					wantError(t, r, http.StatusServiceUnavailable, "auth_service_unavailable")
					time.Sleep(100 * time.Millisecond)
				default:
					t.Fatalf("token %d while flapping: %d %s", i, r.Status, r.Body)
				}
				cachedWorks(t)
			}
			if !ok {
				t.Fatalf("token %d never got through a service that answers every other call", i)
			}
		}
	})

	t.Run("back", func(t *testing.T) {
		fa.SetFailure(fakeauth.FailNone)
		deadline := time.Now().Add(5 * time.Second)
		for get(t, gw.URL+"/api/x", fresh(fa, id)).Status != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatal("uncached tokens still refused 5s after the auth service came back")
			}
			time.Sleep(100 * time.Millisecond)
		}
		for i := range 5 {
			if r := get(t, gw.URL+"/api/x", fresh(fa, id)); r.Status != http.StatusOK {
				t.Fatalf("new token %d after recovery: %d %s", i, r.Status, r.Body)
			}
		}
		cachedWorks(t)
		tokens(t, login(t, gw.URL, "alice@example.com", "alice-pw"))
	})

	if n := settleGoroutines(before + goroutineSlack); n > before+goroutineSlack {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before the faults, %d after recovery\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// fresh mints a never-seen access token for a user.
func fresh(fa *fakeauth.Server, id int64) string {
	access, _ := fa.IssuePair(id)
	return access
}

// TestUpstreamFaults: an upstream that is down is 502, one slower than the
// route's timeout is 504 (answered at the timeout), one that resets or
// drops the connection is 502; the gateway then serves on, without a
// goroutine left behind.
func TestUpstreamFaults(t *testing.T) {
	fa, _ := newFake(t, fakeauth.Options{})
	ok := startUpstream(t)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	slowSrv := &http.Server{Handler: slow, ReadHeaderTimeout: 5 * time.Second}
	slowLn := listen(t)
	go func() { _ = slowSrv.Serve(slowLn) }()
	t.Cleanup(func() { _ = slowSrv.Close() })
	reset := badUpstream(t, func(c *net.TCPConn) { _ = c.SetLinger(0) }) // close with RST
	hangup := badUpstream(t, func(*net.TCPConn) {})                      // close with FIN, no answer
	cfg := fmt.Sprintf(`
auth_service: {url: "%%AUTH%%"}
database: {dsn: "%%DB%%"}
log: {level: error}
routes:
  - {path: /ok/, upstream: "%s", auth: none}
  - {path: /down/, upstream: "http://%s", auth: none}
  - {path: /slow/, upstream: "http://%s", auth: none, timeout: 300ms}
  - {path: /reset/, upstream: "http://%s", auth: none}
  - {path: /hangup/, upstream: "http://%s", auth: none}
`, ok.URL, freePort(t), slowLn.Addr(), reset, hangup)
	gw := startGateway(t, cfg, fa.URL(), ok.URL, nil)
	if r := get(t, gw.URL+"/ok/x", ""); r.Status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", r.Status, r.Body)
	}
	before := quietGoroutines()

	tests := []struct {
		path   string
		status int
		code   string
	}{
		{"/down/x", http.StatusBadGateway, "upstream_unavailable"},
		{"/slow/x", http.StatusGatewayTimeout, "upstream_timeout"},
		{"/reset/x", http.StatusBadGateway, "upstream_unavailable"},
		{"/hangup/x", http.StatusBadGateway, "upstream_unavailable"},
	}
	for _, tt := range tests {
		t.Run(strings.Trim(tt.path, "/x"), func(t *testing.T) {
			for range 3 {
				start := time.Now()
				wantError(t, get(t, gw.URL+tt.path, ""), tt.status, tt.code)
				if d := time.Since(start); d > 3*time.Second {
					t.Fatalf("answered after %s", d)
				}
				if r := get(t, gw.URL+"/ok/x", ""); r.Status != http.StatusOK {
					t.Fatalf("healthy route after the fault: %d %s", r.Status, r.Body)
				}
			}
		})
	}
	if n := settleGoroutines(before + goroutineSlack); n > before+goroutineSlack {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// badUpstream accepts connections, reads the request head and closes the
// connection after prepare, without answering. It returns its address.
func badUpstream(t *testing.T, prepare func(*net.TCPConn)) string {
	t.Helper()
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = http.ReadRequest(bufio.NewReader(c))
				prepare(c.(*net.TCPConn))
				_ = c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// helperEnv makes the test binary run a helper process instead of tests
// (see TestMain).
const helperEnv = "JWTGATE_TEST_HELPER"

// runHelper is a helper process: "sqlite-lock DB DURATION" opens the
// database, takes its write lock (BEGIN IMMEDIATE), prints "locked", holds
// it for DURATION and rolls back.
func runHelper(args []string) int {
	if len(args) != 3 || args[0] != "sqlite-lock" {
		fmt.Fprintf(os.Stderr, "helper: unknown arguments %q\n", args)
		return 2
	}
	hold, err := time.ParseDuration(args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	ctx := context.Background()
	db, err := sql.Open("sqlite3", "file:"+args[1]+"?_busy_timeout=10000")
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		fmt.Fprintln(os.Stderr, "helper: lock:", err)
		return 1
	}
	fmt.Println("locked")
	time.Sleep(hold)
	_, _ = conn.ExecContext(ctx, "ROLLBACK")
	return 0
}

// openSQLite opens a SQLite file for checks from the test; busy is its
// busy timeout (0: fail at once when locked).
func openSQLite(t *testing.T, path string, busy time.Duration) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", fmt.Sprintf("file:%s?_busy_timeout=%d", path, busy.Milliseconds()))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// mirrorCheck returns the ids in the users table and fails the test unless
// PRAGMA integrity_check says ok.
func mirrorCheck(t *testing.T, path string) map[string]bool {
	t.Helper()
	db := openSQLite(t, path, 10*time.Second)
	var verdict string
	if err := db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&verdict); err != nil || verdict != "ok" {
		t.Fatalf("integrity_check: %q %v", verdict, err)
	}
	rows, err := db.QueryContext(t.Context(), "SELECT id FROM users")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// loginUsers makes n users user0..user{n-1}@example.com (password "pw").
func loginUsers(fa *fakeauth.Server, n int) map[string]string {
	ids := map[string]string{}
	for i := range n {
		email := fmt.Sprintf("user%d@example.com", i)
		u := fa.AddUser(fakeauth.User{Email: email, Password: "pw"})
		ids[email] = strconv.FormatInt(u.ID, 10)
	}
	return ids
}

// TestSQLiteWriteLockDuringLogins: another process holds the mirror's write
// lock for 3s while 20 users log in. Every login still returns the auth
// service's tokens, every user ends up in the mirror, and the file passes
// PRAGMA integrity_check.
func TestSQLiteWriteLockDuringLogins(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	ids := loginUsers(fa, 21)
	gw := startGateway(t, mirrorConfig, fa.URL(), startUpstream(t).URL, nil)
	tokens(t, login(t, gw.URL, "user20@example.com", "pw")) // the schema and WAL exist

	helper := exec.Command(os.Args[0], "sqlite-lock", gw.DBDSN, "3s")
	helper.Env = append(os.Environ(), helperEnv+"=1")
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var helperErr strings.Builder
	helper.Stderr = &helperErr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	helperDone := make(chan error, 1)
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		helperDone <- helper.Wait()
	}()
	t.Cleanup(func() { _ = helper.Process.Kill() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("lock helper: %q %v %s", line, err, helperErr.String())
	}
	// The lock is real: a writer that does not wait is refused.
	if _, err := openSQLite(t, gw.DBDSN, 0).ExecContext(t.Context(), "UPDATE users SET email = email WHERE id = 'none'"); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("write during the helper's lock: %v, want database is locked", err)
	}

	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 20 {
		email := fmt.Sprintf("user%d@example.com", i)
		wg.Go(func() {
			r := login(t, gw.URL, email, "pw")
			access, _ := tokens(t, r)
			if claims := claimsOf(t, access); fmt.Sprint(claims["user_id"]) != ids[email] {
				failed.Add(1)
				t.Errorf("%s got a token for user %v", email, claims["user_id"])
			}
		})
	}
	wg.Wait()
	select {
	case err := <-helperDone:
		if err != nil {
			t.Fatalf("lock helper: %v %s", err, helperErr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("lock helper did not finish")
	}
	mirrored := mirrorCheck(t, gw.DBDSN)
	for email, id := range ids {
		if !mirrored[id] {
			t.Errorf("%s (id %s) is not in the mirror", email, id)
		}
	}
	if strings.Contains(gw.Logs.String(), "mirror write failed") {
		t.Errorf("mirror writes failed:\n%s", gw.Logs.String())
	}
}

// claimsOf decodes a JWT's claims without checking anything.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatalf("claims: %v", err)
	}
	return m
}

// TestCrashDuringLogins: the gateway binary is killed with SIGKILL while 50
// users log in at once. Restarted on the same database, it serves, every
// user whose login got a 200 before the kill is in the mirror, and the file
// passes PRAGMA integrity_check.
func TestCrashDuringLogins(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	ids := loginUsers(fa, 50)
	fa.SetDelay(20 * time.Millisecond) // spread the logins so the kill lands among them
	up := startUpstream(t)
	db := filepath.Join(t.TempDir(), "jwtgate.db")
	p := startProcess(t, mirrorConfig, fa.URL(), up.URL, db)

	var mu sync.Mutex
	var okUsers []string
	var done atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 50 {
		email := fmt.Sprintf("user%d@example.com", i)
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 4 * time.Millisecond)
			resp, err := client.Post(p.URL+"/auth/token/", "application/json",
				strings.NewReader(`{"email":"`+email+`","password":"pw"}`))
			if err != nil {
				return // cut off by the kill
			}
			defer resp.Body.Close()
			if _, err := io.ReadAll(resp.Body); err == nil && resp.StatusCode == http.StatusOK {
				mu.Lock()
				okUsers = append(okUsers, email)
				mu.Unlock()
				done.Add(1)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for done.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 10*time.Second)
	wg.Wait()
	mu.Lock()
	got := append([]string(nil), okUsers...)
	mu.Unlock()
	t.Logf("%d of 50 logins answered 200 before the kill", len(got))
	if len(got) == 0 || len(got) == 50 {
		t.Fatalf("%d logins answered 200: the kill did not land during the logins", len(got))
	}

	fa.SetDelay(0)
	p2 := startProcess(t, mirrorConfig, fa.URL(), up.URL, db)
	access, _ := tokens(t, login(t, p2.URL, "user49@example.com", "pw"))
	if r := get(t, p2.URL+"/api/x", access); r.Status != http.StatusOK {
		t.Fatalf("API call after restart: %d %s", r.Status, r.Body)
	}
	mirrored := mirrorCheck(t, db)
	for _, email := range got {
		if !mirrored[ids[email]] {
			t.Errorf("%s got 200 before the kill but is not in the mirror", email)
		}
	}
}

// TestRestartWithChangedSettings: the same database serves a restart with a
// different settings.yaml: the removed route is gone (404), the remaining
// one serves the old token, and the user comes from the mirror without
// another fetch.
func TestRestartWithChangedSettings(t *testing.T) {
	fa, id := newFake(t, fakeauth.Options{AccessTTL: time.Hour})
	up := startUpstream(t)
	db := filepath.Join(t.TempDir(), "jwtgate.db")
	before := mirrorConfig + `  - path: "/reports/"
    upstream: "%UPSTREAM%"
`
	after := strings.Replace(mirrorConfig, "ttl: 1h", "ttl: 10m\n    size: 5000", 1)

	p := startProcess(t, before, fa.URL(), up.URL, db)
	access, _ := tokens(t, login(t, p.URL, "alice@example.com", "alice-pw"))
	for _, path := range []string{"/api/x", "/reports/x"} {
		if r := get(t, p.URL+path, access); r.Status != http.StatusOK {
			t.Fatalf("%s before the restart: %d %s", path, r.Status, r.Body)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, p.output.String())
	}

	userCalls := fa.Calls("/auth/users/" + strconv.FormatInt(id, 10) + "/")
	p2 := startProcess(t, after, fa.URL(), up.URL, db)
	wantError(t, get(t, p2.URL+"/reports/x", access), http.StatusNotFound, "not_found")
	if r := get(t, p2.URL+"/api/x", access); r.Status != http.StatusOK {
		t.Fatalf("/api/x after the restart: %d %s", r.Status, r.Body)
	}
	if n := fa.Calls("/auth/users/" + strconv.FormatInt(id, 10) + "/"); n != userCalls {
		t.Fatalf("the user was fetched again (%d calls, %d before): the mirror was not used", n, userCalls)
	}
	if ids := mirrorCheck(t, db); !ids[strconv.FormatInt(id, 10)] {
		t.Fatal("alice is not in the mirror")
	}
}
