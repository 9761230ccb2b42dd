package handlers

import (
	"runtime"
	"testing"
	"time"

	"jwtgate/models"
)

// The identity-header memo builds a record's values once, gives a
// refreshed record (a new *models.User, as authn makes one) its own values,
// does not keep a record alive, and never hands one record's values to a
// copy of it or to another memo (settings reloaded with another prefix).
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
	cp := *fresh
	cp.Email = "copy@example.com"
	if got := idn.memo.get(&cp, build); builds != 3 || got[1].value[0] != "copy@example.com" {
		t.Fatalf("a copy of a record reused its values (%d builds, %v)", builds, got)
	}
	other := newIdentity("X-Other-")
	if got := other.memo.get(fresh, other.values); got[0].name != "X-Other-Id" {
		t.Fatalf("another memo got this memo's values: %v", got)
	}
	collected := make(chan struct{})
	runtime.AddCleanup(old, func(ch chan struct{}) { close(ch) }, collected)
	old, fresh = nil, nil
	for i := 0; i < 500; i++ {
		runtime.GC()
		select {
		case <-collected:
			return
		case <-time.After(time.Millisecond): // cleanups run on their own goroutine
		}
	}
	t.Fatal("a memoised record was never collected: the memo keeps it alive")
	_, _ = old, fresh
}
