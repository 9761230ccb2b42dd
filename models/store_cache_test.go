package models

import (
	"path/filepath"
	"testing"
	"time"
)

// TestStoreSQLitePageCache: the user mirror's SQLite page cache is 512 KiB
// (C memory outside GOMEMLIMIT; SQLite's default is 2 MB), unless the
// operator's DSN names another size, which wins.
func TestStoreSQLitePageCache(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, dsn string
		want      int
	}{
		{"default", filepath.Join(dir, "a.db"), -512},
		{"operator's", "file:" + filepath.Join(dir, "b.db") + "?_cache_size=-4096", -4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := OpenStore(t.Context(), Database{Driver: "sqlite", DSN: tc.dsn}, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			var got int
			if err := s.DB().WithContext(t.Context()).Raw("PRAGMA cache_size").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA cache_size = %d, want %d", got, tc.want)
			}
		})
	}
}
