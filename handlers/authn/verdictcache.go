package authn

import (
	"errors"
	"math"
	"sync"
)

// verdictCache is the verify cache: a fixed-capacity LRU of verdicts keyed
// by TokenKey. Unlike a general LRU it has no heap object per entry: the
// entries live in one slice, linked by int32 indices, and the index maps a
// key to its slot, so a cached token costs its 112-byte slot and its index
// entry, not a list element with pointers and an unused expiry. It is safe
// for concurrent use.
type verdictCache struct {
	mu    sync.Mutex
	size  int
	index map[[32]byte]int32
	slots []verdictSlot // grows up to size; a removed slot goes to the free list
	head  int32         // most recently used, or -1
	tail  int32         // least recently used, or -1
	free  int32         // first free slot, or -1
}

type verdictSlot struct {
	key        [32]byte
	v          verdict
	prev, next int32 // towards head, towards tail; -1 at the ends (free list: next)
}

// newVerdictCache returns an empty cache of at most size verdicts.
func newVerdictCache(size int) (*verdictCache, error) {
	if size <= 0 || size > math.MaxInt32 {
		return nil, errors.New("must be between 1 and 2147483647")
	}
	// The slots are reserved at once: untouched pages of a fresh allocation
	// take no RSS, and a cache that fills never copies itself to grow.
	return &verdictCache{size: size, index: map[[32]byte]int32{}, slots: make([]verdictSlot, 0, size), head: -1, tail: -1, free: -1}, nil
}

// Get returns key's verdict and marks it most recently used.
func (c *verdictCache) Get(key [32]byte) (verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[key]
	if !ok {
		return verdict{}, false
	}
	c.toFront(i)
	return c.slots[i].v, true
}

// Peek returns key's verdict without marking it used.
func (c *verdictCache) Peek(key [32]byte) (verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[key]
	if !ok {
		return verdict{}, false
	}
	return c.slots[i].v, true
}

// Add stores v for key as most recently used and reports whether the
// least recently used verdict was evicted to make room.
func (c *verdictCache) Add(key [32]byte, v verdict) (evicted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[key]; ok {
		c.slots[i].v = v
		c.toFront(i)
		return false
	}
	var i int32
	switch {
	case c.free >= 0:
		i = c.free
		c.free = c.slots[i].next
	case len(c.slots) < c.size:
		c.slots = append(c.slots, verdictSlot{})
		i = int32(len(c.slots) - 1)
	default: // full: reuse the least recently used slot
		i = c.tail
		c.unlink(i)
		delete(c.index, c.slots[i].key)
		evicted = true
	}
	c.slots[i] = verdictSlot{key: key, v: v, prev: -1, next: -1}
	c.index[key] = i
	c.pushFront(i)
	return evicted
}

// Remove drops key's verdict and reports whether there was one.
func (c *verdictCache) Remove(key [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[key]
	if !ok {
		return false
	}
	c.unlink(i)
	delete(c.index, key)
	c.slots[i] = verdictSlot{prev: -1, next: c.free} // drop the interned handles
	c.free = i
	return true
}

// Purge drops every verdict and the memory they took.
func (c *verdictCache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index = map[[32]byte]int32{}
	c.slots = make([]verdictSlot, 0, c.size)
	c.head, c.tail, c.free = -1, -1, -1
}

// Len returns the number of cached verdicts.
func (c *verdictCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.index)
}

func (c *verdictCache) toFront(i int32) {
	if c.head == i {
		return
	}
	c.unlink(i)
	c.pushFront(i)
}

func (c *verdictCache) pushFront(i int32) {
	s := &c.slots[i]
	s.prev, s.next = -1, c.head
	if c.head >= 0 {
		c.slots[c.head].prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
}

func (c *verdictCache) unlink(i int32) {
	s := &c.slots[i]
	if s.prev >= 0 {
		c.slots[s.prev].next = s.next
	} else {
		c.head = s.next
	}
	if s.next >= 0 {
		c.slots[s.next].prev = s.prev
	} else {
		c.tail = s.prev
	}
	s.prev, s.next = -1, -1
}

// Resize changes the capacity to size (a reload that changes
// auth.cache.size), keeping the most recently used verdicts that fit, in
// their order, and returns how many were dropped. A size out of range is
// ignored.
func (c *verdictCache) Resize(size int) (dropped int) {
	if size <= 0 || size > math.MaxInt32 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if size == c.size {
		return 0
	}
	kept := make([]verdictSlot, 0, min(len(c.index), size))
	for i := c.head; i >= 0 && len(kept) < size; i = c.slots[i].next {
		kept = append(kept, c.slots[i])
	}
	dropped = len(c.index) - len(kept)
	c.size = size
	c.index = make(map[[32]byte]int32, len(kept))
	c.slots = make([]verdictSlot, len(kept), size)
	c.head, c.tail, c.free = -1, -1, -1
	for i, s := range kept { // kept is most recent first: slot i links to i±1
		c.slots[i] = verdictSlot{key: s.key, v: s.v, prev: int32(i) - 1, next: int32(i) + 1}
		c.index[s.key] = int32(i)
	}
	if n := int32(len(kept)); n > 0 {
		c.slots[n-1].next = -1
		c.head, c.tail = 0, n-1
	}
	return dropped
}
