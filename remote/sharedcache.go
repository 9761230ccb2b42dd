package remote

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"jwtgate/models"
)

// ErrSharedCacheSkipped is returned while the shared cache's circuit is
// open: Redis failed recently and is not asked again before a backoff.
var ErrSharedCacheSkipped = errors.New("shared cache skipped: redis failed recently")

// SharedCacheObserver is told about failed Redis commands (metrics
// implements it). op is get, set, del or ping.
type SharedCacheObserver interface {
	SharedCacheError(op string)
}

// SharedCache stores opaque values by token key in Redis (the shared
// verdict cache, auth.cache.redis_url). It knows nothing of verdicts: the
// caller seals and opens the values. Every command is bounded by
// auth.cache.redis_timeout and never retried; after a failure Redis is
// skipped for a backoff (100ms doubling to 5s), then one command probes it,
// so a dead Redis costs a request nothing but a mutex. It is safe for
// concurrent use.
type SharedCache struct {
	rdb     *redis.Client
	prefix  string
	timeout time.Duration
	obs     SharedCacheObserver
	now     func() time.Time

	mu        sync.Mutex
	fails     int   // consecutive failures
	openUntil int64 // Unix ns: skip Redis before this
	probing   bool  // one command is probing a Redis that failed
}

// Backoffs of the shared cache's circuit: the first after one failure, then
// doubling up to the last.
const (
	sharedBackoffMin = 100 * time.Millisecond
	sharedBackoffMax = 5 * time.Second
)

// NewSharedCache builds the Redis client of c (auth.cache.redis_*). It
// does not connect: the first command does. obs may be nil; now nil is
// time.Now.
func NewSharedCache(c models.AuthCache, obs SharedCacheObserver, now func() time.Time) (*SharedCache, error) {
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("auth.cache.redis_url: %w", err)
	}
	// One bound for everything a command may wait on; no retries: a miss
	// here costs a call home, which is what the gateway did without Redis.
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = c.RedisTimeout, c.RedisTimeout, c.RedisTimeout, c.RedisTimeout
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.ContextTimeoutEnabled = true
	// No extra round trips on connect (CLIENT SETINFO, maintenance
	// notifications): a new connection costs one dial and HELLO.
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	opt.PoolSize = max(opt.PoolSize, 16)
	opt.MinIdleConns = 0
	if now == nil {
		now = time.Now
	}
	return &SharedCache{rdb: redis.NewClient(opt), prefix: c.RedisPrefix, timeout: c.RedisTimeout, obs: obs, now: now}, nil
}

// Key is the Redis key of a token key: the prefix and the hex of the
// token's SHA-256 (never the token itself).
func (s *SharedCache) Key(key [32]byte) string {
	var b [64]byte
	hex.Encode(b[:], key[:])
	return s.prefix + string(b[:])
}

// allow says whether a command may go to Redis now (the circuit is closed,
// or this command is the one probe after a backoff).
func (s *SharedCache) allow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fails == 0 {
		return true
	}
	if s.probing || s.now().UnixNano() < s.openUntil {
		return false
	}
	s.probing = true
	return true
}

// done records a command's outcome: a failure opens the circuit for a
// backoff that doubles with each failure in a row.
func (s *SharedCache) done(op string, err error) {
	failed := err != nil && !errors.Is(err, redis.Nil)
	s.mu.Lock()
	if failed {
		s.fails++
		backoff := sharedBackoffMax
		if s.fails < 7 {
			backoff = min(sharedBackoffMin<<(s.fails-1), sharedBackoffMax)
		}
		s.openUntil = s.now().Add(backoff).UnixNano()
	} else {
		s.fails = 0
	}
	s.probing = false
	s.mu.Unlock()
	if failed && s.obs != nil {
		s.obs.SharedCacheError(op)
	}
}

// bounded returns ctx without its caller's cancellation (a coalesced
// lookup serves every waiter) and with the command's timeout.
func (s *SharedCache) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
}

// Get returns the value stored for key; nil, nil when there is none. An
// error means Redis could not answer (or was skipped:
// ErrSharedCacheSkipped).
func (s *SharedCache) Get(ctx context.Context, key [32]byte) ([]byte, error) {
	if !s.allow() {
		return nil, ErrSharedCacheSkipped
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	b, err := s.rdb.Get(ctx, s.Key(key)).Bytes()
	s.done("get", err)
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis get: %w", err)
	}
	return b, nil
}

// Set stores val for key until expires: PX with the time left, in whole
// milliseconds rounded down, so a difference between this machine's clock
// and Redis' never makes an entry outlive its verdict (readers check the
// expiry sealed in the value against their own clock as well).
func (s *SharedCache) Set(ctx context.Context, key [32]byte, val []byte, expires time.Time) error {
	left := expires.Sub(s.now()).Truncate(time.Millisecond)
	if left <= 0 {
		return nil // nothing worth storing
	}
	if !s.allow() {
		return ErrSharedCacheSkipped
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	err := s.rdb.Set(ctx, s.Key(key), val, left).Err()
	s.done("set", err)
	if err != nil {
		return fmt.Errorf("redis set: %w", err)
	}
	return nil
}

// Del deletes the values stored for keys. It is tried even while the
// circuit is open: a deletion that is skipped could let a revoked verdict
// be read back (the readers still check revocations, but the entry should
// go).
func (s *SharedCache) Del(ctx context.Context, keys ...[32]byte) error {
	if len(keys) == 0 {
		return nil
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = s.Key(k)
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	err := s.rdb.Del(ctx, names...).Err()
	s.done("del", err)
	if err != nil {
		return fmt.Errorf("redis del: %w", err)
	}
	return nil
}

// Ping checks that Redis answers (jwtgate check, readiness is not affected:
// the gateway works without it).
func (s *SharedCache) Ping(ctx context.Context) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.done("ping", err)
		return fmt.Errorf("redis ping: %w", err)
	}
	s.done("ping", nil)
	return nil
}

// Close closes the connections.
func (s *SharedCache) Close() error { return s.rdb.Close() }
