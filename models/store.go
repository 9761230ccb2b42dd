package models

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// Store is the user mirror's database (SQLite or PostgreSQL through GORM).
type Store struct {
	db     *gorm.DB
	driver string
	notes  []string // what OpenStore changed about the files, for the log
}

// upsertColumns are overwritten when a mirrored user already exists;
// created_at keeps the first mirroring time.
var upsertColumns = []string{
	"email", "username", "first_name", "last_name", "is_active", "is_staff",
	"is_superuser", "date_joined", "last_login", "fields", "fetched_at", "updated_at",
}

// OpenStore opens the database and creates or migrates the schema.
func OpenStore(ctx context.Context, cfg Database, now func() time.Time) (*Store, error) {
	var dial gorm.Dialector
	var notes []string
	switch cfg.Driver {
	case "sqlite":
		var err error
		if notes, err = secureSQLiteFiles(sqliteFile(cfg.DSN)); err != nil {
			return nil, fmt.Errorf("open sqlite database: %w", err)
		}
		dial = sqlite.Open(sqliteDSN(cfg.DSN))
	case "postgres":
		dial = postgres.Open(cfg.DSN)
	default:
		return nil, fmt.Errorf("database.driver %q: must be sqlite or postgres", cfg.Driver)
	}
	db, err := gorm.Open(dial, &gorm.Config{
		TranslateError:         true,
		NowFunc:                func() time.Time { return now().UTC() },
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true, // every write is one statement
	})
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", cfg.Driver, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", cfg.Driver, err)
	}
	if cfg.Driver == "sqlite" {
		// One connection: SQLite has one writer anyway, and serialising in
		// Go never surfaces "database is locked" to a login. Other
		// processes are waited for by busy_timeout.
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(16)
		sqlDB.SetMaxIdleConns(4)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s := &Store{db: db, driver: cfg.Driver, notes: notes}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("migrate %s database: %w", cfg.Driver, err)
	}
	return s, nil
}

// migrateLock is the PostgreSQL advisory lock key that serialises schema
// migrations of replicas starting at once ("jwtgate" in ASCII).
const migrateLock = 0x6a77746761746500

// migrate creates the schema, or brings an older one up to date, in one
// transaction (on PostgreSQL under an advisory lock, so replicas starting
// together migrate once).
func (s *Store) migrate(ctx context.Context) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.driver == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrateLock).Error; err != nil {
				return err
			}
		}
		m := tx.Migrator()
		if m.HasTable(&User{}) && !m.HasColumn(&User{}, "issuer") {
			if err := s.addIssuerKey(tx); err != nil {
				return fmt.Errorf("add the issuer to the users key: %w", err)
			}
		}
		return tx.AutoMigrate(&User{}, &RevokedToken{}, &RevocationChange{}, &AuditEvent{})
	})
}

// addIssuerKey migrates a users table keyed by id alone (before several
// issuers were told apart) to the (issuer, id) key. Every existing row is a
// user of the auth service, so it keeps its id with issuer "".
func (s *Store) addIssuerKey(tx *gorm.DB) error {
	if s.driver == "postgres" {
		for _, q := range []string{
			`ALTER TABLE users ADD COLUMN issuer varchar(191) NOT NULL DEFAULT ''`,
			`ALTER TABLE users ALTER COLUMN issuer DROP DEFAULT`,
			`ALTER TABLE users DROP CONSTRAINT IF EXISTS users_pkey`,
			`ALTER TABLE users ADD PRIMARY KEY (issuer, id)`,
		} {
			if err := tx.Exec(q).Error; err != nil {
				return err
			}
		}
		return nil
	}
	// SQLite cannot change a primary key: build the new table and copy.
	cols, err := tx.Migrator().ColumnTypes(&User{})
	if err != nil {
		return err
	}
	var names []string
	for _, c := range cols {
		names = append(names, `"`+c.Name()+`"`)
	}
	list := strings.Join(names, ", ")
	for _, q := range []string{
		`DROP INDEX IF EXISTS idx_users_email`,
		`DROP INDEX IF EXISTS idx_users_fetched_at`,
		`ALTER TABLE users RENAME TO users_before_issuer`,
	} {
		if err := tx.Exec(q).Error; err != nil {
			return err
		}
	}
	if err := tx.Migrator().CreateTable(&User{}); err != nil {
		return err
	}
	for _, q := range []string{
		`INSERT INTO users (issuer, ` + list + `) SELECT '', ` + list + ` FROM users_before_issuer`,
		`DROP TABLE users_before_issuer`,
	} {
		if err := tx.Exec(q).Error; err != nil {
			return err
		}
	}
	return nil
}

// sqliteDSN adds WAL, a busy timeout, immediate write transactions and a
// 512 KiB page cache to a file name or DSN, keeping any options the
// operator gave. The page cache is SQLite's own, in C memory outside
// GOMEMLIMIT, on top of the OS's cache of the same file: the mirror is
// read only when a user is not in the gateway's user cache, so SQLite's
// default 2 MB buys nothing (tests/load --memory-only, issue 16).
func sqliteDSN(dsn string) string {
	opts := []string{"_journal_mode=WAL", "_busy_timeout=10000", "_synchronous=NORMAL", "_txlock=immediate", "_foreign_keys=on", "_cache_size=-512"}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	var add []string
	for _, o := range opts {
		name, _, _ := strings.Cut(o, "=")
		if !strings.Contains(dsn, name+"=") {
			add = append(add, o)
		}
	}
	if len(add) == 0 {
		return dsn
	}
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	return dsn + sep + strings.Join(add, "&")
}

