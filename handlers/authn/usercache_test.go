package authn

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"jwtgate/models"
)

// checkUserCache fails t unless c's maps and ring agree: every entry is
// once in the ring at its pos and in the map of its namespace, and the
// size bound holds.
func checkUserCache(t *testing.T, c *userCache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ring) > c.size {
		t.Fatalf("%d users cached, size %d", len(c.ring), c.size)
	}
	if n := len(c.ids) + len(c.keyed); n != len(c.ring) {
		t.Fatalf("maps hold %d users, ring %d", n, len(c.ring))
	}
	if len(c.ring) > 0 && (c.hand < 0 || c.hand >= len(c.ring)) {
		t.Fatalf("hand %d out of ring of %d", c.hand, len(c.ring))
	}
	for i, e := range c.ring {
		if e.pos != i {
			t.Fatalf("ring[%d] has pos %d", i, e.pos)
		}
		if c.lookup(e.key) != e {
			t.Fatalf("ring[%d] (%v) is not what the map holds", i, e.key)
		}
	}
}

func ukey(i int) models.UserKey { return models.UserKey{ID: strconv.Itoa(i)} }

// cachedIDs returns those of ids that c holds, in order.
func cachedIDs(c *userCache, ids ...int) []int {
	var in []int
	for _, i := range ids {
		if _, ok := c.Get(ukey(i)); ok {
			in = append(in, i)
		}
	}
	return in
}

// TestUserCache: the bound, CLOCK eviction (a user used since the hand
// last passed stays, an unused one goes), Remove, Purge, Resize and the
// two namespaces.
func TestUserCache(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, c *userCache)
		want []int // ids 1..8 still cached at the end
	}{
		{"bound: the first unused goes", func(t *testing.T, c *userCache) {
			for i := 1; i <= 6; i++ {
				evicted := c.Add(ukey(i), &cachedUser{})
				if evicted != (i > 4) {
					t.Fatalf("add %d: evicted %t", i, evicted)
				}
			}
		}, []int{3, 4, 5, 6}},
		{"used users stay", func(t *testing.T, c *userCache) {
			for i := 1; i <= 4; i++ {
				c.Add(ukey(i), &cachedUser{})
			}
			c.Get(ukey(1))
			c.Get(ukey(2))
			c.Add(ukey(5), &cachedUser{}) // passes 1 and 2, takes 3
			c.Get(ukey(1))
			c.Add(ukey(6), &cachedUser{}) // 4 is next and unused
		}, []int{1, 2, 5, 6}},
		{"a new user gets a whole turn", func(t *testing.T, c *userCache) {
			for i := 1; i <= 4; i++ {
				c.Add(ukey(i), &cachedUser{})
				c.Get(ukey(i))
			}
			c.Add(ukey(5), &cachedUser{}) // clears 1..4, takes 1
			c.Add(ukey(6), &cachedUser{}) // 2, not 5
		}, []int{3, 4, 5, 6}},
		{"replacing is not adding", func(t *testing.T, c *userCache) {
			for i := 1; i <= 4; i++ {
				c.Add(ukey(i), &cachedUser{})
			}
			for range 3 {
				if c.Add(ukey(2), &cachedUser{}) {
					t.Fatal("replacing a user evicted another")
				}
			}
		}, []int{1, 2, 3, 4}},
		{"remove", func(t *testing.T, c *userCache) {
			for i := 1; i <= 4; i++ {
				c.Add(ukey(i), &cachedUser{})
			}
			if !c.Remove(ukey(2)) || c.Remove(ukey(2)) || c.Remove(ukey(7)) {
				t.Fatal("Remove reported wrong")
			}
			c.Add(ukey(5), &cachedUser{}) // room again: nothing evicted
		}, []int{1, 3, 4, 5}},
		{"purge", func(t *testing.T, c *userCache) {
			for i := 1; i <= 4; i++ {
				c.Add(ukey(i), &cachedUser{})
			}
			c.Purge()
			c.Add(ukey(7), &cachedUser{})
		}, []int{7}},
		{"resize down and up", func(t *testing.T, c *userCache) {
			for i := 1; i <= 4; i++ {
				c.Add(ukey(i), &cachedUser{})
			}
			c.Get(ukey(4))
			if n := c.Resize(2); n != 2 {
				t.Fatalf("resize evicted %d, want 2", n)
			}
			if n := c.Resize(0); n != 0 || c.size != 2 {
				t.Fatal("a size of 0 was not ignored")
			}
			c.Resize(3)
			c.Add(ukey(5), &cachedUser{})
		}, []int{3, 4, 5}},
		{"namespaces are apart", func(t *testing.T, c *userCache) {
			c.Add(ukey(1), &cachedUser{})
			c.Add(models.UserKey{Issuer: "https://other", ID: "2"}, &cachedUser{})
			if _, ok := c.Get(models.UserKey{Issuer: "https://other", ID: "1"}); ok {
				t.Fatal("another issuer's user 1 is the auth service's")
			}
			if !c.Remove(models.UserKey{Issuer: "https://other", ID: "2"}) {
				t.Fatal("other issuer's user 2 not removed")
			}
		}, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newUserCache(4)
			if err != nil {
				t.Fatal(err)
			}
			tt.run(t, c)
			checkUserCache(t, c)
			got := cachedIDs(c, 1, 2, 3, 4, 5, 6, 7, 8)
			if len(got) != len(tt.want) || c.Len() != len(tt.want) {
				t.Fatalf("cached %v (Len %d), want %v", got, c.Len(), tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("cached %v, want %v", got, tt.want)
				}
			}
		})
	}
	if _, err := newUserCache(0); err == nil {
		t.Fatal("a cache of 0 users was made")
	}
}

