package tests

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"jwtgate/tests/fakeauth"
)

// TestCoreUpstreamConnectionsReused: under concurrent load the gateway
// keeps its connections to an upstream open and reuses them (no
// connection churn: a new TCP connection per request would cost a
// handshake and, under load, run the machine out of ports). 16 clients
// sending 25 requests each, on an authenticated and an auth: none route,
// open about one upstream connection per client (at most two).
func TestCoreUpstreamConnectionsReused(t *testing.T) {
	const clients, each = 16, 25
	fa, id := newFake(t, fakeauth.Options{})
	var accepted atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	gw := startGateway(t, benchConfig, fa.URL(), up.URL, nil)
	access, _ := fa.IssuePair(id)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	t.Cleanup(client.CloseIdleConnections)
	for _, tt := range []struct{ name, path, token string }{
		{"authenticated route", "/api/orders", access},
		{"auth: none route", "/open/orders", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := accepted.Load()
			var failed atomic.Int64
			parallel(clients, func(int) {
				for range each {
					req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+tt.path, nil)
					if err != nil {
						failed.Add(1)
						return
					}
					if tt.token != "" {
						req.Header.Set("Authorization", "Bearer "+tt.token)
					}
					resp, err := client.Do(req)
					if err != nil {
						failed.Add(1)
						continue
					}
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failed.Add(1)
					}
				}
			})
			if n := failed.Load(); n != 0 {
				t.Fatalf("%d of %d requests failed", n, clients*each)
			}
			// A connection goes back to the pool when the transport has
			// read the response's end, which may come after the client
			// has its answer and sent the next request: on a loaded
			// machine a few more than one per client (17 seen). Churn
			// (Go's default of 2 idle connections per host) is 167.
			if n, most := accepted.Load()-before, int64(2*clients); n > most {
				t.Fatalf("the upstream accepted %d connections for %d requests from %d clients, want at most %d", n, clients*each, clients, most)
			}
		})
	}
}