// sqliteFile is the file a SQLite DSN names ("jwtgate.db",
// "file:jwtgate.db?_busy_timeout=5000", "file:///var/lib/x.db"), or "" for
// an in-memory database.
func sqliteFile(dsn string) string {
	name, query, _ := strings.Cut(dsn, "?")
	if strings.HasPrefix(name, "file:") {
		name = strings.TrimPrefix(name, "file:")
		if rest, ok := strings.CutPrefix(name, "//"); ok { // file://host/path: only an empty host or localhost
			rest = strings.TrimPrefix(rest, "localhost")
			name = rest
		}
	}
	if name == "" || name == ":memory:" || strings.Contains(query, "mode=memory") {
		return ""
	}
	return name
}

// secureSQLiteFiles keeps the user mirror (emails, names, every mirrored
// field) readable by its owner only: it creates the database file with
// mode 0600 when absent, so SQLite creates its -wal and -shm files with the
// same mode, and tightens an existing file, -wal, -shm or -journal that
// others can read. It returns a note for each file it changed or could not.
func secureSQLiteFiles(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return nil, f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	var notes []string
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
			notes = append(notes, fmt.Sprintf("%s is readable by others (mode %v) and could not be changed: %v", p, fi.Mode().Perm(), err))
			continue
		}
		notes = append(notes, fmt.Sprintf("%s was readable by others (mode %v); changed to %v", p, fi.Mode().Perm(), fi.Mode().Perm()&0o700))
	}
	return notes, nil
}

// Notes says what OpenStore changed about the database files (modes
// tightened to owner-only); the caller logs them.
func (s *Store) Notes() []string { return s.notes }

// Driver returns "sqlite" or "postgres".
func (s *Store) Driver() string { return s.driver }

// DB exposes the GORM handle for packages that extend the store (metrics,
// notifications); handlers never use it.
func (s *Store) DB() *gorm.DB { return s.db }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("database %s: %w", s.driver, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// UpsertUser inserts the user or updates the row with the same key, in one
// statement (INSERT ... ON CONFLICT), so concurrent mirrors of one user from
// one or several replicas never fail or duplicate.
func (s *Store) UpsertUser(ctx context.Context, u User) error {
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "issuer"}, {Name: "id"}},
		DoUpdates: clause.AssignmentColumns(upsertColumns),
	}).Create(&u).Error
	if err != nil {
		return fmt.Errorf("upsert user %q: %w", u.Key(), err)
	}
	return nil
}

// User returns the auth service's user with this id (issuer ""), or ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (User, error) {
	return s.UserByKey(ctx, UserKey{ID: id})
}

// UserByKey returns the mirrored user with this key, or ErrNotFound.
func (s *Store) UserByKey(ctx context.Context, k UserKey) (User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("issuer = ? AND id = ?", k.Issuer, k.ID).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return User{}, fmt.Errorf("user %q: %w", k, ErrNotFound)
	} else if err != nil {
		return User{}, fmt.Errorf("user %q: %w", k, err)
	}
	return u, nil
}

// SetActive sets the is_active flag of the auth service's user with this
// id (issuer ""); ErrNotFound when absent.
func (s *Store) SetActive(ctx context.Context, id string, active bool) error {
	return s.SetActiveByKey(ctx, UserKey{ID: id}, active)
}

// SetActiveByKey sets a mirrored user's is_active flag and records the
// change for the other replicas; ErrNotFound when absent.
func (s *Store) SetActiveByKey(ctx context.Context, k UserKey, active bool) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&User{}).Where("issuer = ? AND id = ?", k.Issuer, k.ID).Update("is_active", active)
		if res.Error != nil {
			return fmt.Errorf("set user %q active=%t: %w", k, active, res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("user %q: %w", k, ErrNotFound)
		}
		return s.recordChange(tx, RevocationChange{Kind: ChangeUser, Issuer: k.Issuer, UserID: k.ID})
	})
}

// Users lists mirrored users ordered by issuer, then id.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	var us []User
	if err := s.db.WithContext(ctx).Order("issuer").Order("id").Find(&us).Error; err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// DeleteUser removes the auth service's user with this id (issuer "");
// ErrNotFound when absent.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	res := s.db.WithContext(ctx).Where("issuer = ? AND id = ?", "", id).Delete(&User{})
	if res.Error != nil {
		return fmt.Errorf("delete user %q: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("user %q: %w", id, ErrNotFound)
	}
	return nil
}

// PurgeUsers deletes users not fetched since before; it returns how many.
func (s *Store) PurgeUsers(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("fetched_at < ?", before.UTC()).Delete(&User{})
	if res.Error != nil {
		return 0, fmt.Errorf("purge users: %w", res.Error)
	}
	return res.RowsAffected, nil
}
