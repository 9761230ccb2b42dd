package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"jwtgate/models"
)

// bulkheadServer is a fake auth service that counts the calls it is
// serving at once and holds every call until the gate opens.
type bulkheadServer struct {
	cur, max atomic.Int32
	arrived  chan string   // the label of each call, as it arrives
	gate     chan struct{} // closed: calls are answered
	opened   sync.Once
	mu       sync.Mutex
	order    []string // labels in arrival order
}

// bulkheadLabel names a call by its token (verify, relay) or bearer token
// (user fetch).
func bulkheadLabel(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		return strings.TrimPrefix(a, "Bearer ")
	}
	var b struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(r.Body).Decode(&b)
	return b.Token
}

// open lets held and later calls be answered.
func (s *bulkheadServer) open() { s.opened.Do(func() { close(s.gate) }) }

func (s *bulkheadServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.cur.Add(1)
	defer s.cur.Add(-1)
	for m := s.max.Load(); n > m && !s.max.CompareAndSwap(m, n); m = s.max.Load() {
	}
	label := bulkheadLabel(r)
	s.mu.Lock()
	s.order = append(s.order, label)
	s.mu.Unlock()
	s.arrived <- label
	select {
	case <-s.gate:
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"id": 1, "username": "u"}`))
}

// bulkheadClient returns a client with max_in_flight n and a call timeout
// of timeout, against a gated fake auth service.
func bulkheadClient(t *testing.T, n int, timeout time.Duration) (*Client, *bulkheadServer) {
	t.Helper()
	s := &bulkheadServer{arrived: make(chan string, 1000), gate: make(chan struct{})}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.open) // runs before srv.Close
	cfg := models.DefaultSettings().AuthService
	cfg.URL, cfg.Timeout, cfg.MaxInFlight = srv.URL, timeout, n
	cfg.Circuit.Failures = 0
	c, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// bulkheadAwait waits (bounded) for want calls to arrive at s.
func bulkheadAwait(t *testing.T, s *bulkheadServer, want int) []string {
	t.Helper()
	var got []string
	deadline := time.After(10 * time.Second)
	for len(got) < want {
		select {
		case l := <-s.arrived:
			got = append(got, l)
		case <-deadline:
			t.Fatalf("%d calls arrived at the auth service, want %d: %v", len(got), want, got)
		}
	}
	return got
}

// bulkheadAwaitQueued waits (bounded) until n goroutines are parked in the
// bulkhead's queue: blocked in the semaphore's select, i.e. after they
// took their place in its FIFO list.
func bulkheadAwaitQueued(t *testing.T, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for range 5000 {
		all := string(buf[:runtime.Stack(buf, true)])
		queued := 0
		for _, g := range strings.Split(all, "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, "semaphore.(*Weighted).Acquire") {
				queued++
			}
		}
		if queued == n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("never saw %d calls waiting in the bulkhead", n)
}

// bulkheadCall is one kind of call home, made with token.
type bulkheadCall struct {
	name string
	call func(ctx context.Context, c *Client, token string) error
}

var bulkheadKinds = []bulkheadCall{
	{"verify", func(ctx context.Context, c *Client, tok string) error { return c.Verify(ctx, tok) }},
	{"user fetch", func(ctx context.Context, c *Client, tok string) error {
		_, err := c.GetUser(ctx, tok, "1", nil)
		return err
	}},
	{"login relay", func(ctx context.Context, c *Client, tok string) error {
		_, err := c.Relay(ctx, EndpointToken, "application/json", []byte(`{"token":"`+tok+`"}`), nil)
		return err
	}},
	{"refresh relay", func(ctx context.Context, c *Client, tok string) error {
		_, err := c.Relay(ctx, EndpointRefresh, "application/json", []byte(`{"token":"`+tok+`"}`), nil)
		return err
	}},
	{"logout relay", func(ctx context.Context, c *Client, tok string) error {
		_, err := c.Relay(ctx, EndpointBlacklist, "application/json", []byte(`{"token":"`+tok+`"}`), nil)
		return err
	}},
}

// TestBulkheadBoundsCallsInFlight: 40 calls of every kind at once against
// max_in_flight 3 — the auth service never serves more than 3 at a time,
// and every call still gets its answer.
func TestBulkheadBoundsCallsInFlight(t *testing.T) {
	const limit, calls = 3, 40
	c, s := bulkheadClient(t, limit, 10*time.Second)
	errs := make(chan error, calls)
	for i := range calls {
		k := bulkheadKinds[i%len(bulkheadKinds)]
		go func() { errs <- k.call(context.Background(), c, fmt.Sprintf("t%d", i)) }()
	}
	bulkheadAwait(t, s, limit)
	bulkheadAwaitQueued(t, calls-limit) // the rest queue instead of calling
	if got := c.InFlight(); got != limit {
		t.Errorf("InFlight() = %d while the auth service holds %d calls", got, limit)
	}
	s.open()
	for range calls {
		if err := <-errs; err != nil {
			t.Errorf("call: %v", err)
		}
	}
	if got := s.max.Load(); got != limit {
		t.Errorf("the auth service served up to %d calls at once, want at most (and, saturated, exactly) %d", got, limit)
	}
	if got := len(s.order); got != calls {
		t.Errorf("%d calls reached the auth service, want %d", got, calls)
	}
	if got := c.InFlight(); got != 0 {
		t.Errorf("InFlight() = %d after every call returned", got)
	}
}

// bulkheadObserver records what the client tells a BulkheadObserver.
type bulkheadObserver struct {
	inFlight, peak, admitted, refused atomic.Int32
}

func (o *bulkheadObserver) BulkheadInFlight(d int) {
	n := o.inFlight.Add(int32(d))
	for p := o.peak.Load(); n > p && !o.peak.CompareAndSwap(p, n); p = o.peak.Load() {
	}
}

func (o *bulkheadObserver) BulkheadWait(_ time.Duration, admitted bool) {
	if admitted {
		o.admitted.Add(1)
		return
	}
	o.refused.Add(1)
}

// TestBulkheadWaiterGivesUp: with every slot taken, a call of any kind
// whose caller goes away, or whose own timeout passes while it waits, is
// refused as unavailable (503, never 401) with a Retry-After hint, and
// never reaches the auth service.
func TestBulkheadWaiterGivesUp(t *testing.T) {
	ends := []struct {
		name string
		ctx  func(t *testing.T) context.Context
	}{
		{"caller went away", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
		{"caller deadline passed", func(t *testing.T) context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			t.Cleanup(cancel)
			return ctx
		}},
		{"call timeout passed", func(t *testing.T) context.Context { return context.Background() }},
	}
	for _, k := range bulkheadKinds {
		for _, end := range ends {
			t.Run(k.name+"/"+end.name, func(t *testing.T) {
				c, s := bulkheadClient(t, 2, 150*time.Millisecond)
				obs := &bulkheadObserver{}
				c.bobs = obs
				var holds []func()
				for range 2 { // every slot taken (by calls that never end on their own)
					release, err := c.bulkhead.acquire(context.Background(), obs)
					if err != nil {
						t.Fatal(err)
					}
					holds = append(holds, release)
				}

				err := k.call(end.ctx(t), c, "late")
				var busy *BusyError
				if !errors.As(err, &busy) || !errors.Is(err, models.ErrAuthUnavailable) || errors.Is(err, models.ErrTokenInvalid) {
					t.Fatalf("err = %v, want a BusyError matching ErrAuthUnavailable only", err)
				}
				if d, ok := RetryAfter(err); !ok || d < time.Second {
					t.Errorf("RetryAfter(err) = %s, %v; want at least 1s", d, ok)
				}
				if obs.refused.Load() != 1 {
					t.Errorf("observer saw %d refused waits, want 1", obs.refused.Load())
				}
				select {
				case l := <-s.arrived:
					t.Errorf("a refused call reached the auth service: %q", l)
				default:
				}
				for _, release := range holds {
					release()
				}
				if got := c.InFlight(); got != 0 || obs.inFlight.Load() != 0 || obs.peak.Load() != 2 {
					t.Errorf("in flight after: client %d, observer %d (peak %d); want 0, 0 (2)", got, obs.inFlight.Load(), obs.peak.Load())
				}
			})
		}
	}
}

// TestBulkheadFIFO: calls that queue for the one slot reach the auth
// service in the order they queued, whatever their kind.
func TestBulkheadFIFO(t *testing.T) {
	const waiters = 8
	c, s := bulkheadClient(t, 1, 10*time.Second)
	errs := make(chan error, waiters+1)
	go func() { errs <- c.Verify(context.Background(), "first") }()
	bulkheadAwait(t, s, 1)
	want := []string{"first"}
	for i := range waiters {
		k := bulkheadKinds[(i*3)%len(bulkheadKinds)]
		tok := fmt.Sprintf("w%d-%s", i, strings.ReplaceAll(k.name, " ", "-"))
		want = append(want, tok)
		go func() { errs <- k.call(context.Background(), c, tok) }()
		bulkheadAwaitQueued(t, i+1) // queued before the next one starts
	}
	s.open()
	for range waiters + 1 {
		if err := <-errs; err != nil {
			t.Errorf("call: %v", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fmt.Sprint(s.order) != fmt.Sprint(want) {
		t.Errorf("arrival order %v\nwant (queue order) %v", s.order, want)
	}
}

// TestBulkheadProbeBypasses: the readiness probe reports what the auth
// service does, so it does not queue behind a full bulkhead.
func TestBulkheadProbeBypasses(t *testing.T) {
	c, s := bulkheadClient(t, 1, 10*time.Second)
	go func() { _ = c.Verify(context.Background(), "held") }()
	bulkheadAwait(t, s, 1)
	probed := make(chan error, 1)
	go func() { probed <- c.Probe(context.Background()) }()
	if got := bulkheadAwait(t, s, 1); got[0] != "" {
		t.Errorf("probe arrived as %q", got[0])
	}
	s.open()
	if err := <-probed; err != nil {
		t.Errorf("probe: %v", err)
	}
}

// TestBulkheadOpenCircuitDoesNotQueue: while the circuit is open a call is
// refused at once with the breaker's Retry-After, not after waiting for a
// slot the hung calls hold.
func TestBulkheadOpenCircuitDoesNotQueue(t *testing.T) {
	var hang atomic.Bool
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			<-release
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	cfg := models.DefaultSettings().AuthService
	cfg.URL, cfg.Timeout, cfg.MaxInFlight = srv.URL, time.Hour, 1
	cfg.Circuit.Failures, cfg.Circuit.CoolDown = 2, time.Hour
	c, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_ = c.Verify(context.Background(), "x")
	}
	if c.circuitState() != "open" {
		t.Fatalf("circuit %s after 2 failures", c.circuitState())
	}
	hang.Store(true)
	// A slot held by something else: a call queuing for it would wait an hour.
	hold, err := c.bulkhead.acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hold)
	err = c.Verify(context.Background(), "y")
	var open *CircuitOpenError
	if !errors.As(err, &open) {
		t.Fatalf("err = %v, want CircuitOpenError", err)
	}
}

// TestBulkheadErrorMessage: the error says what happened without tokens.
func TestBulkheadErrorMessage(t *testing.T) {
	c, _ := bulkheadClient(t, 1, 50*time.Millisecond)
	hold, err := c.bulkhead.acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hold)
	err = c.Verify(context.Background(), "queued-secret")
	msg := fmt.Sprint(err)
	if !strings.Contains(msg, "1 calls to the auth service already in flight") || strings.Contains(msg, "secret") {
		t.Errorf("error %q", msg)
	}
}

// TestBulkheadCutShortTimeoutsDoNotTrip: a call whose caller's deadline
// (spent queueing) leaves the auth service much less than the call timeout
// does not open the circuit when it times out; a call that had the whole
// timeout does (TestBreakerCountsOnlyTheServicesOwnFailures).
func TestBulkheadCutShortTimeoutsDoNotTrip(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	cfg := models.DefaultSettings().AuthService
	cfg.URL, cfg.Timeout, cfg.MaxInFlight = srv.URL, 2*time.Second, 4
	cfg.Circuit.Failures, cfg.Circuit.CoolDown = 1, time.Hour
	c, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := c.Verify(ctx, "a.b.c")
		cancel()
		if !errors.Is(err, models.ErrAuthUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if got := c.circuitState(); got != "closed" {
		t.Errorf("circuit %s after timeouts the caller's deadline caused, want closed", got)
	}
}

// TestBulkheadRefusesACallItsQueueSpent: a call that gets its slot only
// when less than a tenth of the call timeout is left of its caller's
// deadline is refused like a full queue (503 with Retry-After upstream of
// here) and never reaches the auth service, where it could only time out
// holding the slot; with most of its deadline left it is made.
func TestBulkheadRefusesACallItsQueueSpent(t *testing.T) {
	for _, tt := range []struct {
		name     string
		deadline time.Duration // the caller's, from when it queues
		spent    bool
	}{
		// The slot frees after ~700ms: 800ms left, under a tenth of 10s.
		{"deadline nearly spent in the queue", 1500 * time.Millisecond, true},
		{"most of the deadline left", 6 * time.Second, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, s := bulkheadClient(t, 1, 10*time.Second)
			hold, err := c.bulkhead.acquire(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(700*time.Millisecond, hold)
			t.Cleanup(func() { timer.Stop() })
			s.open() // a call that is made is answered at once
			ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
			defer cancel()
			err = c.Verify(ctx, "queued")
			var busy *BusyError
			if tt.spent {
				if !errors.As(err, &busy) || !errors.Is(err, errDeadlineSpent) || !errors.Is(err, models.ErrAuthUnavailable) {
					t.Fatalf("err = %v, want a BusyError for a deadline spent in the queue", err)
				}
				if ra, ok := RetryAfter(err); !ok || ra <= 0 {
					t.Fatalf("Retry-After %v %v", ra, ok)
				}
				if n := s.max.Load(); n != 0 {
					t.Fatalf("the auth service saw %d calls, want none", n)
				}
				return
			}
			if errors.As(err, &busy) {
				t.Fatalf("err = %v, want the call made", err)
			}
			if got := bulkheadAwait(t, s, 1); got[0] != "queued" {
				t.Fatalf("calls %v", got)
			}
		})
	}
}
