package authn

import (
	"container/list"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"

	"jwtgate/models"
)

// TestVerdictCacheMatchesReferenceLRU drives the verify cache's own hash
// table through random adds, gets, removes, evictions, resizes and purges
// and checks every answer against a plain map-and-list LRU. The key space
// is a few times the capacity and a few keys share their table home, so
// probe chains form, wrap around the table's end and get shifted back by
// removals and evictions.
func TestVerdictCacheMatchesReferenceLRU(t *testing.T) {
	for _, size := range []int{1, 2, 3, 7, 64, 300} {
		rng := rand.New(rand.NewPCG(uint64(size), 16))
		c, err := newVerdictCache(size)
		if err != nil {
			t.Fatal(err)
		}
		ref := newRefLRU(size)
		keys := make([][32]byte, 4*size+8)
		for i := range keys {
			binary.LittleEndian.PutUint64(keys[i][:], rng.Uint64())
		}
		for step := range 20000 {
			k := keys[rng.IntN(len(keys))]
			switch op := rng.IntN(100); {
			case op < 45:
				v := warmCacheVerdict("u", int64(step))
				if got, want := c.Add(k, v), ref.add(k, v.exp); got != want {
					t.Fatalf("size %d step %d: Add evicted %v, want %v", size, step, got, want)
				}
			case op < 80:
				v, ok := c.Get(k)
				exp, wantOK := ref.get(k)
				if ok != wantOK || (ok && v.exp != exp) {
					t.Fatalf("size %d step %d: Get = %v %d, want %v %d", size, step, ok, v.exp, wantOK, exp)
				}
			case op < 97:
				if got, want := c.Remove(k), ref.remove(k); got != want {
					t.Fatalf("size %d step %d: Remove = %v, want %v", size, step, got, want)
				}
			case op < 99:
				n := 1 + rng.IntN(2*size)
				c.Resize(n)
				ref.resize(n)
			default:
				c.Purge()
				ref = newRefLRU(size)
				c.Resize(size)
			}
			if c.Len() != ref.l.Len() {
				t.Fatalf("size %d step %d: Len = %d, want %d", size, step, c.Len(), ref.l.Len())
			}
		}
		for _, k := range keys { // every key the reference holds, and no other
			v, ok := c.Peek(k)
			exp, wantOK := ref.get(k)
			if ok != wantOK || (ok && v.exp != exp) {
				t.Fatalf("size %d: final Peek = %v %d, want %v %d", size, ok, v.exp, wantOK, exp)
			}
		}
	}
}

// TestVerdictCacheBytesPerToken: a full verify cache of 100 000 verdicts
// costs its 112-byte slots and 8-byte table entries (at most twice as many
// as tokens), not a Go map repeating each 32-byte key (about 64 bytes a
// token more; issue 16).
func TestVerdictCacheBytesPerToken(t *testing.T) {
	const n = 100000
	meta := newVerdict(models.Token{Alg: "RS256", UserID: "1"}, models.Token{}.Expires)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := newVerdictCache(n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		var k [32]byte
		binary.LittleEndian.PutUint64(k[:], uint64(i)*0x9e3779b97f4a7c15)
		c.Add(k, meta)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	runtime.KeepAlive(c)
	if c.Len() != n {
		t.Fatalf("Len = %d, want %d", c.Len(), n)
	}
	t.Logf("%d bytes a verdict", per)
	if per > 140 {
		t.Errorf("a cached verdict takes %d bytes of heap, want at most 140", per)
	}
}

type refLRU struct {
	size int
	l    *list.List // of refEntry, most recent first
	m    map[[32]byte]*list.Element
}

type refEntry struct {
	k   [32]byte
	exp int64
}

func newRefLRU(size int) *refLRU {
	return &refLRU{size: size, l: list.New(), m: map[[32]byte]*list.Element{}}
}

func (r *refLRU) add(k [32]byte, exp int64) (evicted bool) {
	if e, ok := r.m[k]; ok {
		e.Value = refEntry{k, exp}
		r.l.MoveToFront(e)
		return false
	}
	if r.l.Len() >= r.size {
		delete(r.m, r.l.Remove(r.l.Back()).(refEntry).k)
		evicted = true
	}
	r.m[k] = r.l.PushFront(refEntry{k, exp})
	return evicted
}

func (r *refLRU) get(k [32]byte) (int64, bool) {
	e, ok := r.m[k]
	if !ok {
		return 0, false
	}
	r.l.MoveToFront(e)
	return e.Value.(refEntry).exp, true
}

func (r *refLRU) remove(k [32]byte) bool {
	e, ok := r.m[k]
	if ok {
		r.l.Remove(e)
		delete(r.m, k)
	}
	return ok
}

func (r *refLRU) resize(size int) {
	r.size = size
	for r.l.Len() > size {
		delete(r.m, r.l.Remove(r.l.Back()).(refEntry).k)
	}
}
