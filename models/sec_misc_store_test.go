package models

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secMiscUmask runs the test under the usual umask 022, with which SQLite
// used to create the mirror 0644.
func secMiscUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
}

// secMiscModes opens the store, writes a user (so -wal and -shm exist) and
// returns the modes of the database file and its companions.
func secMiscModes(t *testing.T, dsn, path string) (map[string]os.FileMode, []string) {
	t.Helper()
	st, err := OpenStore(t.Context(), Database{Driver: "sqlite", DSN: dsn}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.UpsertUser(t.Context(), User{ID: "1", Email: "a@example.com", FetchedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(path + suffix)
		if err != nil {
			t.Fatalf("%s: %v", path+suffix, err)
		}
		modes[suffix] = fi.Mode().Perm()
	}
	return modes, st.Notes()
}

func TestSecMiscSQLiteCreatedOwnerOnly(t *testing.T) {
	secMiscUmask(t)
	dir := t.TempDir()
	for name, dsn := range map[string]string{
		"plain":   filepath.Join(dir, "a.db"),
		"file:":   "file:" + filepath.Join(dir, "b.db"),
		"options": "file:" + filepath.Join(dir, "c.db") + "?_busy_timeout=5000",
		"file://": "file://" + filepath.Join(dir, "d.db"),
	} {
		path := sqliteFile(dsn)
		if !strings.HasPrefix(path, dir) {
			t.Fatalf("%s: sqliteFile(%q) = %q", name, dsn, path)
		}
		modes, notes := secMiscModes(t, dsn, path)
		for suffix, m := range modes {
			if m != 0o600 {
				t.Errorf("%s: %s%s has mode %v, want 0600", name, path, suffix, m)
			}
		}
		if len(notes) != 0 {
			t.Errorf("%s: notes on a new file: %q", name, notes)
		}
	}
}

// An existing mirror (and its -wal, -shm) that others can read is
// tightened to 0600, and OpenStore says so for the log.
func TestSecMiscSQLiteExistingFileTightened(t *testing.T) {
	secMiscUmask(t)
	path := filepath.Join(t.TempDir(), "m.db")
	secMiscModes(t, path, path)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	modes, notes := secMiscModes(t, path, path)
	for suffix, m := range modes {
		if m != 0o600 {
			t.Errorf("%s%s has mode %v, want 0600", path, suffix, m)
		}
	}
	if len(notes) == 0 || !strings.Contains(strings.Join(notes, "\n"), "readable by others") {
		t.Errorf("notes %q: want the tightened files named", notes)
	}
}

func TestSecMiscSQLiteFileOfDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		":memory:":                      "",
		"file::memory:?cache=shared":    "",
		"file:x.db?mode=memory":         "",
		"jwtgate.db":                    "jwtgate.db",
		"file:jwtgate.db?_fk=1":         "jwtgate.db",
		"file:///var/lib/jwtgate/m.db":  "/var/lib/jwtgate/m.db",
		"file://localhost/var/lib/m.db": "/var/lib/m.db",
	} {
		if got := sqliteFile(dsn); got != want {
			t.Errorf("sqliteFile(%q) = %q, want %q", dsn, got, want)
		}
	}
}
