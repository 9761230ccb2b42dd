package tests

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/remote"
	"jwtgate/tests/djangoauth"
)

// loadFrontDoor is a reverse proxy in front of the auth service that
// counts verify calls per token and the calls the auth service is
// answering at once. A call counts as in flight from its arrival until the
// auth service's answer headers reach the proxy: before the gateway can
// read the answer and free its slot, so the peak is exact.
type loadFrontDoor struct {
	*httptest.Server
	cur, peak atomic.Int32
	mu        sync.Mutex
	verifies  map[string]int // token → verify calls
	calls     map[string]int // path → calls
}

func loadStartFrontDoor(t *testing.T, target string) *loadFrontDoor {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &loadFrontDoor{verifies: map[string]int{}, calls: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	counted := func(r *http.Request) bool { return r.Header.Get("X-Request-Id") != remote.ProbeRequestID }
	rp.ModifyResponse = func(resp *http.Response) error {
		if counted(resp.Request) {
			f.cur.Add(-1)
		}
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if counted(r) {
			f.cur.Add(-1)
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Request-Id") == remote.ProbeRequestID {
			rp.ServeHTTP(w, r) // readiness probes bypass the bulkhead: not counted
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		path := r.URL.Path
		if strings.HasPrefix(path, "/auth/users/") {
			path = "/auth/users/{id}/"
		}
		f.mu.Lock()
		f.calls[path]++
		if r.URL.Path == "/auth/token/verify/" {
			var v struct {
				Token string `json:"token"`
			}
			_ = json.Unmarshal(body, &v)
			f.verifies[v.Token]++
		}
		f.mu.Unlock()
		n := f.cur.Add(1)
		for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// loadStormResult is what the storm's clients saw.
type loadStormResult struct {
	statuses  map[int]int
	bodies    []string // a sample of non-2xx bodies
	latencies []time.Duration
}

// loadStorm sends one GET per token to url with conc clients at once.
func loadStorm(url string, toks []string, conc int) loadStormResult {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxIdleConns: conc}}
	defer client.CloseIdleConnections()
	res := loadStormResult{statuses: map[int]int{}}
	var mu sync.Mutex
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(toks) {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+toks[i])
				start := time.Now()
				resp, err := client.Do(req)
				status, body := 0, ""
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					status, body = resp.StatusCode, string(b)
				} else {
					body = err.Error()
				}
				d := time.Since(start)
				mu.Lock()
				res.statuses[status]++
				res.latencies = append(res.latencies, d)
				if status/100 != 2 && len(res.bodies) < 5 {
					res.bodies = append(res.bodies, fmt.Sprintf("%d %s", status, body))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res
}

// loadPercentile returns the p-th percentile (0 < p ≤ 100) of ds.
func loadPercentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// TestLoadColdStormDjango: 2 000 never-seen tokens at 200-way concurrency
// against the real Django SimpleJWT service under gunicorn with 2 sync
// workers. The bulkhead (max_in_flight 32, the default) keeps the calls the
// auth service answers at once at 32 or fewer, every request gets 2xx (no
// 503 although the service is up), and each token costs exactly one verify
// call, counted at the service's front door. The p99 is logged, and the
// user fetches (not bounded here: concurrent first requests of one user
// each fetch the record).
func TestLoadColdStormDjango(t *testing.T) {
	const users, nTokens, conc, limit = 20, 2000, 200, 32
	dj := djangoauth.Start(t, djangoauth.Options{})
	emails := make([]string, users)
	for i := range emails {
		emails[i] = fmt.Sprintf("storm%d@example.com", i)
	}
	dj.ThrottleCreateUsers(t, emails, "storm-pw")
	// Each user logs in once at the service itself (not through the
	// gateway); the storm's tokens are that access token with a fresh jti,
	// signed with the service's key: 2 000 distinct tokens SimpleJWT
	// accepts, none of which the gateway has seen.
	toks := make([]string, 0, nTokens)
	for i := range nTokens {
		if i < users {
			access, _ := tokens(t, login(t, dj.URL, emails[i], "storm-pw"))
			toks = append(toks, access)
			continue
		}
		toks = append(toks, resign(t, toks[i%users], jwt.SigningMethodHS256, []byte(dj.SigningKey()), "",
			map[string]any{"jti": fmt.Sprintf("storm-%d", i)}))
	}
	front := loadStartFrontDoor(t, dj.URL)
	// The call timeout is generous: what is tested is that the bulkhead
	// bounds the calls and queues the rest, not how fast a loaded 2-core
	// machine drains the queue (a timed-out call frees its slot while the
	// service still works on it, which would blur the peak).
	cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 30s\n  max_in_flight: "+strconv.Itoa(limit)+
		"\n  circuit: {failures: 0}\nthrottle:\n  calls_home_per_client: \"off\"\nauth:\n  cache:\n    ttl: 1h", 1)
	cfg = strings.Replace(cfg, "level: debug", "level: warn", 1)
	gw := startGateway(t, cfg, front.URL, startUpstream(t).URL, nil)

	start := time.Now()
	res := loadStorm(gw.URL+"/api/storm", toks, conc)
	elapsed := time.Since(start)
	t.Logf("%d tokens at %d-way in %s: statuses %v; p50 %s p99 %s max %s; peak calls at the auth service %d; calls %v",
		nTokens, conc, elapsed.Round(time.Millisecond), res.statuses,
		loadPercentile(res.latencies, 50).Round(time.Millisecond), loadPercentile(res.latencies, 99).Round(time.Millisecond),
		loadPercentile(res.latencies, 100).Round(time.Millisecond), front.peak.Load(), front.calls)

	if res.statuses[http.StatusOK] != nTokens {
		t.Errorf("%d of %d requests answered 200; statuses %v; e.g. %q", res.statuses[http.StatusOK], nTokens, res.statuses, res.bodies)
	}
	if p := front.peak.Load(); p > limit {
		t.Errorf("the auth service was answering %d calls at once, max_in_flight is %d", p, limit)
	}
	front.mu.Lock()
	defer front.mu.Unlock()
	var twice []int
	for _, tok := range toks {
		if n := front.verifies[tok]; n != 1 {
			twice = append(twice, n)
		}
	}
	if len(twice) > 0 || len(front.verifies) != nTokens {
		t.Errorf("%d tokens not verified exactly once (counts %v); %d distinct tokens verified, want %d",
			len(twice), twice[:min(len(twice), 10)], len(front.verifies), nTokens)
	}
	m := call(t, http.MethodGet, loadMetricsURL(t, gw), "", "")
	for _, want := range []string{
		`jwtgate_auth_service_calls_in_flight 0`,
		`jwtgate_auth_service_queue_wait_seconds_count{outcome="timed_out"} 0`,
		`jwtgate_auth_service_call_duration_seconds_count{endpoint="verify",outcome="2xx"} ` + strconv.Itoa(nTokens),
	} {
		if !strings.Contains(string(m.Body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// loadMetricsURL serves the gateway's metrics handler for the test.
func loadMetricsURL(t *testing.T, gw *gateway) string {
	t.Helper()
	srv := httptest.NewServer(gw.GW.Metrics)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestLoadBulkheadFullIs503 : with max_in_flight 1 and an auth service
// that never answers, a request of any kind (a new token on an API route,
// a login, a refresh) that cannot get a slot within auth_service.timeout
// is answered 503 auth_service_unavailable with Retry-After — never 401 —
// and never reaches the auth service; the one admitted after the held
// call times out is 503 too. The service sees 2 calls, not 3.
func TestLoadBulkheadFullIs503(t *testing.T) {
	kinds := []struct {
		name string
		send func(gwURL string, i int) (*http.Response, error)
	}{
		{"API call with a new token", func(gwURL string, i int) (*http.Response, error) {
			req, _ := http.NewRequest(http.MethodGet, gwURL+"/api/x", nil)
			req.Header.Set("Authorization", "Bearer "+loadToken(i))
			return http.DefaultClient.Do(req)
		}},
		{"login", func(gwURL string, i int) (*http.Response, error) {
			return http.Post(gwURL+"/auth/token/", "application/json",
				strings.NewReader(fmt.Sprintf(`{"email":"u%d@example.com","password":"pw"}`, i)))
		}},
		{"refresh", func(gwURL string, i int) (*http.Response, error) {
			return http.Post(gwURL+"/auth/token/refresh/", "application/json",
				strings.NewReader(`{"refresh":"`+loadToken(i)+`"}`))
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			var arrived atomic.Int32
			hung := make(chan struct{})
			auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Request-Id") == remote.ProbeRequestID {
					return // readiness probes bypass the bulkhead; not counted
				}
				arrived.Add(1)
				select { // never answers: the gateway's timeout ends every call
				case <-r.Context().Done():
				case <-hung:
				}
			}))
			t.Cleanup(auth.Close)
			t.Cleanup(func() { close(hung) })
			// 4s: the two queued requests must reach the bulkhead while the held
			// call still holds the slot, even on a machine busy with other packages.
			cfg := strings.Replace(baseConfig, "  timeout: 500ms", "  timeout: 4s\n  max_in_flight: 1\n  circuit: {failures: 0}\nthrottle:\n  calls_home_per_client: \"off\"", 1)
			gw := startGateway(t, cfg, auth.URL, startUpstream(t).URL, nil)

			held := make(chan *http.Response, 1)
			go func() { // takes the only slot for the whole timeout
				r, _ := kinds[0].send(gw.URL, 0)
				held <- r
			}()
			for i := 0; arrived.Load() == 0; i++ {
				if i > 5000 {
					t.Fatal("the first call never reached the auth service")
				}
				time.Sleep(time.Millisecond)
			}
			type answer struct {
				status int
				retry  string
				code   string
			}
			answers := make(chan answer, 2)
			for i := 1; i <= 2; i++ {
				go func() {
					r, err := k.send(gw.URL, i)
					if err != nil {
						answers <- answer{status: -1, code: err.Error()}
						return
					}
					defer r.Body.Close()
					var e struct {
						Code string `json:"code"`
					}
					_ = json.NewDecoder(r.Body).Decode(&e)
					answers <- answer{r.StatusCode, r.Header.Get("Retry-After"), e.Code}
				}()
			}
			var got []answer
			for range 2 {
				got = append(got, <-answers)
			}
			if r := <-held; r != nil {
				r.Body.Close()
			}
			withRetry := 0
			for _, a := range got {
				if a.status != http.StatusServiceUnavailable || a.code != "auth_service_unavailable" {
					t.Errorf("answer %+v, want 503 auth_service_unavailable", a)
				}
				if a.retry != "" {
					withRetry++
					if n, err := strconv.Atoi(a.retry); err != nil || n < 1 {
						t.Errorf("Retry-After %q", a.retry)
					}
				}
			}
			// The second in the queue is refused by the bulkhead (Retry-After);
			// the first gets the slot when the held call times out, or is
			// refused as well when that leaves it under a tenth of its
			// deadline (remote: a call the queue nearly spent is not made).
			if withRetry == 0 {
				t.Errorf("no answer with Retry-After: %+v", got)
			}
			if n := arrived.Load(); n > 2 {
				t.Errorf("the auth service got %d calls at max_in_flight 1 within two timeouts, want at most 2", n)
			}
		})
	}
}

// loadToken is a well-formed unsigned-looking access token the pre-checks
// accept (the fake auth service never answers, so its signature is moot).
func loadToken(i int) string {
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return seg(map[string]any{"alg": "HS256", "typ": "JWT"}) + "." +
		seg(map[string]any{"token_type": "access", "exp": time.Now().Add(time.Hour).Unix(), "jti": fmt.Sprintf("bulk%d", i), "user_id": 1}) +
		".c2ln"
}
