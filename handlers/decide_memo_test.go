package handlers

import (
	"runtime"
	"testing"
	"time"

	"jwtgate/models"
)

// decideMemoLen counts the memo's entries.
func decideMemoLen(im *identityMemo) int {
	n := 0
	im.m.Range(func(any, any) bool { n++; return true })
	return n
}

// The identity-header memo builds a record's values once, gives a
// refreshed record (a new *models.User, as authn makes one) its own values,
// and forgets a record once nothing holds it.
func TestDecideIdentityMemo(t *testing.T) {
	idn := newIdentity("X-User-")
	builds := 0
	build := func(u *models.User) identityValues { builds++; return idn.values(u) }
	old := &models.User{ID: "7", Email: "old@example.com", IsActive: true}
	for range 3 {
		idn.memo.get(old, build)
	}
	if builds != 1 {
		t.Fatalf("%d builds for one record, want 1", builds)
	}
	fresh := &models.User{ID: "7", Email: "new@example.com", IsActive: true}
	got := idn.memo.get(fresh, build)
	if builds != 2 {
		t.Fatalf("a refreshed record reused the old values (%d builds)", builds)
	}
	for _, h := range got {
		if h.name == idn.email && h.value[0] != "new@example.com" {
			t.Fatalf("refreshed record's email %q", h.value[0])
		}
	}
	runtime.KeepAlive(old)
	old, fresh = nil, nil
	for i := 0; i < 500 && decideMemoLen(idn.memo) > 0; i++ {
		runtime.GC()
		time.Sleep(time.Millisecond) // cleanups run on their own goroutine
	}
	if n := decideMemoLen(idn.memo); n != 0 {
		t.Fatalf("%d entries left after their records were dropped", n)
	}
	_, _ = old, fresh
}
