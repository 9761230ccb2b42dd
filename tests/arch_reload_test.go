package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"jwtgate/models"
	"jwtgate/tests/fakeauth"
)

// reloadRoutes is a settings file with one of two route sets: set A sends
// /api/ to upstream A with X-User-* identity headers, set B to upstream B
// with X-Member-*. An answer from A with X-Member-Id (or the reverse)
// would be a mix of the two sets.
const reloadRoutes = `
listen: "127.0.0.1:0"
auth_service: {url: "%AUTH%", timeout: 2s}
database: {driver: sqlite, dsn: "%DB%"}
identity_headers: {prefix: "%PREFIX%"}
%EXTRA%
routes:
  - path: "/api/"
    upstream: "%UP%"
  - path: "/only-%SET%/"
    upstream: "%UP%"
`

// reloadEnv is a gateway, its fake auth service and the two upstreams.
type reloadEnv struct {
	fa       *fakeauth.Server
	upA, upB *upstream
	token    string
	db       string
	extra    string
}

func newReloadEnv(t *testing.T, extra string) *reloadEnv {
	t.Helper()
	fa, id := newFake(t, fakeauth.Options{})
	access, _ := fa.IssuePair(id)
	return &reloadEnv{fa: fa, upA: startUpstream(t), upB: startUpstream(t), token: access,
		db: filepath.Join(t.TempDir(), "jwtgate.db"), extra: extra}
}

// yaml is route set "A" or "B".
func (e *reloadEnv) yaml(set string) string {
	up, prefix := e.upA.URL, "X-User-"
	if set == "B" {
		up, prefix = e.upB.URL, "X-Member-"
	}
	return fill(reloadRoutes, "AUTH", e.fa.URL(), "DB", e.db, "UP", up, "PREFIX", prefix, "SET", set, "EXTRA", e.extra)
}

// load is a reload loader for route set "A" or "B".
func (e *reloadEnv) load(set string) func() (models.Settings, error) {
	return func() (models.Settings, error) {
		return models.LoadSettings(strings.NewReader(e.yaml(set)), func(string) string { return "" })
	}
}

// reloadSet says which route set answered a request to /api/, or why the
// answer belongs to neither.
func (e *reloadEnv) reloadSet(status int, body []byte) string {
	if status != http.StatusOK {
		return fmt.Sprintf("status %d: %s", status, body)
	}
	var got echo
	if err := json.Unmarshal(body, &got); err != nil {
		return fmt.Sprintf("not an upstream's echo: %s", body)
	}
	hostA, hostB := strings.TrimPrefix(e.upA.URL, "http://"), strings.TrimPrefix(e.upB.URL, "http://")
	user, member := got.Headers.Get("X-User-Id") != "", got.Headers.Get("X-Member-Id") != ""
	switch {
	case got.Host == hostA && user && !member:
		return "A"
	case got.Host == hostB && member && !user:
		return "B"
	}
	return fmt.Sprintf("a mix of the sets: host %s, X-User-Id %v, X-Member-Id %v", got.Host, user, member)
}

