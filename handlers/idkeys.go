package handlers

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/golang-jwt/jwt/v5"

	"jwtgate/handlers/keymat"
	"jwtgate/models"
)

// keyPoll is how often a running gateway re-reads the identity key files
// besides watching them: a rotation done on another host of a shared
// volume (NFS, say) raises no inotify event here.
const keyPoll = 2 * time.Second

// keyDebounce lets a burst of file events (a rotation renames two files)
// settle before the key files are read.
const keyDebounce = 100 * time.Millisecond

// keyring holds the identity token signer the gateway signs with now and
// replaces it when identity_token.key_file or <key_file>.previous change:
// on a settings reload (SIGHUP) and when the files change on disk
// (watched, and polled every keyPoll). Requests read the signer with one
// atomic load; a signer is immutable, and the key it signs with is in the
// JWKS it serves, so a request never signs with a key that is not
// published. A key file that does not parse never replaces a working key.
type keyring struct {
	cur    atomic.Pointer[signer]
	now    func() time.Time
	log    *slog.Logger
	follow bool // watch and poll the files; false: only configure reads them

	mu  sync.Mutex           // serialises loads; guards the fields below
	cfg models.IdentityToken // what cur was loaded with
	// held are the keys this process signed with and replaced, each
	// published until its last token has expired (plus
	// RetiredKeyMargin): a replica that saw a new key_file before its
	// .previous, or whose .previous is gone, still publishes them.
	held      []publishedKey
	seen      [2][sha256.Size]byte // the key files' content cur was loaded from (or last refused)
	stopWatch func()               // nil: not watching
}

// newKeyring loads the key (generating key_file when absent) and, with
// watch, follows the files until close.
func newKeyring(ctx context.Context, cfg models.IdentityToken, now func() time.Time, log *slog.Logger, watch bool) (*keyring, error) {
	kr := &keyring{now: now, log: log, follow: watch}
	if err := kr.configure(ctx, cfg); err != nil {
		return nil, err
	}
	return kr, nil
}

// current is the signer to use now.
func (kr *keyring) current() *signer { return kr.cur.Load() }

// sign mints a token with the current key (signer.sign).
func (kr *keyring) sign(claims jwt.MapClaims, audience string) (string, error) {
	return kr.current().sign(claims, audience)
}

// configure loads the keys for cfg (a settings reload): key_file is
// generated when cfg names another file than before and it does not exist;
// when the files cannot be read or parsed nothing changes and the error
// names the key. The watch follows key_file's directory.
func (kr *keyring) configure(ctx context.Context, cfg models.IdentityToken) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	moved := kr.cfg.KeyFile != cfg.KeyFile
	if err := kr.loadLocked(cfg, moved); err != nil {
		return err
	}
	if kr.follow && (moved || kr.stopWatch == nil) {
		if kr.stopWatch != nil {
			kr.stopWatch()
		}
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			kr.watch(wctx, cfg.KeyFile)
		}()
		kr.stopWatch = func() { cancel(); <-done }
	}
	return nil
}

