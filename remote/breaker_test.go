package remote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"jwtgate/models"
)

// breakerClient returns a client whose breaker opens after 3 consecutive
// failures, against a server answering status (0: hang until the call
// times out), or against a closed port when refused is set.
func breakerClient(t *testing.T, status *atomic.Int32, refused bool) *Client {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := int(status.Load())
		if st == 0 {
			<-release // hang: the client's timeout ends the call
			return
		}
		w.Header().Set("X-Status", strconv.Itoa(st))
		w.WriteHeader(st)
		_, _ = w.Write([]byte(`<h1>Server Error (500)</h1>`))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	cfg := models.DefaultSettings().AuthService
	cfg.URL, cfg.Timeout = srv.URL, 200*time.Millisecond
	cfg.Circuit.Failures, cfg.Circuit.CoolDown = 3, time.Hour
	if refused {
		srv.Close()
	}
	c, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBreakerCountsOnlyTheServicesOwnFailures: a 500 to a relayed body, a
// client's token or a user fetch with a client's token never opens the
// circuit; no answer, 502/503/504, and a 500 to the probe do.
func TestBreakerCountsOnlyTheServicesOwnFailures(t *testing.T) {
	relay := func(c *Client) {
		_, _ = c.Relay(context.Background(), EndpointRefresh, "application/json", []byte(`[[[[`), nil)
	}
	login := func(c *Client) {
		_, _ = c.Relay(context.Background(), EndpointToken, "application/json", []byte(`{}`), nil)
	}
	verify := func(c *Client) { _ = c.Verify(context.Background(), "a.b.c") }
	user := func(c *Client) { _, _ = c.GetUser(context.Background(), "a.b.c", "1", nil) }
	probe := func(c *Client) { _ = c.Probe(context.Background()) }
	cancelled := func(c *Client) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _ = c.Relay(ctx, EndpointToken, "application/json", []byte(`{}`), nil)
	}
	tests := []struct {
		name    string
		status  int
		refused bool
		call    func(*Client)
		n       int
		want    string
	}{
		{"500 to a relayed refresh body", 500, false, relay, 20, "closed"},
		{"500 to a relayed login", 500, false, login, 20, "closed"},
		{"501 to a relayed body", 501, false, relay, 20, "closed"},
		{"505 to a relayed body", 505, false, relay, 20, "closed"},
		{"599 to a relayed body", 599, false, relay, 20, "closed"},
		{"500 to a client's token", 500, false, verify, 20, "closed"},
		{"500 to a user fetch with a client's token", 500, false, user, 20, "closed"},
		{"caller went away", 0, false, cancelled, 20, "closed"},
		{"4xx", 400, false, relay, 20, "closed"},
		{"502 to a relay", 502, false, relay, 3, "open"},
		{"503 to a relay", 503, false, relay, 3, "open"},
		{"504 to a relay", 504, false, relay, 3, "open"},
		{"503 to a verify", 503, false, verify, 3, "open"},
		{"502 to a user fetch", 502, false, user, 3, "open"},
		{"timeout", 0, false, verify, 3, "open"},
		{"connection refused", 0, true, relay, 3, "open"},
		{"500 to the readiness probe", 500, false, probe, 3, "open"},
		{"400 to the readiness probe", 400, false, probe, 20, "closed"},
		{"two failures are not enough", 502, false, relay, 2, "closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var status atomic.Int32
			status.Store(int32(tt.status))
			c := breakerClient(t, &status, tt.refused)
			for range tt.n {
				tt.call(c)
			}
			if got := c.circuitState(); got != tt.want {
				t.Fatalf("circuit %s after %d calls, want %s", got, tt.n, tt.want)
			}
		})
	}
}

// TestBreakerClientFiveHundredsDoNotHideAnOutage: uncounted 500s are not
// successes either, so a client's requests between the probe's failures
// cannot keep the circuit closed.
func TestBreakerClientFiveHundredsDoNotHideAnOutage(t *testing.T) {
	var status atomic.Int32
	status.Store(500)
	c := breakerClient(t, &status, false)
	for range 3 {
		_ = c.Probe(context.Background())
		_, _ = c.Relay(context.Background(), EndpointToken, "application/json", []byte(`{}`), nil)
	}
	if got := c.circuitState(); got != "open" {
		t.Fatalf("circuit %s, want open", got)
	}
	// While open, the probe still reaches the service (readiness reports
	// what the service does), and tokens calls are refused without calling.
	status.Store(400)
	if err := c.Probe(context.Background()); err != nil {
		t.Fatalf("probe while open: %v", err)
	}
}

// TestBreakerRelayedFiveHundredPassesThrough: an uncounted 500 still
// reaches the client unchanged.
func TestBreakerRelayedFiveHundredPassesThrough(t *testing.T) {
	var status atomic.Int32
	status.Store(500)
	c := breakerClient(t, &status, false)
	resp, err := c.Relay(context.Background(), EndpointRefresh, "application/json", []byte(`{}`), nil)
	if err != nil || resp.Status != 500 || string(resp.Body) != `<h1>Server Error (500)</h1>` || resp.Header.Get("X-Status") != "500" {
		t.Fatalf("relayed 500: %v %d %q", err, resp.Status, resp.Body)
	}
	if err := c.Verify(context.Background(), "a.b.c"); err == nil || !isUnavailable(err) {
		t.Fatalf("verify 500: %v, want unavailable", err)
	}
}

func isUnavailable(err error) bool { return errors.Is(err, models.ErrAuthUnavailable) }

// TestBreakerSuccessesCount: an answer below 500 is a success: it resets
// the run of failures, and a successful trial call closes the circuit.
func TestBreakerSuccessesCount(t *testing.T) {
	var status atomic.Int32
	c := breakerClient(t, &status, false)
	for range 5 {
		status.Store(502)
		for range 2 {
			_, _ = c.Relay(context.Background(), EndpointToken, "application/json", []byte(`{}`), nil)
		}
		status.Store(401)
		_, _ = c.Relay(context.Background(), EndpointToken, "application/json", []byte(`{}`), nil)
	}
	if got := c.circuitState(); got != "closed" {
		t.Fatalf("circuit %s after runs of 2 failures between successes, want closed", got)
	}
}
