package models

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrNoDatabase is InspectStore's answer for a SQLite file that does not
// exist yet (serve creates it).
var ErrNoDatabase = errors.New("the database file does not exist yet (jwtgate serve creates it)")

// InspectStore counts the mirrored users without changing anything: unlike
// OpenStore it creates no SQLite file, opens SQLite read-only, runs no
// migration and uses a read-only transaction on PostgreSQL. A database
// without the users table yet counts 0. It is `jwtgate check`'s probe.
func InspectStore(ctx context.Context, cfg Database) (users int64, err error) {
	var dial gorm.Dialector
	switch cfg.Driver {
	case "sqlite":
		path := sqliteFile(cfg.DSN)
		if path == "" {
			return 0, nil // in memory: nothing on disk to look at
		}
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return 0, fmt.Errorf("%s: %w", path, ErrNoDatabase)
			}
			return 0, fmt.Errorf("sqlite database: %w", err)
		}
		// Read-only. Without a -wal file nobody has the database open
		// (the gateway deletes it on close), and immutable keeps SQLite from
		// creating -wal and -shm files just to read; with one, the running
		// gateway's files are read through as they are.
		opts := "?mode=ro&_busy_timeout=10000"
		if _, err := os.Stat(path + "-wal"); errors.Is(err, os.ErrNotExist) {
			opts += "&immutable=1"
		}
		dial = sqlite.Open("file:" + (&url.URL{Path: path}).EscapedPath() + opts)
	case "postgres":
		dial = postgres.Open(cfg.DSN)
	default:
		return 0, fmt.Errorf("database.driver %q: must be sqlite or postgres", cfg.Driver)
	}
	db, err := gorm.Open(dial, &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		return 0, fmt.Errorf("open %s database: %w", cfg.Driver, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return 0, fmt.Errorf("open %s database: %w", cfg.Driver, err)
	}
	defer sqlDB.Close()
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if cfg.Driver == "postgres" {
			if err := tx.Exec("SET TRANSACTION READ ONLY").Error; err != nil {
				return err
			}
		}
		if !tx.Migrator().HasTable(&User{}) {
			return nil
		}
		return tx.Model(&User{}).Count(&users).Error
	})
	if err != nil {
		return 0, fmt.Errorf("read %s database: %w", cfg.Driver, err)
	}
	return users, nil
}
