// Package fakeauth is an in-process stand-in for the Django REST framework + SimpleJWT auth service
// that jwtgate sits in front of (see /work/shared/design/simplejwt-wire.md).
//
// It serves real HTTP on a loopback listener and signs real HS256 JWTs with golang-jwt, and it answers
// with the status codes, JSON bodies and headers SimpleJWT sends, including its traps: the verify
// endpoint accepts refresh tokens and never looks at the user. Tests read per-path call counters
// ("exactly one verify call", "zero calls home") and inject faults: latency (SetDelay), failures
// (SetFailure) and a dead service (Stop, then Restart on the same port).
//
//	auth := fakeauth.Start(t, fakeauth.Options{Rotate: true})
//	u := auth.AddUser(fakeauth.User{Email: "ann@example.com", Password: "pw"})
//	access, refresh := auth.IssuePair(u.ID)
//	... point the gateway at auth.URL() with key auth.Secret() ...
//	if n := auth.Calls(fakeauth.PathVerify); n != 1 { t.Fatalf("verify calls = %d, want 1", n) }
package fakeauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The fixed URL paths the fake serves.
const (
	PathObtain    = "/auth/token/"           // PathObtain exchanges credentials for a token pair.
	PathRefresh   = "/auth/token/refresh/"   // PathRefresh exchanges a refresh token for an access token.
	PathVerify    = "/auth/token/verify/"    // PathVerify checks a token of any type.
	PathBlacklist = "/auth/token/blacklist/" // PathBlacklist blacklists a refresh token.
	PathUsers     = "/auth/users/"           // PathUsers prefixes "/auth/users/{id}/" (django-easyjwt <= 0.5).
	PathMe        = "/auth/user/"            // PathMe returns the caller's own record (django-easyjwt >= 0.6).
)

// MaxDelay bounds SetDelay so that a forgotten delay cannot hang a test run.
const MaxDelay = time.Minute

// Failure selects a fault that SetFailure injects into every request after counting and delay.
type Failure int32

const (
	// FailNone serves normally.
	FailNone Failure = iota
	// Fail500 answers every request with Django's HTML "Server Error (500)" page.
	Fail500
	// FailFlapping answers every other request with Fail500's page, starting with the first request
	// after SetFailure, so a client that retries once always gets through.
	FailFlapping
	// FailHangup accepts the request and closes the connection without any response, as a crashing
	// worker or a proxy that drops the upstream does.
	FailHangup
)

// String returns the constant's name.
func (f Failure) String() string {
	switch f {
	case FailNone:
		return "FailNone"
	case Fail500:
		return "Fail500"
	case FailFlapping:
		return "FailFlapping"
	case FailHangup:
		return "FailHangup"
	}
	return "Failure(" + strconv.Itoa(int(f)) + ")"
}

// User is one account of the fake service. The zero value of each optional field is what Django
// would store for an account created without it.
type User struct {
	ID          int64
	Email       string
	Username    string
	Password    string // plain text; an empty password never logs in
	FirstName   string
	LastName    string
	IsActive    bool
	IsStaff     bool
	IsSuperuser bool
	DateJoined  time.Time
	LastLogin   *time.Time
	// Extra holds fields the service's serializer adds, e.g. "services": []string{"billing"}. They are
	// serialized as top-level fields of the user record; a key equal to a standard field replaces it,
	// which lets tests serve odd shapes such as a string "id".
	Extra map[string]any
}

func (u User) clone() User {
	if u.LastLogin != nil {
		t := *u.LastLogin
		u.LastLogin = &t
	}
	u.Extra = maps.Clone(u.Extra)
	return u
}

