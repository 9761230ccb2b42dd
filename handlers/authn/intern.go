package authn

// internTable is a reference-counted set of values, each named by a small
// integer id, so that what holds the ids (the verify cache's slots) holds
// no pointers and the garbage collector does not scan it. A value is
// stored once (cloned, so it keeps no larger buffer alive) however many
// ids refer to it; acquire and release count the references, and a value
// whose count drops to 0 is dropped and its id reused. It is not safe for
// concurrent use: the verify cache guards it with its own lock.
type internTable[T comparable] struct {
	clone   func(T) T
	ids     map[T]uint32
	entries []internEntry[T]
	free    []uint32 // ids of entries whose refs are 0
}

type internEntry[T comparable] struct {
	v    T
	refs uint32
}

// newInternTable returns an empty table that stores clone(v) for a new v.
func newInternTable[T comparable](clone func(T) T) internTable[T] {
	return internTable[T]{clone: clone, ids: map[T]uint32{}}
}

// acquire returns v's id, adding v if it is new, and counts one more
// reference to it.
func (t *internTable[T]) acquire(v T) uint32 {
	if id, ok := t.ids[v]; ok {
		t.entries[id].refs++
		return id
	}
	v = t.clone(v)
	var id uint32
	if n := len(t.free); n > 0 {
		id, t.free = t.free[n-1], t.free[:n-1]
		t.entries[id] = internEntry[T]{v: v, refs: 1}
	} else {
		id = uint32(len(t.entries))
		t.entries = append(t.entries, internEntry[T]{v: v, refs: 1})
	}
	t.ids[v] = id
	return id
}

// release drops one reference to id, and the value with the last one.
func (t *internTable[T]) release(id uint32) {
	e := &t.entries[id]
	if e.refs--; e.refs > 0 {
		return
	}
	delete(t.ids, e.v)
	*e = internEntry[T]{}
	if len(t.ids) == 0 { // the last value: an emptied table holds none
		t.entries, t.free = t.entries[:0], t.free[:0]
		return
	}
	t.free = append(t.free, id)
}

// value returns the value named id.
func (t *internTable[T]) value(id uint32) T { return t.entries[id].v }

// len returns the number of distinct values held.
func (t *internTable[T]) len() int { return len(t.ids) }
