package tests

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"jwtgate/tests/fakeauth"
)

// BenchmarkTracingWarm is the warm authenticated request with tracing off
// (no OTEL_EXPORTER_OTLP_ENDPOINT: no middleware, no wrapped transport,
// the same path as before tracing existed) and on (every request sampled,
// exported in batches to a local OTLP receiver).
func BenchmarkTracingWarm(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/x-protobuf")
			}))
			b.Cleanup(sink.Close)
			b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.URL)
		}
		b.Run(name, func(b *testing.B) {
			fa, id := newFake(b, fakeauth.Options{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"ok":true}`))
			}))
			b.Cleanup(up.Close)
			gw := startGateway(b, benchConfig, fa.URL(), up.URL, nil)
			access, _ := fa.IssuePair(id)
			if r := get(b, gw.URL+"/api/warm", access); r.Status != http.StatusOK {
				b.Fatalf("warm-up: %d %s", r.Status, r.Body)
			}
			benchServe(b, gw.GW.Handler, "/api/orders", access)
		})
	}
}
