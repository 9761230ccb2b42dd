package authn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	"jwtgate/models"
)

// SharedStore is the shared verdict cache's storage (remote.SharedCache on
// Redis): opaque values by token key. Get returns nil, nil for no value.
type SharedStore interface {
	Get(ctx context.Context, key [32]byte) ([]byte, error)
	Set(ctx context.Context, key [32]byte, val []byte, expires time.Time) error
	Del(ctx context.Context, keys ...[32]byte) error
}

// Shared is the second level of the verify cache, shared by the replicas
// (auth.cache.redis_url): asked on a miss of the in-process cache, inside
// the coalescing, before a call home; written with every positive verdict
// of a call home or a login.
type Shared struct {
	Store SharedStore
	// Secret is the replicas' shared secret (auth.cache.redis_secret): the
	// stored verdicts are authenticated with a key derived from it, so
	// whoever can write to Redis without it cannot plant a verdict.
	Secret []byte
}

// Miss reasons of the shared cache (jwtgate_shared_cache_misses_total).
const (
	SharedAbsent      = "absent"      // no entry
	SharedUnavailable = "unavailable" // Redis failed, timed out or is being skipped
	SharedVersion     = "version"     // an entry of another format version
	SharedBadMAC      = "bad_mac"     // an entry not sealed with our secret for this token
	SharedGarbled     = "garbled"     // an entry that authenticates but does not decode
	SharedMismatch    = "mismatch"    // an entry that does not describe this token
	SharedExpired     = "expired"     // an entry past its expiry (or too close to it to refresh ahead)
)

// SharedMissReasons are every miss reason, for metrics.
var SharedMissReasons = []string{SharedAbsent, SharedUnavailable, SharedVersion, SharedBadMAC, SharedGarbled, SharedMismatch, SharedExpired}

// secondLevel is an Authenticator's shared cache.
type secondLevel struct {
	store  SharedStore
	macKey [32]byte
	// badLogged is when a bad entry was last logged (Unix ns), badSince
	// how many were seen since: at most one log line a minute.
	badLogged atomic.Int64
	badSince  atomic.Int64
}

// badLogEvery bounds the log lines about entries that fail their checks.
const badLogEvery = time.Minute

// sharedVersion is the format of the stored verdicts. A change of format
// takes a new number: a replica reading an entry of another version
// treats it as a miss.
const sharedVersion = 1

// sharedMaxString bounds each string of a stored verdict.
const sharedMaxString = 4096

// sharedFixed is the length of a stored verdict without its strings:
// version, exp, iat, expires, revocation key, MAC.
const sharedFixed = 1 + 3*8 + 32 + sha256.Size