// TestUserCacheGetReturnsWhatWasAdded: a hit is the record last added.
func TestUserCacheGetReturnsWhatWasAdded(t *testing.T) {
	c, _ := newUserCache(2)
	a, b := &cachedUser{}, &cachedUser{}
	c.Add(ukey(1), a)
	if got, _ := c.Get(ukey(1)); got != a {
		t.Fatal("not the added record")
	}
	c.Add(ukey(1), b)
	if got, _ := c.Get(ukey(1)); got != b {
		t.Fatal("not the replacing record")
	}
}

// TestUserCacheConcurrent: hits, adds, removes and resizes from many
// goroutines (run it with -race) keep the bound and the structure.
func TestUserCacheConcurrent(t *testing.T) {
	c, _ := newUserCache(64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range 5000 {
				k := ukey(r.IntN(200))
				if g == 7 && r.IntN(100) == 0 {
					k.Issuer = "https://other"
				}
				switch n := r.IntN(100); {
				case n < 70:
					if cu, ok := c.Get(k); ok && cu == nil {
						t.Error("nil record cached")
					}
				case n < 90:
					c.Add(k, &cachedUser{})
				case n < 99:
					c.Remove(k)
				default:
					c.Resize(32 + r.IntN(64))
				}
			}
		})
	}
	wg.Wait()
	checkUserCache(t, c)
}

// TestAuthenticateRereadsTheClockAfterACallHome: Authenticate reads the
// clock once for a cached verdict, but again after a call home, which can
// take seconds: a user whose refresh_after passed meanwhile is re-fetched.
func TestAuthenticateRereadsTheClockAfterACallHome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		us := newMemUsers()
		us.remote["1"] = models.User{ID: "1", IsActive: true}
		a := newAuth(t, &countingVerifier{delay: 2 * time.Second}, us)
		if _, err := a.Authenticate(t.Context(), token(t, 1, time.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if us.fetches.Load() != 1 {
			t.Fatalf("fetches %d, want 1", us.fetches.Load())
		}
		// One second before the user is due: a new token's call home
		// (2 s) ends after it.
		time.Sleep(testConfig().RefreshAfter - time.Second)
		if _, err := a.Authenticate(t.Context(), token(t, 1, time.Now().Add(2*time.Hour))); err != nil {
			t.Fatal(err)
		}
		if us.fetches.Load() != 2 {
			t.Fatalf("fetches %d, want 2: the user due during the call home was served from the cache", us.fetches.Load())
		}
	})
}

// TestRevokedSetEmptyFastPath: the set answers without its lock only while
// it is empty; a revocation after a prune to empty is seen at once.
func TestRevokedSetEmptyFastPath(t *testing.T) {
	s := newRevokedSet()
	k := [32]byte{1}
	steps := []struct {
		do   func()
		want bool
	}{
		{func() {}, false},
		{func() { s.add(k, 100, 0) }, true},
		{func() { s.prune(100) }, false},
		{func() { s.add(k, 300, 200) }, true},
	}
	for i, st := range steps {
		st.do()
		if _, ok := s.until(k); ok != st.want {
			t.Fatalf("step %d: revoked %t, want %t", i, ok, st.want)
		}
		if got := s.n.Load(); got != int64(s.len()) {
			t.Fatalf("step %d: n %d, len %d", i, got, s.len())
		}
	}
}