// Options configures a Server. The zero value is SimpleJWT's default setup with email logins.
type Options struct {
	// Addr is the address to listen on; default "127.0.0.1:0" (a free loopback port).
	Addr string
	// Secret is the HS256 signing key (Django's SECRET_KEY); default 32 random bytes, see Server.Secret.
	Secret []byte
	// AccessTTL and RefreshTTL are the token lifetimes; defaults 5 minutes and 24 hours.
	AccessTTL, RefreshTTL time.Duration
	// UserIDClaim names the claim that carries the user id; default "user_id".
	UserIDClaim string
	// StringUserID mints the user id claim as a string ("42", SimpleJWT >= 5.5.1) instead of a
	// number. Incoming tokens are accepted in either form, as Django's id lookup accepts both.
	StringUserID bool
	// UsernameField is the login field (Django's USERNAME_FIELD): "email" (default) or "username".
	UsernameField string
	// Rotate turns on ROTATE_REFRESH_TOKENS with BLACKLIST_AFTER_ROTATION: a refresh returns a new
	// refresh token too and blacklists the one it was given.
	Rotate bool
	// Now is the clock for minting and checking tokens and for LastLogin; default time.Now.
	Now func() time.Time
	// Issuer and Audience, when set, are put in every minted token as iss and aud and required in
	// every token received.
	Issuer, Audience string
	// Location is the service's TIME_ZONE, used to render date_joined and last_login; default a
	// fixed UTC-6 zone so offsets look like "-06:00". A UTC location renders "Z", as DRF does.
	Location *time.Location
	// SplitTokenErrors reports bad tokens as "Token is invalid" or "Token is expired", as newer
	// SimpleJWT versions do, instead of "Token is invalid or expired".
	SplitTokenErrors bool
	// VerifyBlacklist400 answers a blacklisted token at the verify endpoint with the older
	// 400 {"non_field_errors": ["Token is blacklisted"]} instead of a 401.
	VerifyBlacklist400 bool
	// OtherUser403 answers a non-staff caller asking for another user's record with 403
	// {"detail": "You do not have permission to perform this action."} instead of 404.
	OtherUser403 bool
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if len(o.Secret) == 0 {
		o.Secret = make([]byte, 32)
		if _, err := rand.Read(o.Secret); err != nil {
			errs = append(errs, fmt.Errorf("random secret: %w", err))
		}
	} else {
		o.Secret = append([]byte(nil), o.Secret...) // the caller may reuse its slice
	}
	if o.AccessTTL == 0 {
		o.AccessTTL = 5 * time.Minute
	}
	if o.RefreshTTL == 0 {
		o.RefreshTTL = 24 * time.Hour
	}
	if o.AccessTTL < 0 || o.RefreshTTL < 0 {
		errs = append(errs, fmt.Errorf("token lifetimes must be positive: access %v, refresh %v", o.AccessTTL, o.RefreshTTL))
	}
	if o.UserIDClaim == "" {
		o.UserIDClaim = "user_id"
	}
	switch o.UserIDClaim {
	case claimTokenType, "exp", "iat", "jti", "iss", "aud":
		errs = append(errs, fmt.Errorf("user id claim %q collides with a standard claim", o.UserIDClaim))
	}
	if o.UsernameField == "" {
		o.UsernameField = "email"
	}
	if o.UsernameField != "email" && o.UsernameField != "username" {
		errs = append(errs, fmt.Errorf("username field %q: want \"email\" or \"username\"", o.UsernameField))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.FixedZone("UTC-6", -6*60*60)
	}
	return o, errors.Join(errs...)
}

// Server is a running fake auth service. Its methods are safe for concurrent use.
type Server struct {
	opt    Options
	parser *jwt.Parser
	tb     testing.TB // set by Start; reports Restart failures

	mu        sync.Mutex // guards the account state below
	users     map[int64]*User
	byLogin   map[string]int64 // UsernameField value → id
	nextID    int64
	blacklist map[string]struct{} // jti

	calls   sync.Map // path → *atomic.Int64
	total   atomic.Int64
	probes  atomic.Int64 // readiness probes, counted apart from calls
	delay   atomic.Int64 // time.Duration
	failure atomic.Int32 // Failure
	flap    atomic.Int64 // requests seen since SetFailure, for FailFlapping

	life   sync.Mutex // serializes Stop, Restart and Close
	addr   string     // the resolved listen address, reused by Restart
	closed bool
	run    *running // nil while stopped
}

// running is one listen-serve cycle; Stop ends it and Restart starts a new one.
type running struct {
	srv    *http.Server
	stop   chan struct{} // closed by Stop: wakes delayed handlers so they abort
	served chan struct{} // closed when Serve returns
}

// Start starts a Server for a test and registers Close with t.Cleanup. It fails the test if the
// options are invalid or the listener cannot be opened.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	s, err := New(opt)
	if err != nil {
		t.Fatalf("fakeauth: %v", err)
	}
	s.tb = t
	t.Cleanup(s.Close)
	return s
}