// close stops watching the key files.
func (kr *keyring) close() {
	kr.mu.Lock()
	stop := kr.stopWatch
	kr.stopWatch = nil
	kr.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// loadLocked reads key_file and <key_file>.previous and installs the
// signer they make. A .previous that cannot be read is logged and left
// out: it does not stop the gateway from signing.
func (kr *keyring) loadLocked(cfg models.IdentityToken, create bool) error {
	sums := keyFileSums(cfg.KeyFile) // before reading: a change after it is seen by the next check
	key, err := loadIdentityKey(cfg, create, kr.log)
	if err != nil {
		return err
	}
	now := kr.now()
	window := RetiredKeyWindow(cfg)
	retired := kr.heldLocked(now)
	if old := kr.cur.Load(); old != nil && !sameKey(old.key, key) {
		r, err := keyJWK(old.key.Public(), kr.cfg.Algorithm)
		if err != nil {
			return err
		}
		r.until = now.Add(window)
		retired = append(retired, r)
		kr.held = append(kr.held, r)
	}
	prevPath := keymat.PreviousPath(cfg.KeyFile)
	switch prev, err := keymat.ReadRetired(prevPath); {
	case err == nil:
		if until := prev.RetiredAt.Add(window); now.Before(until) {
			r, err := keyJWK(prev.Public, cfg.Algorithm)
			if err != nil {
				return err
			}
			r.until = until
			retired = append(retired, r)
		}
	case !errors.Is(err, fs.ErrNotExist):
		kr.log.Error("identity token: the retired key cannot be read; it is not published", "file", prevPath, "err", err)
	}
	s, err := buildSigner(cfg, key, dedupe(retired), kr.now)
	if err != nil {
		return err
	}
	if old := kr.cur.Load(); old == nil || old.kid != s.kid {
		kr.log.Info("identity token signing key", "kid", s.kid, "key_file", cfg.KeyFile, "published_keys", len(retired)+1)
	}
	kr.cfg, kr.seen = cfg, sums
	kr.cur.Store(s)
	return nil
}

// heldLocked drops the held keys whose time is over and returns the rest.
func (kr *keyring) heldLocked(now time.Time) []publishedKey {
	kr.held = slices.DeleteFunc(kr.held, func(r publishedKey) bool { return !now.Before(r.until) })
	return append([]publishedKey(nil), kr.held...)
}

// dedupe keeps one entry per kid, the one published longest.
func dedupe(keys []publishedKey) []publishedKey {
	byKid := map[string]publishedKey{}
	var out []publishedKey
	for _, k := range keys {
		if have, ok := byKid[k.kid]; !ok || k.until.After(have.until) {
			byKid[k.kid] = k
		}
	}
	for _, k := range keys {
		if v, ok := byKid[k.kid]; ok {
			out = append(out, v)
			delete(byKid, k.kid)
		}
	}
	return out
}

// sameKey reports whether two private keys have the same public half.
func sameKey(a, b crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.Public().(equaler)
	return ok && e.Equal(b.Public())
}

// check re-reads the key files when their content changed since the last
// load, and installs what they hold; a change that does not parse is
// logged once and the working key stays.
func (kr *keyring) check() {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	sums := keyFileSums(kr.cfg.KeyFile)
	if sums == kr.seen {
		return
	}
	kid := kr.cur.Load().kid
	if err := kr.loadLocked(kr.cfg, false); err != nil {
		kr.seen = sums // one error line per change, not one per poll
		kr.log.Error("identity token key file changed but cannot be used; still signing with the working key",
			"file", kr.cfg.KeyFile, "kid", kid, "err", err)
	}
}

// watch calls check when key_file's directory changes (debounced) and
// every keyPoll, until ctx ends.
func (kr *keyring) watch(ctx context.Context, keyFile string) {
	var events <-chan fsnotify.Event
	if w, err := fsnotify.NewWatcher(); err != nil {
		kr.log.Warn("identity token: cannot watch the key file; polling it every "+keyPoll.String(), "file", keyFile, "err", err)
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(keyFile)); err != nil {
			kr.log.Warn("identity token: cannot watch the key file; polling it every "+keyPoll.String(), "file", keyFile, "err", err)
		} else {
			events = w.Events
		}
	}
	poll := time.NewTicker(keyPoll)
	defer poll.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			settle.Reset(keyDebounce)
		case <-settle.C:
			kr.check()
		case <-poll.C:
			kr.check()
		}
	}
}

// keyFileSums are the SHA-256 sums of key_file and <key_file>.previous
// (of nothing when one cannot be read).
func keyFileSums(keyFile string) [2][sha256.Size]byte {
	sum := func(path string) [sha256.Size]byte {
		b, err := os.ReadFile(path)
		if err != nil {
			return sha256.Sum256(nil)
		}
		return sha256.Sum256(bytes.TrimSpace(b))
	}
	return [2][sha256.Size]byte{sum(keyFile), sum(keymat.PreviousPath(keyFile))}
}