// Under a steady load of authenticated requests, 20 reloads alternating two
// route sets: no 5xx, no connection error, every answer wholly from one set
// (upstream and identity headers), both sets seen, and the verify cache
// kept (the token is verified once for the whole run).
func TestReloadUnderLoadAlternatingRouteSets(t *testing.T) {
	e := newReloadEnv(t, "")
	gw := startGateway(t, e.yaml("A"), e.fa.URL(), "", nil)
	if r := get(t, gw.URL+"/api/x", e.token); e.reloadSet(r.Status, r.Body) != "A" { // the token's verdict is cached now
		t.Fatalf("before any reload: %d %s", r.Status, r.Body)
	}
	misses := scrape(t, miscMetricsURL(t, gw)).get("jwtgate_verify_cache_misses_total")
	client := &http.Client{Timeout: 10 * time.Second}
	var stop atomic.Bool
	var seenA, seenB, total atomic.Int64
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 200000 && !stop.Load(); i++ {
				req, _ := http.NewRequest(http.MethodGet, gw.URL+"/api/x", nil)
				req.Header.Set("Authorization", "Bearer "+e.token)
				resp, err := client.Do(req)
				var set string
				if err != nil {
					set = "connection error: " + err.Error()
				} else {
					var b []byte
					b, err = readAll(resp)
					set = e.reloadSet(resp.StatusCode, b)
					if err != nil {
						set = "read error: " + err.Error()
					}
				}
				total.Add(1)
				switch set {
				case "A":
					seenA.Add(1)
				case "B":
					seenB.Add(1)
				default:
					mu.Lock()
					if len(bad) < 10 {
						bad = append(bad, set)
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range 20 {
		set := "B"
		if i%2 == 1 {
			set = "A"
		}
		before := total.Load()
		if err := gw.GW.Reload(t.Context(), e.load(set)); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("reload %d to %s: %v", i, set, err)
		}
		// Let some requests through on each set (bounded).
		for j := 0; j < 400 && total.Load() < before+20; j++ {
			time.Sleep(5 * time.Millisecond)
		}
		// After the swap every new request is on the new set.
		if r := get(t, gw.URL+"/only-"+set+"/x", e.token); r.Status != http.StatusOK {
			t.Fatalf("reload %d: /only-%s/ answered %d after the reload", i, set, r.Status)
		}
	}
	stop.Store(true)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d requests; answers from neither set: %q", total.Load(), bad)
	}
	if seenA.Load() == 0 || seenB.Load() == 0 {
		t.Fatalf("sets seen: A %d, B %d", seenA.Load(), seenB.Load())
	}
	m := scrape(t, miscMetricsURL(t, gw))
	if got := m.get("jwtgate_config_reloads_total", "result=ok"); got != 20 {
		t.Fatalf("reloads counted ok: %v, want 20", got)
	}
	if got := m.get("jwtgate_verify_cache_misses_total"); got != misses {
		t.Fatalf("the verify cache did not survive the reloads: %v misses, %v before", got, misses)
	}
	t.Logf("%d requests: A %d, B %d", total.Load(), seenA.Load(), seenB.Load())
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// An invalid settings file changes nothing: the reload is refused and
// counted, every problem is logged, /readyz stays 200 and the old routes
// keep answering. A change of listen or database is kept as it was and
// reported as needing a restart.
func TestReloadInvalidChangesNothing(t *testing.T) {
	e := newReloadEnv(t, "")
	gw := startGateway(t, e.yaml("A"), e.fa.URL(), "", nil)
	bad := strings.Replace(e.yaml("B"), `upstream: "`+e.upB.URL+`"`, `upstream: "`+e.upB.URL+`"
    allow: 'user.is_staff &&'`, 1) + "trusted_proxies: [\"not-an-address\"]\n"
	err := gw.GW.Reload(t.Context(), func() (models.Settings, error) {
		return models.LoadSettings(strings.NewReader(bad), func(string) string { return "" })
	})
	if err == nil {
		t.Fatal("an invalid file was accepted")
	}
	for _, key := range []string{"routes[0].allow", "trusted_proxies"} {
		if !strings.Contains(gw.Logs.String(), key) {
			t.Errorf("problem %s not logged:\n%s", key, gw.Logs.String())
		}
	}
	r := get(t, gw.URL+"/api/x", e.token)
	if set := e.reloadSet(r.Status, r.Body); set != "A" {
		t.Fatalf("after a refused reload: %s", set)
	}
	if r := get(t, gw.URL+"/only-B/x", e.token); r.Status != http.StatusNotFound {
		t.Fatalf("/only-B/ answered %d after a refused reload", r.Status)
	}
	if r := get(t, gw.URL+"/readyz", ""); r.Status != http.StatusOK {
		t.Fatalf("/readyz %d after a refused reload: %s", r.Status, r.Body)
	}
	m := scrape(t, miscMetricsURL(t, gw))
	if m.get("jwtgate_config_reloads_total", "result=error") != 1 || m.get("jwtgate_config_reloads_total", "result=ok") != 0 {
		t.Fatalf("reloads counted: ok %v, error %v", m.get("jwtgate_config_reloads_total", "result=ok"), m.get("jwtgate_config_reloads_total", "result=error"))
	}

	// listen and database cannot change live: kept, and said so.
	moved := strings.Replace(strings.Replace(e.yaml("B"), `listen: "127.0.0.1:0"`, `listen: "127.0.0.1:1"`, 1),
		e.db, filepath.Join(t.TempDir(), "other.db"), 1)
	if err := gw.GW.Reload(t.Context(), func() (models.Settings, error) {
		return models.LoadSettings(strings.NewReader(moved), func(string) string { return "" })
	}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"listen", "database"} {
		if !strings.Contains(gw.Logs.String(), "settings reload: "+key+" changed; it needs a restart") {
			t.Errorf("%s change not reported as needing a restart", key)
		}
	}
	r = get(t, gw.URL+"/api/x", e.token)
	if set := e.reloadSet(r.Status, r.Body); set != "B" {
		t.Fatalf("after a valid reload: %s", set)
	}
}

// reloadWaitFor polls /only-<set>/ until it answers 200 (bounded).
func reloadWaitFor(t *testing.T, p *process, set, token string) {
	t.Helper()
	eventually(t, 15*time.Second, func() string {
		if r := get(t, p.URL+"/only-"+set+"/x", token); r.Status != http.StatusOK {
			return fmt.Sprintf("/only-%s/ answers %d\n%s", set, r.Status, p.output.String())
		}
		return ""
	})
}

// reloadWrite replaces the settings file the way an editor or a
// deployment tool does: a new file renamed over the old one.
func reloadWrite(t *testing.T, path, yaml string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// The binary reloads its settings file on a real SIGHUP; a broken file
// sent with SIGHUP changes nothing and the process keeps serving.
func TestReloadBinarySIGHUP(t *testing.T) {
	e := newReloadEnv(t, "")
	p := startProcess(t, e.yaml("A"), e.fa.URL(), "", e.db)
	reloadWaitFor(t, p, "A", e.token)
	reloadWrite(t, p.config, e.yaml("B")+"metrics_listen: \"127.0.0.1:0\"\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloadWaitFor(t, p, "B", e.token)
	reloadWrite(t, p.config, "routes: [\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() string {
		if !strings.Contains(p.output.String(), "settings reload refused") {
			return "the refused reload was not logged:\n" + p.output.String()
		}
		return ""
	})
	reloadWaitFor(t, p, "B", e.token)
	if r := get(t, p.URL+"/api/x", e.token); e.reloadSet(r.Status, r.Body) != "B" {
		t.Fatalf("after a broken file: %d %s", r.Status, r.Body)
	}
}

// With reload.watch: true the binary reloads when its settings file
// changes, without a signal.
func TestReloadBinaryWatchesFile(t *testing.T) {
	e := newReloadEnv(t, "reload: {watch: true}")
	p := startProcess(t, e.yaml("A"), e.fa.URL(), "", e.db)
	reloadWaitFor(t, p, "A", e.token)
	reloadWrite(t, p.config, e.yaml("B")+"metrics_listen: \"127.0.0.1:0\"\n")
	reloadWaitFor(t, p, "B", e.token)
	if r := get(t, p.URL+"/api/x", e.token); e.reloadSet(r.Status, r.Body) != "B" {
		t.Fatalf("after the file changed: %d %s", r.Status, r.Body)
	}
}
