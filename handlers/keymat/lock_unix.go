//go:build unix

package keymat

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// lockWait bounds how long a rotation waits for another one to finish.
const lockWait = 30 * time.Second

// lockFile takes an exclusive flock on path (created 0600 if absent) and
// returns its release. The kernel releases it if the process dies, so a
// crashed rotation never leaves a stale lock behind.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil // closing the file releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s (another rotation running?): %w", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chownLike gives f the owner of owner when running as root; otherwise the
// file is the caller's, as the key file it replaces must already be.
func chownLike(f *os.File, owner fs.FileInfo) error {
	st, ok := owner.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}
