package tests

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"jwtgate/tests/fakeauth"
)

const benchConfig = `
auth_service:
  url: "%AUTH%"
database:
  dsn: "%DB%"
log:
  level: error
routes:
  - path: "/api/"
    upstream: "%UPSTREAM%"
  - path: "/open/"
    upstream: "%UPSTREAM%"
    auth: none
`

// benchGateway returns the wired handler chain and a warm token.
func benchGateway(b *testing.B) (http.Handler, string) {
	b.Helper()
	fa, id := newFake(b, fakeauth.Options{})
	// A minimal upstream, so the figures are the gateway's, not an echo's.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-User-Id") == "" && strings.HasPrefix(r.URL.Path, "/api/") {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	b.Cleanup(up.Close)
	gw := startGateway(b, benchConfig, fa.URL(), up.URL, nil)
	access, _ := fa.IssuePair(id)
	if r := get(b, gw.URL+"/api/warm", access); r.Status != http.StatusOK {
		b.Fatalf("warm-up: %d %s", r.Status, r.Body)
	}
	b.Cleanup(func() {
		if b.Failed() {
			b.Log(gw.Logs.String())
		}
	})
	return gw.GW.Handler, access
}

// recorder is a ResponseRecorder that, like a real server's writer, offers
// CloseNotify (ReverseProxy asks for it through Gin's writer).
type recorder struct{ *httptest.ResponseRecorder }

func (recorder) CloseNotify() <-chan bool { return nil }

func newRecorder() recorder { return recorder{httptest.NewRecorder()} }

func benchServe(b *testing.B, h http.Handler, path, token string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := newRecorder()
		h.ServeHTTP(w, req.Clone(req.Context()))
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkAuthenticatedRequestWarm: the whole handler chain in-process,
// token and user cached, proxied to a loopback upstream.
func BenchmarkAuthenticatedRequestWarm(b *testing.B) {
	h, tok := benchGateway(b)
	benchServe(b, h, "/api/orders", tok)
}

// BenchmarkUnauthenticatedRequest: the same chain on an auth: none route.
func BenchmarkUnauthenticatedRequest(b *testing.B) {
	h, _ := benchGateway(b)
	benchServe(b, h, "/open/orders", "")
}

// BenchmarkAuthenticatedRequestWarmParallel: warm path under concurrency
// (lock contention in the caches shows here).
func BenchmarkAuthenticatedRequestWarmParallel(b *testing.B) {
	h, tok := benchGateway(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/api/orders", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := newRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