// sharedMACKey derives the MAC key from the configured secret, so the
// secret itself is never used for anything else.
func sharedMACKey(secret []byte) [32]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("jwtgate shared verdict cache: MAC key v1"))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// sealVerdict encodes the verdict about tok (stored under the token key
// key, valid until expires) and authenticates it, bound to key: the
// version, exp, iat, expires (int64 big-endian; ns, s, ns), the
// revocation key, the user id, alg, kid and iss (uvarint length, bytes),
// then HMAC-SHA256(macKey, key || all of that). A value copied to another
// token's key fails its MAC.
func sealVerdict(macKey, key [32]byte, tok models.Token, expires time.Time) []byte {
	strs := [...]string{tok.UserID, tok.Alg, tok.Kid, tok.Issuer}
	n := sharedFixed
	for _, s := range strs {
		n += binary.MaxVarintLen16 + len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, sharedVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(tok.Expires.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(tok.IssuedAt))
	b = binary.BigEndian.AppendUint64(b, uint64(expires.UnixNano()))
	b = append(b, tok.Key[:]...)
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return sharedMAC(macKey, key, b)
}

// sharedMAC appends the MAC of body, bound to key, to body.
func sharedMAC(macKey, key [32]byte, body []byte) []byte {
	m := hmac.New(sha256.New, macKey[:])
	m.Write(key[:])
	m.Write(body)
	return m.Sum(body)
}

// storedVerdict is a decoded stored verdict.
type storedVerdict struct {
	exp, iat, expires     int64
	key                   [32]byte
	userID, alg, kid, iss string
}

// errShared tells why a stored value is not used; its text is a miss reason.
type errShared string

func (e errShared) Error() string { return "shared verdict: " + string(e) }

// openVerdict checks and decodes a value stored under key: the version
// first (another format is never misread), then the MAC, then the fields.
func openVerdict(macKey, key [32]byte, b []byte) (storedVerdict, error) {
	if len(b) == 0 || b[0] != sharedVersion {
		return storedVerdict{}, errShared(SharedVersion)
	}
	if len(b) < sharedFixed {
		return storedVerdict{}, errShared(SharedBadMAC) // too short to carry a MAC
	}
	body, mac := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	m := hmac.New(sha256.New, macKey[:])
	m.Write(key[:])
	m.Write(body)
	if !hmac.Equal(m.Sum(nil), mac) {
		return storedVerdict{}, errShared(SharedBadMAC)
	}
	var v storedVerdict
	p := body[1:]
	v.exp = int64(binary.BigEndian.Uint64(p))
	v.iat = int64(binary.BigEndian.Uint64(p[8:]))
	v.expires = int64(binary.BigEndian.Uint64(p[16:]))
	copy(v.key[:], p[24:56])
	p = p[56:]
	for _, s := range [...]*string{&v.userID, &v.alg, &v.kid, &v.iss} {
		n, w := binary.Uvarint(p)
		if w <= 0 || n > sharedMaxString || n > uint64(len(p)-w) {
			return storedVerdict{}, errShared(SharedGarbled)
		}
		*s = string(p[w : w+int(n)])
		p = p[w+int(n):]
	}
	if len(p) != 0 {
		return storedVerdict{}, errShared(SharedGarbled)
	}
	return v, nil
}

// describes reports whether v is the verdict about tok (as the pre-checks
// decoded it from the request's token).
func (v *storedVerdict) describes(tok models.Token) bool {
	return v.exp == tok.Expires.UnixNano() && v.iat == tok.IssuedAt && v.key == tok.Key &&
		v.userID == tok.UserID && v.alg == tok.Alg && v.kid == tok.Kid && v.iss == tok.Issuer
}

// sharedLookup asks the shared cache about a token that missed the
// in-process cache (key, tok as pre-checked; revocation and the local
// check already passed). A usable verdict is copied into the in-process
// cache, bounded by its stored expiry, the token's exp and cache.ttl, and
// true is returned: the caller then serves tok like an in-process hit (the
// user checks follow in Authenticate). A revalidation (refresh-ahead) only
// takes a verdict fresh enough not to need refreshing itself.
func (a *Authenticator) sharedLookup(ctx context.Context, key [32]byte, tok models.Token) bool {
	sl := a.second
	if sl == nil || !a.st().cfg.Shared {
		return false
	}
	b, err := sl.store.Get(ctx, key)
	switch {
	case err != nil:
		a.obs.SharedCacheMiss(SharedUnavailable)
		return false
	case b == nil:
		a.obs.SharedCacheMiss(SharedAbsent)
		return false
	}
	v, err := openVerdict(sl.macKey, key, b)
	if err == nil && !v.describes(tok) {
		err = errShared(SharedMismatch)
	}
	var bad errShared
	if errors.As(err, &bad) {
		a.obs.SharedCacheMiss(string(bad))
		a.badEntry(ctx, string(bad))
		return false
	}
	now := a.now().UnixNano()
	ttl := int64(a.st().cfg.TTL)
	expires := min(v.expires, v.exp, now+ttl)
	need := now
	if ctx.Value(revalidateKey{}) != nil {
		need = now + ttl/aheadShare
	}
	if need >= expires {
		a.obs.SharedCacheMiss(SharedExpired)
		return false
	}
	if a.tokens.Add(key, newVerdict(tok, time.Unix(0, expires))) {
		a.obs.Evicted()
	}
	a.obs.SharedCacheHit()
	return true
}

// badEntry logs, at most once a minute, that entries in Redis failed
// their checks: someone without the secret wrote to Redis, the replicas
// do not share one secret, or they run different versions.
func (a *Authenticator) badEntry(ctx context.Context, reason string) {
	sl := a.second
	n := sl.badSince.Add(1)
	now := a.now().UnixNano()
	last := sl.badLogged.Load()
	if now-last < int64(badLogEvery) || !sl.badLogged.CompareAndSwap(last, now) {
		return
	}
	sl.badSince.Add(-n)
	a.log.WarnContext(ctx, "shared cache: an entry in Redis failed its check and was ignored (another secret on some replica, another version, or someone else writing to Redis?)",
		"reason", reason, "entries", n)
}

// share writes a positive verdict about tok (key), valid until expires,
// to the shared cache. A failure costs nothing but a later call home.
func (a *Authenticator) share(ctx context.Context, key [32]byte, tok models.Token, expires time.Time) {
	sl := a.second
	if sl == nil || !a.st().cfg.Shared {
		return
	}
	if err := sl.store.Set(ctx, key, sealVerdict(sl.macKey, key, tok, expires), expires); err == nil {
		a.obs.SharedCacheWrite()
	}
}

// unshare deletes verdicts from the shared cache (a logout, a refusal).
func (a *Authenticator) unshare(ctx context.Context, keys ...[32]byte) {
	sl := a.second
	if sl == nil {
		return
	}
	if err := sl.store.Del(ctx, keys...); err != nil {
		a.log.WarnContext(ctx, "shared cache: could not delete a verdict from Redis (replicas still check revocations on every hit)", "err", err)
	}
}
