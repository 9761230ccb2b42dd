package health

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// healthSyncBuffer is a bytes.Buffer safe for the probing goroutines.
type healthSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *healthSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *healthSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A dependency that is down from the start is logged after the first
// probe, not only when it later changes (it used to stay silent until it
// came up, so an operator starting the gateway saw nothing wrong).
func TestCheckerLogsAFailureFromTheStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs healthSyncBuffer
		var changes []string
		c := New(time.Hour, slog.New(slog.NewTextHandler(&logs, nil)), func(name string, ok bool) {
			changes = append(changes, name+map[bool]string{true: " up", false: " down"}[ok])
		})
		c.Add("auth_service", func(context.Context) error { return errors.New("connection refused") })
		c.Start()
		synctest.Wait() // the first probe only: the next is half an hour away
		c.Stop()
		out := logs.String()
		if !strings.Contains(out, `msg="readiness check fails" check=auth_service`) || !strings.Contains(out, "connection refused") {
			t.Fatalf("log after the first failing probe:\n%s\nwant a readiness check fails warning naming auth_service and the error", out)
		}
		if len(changes) != 1 || changes[0] != "auth_service down" {
			t.Fatalf("OnChange calls %v, want [auth_service down]", changes)
		}
	})
}
