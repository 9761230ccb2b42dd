package authn

import (
	"container/list"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strconv"
	"testing"

	"jwtgate/models"
)

// TestVerdictCacheMatchesReferenceLRU drives the verify cache's own hash
// table through random adds, gets, removes, evictions, resizes and purges
// and checks every answer against a plain map-and-list LRU. The key space
// is a few times the capacity and a few keys share their table home, so
// probe chains form, wrap around the table's end and get shifted back by
// removals and evictions. After every step the intern tables hold exactly
// the user ids and (alg, kid, iss) of the cached verdicts, each counted
// once per verdict: every path that empties or overwrites a slot releases
// its strings once. Removing every key leaves the tables empty.
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
		users := size/2 + 2 // fewer users than slots: most are shared
		for step := range 20000 {
			k := keys[rng.IntN(len(keys))]
			switch op := rng.IntN(100); {
			case op < 45:
				v := warmCacheVerdict("u"+strconv.Itoa(rng.IntN(users)), int64(step))
				v.meta.kid = strconv.Itoa(rng.IntN(3))
				if got, want := c.Add(k, v), ref.add(k, v); got != want {
					t.Fatalf("size %d step %d: Add evicted %v, want %v", size, step, got, want)
				}
			case op < 80:
				v, ok := c.Get(k)
				want, wantOK := ref.get(k)
				if ok != wantOK || (ok && v != want) {
					t.Fatalf("size %d step %d: Get = %v %+v, want %v %+v", size, step, ok, v, wantOK, want)
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
			checkInterned(t, c, ref)
		}
		for _, k := range keys { // every key the reference holds, and no other
			v, ok := c.Peek(k)
			want, wantOK := ref.get(k)
			if ok != wantOK || (ok && v != want) {
				t.Fatalf("size %d: final Peek = %v %+v, want %v %+v", size, ok, v, wantOK, want)
			}
		}
		for _, k := range keys {
			c.Remove(k)
			ref.remove(k)
		}
		checkInterned(t, c, ref)
		if c.Len() != 0 || len(c.users.entries) != 0 || len(c.metas.entries) != 0 || len(c.users.free) != 0 {
			t.Fatalf("size %d: emptied cache: len %d, %d user and %d meta entries, %d free ids", size, c.Len(), len(c.users.entries), len(c.metas.entries), len(c.users.free))
		}
	}
}

// checkInterned fails unless c's intern tables hold exactly the user ids
// and metas of ref's verdicts, each with one reference per verdict.
func checkInterned(t *testing.T, c *verdictCache, ref *refLRU) {
	t.Helper()
	users, metas := map[string]uint32{}, map[tokenMeta]uint32{}
	for e := ref.l.Front(); e != nil; e = e.Next() {
		v := e.Value.(refEntry).v
		users[v.userID]++
		metas[v.meta]++
	}
	checkInternTable(t, "user", &c.users, users)
	checkInternTable(t, "meta", &c.metas, metas)
}

func checkInternTable[T comparable](t *testing.T, name string, tab *internTable[T], want map[T]uint32) {
	t.Helper()
	if tab.len() != len(want) {
		t.Fatalf("%s table holds %d values, want %d", name, tab.len(), len(want))
	}
	live := 0
	for id, e := range tab.entries {
		if e.refs == 0 {
			continue
		}
		live++
		if e.refs != want[e.v] || tab.ids[e.v] != uint32(id) {
			t.Fatalf("%s %v: id %d with %d references, want id %d with %d", name, e.v, id, e.refs, tab.ids[e.v], want[e.v])
		}
	}
	if live != len(want) || live+len(tab.free) != len(tab.entries) {
		t.Fatalf("%s table: %d live and %d free of %d entries, want %d live", name, live, len(tab.free), len(tab.entries), len(want))
	}
}

// TestVerdictCacheBytesPerToken: a full verify cache of 100 000 verdicts
// costs its 104-byte slots and 8-byte table entries (at most twice as many
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
	k [32]byte
	v verdict
}

func newRefLRU(size int) *refLRU {
	return &refLRU{size: size, l: list.New(), m: map[[32]byte]*list.Element{}}
}

func (r *refLRU) add(k [32]byte, v verdict) (evicted bool) {
	if e, ok := r.m[k]; ok {
		e.Value = refEntry{k, v}
		r.l.MoveToFront(e)
		return false
	}
	if r.l.Len() >= r.size {
		delete(r.m, r.l.Remove(r.l.Back()).(refEntry).k)
		evicted = true
	}
	r.m[k] = r.l.PushFront(refEntry{k, v})
	return evicted
}

func (r *refLRU) get(k [32]byte) (verdict, bool) {
	e, ok := r.m[k]
	if !ok {
		return verdict{}, false
	}
	r.l.MoveToFront(e)
	return e.Value.(refEntry).v, true
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

// TestVerdictSlotHasNoPointers: the verify cache's slots hold no pointers,
// so Go allocates them in spans the garbage collector does not scan (11 MB
// at 100 000 verdicts, marked on every cycle when a slot held handles to
// its interned strings). A pointer field added back to a slot fails here.
func TestVerdictSlotHasNoPointers(t *testing.T) {
	if p := pointerPath(reflect.TypeFor[verdictSlot](), "verdictSlot"); p != "" {
		t.Errorf("%s holds a pointer: the collector would scan every slot of the verify cache", p)
	}
}

// pointerPath returns the path of the first field of a value of type typ
// (named path) that holds a pointer, or "".
func pointerPath(typ reflect.Type, path string) string {
	switch typ.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	case reflect.Array:
		if typ.Len() == 0 {
			return ""
		}
		return pointerPath(typ.Elem(), path+"[0]")
	case reflect.Struct:
		for i := range typ.NumField() {
			f := typ.Field(i)
			if p := pointerPath(f.Type, path+"."+f.Name); p != "" {
				return p
			}
		}
		return ""
	default: // pointer, string, slice, map, chan, func, interface
		return path
	}
}

// TestVerdictCacheHitsDoNotAllocate: a hit reads its verdict's strings back
// from the intern tables without allocating, and adding a verdict whose
// strings are interned already allocates nothing either (with an eviction
// in a full cache).
func TestVerdictCacheHitsDoNotAllocate(t *testing.T) {
	c, err := newVerdictCache(4)
	if err != nil {
		t.Fatal(err)
	}
	v := warmCacheVerdict("user-1", 1)
	for i := range 4 {
		c.Add(warmCacheKey(i), v)
	}
	var got verdict
	if n := testing.AllocsPerRun(100, func() { got, _ = c.Get(warmCacheKey(2)) }); n != 0 {
		t.Errorf("Get: %v allocations", n)
	}
	if got.userID != "user-1" || got.meta.alg != "RS256" {
		t.Errorf("Get: %+v", got)
	}
	i := 4
	if n := testing.AllocsPerRun(100, func() { c.Add(warmCacheKey(i%16), v); i++ }); n != 0 {
		t.Errorf("Add of interned strings: %v allocations", n)
	}
}