// New starts a Server outside a test (e.g. a load-test command). The caller must Close it.
func New(opt Options) (*Server, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("fakeauth options: %w", err)
	}
	parserOpts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // SimpleJWT's ALGORITHM; no confusion
		jwt.WithTimeFunc(opt.Now),
		jwt.WithIssuedAt(), // PyJWT rejects an iat in the future
		jwt.WithJSONNumber(),
	}
	// exp is deliberately not required here: SimpleJWT reports its absence with its own message.
	if opt.Issuer != "" {
		parserOpts = append(parserOpts, jwt.WithIssuer(opt.Issuer))
	}
	if opt.Audience != "" {
		parserOpts = append(parserOpts, jwt.WithAudience(opt.Audience))
	}
	s := &Server{
		opt:       opt,
		parser:    jwt.NewParser(parserOpts...),
		users:     make(map[int64]*User),
		byLogin:   make(map[string]int64),
		nextID:    1,
		blacklist: make(map[string]struct{}),
	}
	ln, err := net.Listen("tcp", opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("fakeauth listen: %w", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s, nil
}

// URL returns the base URL, "http://127.0.0.1:PORT", without a trailing slash. It stays the same
// across Stop and Restart.
func (s *Server) URL() string {
	host, port, err := net.SplitHostPort(s.addr)
	if err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1" // listening on all interfaces: loopback is always reachable
		}
		return "http://" + net.JoinHostPort(host, port)
	}
	return "http://" + s.addr
}

// Secret returns a copy of the HS256 signing key, for configuring the gateway under test.
func (s *Server) Secret() []byte {
	return append([]byte(nil), s.opt.Secret...)
}

// Options returns the effective options, defaults filled in.
func (s *Server) Options() Options {
	o := s.opt
	o.Secret = s.Secret()
	return o
}

// Close stops the server for good; Restart fails afterwards. It is idempotent.
func (s *Server) Close() {
	s.life.Lock()
	defer s.life.Unlock()
	s.closed = true
	s.stopLocked()
}

// Stop takes the service down: the listener and every open connection are closed, so new calls
// get "connection refused" and requests in progress are cut off without a response. Requests
// already being answered (not delayed) finish first, for up to 5 seconds.
func (s *Server) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	r := s.run
	if r == nil {
		return
	}
	s.run = nil
	close(r.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		_ = r.srv.Close() // force the stragglers; the error only repeats the listener's
	}
	<-r.served
}

// Restart brings a stopped service back on the same address. It does nothing if the service is
// running. If the port cannot be bound again within 5 seconds (another process took it), Restart
// reports an error to the test that started the server, or panics for a server from New; use
// TryRestart to handle the error yourself.
func (s *Server) Restart() {
	if err := s.TryRestart(); err != nil {
		if s.tb != nil {
			s.tb.Errorf("fakeauth: %v", err) // Errorf, not Fatalf: Restart may run off the test goroutine
			return
		}
		panic("fakeauth: " + err.Error())
	}
}

