package authn

import (
	"errors"
	"sync"
	"sync/atomic"

	"jwtgate/models"
)

// userCache is the cache of resolved users (users.cache_size): at most size
// users, evicted by CLOCK, an approximation of least recently used. It
// replaces a golang-lru cache because every warm request reads it: an LRU
// hit takes the exclusive lock and moves a list node, so the requests of
// every core queue on one mutex, and hashes a two-string struct key. Here a
// hit takes the read lock and sets the entry's "used" mark only when it is
// not already set (no write to shared memory on the hot path); the
// auth service's users (namespace "", the only one unless several issuers
// are trusted) are keyed by their id string, which Go's maps hash faster.
// A new user evicts the first entry the clock hand finds unmarked, clearing
// marks on its way, so a user used since the hand last passed stays. It is
// safe for concurrent use.
type userCache struct {
	mu    sync.RWMutex
	size  int
	ids   map[string]*userEntry         // namespace "" by id
	keyed map[models.UserKey]*userEntry // the other namespaces
	ring  []*userEntry                  // every entry once; entry.pos is its index
	hand  int                           // next ring index the eviction looks at
}

type userEntry struct {
	key  models.UserKey
	cu   *cachedUser // written under the exclusive lock
	pos  int         // index in ring, under the exclusive lock
	used atomic.Bool // set by a hit, cleared by the passing hand
}

// errNonPositiveSize refuses a user cache of no users (golang-lru's words).
var errNonPositiveSize = errors.New("must provide a positive size")

// newUserCache returns an empty cache of at most size users; size must
// be positive.
func newUserCache(size int) (*userCache, error) {
	if size <= 0 {
		return nil, errNonPositiveSize
	}
	c := &userCache{size: size}
	c.reset()
	return c, nil
}

func (c *userCache) reset() {
	c.ids, c.keyed, c.ring, c.hand = map[string]*userEntry{}, map[models.UserKey]*userEntry{}, nil, 0
}

// lookup returns k's entry or nil; the caller holds the lock.
func (c *userCache) lookup(k models.UserKey) *userEntry {
	if k.Issuer == "" {
		return c.ids[k.ID]
	}
	return c.keyed[k]
}

// Get returns k's cached user and marks it used.
func (c *userCache) Get(k models.UserKey) (*cachedUser, bool) {
	c.mu.RLock()
	e := c.lookup(k)
	if e == nil {
		c.mu.RUnlock()
		return nil, false
	}
	cu := e.cu
	if !e.used.Load() {
		e.used.Store(true)
	}
	c.mu.RUnlock()
	return cu, true
}

// Add caches cu for k, replacing k's user if there is one, and reports
// whether another user was evicted to make room.
func (c *userCache) Add(k models.UserKey, cu *cachedUser) (evicted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.lookup(k); e != nil {
		e.cu = cu
		e.used.Store(true)
		return false
	}
	e := &userEntry{key: k, cu: cu}
	if len(c.ring) < c.size {
		e.pos = len(c.ring)
		c.ring = append(c.ring, e)
	} else {
		// Full: the new user takes the victim's place, just behind the
		// hand, so it gets a whole turn before the hand comes back to it.
		i := c.victim()
		c.unmap(c.ring[i].key)
		e.pos, c.ring[i] = i, e
		c.hand = (i + 1) % len(c.ring)
		evicted = true
	}
	if k.Issuer == "" {
		c.ids[k.ID] = e
	} else {
		c.keyed[k] = e
	}
	return evicted
}

// victim moves the hand to the first unmarked entry, clearing the marks it
// passes, and returns its ring index; the ring is not empty.
func (c *userCache) victim() int {
	for {
		e := c.ring[c.hand]
		if !e.used.Load() {
			return c.hand
		}
		e.used.Store(false)
		c.hand = (c.hand + 1) % len(c.ring)
	}
}

// unmap deletes k from the maps (not from the ring).
func (c *userCache) unmap(k models.UserKey) {
	if k.Issuer == "" {
		delete(c.ids, k.ID)
	} else {
		delete(c.keyed, k)
	}
}

// Remove drops k's user and reports whether there was one.
func (c *userCache) Remove(k models.UserKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.lookup(k)
	if e == nil {
		return false
	}
	c.drop(e)
	return true
}

// drop removes e from the maps and the ring (the last entry takes its
// place); the caller holds the exclusive lock.
func (c *userCache) drop(e *userEntry) {
	c.unmap(e.key)
	last := len(c.ring) - 1
	if e.pos != last {
		m := c.ring[last]
		m.pos, c.ring[e.pos] = e.pos, m
	}
	c.ring[last] = nil // no stale pointer in the spare capacity
	c.ring = c.ring[:last]
	if c.hand >= len(c.ring) {
		c.hand = 0
	}
}

// Purge drops every user.
func (c *userCache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
}

// Resize changes the capacity to size (a reload that changes
// users.cache_size), evicting as Add would until the users fit, and
// returns how many were evicted. A size that is not positive is ignored.
func (c *userCache) Resize(size int) (evicted int) {
	if size <= 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.size = size
	for len(c.ring) > size {
		c.drop(c.ring[c.victim()])
		evicted++
	}
	return evicted
}

// Len returns the number of cached users.
func (c *userCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.ring)
}
