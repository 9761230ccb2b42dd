package authn

import (
	"testing"
	"time"

	"jwtgate/models"
)

func warmCacheKey(i int) [32]byte { return TokenKey(string(rune('a' + i))) }

func warmCacheVerdict(uid string, exp int64) verdict {
	return newVerdict(models.Token{Alg: "RS256", UserID: uid, Expires: time.Unix(0, exp)}, time.Unix(0, exp))
}

// TestWarmVerdictCacheLRU: the compact verify cache keeps the most recently
// used verdicts, evicts the least recently used one when full (and says
// so), reuses removed slots, updates in place, and empties on Purge.
func TestWarmVerdictCacheLRU(t *testing.T) {
	c, err := newVerdictCache(3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if c.Add(warmCacheKey(i), warmCacheVerdict("u", int64(i))) {
			t.Fatalf("add %d evicted in a cache with room", i)
		}
	}
	if _, ok := c.Get(warmCacheKey(0)); !ok { // 0 is now the most recent; 1 the least
		t.Fatal("0 missing")
	}
	if !c.Add(warmCacheKey(3), warmCacheVerdict("u", 3)) {
		t.Fatal("full cache: no eviction reported")
	}
	if _, ok := c.Peek(warmCacheKey(1)); ok {
		t.Fatal("the least recently used verdict was not the one evicted")
	}
	for _, i := range []int{0, 2, 3} {
		if v, ok := c.Peek(warmCacheKey(i)); !ok || v.exp != int64(i) {
			t.Fatalf("verdict %d: %v %+v", i, ok, v)
		}
	}
	// Peek does not refresh: 2 is the least recent and goes next.
	c.Peek(warmCacheKey(2))
	c.Add(warmCacheKey(4), warmCacheVerdict("u", 4))
	if _, ok := c.Peek(warmCacheKey(2)); ok {
		t.Fatal("Peek refreshed recency")
	}
	// Update in place: no eviction, new value, most recent.
	if c.Add(warmCacheKey(0), warmCacheVerdict("v", 10)) {
		t.Fatal("update evicted")
	}
	if v, _ := c.Peek(warmCacheKey(0)); v.exp != 10 || v.token().UserID != "v" {
		t.Fatalf("update: %+v", v.token())
	}
	// Remove frees a slot that the next Add reuses without evicting.
	if !c.Remove(warmCacheKey(3)) || c.Remove(warmCacheKey(3)) {
		t.Fatal("Remove: want true then false")
	}
	if c.Len() != 2 || c.Add(warmCacheKey(5), warmCacheVerdict("u", 5)) || c.Len() != 3 || len(c.slots) != 3 {
		t.Fatalf("after remove and add: len %d, slots %d", c.Len(), len(c.slots))
	}
	// Removing the head and the tail keeps the list whole.
	c.Remove(warmCacheKey(5)) // head
	c.Remove(warmCacheKey(4)) // tail
	if v, ok := c.Get(warmCacheKey(0)); !ok || v.exp != 10 || c.head != c.tail {
		t.Fatalf("one left: %v head %d tail %d", ok, c.head, c.tail)
	}
	c.Purge()
	if c.Len() != 0 {
		t.Fatal("Purge left verdicts")
	}
	if _, ok := c.Get(warmCacheKey(0)); ok {
		t.Fatal("verdict after Purge")
	}
	for i := range 10 { // usable after Purge, bounded
		c.Add(warmCacheKey(i), warmCacheVerdict("u", int64(i)))
	}
	if c.Len() != 3 {
		t.Fatalf("len %d after 10 adds, want 3", c.Len())
	}
	if _, err := newVerdictCache(0); err == nil {
		t.Fatal("size 0 accepted")
	}
}

// TestWarmVerdictCacheResize: a reload that changes auth.cache.size keeps
// the most recently used verdicts that fit, in order, and the cache works
// on afterwards (LRU eviction at the new size, growing again).
func TestWarmVerdictCacheResize(t *testing.T) {
	c, err := newVerdictCache(4)
	if err != nil {
		t.Fatal(err)
	}
	k := func(b byte) [32]byte { return [32]byte{b} }
	for b := byte(1); b <= 4; b++ {
		c.Add(k(b), verdict{exp: int64(b)})
	}
	c.Get(k(1)) // order, most recent first: 1 4 3 2
	if got := c.Resize(2); got != 2 {
		t.Fatalf("Resize(2) dropped %d, want 2", got)
	}
	for b, want := range map[byte]bool{1: true, 4: true, 3: false, 2: false} {
		if _, ok := c.Peek(k(b)); ok != want {
			t.Errorf("after shrinking, key %d cached = %v, want %v", b, ok, want)
		}
	}
	if !c.Add(k(5), verdict{}) { // full at 2: evicts the least recent, 4
		t.Error("adding to a full resized cache evicted nothing")
	}
	if _, ok := c.Peek(k(4)); ok {
		t.Error("the least recently used verdict survived an eviction")
	}
	if got := c.Resize(8); got != 0 || c.Len() != 2 {
		t.Fatalf("growing dropped %d, len %d; want 0, 2", got, c.Len())
	}
	for b := byte(10); b < 16; b++ {
		if c.Add(k(b), verdict{}) {
			t.Fatalf("evicted while below the new size (key %d)", b)
		}
	}
	if c.Len() != 8 {
		t.Errorf("len %d after filling, want 8", c.Len())
	}
}
