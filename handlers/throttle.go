package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"

	"jwtgate/models"
)

// codeUnsupportedMediaType is DRF's code for a body it has no parser for.
const codeUnsupportedMediaType = "unsupported_media_type"

// throttle is a token bucket per client address, the least recently seen
// addresses forgotten first.
type throttle struct {
	every   time.Duration // one event per every; 0: off
	burst   int
	clients *lru.Cache[string, *rate.Limiter]
	now     func() time.Time
}

// newLoginThrottle builds the throttle.login_rate limiter (every login
// attempt per client address); nil when off.
func newLoginThrottle(cfg models.CompiledThrottle, now func() time.Time) (*throttle, error) {
	if cfg.LoginEvery == 0 {
		return nil, nil
	}
	return newThrottle(cfg.LoginEvery, cfg.LoginBurst, cfg.CacheSize, now)
}

func newThrottle(every time.Duration, burst, size int, now func() time.Time) (*throttle, error) {
	clients, err := lru.New[string, *rate.Limiter](size)
	if err != nil {
		return nil, fmt.Errorf("throttle.cache_size: %w", err)
	}
	return &throttle{every: every, burst: burst, clients: clients, now: now}, nil
}

// allow takes one event for a client; when refused it says how long until
// the next one is allowed.
func (t *throttle) allow(client string) (bool, time.Duration) {
	lim, ok := t.clients.Get(client)
	if !ok {
		fresh := rate.NewLimiter(rate.Every(t.every), t.burst)
		if prev, found, _ := t.clients.PeekOrAdd(client, fresh); found {
			lim = prev // another request from the same client got here first
		} else {
			lim = fresh
		}
	}
	now := t.now()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	return false, time.Duration((1 - lim.TokensAt(now)) * float64(t.every))
}

// clientKey is the throttling key of a client address. IPv6 clients are
// keyed by their /64, the block one subscriber usually holds, so rotating
// through its addresses does not reset the limit.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// refuseThrottled answers 429 throttled with Retry-After, as DRF's
// throttles answer.
func refuseThrottled(c *gin.Context, wait time.Duration) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	c.Header("Retry-After", strconv.Itoa(secs))
	newAPIError(http.StatusTooManyRequests, codeThrottled,
		fmt.Sprintf("Request was throttled. Expected available in %d seconds.", secs)).abort(c)
}

// clientCtxKey carries the request's client key in its context, for the
// calls-home budget that authn consults.
type clientCtxKey struct{}

// withClientKey puts the request's client key (the one the login throttle
// uses) into the request's context.
func withClientKey() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), clientCtxKey{}, clientKey(c.ClientIP())))
	}
}

// callBudget is throttle.calls_home_per_client: a token bucket per client
// address (N per period, N at once), which authn asks before a verify-cache
// miss calls the auth service. It implements authn.CallBudget.
type callBudget struct{ t *throttle }

// newCallBudget builds the budget; nil when off.
func newCallBudget(cfg models.CompiledThrottle, now func() time.Time) (*callBudget, error) {
	if cfg.CallsHome.Off() {
		return nil, nil
	}
	t, err := newThrottle(cfg.CallsHome.Every(), cfg.CallsHome.N, cfg.CacheSize, now)
	if err != nil {
		return nil, err
	}
	return &callBudget{t: t}, nil
}

// Take spends one call home of the client in ctx. A context without a
// client (the gateway's own calls) is never limited.
func (b *callBudget) Take(ctx context.Context) (bool, time.Duration) {
	client, ok := ctx.Value(clientCtxKey{}).(string)
	if !ok {
		return true, 0
	}
	return b.t.allow(client)
}

// maxFrom is how many client addresses an account's failures are
// attributed to; failures from further addresses are counted but cleared
// by no successful login, only by the end of the window.
const maxFrom = 8

// failures counts failed logins in one window, for one account or one
// client address.
type failures struct {
	start   time.Time // the window's first failure; zero: none
	n       int       // failures in the window
	pending int       // attempts relayed whose answer has not come back
	from    []fromClient
}

// fromClient is how many of an account's failures one client address caused.
type fromClient struct {
	client string
	n      int
}

// roll starts over when the window has passed.
func (f *failures) roll(now time.Time, per time.Duration) {
	if !f.start.IsZero() && !now.Before(f.start.Add(per)) {
		*f = failures{pending: f.pending}
	}
}

