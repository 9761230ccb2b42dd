package authn

import (
	"errors"
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"sync"
)

// verdictCache is the verify cache: a fixed-capacity LRU of verdicts keyed
// by TokenKey. Unlike a general LRU it has no heap object per entry: the
// entries live in one slice, linked by int32 indices, and an open-addressed
// table of 8-byte entries maps a key to its slot, so a cached token costs
// its 104-byte slot and at most 16 bytes of table, not a list element with
// pointers and an unused expiry, nor a Go map entry repeating the 32-byte
// key (a map of 100 000 keys took 6.4 MB, the table takes 2 MB). Neither
// the slots nor the table hold pointers: a verdict's strings are ids into
// the cache's intern tables, so the garbage collector does not scan the
// cache (11 MB at 100 000 verdicts), only the tables' few distinct
// strings. It is safe for concurrent use.
type verdictCache struct {
	mu    sync.Mutex
	size  int
	seed  maphash.Seed  // per cache: tokens cannot be chosen to collide
	table []uint64      // 0: empty; else the key's hash low 32 bits << 32 | slot+1
	n     int           // keys in the table
	slots []verdictSlot // grows up to size; a removed slot goes to the free list
	head  int32         // most recently used, or -1
	tail  int32         // least recently used, or -1
	free  int32         // first free slot, or -1
	// The strings of the cached verdicts: every slot in use holds one
	// reference in each table, a free slot none.
	metas internTable[tokenMeta]
	users internTable[string]
}

type verdictSlot struct {
	key        [32]byte
	v          slotVerdict
	prev, next int32 // towards head, towards tail; -1 at the ends (free list: next)
}

// slotVerdict is a verdict as a slot holds it: without pointers.
type slotVerdict struct {
	meta, userID      uint32 // ids in the cache's metas and users
	exp, iat, expires int64
	key               [32]byte
}

// newVerdictCache returns an empty cache of at most size verdicts.
func newVerdictCache(size int) (*verdictCache, error) {
	if size <= 0 || size > math.MaxInt32 {
		return nil, errors.New("must be between 1 and 2147483647")
	}
	// The slots and the table are reserved at once: untouched pages of a
	// fresh allocation take no RSS, and a cache that fills never copies
	// itself to grow.
	c := &verdictCache{size: size, seed: maphash.MakeSeed()}
	c.reset()
	return c, nil
}

// reset empties the cache: new slots, table and intern tables.
func (c *verdictCache) reset() {
	c.table, c.n = newVerdictTable(c.size), 0
	c.slots = make([]verdictSlot, 0, c.size)
	c.head, c.tail, c.free = -1, -1, -1
	c.metas = newInternTable(tokenMeta.clone)
	c.users = newInternTable(strings.Clone)
}

// store interns v's strings (one more reference each) and returns v as a
// slot holds it.
func (c *verdictCache) store(v *verdict) slotVerdict {
	return slotVerdict{meta: c.metas.acquire(v.meta), userID: c.users.acquire(v.userID), exp: v.exp, iat: v.iat, expires: v.expires, key: v.key}
}

// load returns the verdict slot i holds: its strings are read from the
// intern tables (no copy: strings are immutable, and a value dropped from
// a table later stays valid for whoever holds it).
func (c *verdictCache) load(i int32) verdict {
	s := &c.slots[i].v
	return verdict{meta: c.metas.value(s.meta), userID: c.users.value(s.userID), exp: s.exp, iat: s.iat, expires: s.expires, key: s.key}
}

// release drops the references slot i's verdict holds; the slot is being
// emptied or overwritten.
func (c *verdictCache) release(i int32) {
	c.metas.release(c.slots[i].v.meta)
	c.users.release(c.slots[i].v.userID)
}

// newVerdictTable returns a table for size keys: a power of two at least
// 4/3 of size, so linear probing runs at most 3/4 full.
func newVerdictTable(size int) []uint64 {
	n := uint64(size) + uint64(size)/3 + 1
	return make([]uint64, uint64(1)<<bits.Len64(max(n, 8)-1))
}

func (c *verdictCache) hash(key *[32]byte) uint32 {
	return uint32(maphash.Bytes(c.seed, key[:]))
}

// find returns the table position of key and its slot, or the empty
// position where it would go and -1.
func (c *verdictCache) find(key *[32]byte) (pos uint64, slot int32) {
	return c.findHashed(key, c.hash(key))
}

// findHashed is find with key's hash h already computed.
func (c *verdictCache) findHashed(key *[32]byte, h uint32) (pos uint64, slot int32) {
	mask := uint64(len(c.table) - 1)
	for p := uint64(h) & mask; ; p = (p + 1) & mask {
		e := c.table[p]
		if e == 0 {
			return p, -1
		}
		if uint32(e>>32) == h {
			if i := int32(uint32(e)) - 1; c.slots[i].key == *key {
				return p, i
			}
		}
	}
}

