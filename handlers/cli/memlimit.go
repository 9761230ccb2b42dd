package cli

import (
	"log/slog"
	"strconv"

	"jwtgate/models"
)

// Sizes behind the default soft memory limit, 60 MiB for the default
// caches (tests/load --memory-only: RSS 123.7 MB with 96.6 MiB, 101.4 MB
// with 72 MiB; the process holds about 25 MB the Go runtime does not
// manage: the SQLite driver's C allocations, the binary's code). 60 MiB
// since the attributes map of a cached user is sized for its keys (1.5 KiB
// a user, was 2) and the verify cache's index stopped repeating the key
// (224 bytes a token, was 256).
const (
	memLimitBase     = 24 << 20 // runtime, code, buffers, metrics, the rest
	memLimitPerToken = 224      // a verdict in the verify cache (104-byte slot, was 112) and its table entries (8-16 bytes)
	memLimitPerUser  = 1536     // a cached user record and its attributes (a 16-slot map for a typical record)
	memLimitEnvVar   = "GOMEMLIMIT"
	gcPercentEnvVar  = "GOGC"
	// gcPercentWithLimit is the collector's GOGC while serve's own memory
	// limit bounds the heap: with the Go default (100) a gateway whose
	// live heap is a few MB collects every few MB allocated, about 11% of
	// the instructions of a warm request (tests BenchmarkPathRemoteWarm
	// under callgrind: 254.9k Ir at 100, 226.5k at 400, 224.9k with no
	// collection). The limit still caps the heap once caches fill.
	gcPercentWithLimit = 400
)

// defaultMemoryLimit is the soft memory limit serve sets when GOMEMLIMIT is
// not set: room for full caches (auth.cache.size verdicts, users.cache_size
// users) and the rest of the process. Without a limit the Go heap may grow
// to twice what is live before a collection, and RSS with it; with it the
// collector runs earlier and returns idle memory to the OS. It is soft:
// the process may exceed it (the collector then uses more CPU, never more
// than half), it never fails an allocation.
func defaultMemoryLimit(s models.Settings) int64 {
	return memLimitBase + int64(max(s.Auth.Cache.Size, 0))*memLimitPerToken + int64(max(s.Users.CacheSize, 0))*memLimitPerUser
}

// applyMemoryLimit sets the default soft memory limit through set (main's
// debug.SetMemoryLimit; nil: only log) unless GOMEMLIMIT is set, which the
// Go runtime has applied already and which always wins. With its own limit
// in place it also sets GOGC to gcPercentWithLimit through setGC (main's
// debug.SetGCPercent; nil: not set) unless GOGC is set: the limit, not
// twice the live heap, then decides how big the heap may grow.
func applyMemoryLimit(s models.Settings, getenv func(string) string, set func(int64) int64, setGC func(int) int, log *slog.Logger) {
	if v := getenv(memLimitEnvVar); v != "" {
		log.Info("memory limit", "GOMEMLIMIT", v, "from", "environment")
		return
	}
	limit := defaultMemoryLimit(s)
	if set != nil {
		set(limit)
	}
	gogc := getenv(gcPercentEnvVar)
	if gogc == "" && setGC != nil {
		setGC(gcPercentWithLimit)
		gogc = strconv.Itoa(gcPercentWithLimit)
	}
	log.Info("memory limit", "bytes", limit, "GOGC", gogc, "from", "auth.cache.size and users.cache_size (set GOMEMLIMIT to override; off: GOMEMLIMIT=off)")
}
