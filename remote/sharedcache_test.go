package remote

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"jwtgate/models"
)

// testRedisURL is the machine's Redis (tests/setup.sh starts it).
const testRedisURL = "redis://127.0.0.1:6379/0"

// newTestShared is a SharedCache on url with a prefix of its own, whose
// keys are deleted in t.Cleanup.
func newTestShared(t *testing.T, url string, obs SharedCacheObserver) *SharedCache {
	t.Helper()
	c := models.DefaultSettings().Auth.Cache
	c.RedisURL, c.RedisPrefix = url, "jwtgate-test:"+strings.ToLower(rand.Text()[:10])+":"
	s, err := NewSharedCache(c, obs, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if url == testRedisURL {
			keys, _ := s.rdb.Keys(ctx, c.RedisPrefix+"*").Result()
			if len(keys) > 0 {
				s.rdb.Del(ctx, keys...)
			}
		}
		s.Close()
	})
	return s
}

type countErrors struct{ n atomic.Int64 }

func (c *countErrors) SharedCacheError(string) { c.n.Add(1) }

// TestSharedCacheKey: the Redis key is the prefix and the hex of the
// token key, never anything of the token.
func TestSharedCacheKey(t *testing.T) {
	s := newTestShared(t, testRedisURL, nil)
	var k [32]byte
	k[0], k[31] = 0xab, 0x01
	got := s.Key(k)
	want := s.prefix + "ab" + strings.Repeat("00", 30) + "01"
	if got != want || len(got) != len(s.prefix)+64 {
		t.Fatalf("Key = %q, want %q", got, want)
	}
}

// TestSharedCacheRedis: values round-trip through the real Redis, expire
// at their verdict's expiry and are deleted.
func TestSharedCacheRedis(t *testing.T) {
	s := newTestShared(t, testRedisURL, nil)
	ctx := t.Context()
	k := [32]byte{1, 2, 3}
	if v, err := s.Get(ctx, k); v != nil || err != nil {
		t.Fatalf("absent: %q, %v", v, err)
	}
	expires := time.Now().Add(20 * time.Second)
	if err := s.Set(ctx, k, []byte("sealed"), expires); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, k); string(v) != "sealed" || err != nil {
		t.Fatalf("after set: %q, %v", v, err)
	}
	pttl, err := s.rdb.PTTL(ctx, s.Key(k)).Result()
	// PX is relative: the entry's life starts when Redis applies the SET,
	// a little after the PX was computed (slack for a busy machine).
	if err != nil || pttl <= 0 || pttl > time.Until(expires)+250*time.Millisecond {
		t.Fatalf("PTTL %s (%v), want within the %s left", pttl, err, time.Until(expires))
	}
	if err := s.Set(ctx, [32]byte{9}, []byte("x"), time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.rdb.Exists(ctx, s.Key([32]byte{9})).Result(); n != 0 {
		t.Fatal("an expired verdict was stored")
	}
	if err := s.Del(ctx, k); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, k); v != nil || err != nil {
		t.Fatalf("after del: %q, %v", v, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSharedCacheDown: a closed port and a port that accepts but never
// answers both fail within the timeout, and then Redis is skipped (no
// dial, no wait) until the backoff has passed.
func TestSharedCacheDown(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() { // accept and hold connections, never answer
		var held []net.Conn
		for {
			c, err := silent.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	for _, tt := range []struct{ name, url string }{
		{"closed port", "redis://" + closedAddr + "/0"},
		{"silent port", "redis://" + silent.Addr().String() + "/0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			obs := &countErrors{}
			s := newTestShared(t, tt.url, obs)
			ctx := t.Context()
			done := make(chan error, 1)
			go func() {
				_, err := s.Get(ctx, [32]byte{1})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || errors.Is(err, ErrSharedCacheSkipped) || errors.Is(err, redis.Nil) {
					t.Fatalf("first get: %v, want a failure", err)
				}
			case <-time.After(5 * time.Second): // far above redis_timeout: it did not bound the command
				t.Fatal("get against a dead Redis did not return")
			}
			for range 100 {
				if _, err := s.Get(ctx, [32]byte{1}); !errors.Is(err, ErrSharedCacheSkipped) {
					t.Fatalf("get after a failure: %v, want skipped", err)
				}
			}
			if err := s.Set(ctx, [32]byte{1}, []byte("x"), time.Now().Add(time.Minute)); !errors.Is(err, ErrSharedCacheSkipped) {
				t.Fatalf("set after a failure: %v, want skipped", err)
			}
			if obs.n.Load() != 1 {
				t.Fatalf("errors counted %d, want 1 (skipped commands are not sent)", obs.n.Load())
			}
		})
	}
}