// TryRestart is Restart returning its error.
func (s *Server) TryRestart() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return errors.New("restart after Close")
	}
	if s.run != nil {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", s.addr)
		if err == nil {
			s.serve(ln)
			return nil
		}
		// The port may be held briefly by a closing socket or a racing dialer's ephemeral port.
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return fmt.Errorf("restart on %s: %w", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve starts serving ln; the caller holds life or is New.
func (s *Server) serve(ln net.Listener) {
	r := &running{stop: make(chan struct{}), served: make(chan struct{})}
	r.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { s.handle(w, req, r.stop) }),
		ReadHeaderTimeout: 10 * time.Second,
		// Tests provoke broken connections on purpose; keep net/http's complaints out of test logs.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.run = r
	go func() {
		defer close(r.served)
		_ = r.srv.Serve(ln) // always ErrServerClosed or a listener error after Stop
	}()
}

// Running reports whether the service is accepting connections.
func (s *Server) Running() bool {
	s.life.Lock()
	defer s.life.Unlock()
	return s.run != nil
}

// AddUser stores a user and returns it as stored. A zero ID gets the next free id (auto-increment);
// IsActive is always set to true, as Django's create_user does (deactivate with UpdateUser); a zero
// DateJoined becomes now. It panics if the id or the login field (email or username) is already
// taken, as the database's unique constraint would fail.
func (s *Server) AddUser(u User) User {
	u = u.clone()
	u.IsActive = true
	if u.DateJoined.IsZero() {
		u.DateJoined = s.opt.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == 0 {
		u.ID = s.nextID
	}
	if _, ok := s.users[u.ID]; ok {
		panic(fmt.Sprintf("fakeauth: AddUser: id %d already exists", u.ID))
	}
	login := s.loginOf(&u)
	if id, ok := s.byLogin[login]; ok && login != "" {
		panic(fmt.Sprintf("fakeauth: AddUser: %s %q already used by user %d", s.opt.UsernameField, login, id))
	}
	if login != "" {
		s.byLogin[login] = u.ID
	}
	s.users[u.ID] = &u
	s.nextID = max(s.nextID, u.ID+1)
	return u.clone()
}

// UpdateUser changes a stored user through f, e.g. to deactivate it or change its email, and
// reports whether the user exists. f runs under the server's lock: it must not call the Server.
// Changes to ID are ignored. It panics if the new login field value belongs to another user.
func (s *Server) UpdateUser(id int64, f func(*User)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.users[id]
	if !ok {
		return false
	}
	u := old.clone()
	f(&u)
	u.ID = id
	u.Extra = maps.Clone(u.Extra) // f may have installed a map it keeps using
	oldLogin, newLogin := s.loginOf(old), s.loginOf(&u)
	if other, ok := s.byLogin[newLogin]; ok && newLogin != "" && other != id {
		panic(fmt.Sprintf("fakeauth: UpdateUser: %s %q already used by user %d", s.opt.UsernameField, newLogin, other))
	}
	if s.byLogin[oldLogin] == id {
		delete(s.byLogin, oldLogin)
	}
	if newLogin != "" {
		s.byLogin[newLogin] = id
	}
	s.users[id] = &u
	return true
}

// DeleteUser removes a user and reports whether it existed. Tokens already issued to it stay valid
// at the verify endpoint, as in SimpleJWT.
func (s *Server) DeleteUser(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return false
	}
	if login := s.loginOf(u); s.byLogin[login] == id {
		delete(s.byLogin, login)
	}
	delete(s.users, id)
	return true
}

// User returns a copy of a stored user, e.g. to check LastLogin after a login.
func (s *Server) User(id int64) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, false
	}
	return u.clone(), true
}

func (s *Server) loginOf(u *User) string {
	if s.opt.UsernameField == "username" {
		return u.Username
	}
	return u.Email
}

// Calls returns the number of requests received on a URL path, e.g. PathVerify, counted on
// arrival: before any delay or injected failure, whatever the answer.
func (s *Server) Calls(path string) int64 {
	if c, ok := s.calls.Load(path); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// CallCounts returns the non-zero counters by path, for failure messages and load-test reports.
func (s *Server) CallCounts() map[string]int64 {
	m := make(map[string]int64)
	s.calls.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Load(); n != 0 {
			m[k.(string)] = n
		}
		return true
	})
	return m
}

// ProbeRequestID is the X-Request-Id of jwtgate's readiness probes
// (remote.ProbeRequestID). Probes are counted by Probes, not by Calls.
const ProbeRequestID = "jwtgate-readiness-probe"

// Probes returns the number of readiness probes received.
func (s *Server) Probes() int64 { return s.probes.Load() }

// TotalCalls returns the number of requests received on all paths.
func (s *Server) TotalCalls() int64 { return s.total.Load() }

// ResetCalls sets every counter to zero.
func (s *Server) ResetCalls() {
	s.calls.Range(func(_, v any) bool {
		v.(*atomic.Int64).Store(0)
		return true
	})
	s.total.Store(0)
}

func (s *Server) count(path string) {
	s.total.Add(1)
	c, ok := s.calls.Load(path)
	if !ok {
		c, _ = s.calls.LoadOrStore(path, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// SetDelay delays every response by d, capped at MaxDelay; zero removes the delay. A delayed
// request whose client gives up, or that is cut off by Stop, ends without a response.
func (s *Server) SetDelay(d time.Duration) {
	s.delay.Store(int64(min(max(d, 0), MaxDelay)))
}

// SetFailure injects a fault into every following request; FailNone ends it. It restarts
// FailFlapping's alternation, so the next request fails.
func (s *Server) SetFailure(mode Failure) {
	s.flap.Store(0)
	s.failure.Store(int32(mode))
}