// admits reports whether one more attempt may be relayed: failures plus
// attempts in flight stay under the limit. When not, wait is the rest of
// the window, or a second when only attempts in flight fill the limit.
func (f *failures) admits(now time.Time, lim models.Limit) (ok bool, wait time.Duration) {
	f.roll(now, lim.Per)
	switch {
	case f.n >= lim.N:
		return false, f.start.Add(lim.Per).Sub(now)
	case f.n+f.pending >= lim.N:
		return false, time.Second
	}
	return true, 0
}

// failed records a failed login, from client when the entry is an account's.
func (f *failures) failed(now time.Time, per time.Duration, client string) {
	f.roll(now, per)
	if f.start.IsZero() {
		f.start = now
	}
	f.n++
	if client == "" {
		return
	}
	for i := range f.from {
		if f.from[i].client == client {
			f.from[i].n++
			return
		}
	}
	if len(f.from) < maxFrom {
		f.from = append(f.from, fromClient{client: client, n: 1})
	}
}

// succeeded clears the failures client caused.
func (f *failures) succeeded(client string) {
	for i, fc := range f.from {
		if fc.client == client {
			f.n = max(0, f.n-fc.n)
			f.from = append(f.from[:i], f.from[i+1:]...)
			return
		}
	}
}

func (f *failures) idle() bool { return f.n == 0 && f.pending == 0 }

// accountKey is a login name's key: a keyed hash (HMAC-SHA256 under a key
// drawn at start) of its folded spelling, so no login name is kept, and
// the keys of one process say nothing to another.
type accountKey [32]byte

// loginGuard throttles POST /auth/token/: failed logins per account and
// per client address (django-axes style), and optionally every attempt per
// client address (throttle.login_rate).
type loginGuard struct {
	log     *slog.Logger
	rate    *throttle // nil: login_rate off
	account models.Limit
	client  models.Limit
	fields  []string
	maxBody int64
	secret  []byte // keys accounts: shared with them across reloads
	now     func() time.Time

	// mu guards accounts and clients; a guard built by a reload shares it
	// with the one it replaces, as it may share their tables.
	mu            *sync.Mutex
	accounts      *simplelru.LRU[accountKey, *failures]
	clients       *simplelru.LRU[string, *failures]
	accountsSize  int // throttle.accounts_size the tables were built with
	clientsSize   int // throttle.cache_size
	rateCacheSize int
}

// newLoginGuard builds the login throttles from settings. With prev (the
// running guard, on a reload) each table whose limit and size did not
// change is carried over, so a reload resets no count: the failures per
// account (with the key that hashes their names), the failures per
// client, and the login_rate buckets. A changed limit starts afresh.
func newLoginGuard(cfg models.CompiledThrottle, maxBody int64, log *slog.Logger, now func() time.Time, prev *loginGuard) (*loginGuard, error) {
	g := &loginGuard{
		log: log, account: cfg.AccountLimit, client: cfg.ClientLimit,
		fields: defaultLoginFields, maxBody: maxBody, now: now, mu: &sync.Mutex{},
		accountsSize: cfg.AccountsSize, clientsSize: cfg.CacheSize, rateCacheSize: cfg.CacheSize,
	}
	if cfg.LoginField != "" {
		g.fields = []string{cfg.LoginField}
	}
	if prev != nil {
		g.mu = prev.mu
		if prev.account == g.account && prev.accountsSize == g.accountsSize {
			g.accounts, g.secret = prev.accounts, prev.secret
		}
		if prev.client == g.client && prev.clientsSize == g.clientsSize {
			g.clients = prev.clients
		}
		if r := prev.rate; r != nil && r.every == cfg.LoginEvery && r.burst == cfg.LoginBurst && prev.rateCacheSize == cfg.CacheSize {
			g.rate = r
		}
	}
	var err error
	if g.rate == nil {
		if g.rate, err = newLoginThrottle(cfg, now); err != nil {
			return nil, err
		}
	}
	if g.accounts == nil {
		if g.accounts, err = simplelru.NewLRU[accountKey, *failures](cfg.AccountsSize, nil); err != nil {
			return nil, fmt.Errorf("throttle.accounts_size: %w", err)
		}
		g.secret = make([]byte, 32)
		_, _ = rand.Read(g.secret) // never fails (crypto/rand panics instead)
	}
	if g.clients == nil {
		if g.clients, err = simplelru.NewLRU[string, *failures](cfg.CacheSize, nil); err != nil {
			return nil, fmt.Errorf("throttle.cache_size: %w", err)
		}
	}
	return g, nil
}

