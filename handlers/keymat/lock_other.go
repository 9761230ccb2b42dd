//go:build !unix

package keymat

import (
	"errors"
	"io/fs"
	"os"
)

// lockFile is not implemented off unix: rotations there are refused
// rather than run without mutual exclusion.
func lockFile(path string) (func(), error) {
	return nil, errors.New("lock " + path + ": key rotation needs flock (a unix system)")
}

// chownLike does nothing off unix.
func chownLike(*os.File, fs.FileInfo) error { return nil }
