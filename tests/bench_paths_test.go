package tests

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/tests/fakeauth"
)

// The BenchmarkPath* benchmarks are the load rows in one process. Wall
// times on a shared 2-core machine are noise; count instructions instead
// (repeatable whatever else runs), and take the difference of two runs so
// the setup cancels out:
//
//	go test -c -o /tmp/t.test ./tests
//	GOGC=off GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=callgrind \
//	  --callgrind-out-file=/tmp/N.cg /tmp/t.test -test.run '^$' -test.bench 'BenchmarkPathRemoteWarm$' -test.benchtime Nx
//
// Ir per request = (totals at 1200x - totals at 200x) / 1000.
// cpu.rdtscp=off: valgrind 3.19 does not know RDTSCP, which the runtime
// uses on CPUs that have it (SIGILL in runtime.cputicks otherwise).

// benchPathsConfig is the load benchmark's gateway (tests/load/run.sh):
// log level warn, a route with auth: none and one with the default auth.
// %VERIFY% is replaced by the auth.local block of a local row.
const benchPathsConfig = `
auth_service:
  url: "%AUTH%"
auth:
  cache:
    size: %CACHE%
    ttl: 1h
%VERIFY%
database:
  dsn: "%DB%"
users:
  refresh_after: 1h
log:
  level: warn
throttle:
  login_rate: "off"
  calls_home_per_client: "off"
routes:
  - path: "/open/"
    upstream: "%UPSTREAM%"
    auth: none
  - path: "/api/"
    upstream: "%UPSTREAM%"
`

// benchSecret is the HS256 key of the local rows' fake auth service.
const benchSecret = "jwtgate-bench-secret-0123456789abcdef"

// benchLocalHS256 is the auth.local block of load row 14 (verify: local
// HS256); a benchmark using it sets JWTGATE_BENCH_HS256 to benchSecret.
const benchLocalHS256 = "  verify: local\n  local:\n    keys: [\"env:JWTGATE_BENCH_HS256\"]\n    algorithms: [HS256]"

// benchPaths starts the load benchmark's gateway in-process (verify is the
// auth.local block of a local row, "" for verify: remote), with a verdict
// cache of cache entries, and returns its handler and the fake auth service.
func benchPaths(b *testing.B, verify, cache string) (http.Handler, *fakeauth.Server, int64) {
	b.Helper()
	fa, id := newFake(b, fakeauth.Options{Secret: []byte(benchSecret), AccessTTL: 3 * time.Hour}) // as run.sh
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	b.Cleanup(up.Close)
	b.Setenv("JWTGATE_BENCH_HS256", benchSecret)
	cfg := strings.NewReplacer("%VERIFY%", verify, "%CACHE%", cache).Replace(benchPathsConfig)
	gw := startGatewayAt(b, slog.LevelWarn, cfg, fa.URL(), up.URL, nil)
	b.Cleanup(func() {
		if b.Failed() {
			b.Log(gw.Logs.String())
		}
	})
	return gw.GW.Handler, fa, id
}

// BenchmarkPathNone: load row 2, an auth: none route (the gateway's own
// pipeline: router, middleware, path checks, header hygiene, proxy).
func BenchmarkPathNone(b *testing.B) {
	h, _, _ := benchPaths(b, "", "100000")
	benchServe(b, h, "/open/orders", "")
}

// BenchmarkPathRemoteWarm: load row 3, verify: remote with the token's
// verdict and user cached.
func BenchmarkPathRemoteWarm(b *testing.B) {
	h, fa, id := benchPaths(b, "", "100000")
	access, _ := fa.IssuePair(id)
	benchServe(b, h, "/api/orders", access)
}

// BenchmarkPathRemoteWarmMany: load row 5, verify: remote with 10 000
// tokens of 1 000 users (token i belongs to user i mod 1 000, as
// loadkit mint -users 1000 -count 10000), every verdict and user cached
// before the timer starts, requests round robin over the tokens.
func BenchmarkPathRemoteWarmMany(b *testing.B) {
	const users, tokens = 1000, 10000
	h, fa, first := benchPaths(b, "", "100000")
	ids := make([]int64, users)
	ids[0] = first
	for i := 1; i < users; i++ {
		ids[i] = fa.AddUser(fakeauth.User{
			Email:    fmt.Sprintf("user%d@example.com", i),
			Username: fmt.Sprintf("user%d", i),
			Password: "password",
			Extra:    map[string]any{"services": []string{"billing"}},
		}).ID
	}
	// Only the Authorization values are kept per token, as on the wire
	// each request is parsed anew: 10 000 prepared requests would be live
	// heap the gateway does not have, and the GC would charge them to it.
	auths := make([]string, tokens)
	tmpl := httptest.NewRequest(http.MethodGet, "/api/orders", nil)
	serve := func(auth string) *httptest.ResponseRecorder {
		req := tmpl.Clone(tmpl.Context())
		req.Header["Authorization"] = []string{auth}
		w := newRecorder()
		h.ServeHTTP(w, req)
		return w.ResponseRecorder
	}
	for i := range auths {
		access, _ := fa.IssuePair(ids[i%users])
		auths[i] = "Bearer " + access
		if w := serve(auths[i]); w.Code != http.StatusOK {
			b.Fatalf("warming token %d: status %d: %s", i, w.Code, w.Body)
		}
	}
	calls := fa.TotalCalls()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		w := serve(auths[i%tokens])
		i++
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.StopTimer()
	if n := fa.TotalCalls() - calls; n != 0 {
		b.Fatalf("%d calls home on the warm path", n)
	}
}