// key hashes a login name.
func (g *loginGuard) key(name string) accountKey {
	m := hmac.New(sha256.New, g.secret)
	m.Write([]byte(foldLoginName(name)))
	var k accountKey
	copy(k[:], m.Sum(nil))
	return k
}

// attempt is one admitted login: the entries it reserved a place in.
type attempt struct {
	client   string
	byClient *failures // nil: failures_per_client off
	accounts []*failures
	keys     []accountKey
}

// admit reserves a place for a login attempt, or says how long to wait.
func (g *loginGuard) admit(client string, keys []accountKey) (*attempt, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	a := &attempt{client: client, keys: keys}
	var wait time.Duration
	if !g.client.Off() {
		f, ok := g.clients.Get(client)
		if !ok {
			f = &failures{}
			g.clients.Add(client, f)
		}
		if ok, w := f.admits(now, g.client); !ok {
			wait = max(wait, w)
		}
		a.byClient = f
	}
	if !g.account.Off() {
		for _, k := range keys {
			f, ok := g.accounts.Get(k)
			if !ok {
				f = &failures{}
				g.accounts.Add(k, f)
			}
			if ok, w := f.admits(now, g.account); !ok {
				wait = max(wait, w)
			}
			a.accounts = append(a.accounts, f)
		}
	}
	if wait > 0 {
		g.tidy(a)
		return nil, wait
	}
	if a.byClient != nil {
		a.byClient.pending++
	}
	for _, f := range a.accounts {
		f.pending++
	}
	return a, 0
}

// done records an admitted attempt's answer: 400 or 401 from the auth
// service is a failure; 200 clears the failures this client address caused
// to the accounts it named (never the per-client count, which a client
// could otherwise reset by logging in to its own account); anything else
// (the auth service unavailable, say) counts nothing.
func (g *loginGuard) done(a *attempt, status int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	all := a.accounts
	if a.byClient != nil {
		all = append(all[:len(all):len(all)], a.byClient)
	}
	for _, f := range all {
		f.pending = max(0, f.pending-1)
	}
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized:
		if a.byClient != nil {
			a.byClient.failed(now, g.client.Per, "")
		}
		for _, f := range a.accounts {
			f.failed(now, g.account.Per, a.client)
		}
	case http.StatusOK:
		for _, f := range a.accounts {
			f.succeeded(a.client)
		}
	}
	g.tidy(a)
}

// tidy drops the attempt's entries that hold nothing any more, so the
// tables hold only accounts and clients with failures (or attempts in
// flight). Caller holds g.mu.
func (g *loginGuard) tidy(a *attempt) {
	if a.byClient != nil && a.byClient.idle() {
		if f, ok := g.clients.Peek(a.client); ok && f == a.byClient {
			g.clients.Remove(a.client)
		}
	}
	for i, f := range a.accounts {
		if !f.idle() {
			continue
		}
		if cur, ok := g.accounts.Peek(a.keys[i]); ok && cur == f {
			g.accounts.Remove(a.keys[i])
		}
	}
}

// handler guards POST /auth/token/. It reads the body (bounded like the
// relay's) to find the login name, and hands it on unchanged.
func (g *loginGuard) handler() gin.HandlerFunc {
	return func(c *gin.Context) {
		client := clientKey(c.ClientIP())
		if g.rate != nil {
			if ok, wait := g.rate.allow(client); !ok {
				refuseThrottled(c, wait)
				return
			}
		}
		if g.account.Off() && g.client.Off() {
			return
		}
		var keys []accountKey
		if !g.account.Off() {
			body, ok := readSmallBody(c, g.log, g.maxBody)
			if !ok {
				return
			}
			mt := strings.ToLower(c.ContentType())
			if mt != mediaJSON && mt != mediaForm {
				errUnsupportedLoginType(mt).abort(c)
				return
			}
			for _, name := range loginNames(mt, body, g.fields) {
				k := g.key(name)
				if !containsKey(keys, k) {
					keys = append(keys, k)
				}
			}
		}
		a, wait := g.admit(client, keys)
		if a == nil {
			refuseThrottled(c, wait)
			return
		}
		status := 0
		defer func() { g.done(a, status) }()
		c.Next()
		status = c.Writer.Status()
	}
}

func containsKey(keys []accountKey, k accountKey) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// errUnsupportedLoginType refuses a login body the gateway cannot read the
// login name from, with DRF's answer for a media type it has no parser for.
func errUnsupportedLoginType(mt string) *apiError {
	return newAPIError(http.StatusUnsupportedMediaType, codeUnsupportedMediaType,
		fmt.Sprintf("Unsupported media type %q in request.", mt))
}
