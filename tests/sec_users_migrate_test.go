package tests

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"jwtgate/models"
	"jwtgate/tests/fakeauth"
)

// usersV1FetchedAt is when the rows of testdata/users_v1.sqlite were fetched.
var usersV1FetchedAt = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// usersV1 is models.User as it was before users were keyed by issuer: the
// primary key is the id alone. testdata/users_v1.sqlite was written by that
// code (ann "1" active staff, bob "2" inactive, "3f2b-uuid").
type usersV1 struct {
	ID          string `gorm:"primaryKey;size:191"`
	Email       string `gorm:"index;size:320"`
	Username    string `gorm:"size:191"`
	FirstName   string
	LastName    string
	IsActive    bool
	IsStaff     bool
	IsSuperuser bool
	DateJoined  *time.Time
	LastLogin   *time.Time
	Fields      map[string]any `gorm:"serializer:json"`
	FetchedAt   time.Time      `gorm:"index"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (usersV1) TableName() string { return "users" }

// usersCheckMigrated asserts the three old rows kept their ids and flags,
// in the auth service's namespace, and that the new key holds another
// issuer's user with the same id beside them.
func usersCheckMigrated(t testing.TB, st *models.Store) {
	t.Helper()
	ctx := t.Context()
	us, err := st.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 3 {
		t.Fatalf("%d rows after migration, want 3: %+v", len(us), us)
	}
	want := map[string]bool{"1": true, "2": false, "3f2b-uuid": true} // id → is_active
	for _, u := range us {
		active, ok := want[u.ID]
		if !ok || u.Issuer != "" || u.IsActive != active || !u.FetchedAt.Equal(usersV1FetchedAt) || u.CreatedAt.IsZero() {
			t.Fatalf("migrated row %+v", u)
		}
	}
	ann, err := st.User(ctx, "1")
	if err != nil || !ann.IsStaff || ann.Email != "ann@example.com" {
		t.Fatalf("ann after migration: %+v %v", ann, err)
	}
	other := models.User{Issuer: "legacy", ID: "1", Email: "not-ann@legacy", IsActive: true, FetchedAt: time.Now()}
	if err := st.UpsertUser(ctx, other); err != nil {
		t.Fatalf("another issuer's user 1 beside ann: %v", err)
	}
	if err := st.SetActiveByKey(ctx, models.UserKey{Issuer: "legacy", ID: "1"}, false); err != nil {
		t.Fatal(err)
	}
	if ann, err := st.User(ctx, "1"); err != nil || ann.Email != "ann@example.com" || !ann.IsActive {
		t.Fatalf("ann after writing legacy's user 1: %+v %v", ann, err)
	}
	if got, err := st.UserByKey(ctx, models.UserKey{Issuer: "legacy", ID: "1"}); err != nil || got.Email != "not-ann@legacy" || got.IsActive {
		t.Fatalf("legacy's user 1: %+v %v", got, err)
	}
}

// TestSecUsersMigrateSQLiteFile: a mirror file written by the old schema
// opens, keeps every row under its id, and a gateway on it serves those
// users from the mirror exactly as before (no call home while the records
// are fresh; an inactive one still refused).
func TestSecUsersMigrateSQLiteFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jwtgate.db")
	usersCopyFile(t, "testdata/users_v1.sqlite", db)

	clk := &clock{}
	clk.ns.Store(usersV1FetchedAt.Add(5 * time.Minute).UnixNano()) // the rows are 5 minutes old
	fa := fakeauth.Start(t, fakeauth.Options{Now: clk.Now})
	ann := fa.AddUser(fakeauth.User{ID: 1, Email: "ann@example.com", Password: "x", IsStaff: true})
	bob := fa.AddUser(fakeauth.User{ID: 2, Email: "bob@example.com", Password: "y"}) // active at the service
	up := startUpstream(t)
	cfg := fill(baseConfig, "DB", db)
	gw := startGateway(t, cfg, fa.URL(), up.URL, clk.Now)

	annAccess, _ := fa.IssuePair(ann.ID)
	r := get(t, gw.URL+"/api/billing/x", annAccess)
	if r.Status != http.StatusOK || r.echo(t).Headers.Get("X-User-Id") != "1" || r.echo(t).Headers.Get("X-User-Is-Staff") != "true" {
		t.Fatalf("ann from the migrated mirror: %d %s", r.Status, r.Body)
	}
	bobAccess, _ := fa.IssuePair(bob.ID)
	wantError(t, get(t, gw.URL+"/api/x", bobAccess), http.StatusForbidden, "user_inactive")
	if n := fa.Calls("/auth/users/1/") + fa.Calls("/auth/users/2/"); n != 0 {
		t.Fatalf("%d user fetches: the migrated rows were not used", n)
	}
	usersCheckMigrated(t, gw.GW.Store)

	// Opening again finds nothing to migrate and changes nothing.
	st, err := models.OpenStore(t.Context(), models.Database{Driver: "sqlite", DSN: db}, time.Now)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer st.Close()
	if us, err := st.Users(t.Context()); err != nil || len(us) != 4 {
		t.Fatalf("after reopening: %d rows, %v", len(us), err)
	}
}

// TestSecUsersMigratePostgres: the same on PostgreSQL, with three replicas
// starting at once on the old schema: one migrates, the others wait for it.
func TestSecUsersMigratePostgres(t *testing.T) {
	dsn := pgDatabase(t)
	old, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.AutoMigrate(&usersV1{}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []usersV1{
		{ID: "1", Email: "ann@example.com", Username: "ann", IsActive: true, IsStaff: true, Fields: map[string]any{"id": 1}, FetchedAt: usersV1FetchedAt},
		{ID: "2", Email: "bob@example.com", Username: "bob", IsActive: false, Fields: map[string]any{"id": 2}, FetchedAt: usersV1FetchedAt},
		{ID: "3f2b-uuid", Email: "uuid@example.com", IsActive: true, FetchedAt: usersV1FetchedAt},
	} {
		if err := old.Create(&u).Error; err != nil {
			t.Fatal(err)
		}
	}
	if sqlDB, err := old.DB(); err == nil {
		_ = sqlDB.Close()
	}

	stores := make([]*models.Store, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			stores[i], errs[i] = models.OpenStore(ctx, models.Database{Driver: "postgres", DSN: dsn}, time.Now)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	usersCheckMigrated(t, stores[0])
	if us, err := stores[2].Users(t.Context()); err != nil || len(us) != 4 {
		t.Fatalf("another replica sees %d rows, %v", len(us), err)
	}
}

func usersCopyFile(t testing.TB, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
