package models

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openTestStore(t testing.TB) *Store {
	t.Helper()
	s, err := OpenStore(t.Context(), Database{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "m.db")}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStoreUpsertKeepsOneRowPerID(t *testing.T) {
	s := openTestStore(t)
	ctx := t.Context()
	u, err := UserFromRecord([]byte(`{"id": 5, "email": "a@x", "is_active": true, "is_staff": true, "services": ["b"], "date_joined": "2026-01-02T03:04:05.123456-06:00", "last_login": null}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	u.Email, u.IsStaff = "b@x", false
	if err := s.UpsertUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.User(ctx, "5")
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "b@x" || got.IsStaff || got.DateJoined == nil || got.DateJoined.UTC().Hour() != 9 || got.LastLogin != nil {
		t.Fatalf("got %+v", got)
	}
	if fmt.Sprint(got.Fields["services"]) != "[b]" {
		t.Fatalf("fields %v", got.Fields)
	}
	all, _ := s.Users(ctx)
	if len(all) != 1 {
		t.Fatalf("%d rows", len(all))
	}
}

func TestStoreConcurrentUpserts(t *testing.T) {
	s := openTestStore(t)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			u := User{ID: fmt.Sprint(i % 20), Email: fmt.Sprintf("u%d@x", i), IsActive: true, FetchedAt: time.Now()}
			if err := s.UpsertUser(context.Background(), u); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("upsert failed: %v", err)
	}
	all, _ := s.Users(t.Context())
	if len(all) != 20 {
		t.Fatalf("%d rows, want 20", len(all))
	}
}

func TestStoreNotFoundAndSetActive(t *testing.T) {
	s := openTestStore(t)
	if _, err := s.User(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v", err)
	}
	if err := s.SetActive(t.Context(), "nope", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v", err)
	}
	if err := s.UpsertUser(t.Context(), User{ID: "1", IsActive: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive(t.Context(), "1", false); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.User(t.Context(), "1"); u.IsActive {
		t.Fatal("still active")
	}
	if err := s.DeleteUser(t.Context(), "1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(t.Context(), "1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v", err)
	}
}

func TestUserFromRecordIDs(t *testing.T) {
	for body, want := range map[string]string{`{"id": 3}`: "3", `{"id": "3"}`: "3", `{"pk": 9}`: "9", `{"id": "a-uuid"}`: "a-uuid"} {
		u, err := UserFromRecord([]byte(body), time.Now())
		if err != nil || u.ID != want || !u.IsActive {
			t.Fatalf("%s: %+v %v", body, u, err)
		}
	}
	for _, body := range []string{`{}`, `{"id": null}`, `{"id": 1.5}`, `[]`, `nope`} {
		if _, err := UserFromRecord([]byte(body), time.Now()); err == nil {
			t.Fatalf("%s accepted", body)
		}
	}
}
