package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"jwtgate/handlers"
	"jwtgate/models"
)

// reloadDebounce is how long the settings file must be quiet before a
// change reloads it: an editor writes a file in several steps.
const reloadDebounce = 300 * time.Millisecond

// reloadOnSignals reloads the gateway's settings on every SIGHUP and, with
// reload.watch, on every change of the settings file, until ctx ends.
// Reloads run one at a time; a failed one is logged and counted by
// Gateway.Reload and the running settings stay.
func reloadOnSignals(ctx context.Context, e *env, gw *handlers.Gateway, s models.Settings, source string, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var changed <-chan struct{}
	if s.Reload.Watch {
		if source == builtinSource {
			log.Warn("reload.watch: there is no settings file to watch (built-in defaults); SIGHUP still reloads")
		} else if c, err := watchSettings(ctx, source, log); err != nil {
			log.Error("reload.watch: cannot watch the settings file; SIGHUP still reloads", "file", source, "err", err)
		} else {
			changed = c
		}
	}
	load := func() (models.Settings, error) {
		s, _, err := e.loadSettings()
		return s, err
	}
	go func() {
		defer signal.Stop(hup)
		for {
			var why string
			select {
			case <-ctx.Done():
				return
			case <-hup:
				why = "SIGHUP"
			case <-changed:
				why = "settings file changed"
			}
			log.Info("reloading settings", "why", why, "from", source)
			_ = gw.Reload(ctx, load) // logged and counted there
		}
	}()
}

// watchSettings reports changes of the settings file at path: its
// directory is watched (editors and Kubernetes replace a file by renaming
// another onto it), events are debounced, and a change is reported only
// when the file's content differs from the last seen.
func watchSettings(ctx context.Context, path string, log *slog.Logger) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		_ = w.Close()
		return nil, err
	}
	out := make(chan struct{}, 1)
	last := fileSum(path)
	go func() {
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer.Reset(reloadDebounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("reload.watch: watching the settings file", "err", err)
			case <-timer.C:
				sum := fileSum(path)
				if bytes.Equal(sum, last) {
					continue
				}
				last = sum
				select {
				case out <- struct{}{}:
				default: // a reload is pending already
				}
			}
		}
	}()
	return out, nil
}

// fileSum is the SHA-256 of a file's content, nil when it cannot be read.
func fileSum(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:]
}
