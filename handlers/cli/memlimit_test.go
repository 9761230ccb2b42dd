package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"jwtgate/tests/fakeauth"
)

// TestMemLimitServe: serve sets a soft memory limit derived from
// auth.cache.size and users.cache_size when GOMEMLIMIT is not set, and
// leaves the runtime's own when it is (any spelling the runtime takes,
// including off).
func TestMemLimitServe(t *testing.T) {
	fa := fakeauth.Start(t, fakeauth.Options{})
	for _, c := range []struct {
		name, env, gogc, yaml string
		want                  int64 // 0: not set
		wantGC                int   // 0: not set
	}{
		{"defaults", "", "", "", memLimitBase + 100000*memLimitPerToken + 10000*memLimitPerUser, gcPercentWithLimit},
		{"small caches", "", "", "auth:\n  cache:\n    size: 1000\nusers:\n  cache_size: 100\n", memLimitBase + 1000*memLimitPerToken + 100*memLimitPerUser, gcPercentWithLimit},
		{"GOGC set", "", "150", "", memLimitBase + 100000*memLimitPerToken + 10000*memLimitPerUser, 0},
		{"GOMEMLIMIT set", "200MiB", "", "", 0, 0},
		{"GOMEMLIMIT off", "off", "", "", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeConfig(t, `
listen: "127.0.0.1:0"
metrics_listen: ""
auth_service:
  url: "`+fa.URL()+`"
database:
  dsn: "`+filepath.Join(t.TempDir(), "m.db")+`"
`+c.yaml)
			var got, gotGC atomic.Int64
			b := Build{Version: "test", SetMemoryLimit: func(n int64) int64 { got.Store(n); return 0 },
				SetGCPercent: func(n int) int { gotGC.Store(int64(n)); return 100 }}
			getenv := func(k string) string {
				switch k {
				case "GOMEMLIMIT":
					return c.env
				case "GOGC":
					return c.gogc
				}
				return ""
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			var errb syncBuffer
			go func() { done <- RunBuild(ctx, []string{"serve", "--config", cfg}, getenv, &bytes.Buffer{}, &errb, b) }()
			deadline := time.After(10 * time.Second)
			for !strings.Contains(errb.String(), "jwtgate serving") {
				select {
				case err := <-done:
					t.Fatalf("serve returned early: %v\n%s", err, errb.String())
				case <-deadline:
					t.Fatalf("serve did not start:\n%s", errb.String())
				case <-time.After(20 * time.Millisecond):
				}
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not stop")
			}
			if got.Load() != c.want {
				t.Fatalf("memory limit set to %d, want %d", got.Load(), c.want)
			}
			if gotGC.Load() != int64(c.wantGC) {
				t.Fatalf("GOGC set to %d, want %d (0: left alone)", gotGC.Load(), c.wantGC)
			}
			if !strings.Contains(errb.String(), "memory limit") {
				t.Fatalf("no memory limit line in the log:\n%s", errb.String())
			}
		})
	}
}