// BenchmarkPathLocalNewToken: load row 14, verify: local HS256 with every
// request a token whose verdict is not cached (64 tokens cycle through a
// cache of 16): the pre-checks and the signature check on every request.
func BenchmarkPathLocalNewToken(b *testing.B) {
	h, fa, id := benchPaths(b, benchLocalHS256, "16")
	toks := make([]string, 64)
	for i := range toks {
		toks[i], _ = fa.IssuePair(id)
	}
	benchNewTokens(b, h, toks)
}

// BenchmarkPathLocalNewTokenRS256: load row 11, verify: local RS256 (a
// 2048-bit key from a PEM file) with every request a token whose verdict
// is not cached, as BenchmarkPathLocalNewToken. HS256 is allowed too only
// so one token of the fake auth service's can put the user in the mirror
// first (it cannot read RS256 tokens to serve the record; run.sh seeds the
// mirror instead).
func BenchmarkPathLocalNewTokenRS256(b *testing.B) {
	// The unit tests' fixed key pair (not a secret): a key generated here
	// would make the setup's instruction count vary from run to run.
	keyPEM, err := os.ReadFile("../handlers/authn/testdata/rsa_private.pem")
	if err != nil {
		b.Fatal(err)
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	pemFile, err := filepath.Abs("../handlers/authn/testdata/rsa_public.pem")
	if err != nil {
		b.Fatal(err)
	}
	h, fa, id := benchPaths(b, "  verify: local\n  local:\n    keys: [\""+pemFile+"\", \"env:JWTGATE_BENCH_HS256\"]\n    algorithms: [RS256, HS256]", "16")
	warm, _ := fa.IssuePair(id)
	req := httptest.NewRequest(http.MethodGet, "/api/orders", nil)
	req.Header.Set("Authorization", "Bearer "+warm)
	w := newRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("warming the user: status %d: %s", w.Code, w.Body)
	}
	toks := make([]string, 64)
	for i := range toks {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, fa.NewClaims(id, fakeauth.TypeAccess)).SignedString(key)
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	benchNewTokens(b, h, toks)
}

// benchNewTokens serves GET /api/orders round robin over toks, each
// expected to answer 200.
func benchNewTokens(b *testing.B, h http.Handler, toks []string) {
	b.Helper()
	reqs := make([]*http.Request, len(toks))
	for i, tok := range toks {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/api/orders", nil)
		reqs[i].Header.Set("Authorization", "Bearer "+tok)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := reqs[i%len(reqs)]
		i++
		w := newRecorder()
		h.ServeHTTP(w, req.Clone(req.Context()))
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkPathBare: the same harness and upstream as the rows above through
// a bare httputil.ReverseProxy (Rewrite with SetURL and SetXForwarded, a
// pooled transport and pooled copy buffers, as tests/load/loadkit's bare
// proxy): the floor PathNone and PathRemoteWarm are compared with.
func BenchmarkPathBare(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	b.Cleanup(up.Close)
	target, err := url.Parse(up.URL)
	if err != nil {
		b.Fatal(err)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	b.Cleanup(t.CloseIdleConnections)
	pool := &sync.Pool{New: func() any { return new([32 << 10]byte) }}
	h := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:  t,
		BufferPool: benchBufferPool{pool},
		ErrorLog:   log.New(io.Discard, "", 0),
	}
	benchServe(b, h, "/open/orders", "")
}

// benchBufferPool lends the bare proxy 32 KiB copy buffers.
type benchBufferPool struct{ p *sync.Pool }

// Get returns a 32 KiB buffer.
func (b benchBufferPool) Get() []byte { return b.p.Get().(*[32 << 10]byte)[:] }

// Put takes a buffer back.
func (b benchBufferPool) Put(buf []byte) {
	if len(buf) == 32<<10 {
		b.p.Put((*[32 << 10]byte)(buf))
	}
}
