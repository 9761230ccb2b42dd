package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBulkheadMetrics: the bulkhead observer moves the in-flight gauge
// both ways and sorts queue waits into admitted and timed_out.
func TestBulkheadMetrics(t *testing.T) {
	m := New(nil)
	b := m.Bulkhead()
	for range 3 {
		b.BulkheadInFlight(1)
	}
	b.BulkheadInFlight(-1)
	b.BulkheadWait(2*time.Millisecond, true)
	b.BulkheadWait(0, true)
	b.BulkheadWait(5*time.Second, false)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"jwtgate_auth_service_calls_in_flight 2\n",
		`jwtgate_auth_service_queue_wait_seconds_count{outcome="admitted"} 2` + "\n",
		`jwtgate_auth_service_queue_wait_seconds_count{outcome="timed_out"} 1` + "\n",
		`jwtgate_auth_service_queue_wait_seconds_sum{outcome="timed_out"} 5` + "\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
