package health

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestCheckerFollowsProbesAndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dbDown atomic.Bool
		var probes atomic.Int64
		var changes []string
		c := New(10*time.Second, slog.New(slog.DiscardHandler), func(name string, ok bool) {
			if ok {
				changes = append(changes, name+" up")
			} else {
				changes = append(changes, name+" down")
			}
		})
		c.Add("database", func(context.Context) error {
			probes.Add(1)
			if dbDown.Load() {
				return errors.New("connection refused")
			}
			return nil
		})
		c.Add("auth_service", func(ctx context.Context) error {
			<-ctx.Done() // hangs until the probe's own timeout
			return ctx.Err()
		})
		if ok, checks := c.Status(); ok || checks["database"] != "not checked yet" {
			t.Fatalf("before Start: ready=%v checks=%v, want not ready, not checked yet", ok, checks)
		}
		c.Start()
		synctest.Wait()
		ok, checks := c.Status()
		if ok || checks["database"] != "ok" {
			t.Fatalf("after the first probe: ready=%v checks=%v, want database ok and auth_service pending", ok, checks)
		}
		time.Sleep(11 * time.Second) // the hung probe times out after the interval
		synctest.Wait()
		if _, checks := c.Status(); checks["auth_service"] != "not answering" {
			t.Fatalf("hung auth probe: checks=%v, want auth_service not answering", checks)
		}
		dbDown.Store(true)
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if ok, checks := c.Status(); ok || checks["database"] != "not answering" {
			t.Fatalf("database down: ready=%v checks=%v", ok, checks)
		}
		c.Stop()
		n := probes.Load()
		time.Sleep(time.Minute)
		if got := probes.Load(); got != n {
			t.Fatalf("probes after Stop: %d, want %d", got, n)
		}
		if len(changes) < 2 || changes[0] != "database up" {
			t.Fatalf("OnChange calls %v, want database up first", changes)
		}
		// synctest.Test fails if a probing goroutine outlived Stop.
	})
}

func TestAnsweredKeepsPassingCheckFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fail atomic.Bool
		c := New(10*time.Second, slog.New(slog.DiscardHandler), nil)
		c.Add("auth_service", func(ctx context.Context) error {
			if fail.Load() {
				return errors.New("down")
			}
			return nil
		})
		c.Start()
		defer c.Stop()
		synctest.Wait()
		fail.Store(true)
		time.Sleep(6 * time.Second)
		synctest.Wait()
		c.Answered("auth_service") // one lucky call does not hide the failed probe
		if ok, checks := c.Status(); ok {
			t.Fatalf("failed probe then Answered: ready, checks=%v; want not ready", checks)
		}
	})
}
