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

// TestIdentityValues: a user's identity values are the standard headers in
// order with empty ones left out, each value exactly the user's (not a
// neighbour's bytes from the shared block), and each value slice full
// (cap == len), so a caller that appends to one copies it instead of
// writing over the next header's value.
func TestIdentityValues(t *testing.T) {
	idn := newIdentity("X-User-")
	tests := []struct {
		name string
		user models.User
		want [][2]string
	}{
		{"all set", models.User{ID: "7", Email: "a@example.com", Username: "alice", IsStaff: true},
			[][2]string{{"X-User-Id", "7"}, {"X-User-Email", "a@example.com"}, {"X-User-Username", "alice"},
				{"X-User-Is-Staff", "true"}, {"X-User-Is-Superuser", "false"}}},
		{"no email or username", models.User{ID: "42", IsSuperuser: true},
			[][2]string{{"X-User-Id", "42"}, {"X-User-Is-Staff", "false"}, {"X-User-Is-Superuser", "true"}}},
		{"control character quoted", models.User{ID: "1", Username: "a\nb"},
			[][2]string{{"X-User-Id", "1"}, {"X-User-Username", `"a\nb"`}, {"X-User-Is-Staff", "false"},
				{"X-User-Is-Superuser", "false"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := idn.values(&tt.user)
			if len(got) != len(tt.want) {
				t.Fatalf("%d headers %v, want %d", len(got), got, len(tt.want))
			}
			for i, h := range got {
				if h.name != tt.want[i][0] || len(h.value) != 1 || h.value[0] != tt.want[i][1] {
					t.Errorf("header %d = %s %q, want %s %q", i, h.name, h.value, tt.want[i][0], tt.want[i][1])
				}
				if cap(h.value) != len(h.value) {
					t.Errorf("%s: cap %d > len %d: an append would write into the next value", h.name, cap(h.value), len(h.value))
				}
			}
			// An append to one header's values leaves the others alone.
			before := got[len(got)-1].value[0]
			_ = append(got[0].value, "appended")
			if got[len(got)-1].value[0] != before || (len(got) > 1 && got[1].value[0] != tt.want[1][1]) {
				t.Fatalf("an append to %s changed another header: %v", got[0].name, got)
			}
		})
	}
}