// insert records that key is in slot i; key must not be in the table.
func (c *verdictCache) insert(key *[32]byte, i int32) {
	c.insertHashed(key, c.hash(key), i)
}

// insertHashed is insert with key's hash h already computed.
func (c *verdictCache) insertHashed(key *[32]byte, h uint32, i int32) {
	p, _ := c.findHashed(key, h)
	c.table[p] = uint64(h)<<32 | uint64(uint32(i+1))
	c.n++
}

// deleteAt empties table position p, shifting back the entries after it
// that probed past it (no tombstones: lookups stay short after churn).
func (c *verdictCache) deleteAt(p uint64) {
	mask := uint64(len(c.table) - 1)
	c.table[p] = 0
	c.n--
	for j := (p + 1) & mask; c.table[j] != 0; j = (j + 1) & mask {
		home := (c.table[j] >> 32) & mask
		if (j-home)&mask >= (j-p)&mask { // home is not in (p, j]: move it to p
			c.table[p], c.table[j] = c.table[j], 0
			p = j
		}
	}
}

// Get returns key's verdict and marks it most recently used. It is on
// every request's path: the key is hashed before the lock is taken (the
// seed never changes), and nothing in the critical section can panic, so
// it unlocks without a defer.
func (c *verdictCache) Get(key [32]byte) (verdict, bool) {
	h := c.hash(&key)
	c.mu.Lock()
	_, i := c.findHashed(&key, h)
	if i < 0 {
		c.mu.Unlock()
		return verdict{}, false
	}
	c.toFront(i)
	v := c.load(i)
	c.mu.Unlock()
	return v, true
}

// Peek returns key's verdict without marking it used.
func (c *verdictCache) Peek(key [32]byte) (verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, i := c.find(&key)
	if i < 0 {
		return verdict{}, false
	}
	return c.load(i), true
}

// Add stores v for key as most recently used and reports whether the
// least recently used verdict was evicted to make room.
func (c *verdictCache) Add(key [32]byte, v verdict) (evicted bool) {
	h := c.hash(&key) // once, for the lookup and the insert
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, i := c.findHashed(&key, h); i >= 0 {
		sv := c.store(&v) // before the release: the strings kept stay interned
		c.release(i)
		c.slots[i].v = sv
		c.toFront(i)
		return false
	}
	// Stored before an evicted verdict's release, as above: the strings
	// both share (the key's alg and kid, the issuer, often the user) stay
	// interned. Released first, with a cache of one verdict (load row 11:
	// every new token evicts the last), they were dropped and cloned again
	// for every new token: 3 allocations, 2 map deletes and 2 inserts.
	sv := c.store(&v)
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
		p, _ := c.find(&c.slots[i].key)
		c.deleteAt(p)
		c.release(i)
		evicted = true
	}
	c.slots[i] = verdictSlot{key: key, v: sv, prev: -1, next: -1}
	c.insertHashed(&key, h, i)
	c.pushFront(i)
	return evicted
}

// Remove drops key's verdict and reports whether there was one.
func (c *verdictCache) Remove(key [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, i := c.find(&key)
	if i < 0 {
		return false
	}
	c.unlink(i)
	c.deleteAt(p)
	c.release(i)
	c.slots[i] = verdictSlot{prev: -1, next: c.free}
	c.free = i
	return true
}

// Purge drops every verdict and the memory they took.
func (c *verdictCache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
}

// Len returns the number of cached verdicts.
func (c *verdictCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
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
	kept := make([]verdictSlot, 0, min(c.n, size))
	i := c.head
	for ; i >= 0 && len(kept) < size; i = c.slots[i].next {
		kept = append(kept, c.slots[i]) // its references move with it
	}
	for ; i >= 0; i = c.slots[i].next {
		c.release(i)
	}
	dropped = c.n - len(kept)
	c.size = size
	c.table, c.n = newVerdictTable(size), 0
	c.slots = make([]verdictSlot, len(kept), size)
	c.head, c.tail, c.free = -1, -1, -1
	for i, s := range kept { // kept is most recent first: slot i links to i±1
		c.slots[i] = verdictSlot{key: s.key, v: s.v, prev: int32(i) - 1, next: int32(i) + 1}
		c.insert(&c.slots[i].key, int32(i))
	}
	if n := int32(len(kept)); n > 0 {
		c.slots[n-1].next = -1
		c.head, c.tail = 0, n-1
	}
	return dropped
}
