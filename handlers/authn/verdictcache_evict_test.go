package authn

import (
	"strings"
	"testing"
)

// TestVerdictCacheOfOneKeepsStrings: with a cache of one verdict (load row
// 11: every new token evicts the last), adding a verdict whose strings the
// evicted one shared allocates nothing: they stay interned across the
// eviction rather than being dropped and cloned again. Each table then
// holds one value, and a different user still replaces the old one.
func TestVerdictCacheOfOneKeepsStrings(t *testing.T) {
	c, err := newVerdictCache(1)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func(uid string) verdict { // strings of their own, as a new token's decoding gives
		v := warmCacheVerdict(strings.Clone(uid), 1)
		v.meta = tokenMeta{alg: strings.Clone("RS256"), kid: strings.Clone("k1"), iss: strings.Clone("https://issuer")}.clone()
		return v
	}
	c.Add(warmCacheKey(0), fresh("user-1"))
	vs := make([]verdict, 102) // AllocsPerRun calls once more than its runs
	for i := range vs {
		vs[i] = fresh("user-1")
	}
	i := 1
	if n := testing.AllocsPerRun(100, func() {
		if !c.Add(warmCacheKey(i%8), vs[i]) {
			t.Fatal("no eviction in a full cache of one")
		}
		i++
	}); n != 0 {
		t.Errorf("Add evicting a verdict with the same strings: %v allocations", n)
	}
	if c.metas.len() != 1 || c.users.len() != 1 || c.Len() != 1 {
		t.Fatalf("tables hold %d metas, %d users, %d verdicts; want 1 each", c.metas.len(), c.users.len(), c.Len())
	}
	c.Add(warmCacheKey(9), fresh("user-2"))
	got, ok := c.Get(warmCacheKey(9))
	if !ok || got.userID != "user-2" || got.meta.kid != "k1" || c.users.len() != 1 || c.metas.len() != 1 {
		t.Fatalf("another user: %v %+v; %d users, %d metas", ok, got, c.users.len(), c.metas.len())
	}
}
