package keymat

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"jwtgate/models"
)

// PreviousSuffix names the retired identity key beside key_file:
// <key_file>.previous holds the public half of the key key_file held
// before the last rotation, with the time it was retired.
const PreviousSuffix = ".previous"

// lockSuffix names the lock file rotations take: <key_file>.lock.
const lockSuffix = ".lock"

// retiredAtHeader is the PEM header of <key_file>.previous saying when
// the key stopped signing. A header, not the file's mtime: copies,
// backups and Kubernetes secret volumes do not keep mtimes.
const retiredAtHeader = "Retired-At"

// ErrStillPublished is returned by Rotate when the previous key may still
// verify tokens: rotating again would drop it from the JWKS early.
var ErrStillPublished = errors.New("the previous key is still published")

// Retired is the public half of a key that stopped signing.
type Retired struct {
	Public    crypto.PublicKey
	RetiredAt time.Time
}

// PreviousPath is where the retired key of keyFile lives.
func PreviousPath(keyFile string) string { return keyFile + PreviousSuffix }

// ReadRetired reads <key_file>.previous: a PEM public key with a
// Retired-At header (RFC 3339). A missing file is fs.ErrNotExist.
func ReadRetired(path string) (Retired, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Retired{}, fmt.Errorf("read %s: %w", path, err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return Retired{}, fmt.Errorf("%s: want a PEM PUBLIC KEY block with a %s header", path, retiredAtHeader)
	}
	at, err := time.Parse(time.RFC3339, block.Headers[retiredAtHeader])
	if err != nil {
		return Retired{}, fmt.Errorf("%s: header %s: %w", path, retiredAtHeader, err)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return Retired{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := CheckPublic(pub); err != nil {
		return Retired{}, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := PublicJWK(pub); err != nil {
		return Retired{}, fmt.Errorf("%s: %w", path, err)
	}
	return Retired{Public: pub, RetiredAt: at}, nil
}

// Rotation is what Rotate did.
type Rotation struct {
	New     crypto.Signer // now in key_file
	Retired Retired       // now in <key_file>.previous
	// Dropped is the key <key_file>.previous held before, which is no
	// longer published; nil when there was none.
	Dropped crypto.PublicKey
}

// Rotate replaces the private key in keyFile by a new key of alg and keeps
// the old one's public half in <keyFile>.previous, retired at now. Unless
// force is set it refuses (ErrStillPublished) while the key in .previous
// is still published, that is before its retirement plus window: a second
// rotation would drop a key tokens may still be signed with.
//
// Rotations of one key file are serialised with an exclusive flock on
// <keyFile>.lock (released by the kernel if the process dies), so two at
// once run one after the other and the second sees the first's result.
// Each file is written to a temporary file in the same directory, synced,
// and renamed into place: a reader sees the old file or the new one, never
// a partial one. .previous is written before keyFile, so a replica that
// reads both in between sees the old key twice, never a new key without
// the old one. The files keep keyFile's owner (an operator running this as
// root does not lock the gateway's user out) and are mode 0600.
func Rotate(keyFile, alg string, now time.Time, window time.Duration, force bool) (Rotation, error) {
	unlock, err := lockFile(keyFile + lockSuffix)
	if err != nil {
		return Rotation{}, err
	}
	defer unlock()
	old, err := ReadPrivate(keyFile, alg)
	if errors.Is(err, fs.ErrNotExist) {
		return Rotation{}, fmt.Errorf("%s does not exist: there is no key to rotate (jwtgate serve generates it on first start): %w", keyFile, err)
	} else if err != nil {
		return Rotation{}, err
	}
	var dropped crypto.PublicKey
	prevPath := PreviousPath(keyFile)
	switch prev, err := ReadRetired(prevPath); {
	case err == nil:
		if until := prev.RetiredAt.Add(window); !force && now.Before(until) {
			return Rotation{}, fmt.Errorf("%s: %w until %s (tokens signed with it may still be valid); rotate after that, or pass --force to drop it now",
				prevPath, ErrStillPublished, until.UTC().Format(time.RFC3339))
		}
		dropped = prev.Public
	case errors.Is(err, fs.ErrNotExist):
	case !force:
		return Rotation{}, fmt.Errorf("%w; remove it or pass --force to overwrite it", err)
	}
	owner, err := os.Stat(keyFile)
	if err != nil {
		return Rotation{}, fmt.Errorf("stat %s: %w", keyFile, err)
	}
	gen, err := generate(alg)
	if err != nil {
		return Rotation{}, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(old.Public())
	if err != nil {
		return Rotation{}, fmt.Errorf("encode the retired key: %w", err)
	}
	retiredAt := now.UTC().Truncate(time.Second)
	prevPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{retiredAtHeader: retiredAt.Format(time.RFC3339)}, Bytes: pubDER})
	if err := replaceFile(prevPath, prevPEM, owner); err != nil {
		return Rotation{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(gen)
	if err != nil {
		return Rotation{}, fmt.Errorf("encode key: %w", err)
	}
	if err := replaceFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), owner); err != nil {
		return Rotation{}, err
	}
	return Rotation{New: gen, Retired: Retired{Public: old.Public(), RetiredAt: retiredAt}, Dropped: dropped}, nil
}

// generate makes a new private key for alg.
func generate(alg string) (crypto.Signer, error) {
	var k crypto.Signer
	var err error
	if alg == models.AlgRS256 {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return k, nil
}

// replaceFile writes b to path through a synced temporary file renamed
// into place, mode 0600, owned like owner when the caller may chown.
func replaceFile(path string, b []byte, owner fs.FileInfo) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".jwtgate-key-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Chmod(0o600), chownLike(tmp, owner), tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
