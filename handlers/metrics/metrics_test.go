package metrics

import (
	"testing"
	"time"

	"jwtgate/remote"
)

// The warm path's hooks must not allocate once their series exist.
func TestWarmPathHooksDoNotAllocate(t *testing.T) {
	m := New([]string{"api"})
	r := m.Route("api")
	r.Done("GET", 200, time.Millisecond) // first use of this status resolves its child
	for name, f := range map[string]func(){
		"Route lookup and Done": func() { m.Route("api").Done("GET", 200, time.Millisecond) },
		"Upstream":              func() { r.Upstream(200, time.Millisecond) },
		"ObserveCall":           func() { m.ObserveCall(remote.EndpointVerify, "2xx", time.Millisecond) },
		"CacheHit":              m.CacheHit,
		"Refused":               func() { m.Refused("expired") },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}

func BenchmarkRequestMetrics(b *testing.B) {
	m := New([]string{"api"})
	for b.Loop() {
		m.Route("api").Done("GET", 200, time.Millisecond)
	}
}
