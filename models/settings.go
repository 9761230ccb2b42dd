package models

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Settings is the whole of settings.yaml. Field names follow the contract
// (../shared/design/contract.md); defaults come from DefaultSettings.
type Settings struct {
	Listen          string        `yaml:"listen"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MetricsListen is the address /metrics is served on, never the main
	// listener: its refusal counters tell a client why its token was
	// refused. Default 127.0.0.1:9090; empty turns /metrics off.
	MetricsListen string `yaml:"metrics_listen"`
	// ReadinessInterval is how recently the auth service must have answered
	// for /readyz to say ready; the background probe runs twice as often.
	ReadinessInterval time.Duration   `yaml:"readiness_interval"`
	AuthService       AuthService     `yaml:"auth_service"`
	Auth              Auth            `yaml:"auth"`
	Database          Database        `yaml:"database"`
	Users             Users           `yaml:"users"`
	IdentityHeaders   IdentityHeaders `yaml:"identity_headers"`
	IdentityToken     IdentityToken   `yaml:"identity_token"`
	Throttle          Throttle        `yaml:"throttle"`
	ForwardAuth       ForwardAuth     `yaml:"forward_auth"`
	Reload            Reload          `yaml:"reload"`
	Log               Log             `yaml:"log"`
	Routes            []Route         `yaml:"routes"`
	// TrustedProxies are the CIDRs (or single addresses) of proxies in front
	// of the gateway whose X-Forwarded-* headers are believed and that may
	// call /auth/check. Default none: the client is the TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`

	// TrustedNets is TrustedProxies parsed by Validate.
	TrustedNets []netip.Prefix `yaml:"-"`
}

// Reload says how settings are reloaded without a restart: SIGHUP always
// reloads; with Watch, so does a change of the settings file.
type Reload struct {
	Watch bool `yaml:"watch"`
}

// AuthService says where the private SimpleJWT auth service is and which
// paths it serves.
type AuthService struct {
	URL           string        `yaml:"url"`
	TokenPath     string        `yaml:"token_path"`
	RefreshPath   string        `yaml:"refresh_path"`
	VerifyPath    string        `yaml:"verify_path"`
	BlacklistPath string        `yaml:"blacklist_path"`
	UserPath      string        `yaml:"user_path"`
	Timeout       time.Duration `yaml:"timeout"`
	// MaxBodyBytes caps request bodies on the token endpoints (413 above it).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// BodyTimeout bounds receiving a token endpoint's request body (408
	// past it, the connection closed); 0 turns the bound off.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// Circuit stops calls home for a while after repeated failures.
	Circuit Circuit `yaml:"circuit"`
}

// Circuit configures the circuit breaker on calls to the auth service.
type Circuit struct {
	// Failures is how many consecutive failed calls (no answer, timeout,
	// 5xx) open the circuit; 0 turns the breaker off.
	Failures int `yaml:"failures"`
	// CoolDown is how long an open circuit refuses calls before letting
	// one trial call through.
	CoolDown time.Duration `yaml:"cool_down"`
}

// Auth configures how API calls are authenticated.
type Auth struct {
	HeaderName  string   `yaml:"header_name"`
	HeaderTypes []string `yaml:"header_types"`
	UserIDClaim string   `yaml:"user_id_claim"`
	Verify      string   `yaml:"verify"`
	// RevokeOnLogout refuses, on every replica until they expire, the
	// tokens a client names in a successful blacklist call (logout at the
	// edge); off, they are only evicted from the verify caches.
	RevokeOnLogout bool       `yaml:"revoke_on_logout"`
	Cache          AuthCache  `yaml:"cache"`
	Local          LocalVerif `yaml:"local"`
}

// AuthCache sizes the verify cache and bounds how long verdicts live.
type AuthCache struct {
	Size        int           `yaml:"size"`
	TTL         time.Duration `yaml:"ttl"`
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// StaleGrace lets a positive verdict outlive TTL by at most this long
	// while the auth service is unreachable (never past the token's exp).
	StaleGrace time.Duration `yaml:"stale_grace"`
}

// LocalVerif configures in-process signature verification (verify: local or hybrid).
type LocalVerif struct {
	JWKSURL    string        `yaml:"jwks_url"`
	Keys       []string      `yaml:"keys"`
	Algorithms []string      `yaml:"algorithms"`
	Issuer     string        `yaml:"issuer"`
	Audience   string        `yaml:"audience"`
	Leeway     time.Duration `yaml:"leeway"`
	// JWKSRefreshInterval is how often every JWKS is fetched again.
	JWKSRefreshInterval time.Duration `yaml:"jwks_refresh_interval"`
	// JWKSRefetchInterval bounds refetches caused by tokens whose kid is
	// not in the JWKS: at most one per interval and JWKS.
	JWKSRefetchInterval time.Duration `yaml:"jwks_refetch_interval"`
	// Issuers, when set, are the trusted issuers, each with its own keys;
	// a token's iss picks one. JWKSURL, Keys and Issuer above must then be empty.
	Issuers []LocalIssuer `yaml:"issuers"`
}

// LocalIssuer is one trusted issuer of auth.local.issuers.
type LocalIssuer struct {
	Issuer  string   `yaml:"issuer"`
	JWKSURL string   `yaml:"jwks_url"`
	Keys    []string `yaml:"keys"`
	// Audience is the required aud claim; empty means auth.local.audience.
	Audience string `yaml:"audience"`
	// UserEndpoint says the auth service (auth_service.url) issues this
	// issuer's tokens, so its users are fetched from auth_service.user_path.
	// With several issuers exactly one must say true; the others' tokens are
	// refused (403) as their users cannot be resolved. Unset with one issuer
	// means true.
	UserEndpoint *bool `yaml:"user_endpoint"`
}

// UserIssuers returns the trusted issuers' iss values when users must be
// told apart by issuer: verify local or hybrid with two or more
// auth.local.issuers. Otherwise nil (one user namespace).
func (s Settings) UserIssuers() []string {
	if s.Auth.Verify == VerifyRemote || len(s.Auth.Local.Issuers) < 2 {
		return nil
	}
	out := make([]string, 0, len(s.Auth.Local.Issuers))
	for _, is := range s.Auth.Local.Issuers {
		out = append(out, is.Issuer)
	}
	return out
}

// UserEndpointIssuer returns the iss of the auth service's users: the
// issuer with user_endpoint: true among several, the only one, or
// auth.local.issuer; "" in verify: remote or when no issuer is configured.
func (s Settings) UserEndpointIssuer() string {
	if s.Auth.Verify == VerifyRemote {
		return ""
	}
	l := s.Auth.Local
	switch len(l.Issuers) {
	case 0:
		return l.Issuer
	case 1:
		return l.Issuers[0].Issuer
	}
	for _, is := range l.Issuers {
		if is.UserEndpoint != nil && *is.UserEndpoint {
			return is.Issuer
		}
	}
	return ""
}

// KeyEnvPrefix marks an entry of auth.local.keys that names an environment
// variable holding an HMAC secret ("env:JWT_SECRET"), so secrets stay out
// of settings.yaml. Any other entry is a PEM file.
const KeyEnvPrefix = "env:"

// Algorithms lists the signing algorithms auth.local.algorithms may name.
var Algorithms = []string{
	"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
}

// Database selects the user mirror's database.
type Database struct {
	Driver string `yaml:"driver"`
	DSN    string `yaml:"dsn"`
}

// Users configures the user mirror's cache and freshness.
type Users struct {
	RefreshAfter time.Duration `yaml:"refresh_after"`
	CacheSize    int           `yaml:"cache_size"`
}

// IdentityHeaders configures the headers that carry the caller's identity upstream.
type IdentityHeaders struct {
	Prefix string `yaml:"prefix"`
}

// ForwardAuth configures GET /auth/check.
type ForwardAuth struct {
	// Headers names the header family that describes the original request:
	// ForwardAuthNginx (X-Original-URI/-Method), ForwardAuthTraefik
	// (X-Forwarded-Uri/-Method/-Host/-Proto) or ForwardAuthAuto (either,
	// but a request carrying both families is refused).
	Headers string `yaml:"headers"`
}

// Values of forward_auth.headers.
const (
	ForwardAuthAuto    = "auto"
	ForwardAuthNginx   = "nginx"
	ForwardAuthTraefik = "traefik"
)

// IdentityToken configures the signed identity token (X-User-Token) sent to
// upstreams and served as a JWKS at /.well-known/jwks.json.
type IdentityToken struct {
	Enabled bool `yaml:"enabled"`
	// Algorithm is ES256 or RS256.
	Algorithm string `yaml:"algorithm"`
	// KeyFile is the PEM (PKCS#8) private key; generated on first start when absent.
	KeyFile string `yaml:"key_file"`
	// Lifetime is how long a token is valid (exp - iat).
	Lifetime time.Duration `yaml:"lifetime"`
	// Issuer is the iss claim.
	Issuer string `yaml:"issuer"`
}

// Identity token algorithms.
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

// Throttle configures the login throttles (failed logins per account and
// per client address, all logins per client address) and the bound on calls
// home per client address.
type Throttle struct {
	// FailuresPerAccount is how many failed logins one login name may have
	// per window, from any address: "10/15m", or "off".
	FailuresPerAccount string `yaml:"failures_per_account"`
	// FailuresPerClient is how many failed logins one client address may
	// have per window, for any login names: "100/15m", or "off".
	FailuresPerClient string `yaml:"failures_per_client"`
	// LoginRate limits every login attempt per client address, DRF style:
	// "10/minute" (N/second|minute|hour|day or N/<Go duration>), or "off".
	LoginRate string `yaml:"login_rate"`
	// LoginBurst is how many logins may come at once before LoginRate applies.
	LoginBurst int `yaml:"login_burst"`
	// LoginField is the body field naming the account; empty: email and
	// username, whichever are present (both when both are).
	LoginField string `yaml:"login_field"`
	// CacheSize is how many client addresses are tracked (least recently seen dropped first).
	CacheSize int `yaml:"cache_size"`
	// AccountsSize is how many login names with failed logins are tracked
	// (least recently failed dropped first).
	AccountsSize int `yaml:"accounts_size"`
	// CallsHomePerClient bounds verify-cache misses that call the auth
	// service, per client address: "20/second", or "off".
	CallsHomePerClient string `yaml:"calls_home_per_client"`

	// LoginEvery is the interval LoginRate allows one login per; 0 when off. Set by Validate.
	LoginEvery time.Duration `yaml:"-"`
	// AccountLimit, ClientLimit and CallsHome are the parsed rates; the
	// zero Limit is off. Set by Validate.
	AccountLimit, ClientLimit, CallsHome Limit `yaml:"-"`
}

// Limit is a parsed rate: N events per Per. The zero Limit is off.
type Limit struct {
	N   int
	Per time.Duration
}

// Off reports whether the limit is switched off.
func (l Limit) Off() bool { return l.N == 0 }

// Every is the interval between two events at the limit's steady rate; 0 when off.
func (l Limit) Every() time.Duration {
	if l.Off() {
		return 0
	}
	return l.Per / time.Duration(l.N)
}

// maxRateCount bounds N in a rate, so N/Per never rounds to nothing.
const maxRateCount = 1_000_000

// ParseLimit reads a rate: "N/second", "N/minute", "N/hour", "N/day" (DRF
// style, also s, sec, m, min, h, d) or "N/<Go duration>" such as "10/15m".
// "off" gives the zero Limit.
func ParseLimit(s string) (Limit, error) {
	if s == "off" {
		return Limit{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count <= 0 || count > maxRateCount || n != strconv.Itoa(count) {
		return Limit{}, fmt.Errorf("want N/second, N/minute, N/hour, N/day or N/<duration> such as 10/15m (N from 1 to %d), or off; got %q", maxRateCount, s)
	}
	var per time.Duration
	switch unit {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	case "d", "day":
		per = 24 * time.Hour
	default:
		d, err := time.ParseDuration(unit)
		if err != nil || d <= 0 {
			return Limit{}, fmt.Errorf("unknown unit %q: want second, minute, hour, day or a positive duration such as 15m", unit)
		}
		per = d
	}
	if per/time.Duration(count) <= 0 {
		return Limit{}, fmt.Errorf("%q is more than one event per nanosecond", s)
	}
	return Limit{N: count, Per: per}, nil
}

// ParseRate reads a rate (see ParseLimit) as the interval between two
// events. "off" gives 0.
func ParseRate(s string) (time.Duration, error) {
	l, err := ParseLimit(s)
	return l.Every(), err
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Route is one entry of routes: a path prefix forwarded to an upstream.
type Route struct {
	Name      string   `yaml:"name"`
	Path      string   `yaml:"path"`
	Upstream  string   `yaml:"upstream"`
	Auth      string   `yaml:"auth"`
	Methods   []string `yaml:"methods"`
	Allow     string   `yaml:"allow"`
	StripPath bool     `yaml:"strip_path"`
	// Timeout bounds connecting to the upstream, sending the request and
	// waiting for its response headers; a streamed response (SSE,
	// WebSocket, downloads) is not cut once it has started. 0: no bound.
	Timeout time.Duration `yaml:"timeout"`
	// ForwardToken sends the client's token header upstream; nil means true.
	ForwardToken *bool `yaml:"forward_token"`
	// IdentityHeaders lists extra mirrored fields sent upstream.
	IdentityHeaders RouteIdentity `yaml:"identity_headers"`
	// BodyTimeout bounds receiving the request body from the client, so a
	// body trickled a byte at a time cannot hold a connection and an
	// upstream call; nil means DefaultBodyTimeout, 0 no bound.
	BodyTimeout *time.Duration `yaml:"body_timeout"`
	// AllowUnusualPaths lets through request paths other HTTP stacks may
	// resolve differently (see UnusualPath and PathReadings). Dangerous:
	// only for an upstream that reads paths exactly as the gateway does.
	AllowUnusualPaths bool `yaml:"allow_unusual_paths"`

	// Rule is Allow compiled by Validate; nil when Allow is empty.
	Rule *Rule `yaml:"-"`
}

// RouteIdentity lists mirrored user fields a route sends upstream as
// <prefix><Field-Name> headers (services -> X-User-Services), lists and
// maps JSON-encoded, and puts in the identity token.
type RouteIdentity struct {
	Fields []string `yaml:"fields"`
}

// DefaultBodyTimeout is routes[].body_timeout when it is not set.
const DefaultBodyTimeout = 60 * time.Second

// BodyDeadline is how long the client may take to send the request body;
// 0: no bound.
func (r *Route) BodyDeadline() time.Duration {
	if r.BodyTimeout == nil {
		return DefaultBodyTimeout
	}
	return *r.BodyTimeout
}

// ForwardsToken reports whether the client's token header goes upstream.
func (r *Route) ForwardsToken() bool { return r.ForwardToken == nil || *r.ForwardToken }

// Verification modes of auth.verify.
const (
	VerifyRemote = "remote"
	VerifyLocal  = "local"
	VerifyHybrid = "hybrid"
)

// Authentication modes of a route.
const (
	AuthRequired = "required"
	AuthOptional = "optional"
	AuthNone     = "none"
)

// Environment variables that override settings.yaml.
const (
	EnvConfig         = "JWTGATE_CONFIG"
	EnvListen         = "JWTGATE_LISTEN"
	EnvAuthServiceURL = "JWTGATE_AUTH_SERVICE_URL"
	EnvDatabaseDSN    = "JWTGATE_DATABASE_DSN"
)

// DefaultSettings returns the embedded defaults; settings.yaml overrides them key by key.
func DefaultSettings() Settings {
	return Settings{
		Listen:            "127.0.0.1:8001",
		MetricsListen:     "127.0.0.1:9090",
		ShutdownTimeout:   15 * time.Second,
		ReadinessInterval: 10 * time.Second,
		AuthService: AuthService{
			URL:           "http://127.0.0.1:8000",
			TokenPath:     "/auth/token/",
			RefreshPath:   "/auth/token/refresh/",
			VerifyPath:    "/auth/token/verify/",
			BlacklistPath: "/auth/token/blacklist/",
			UserPath:      "/auth/users/{user_id}/",
			Timeout:       5 * time.Second,
			MaxBodyBytes:  64 << 10,
			BodyTimeout:   10 * time.Second,
			Circuit:       Circuit{Failures: 5, CoolDown: 10 * time.Second},
		},
		Auth: Auth{
			HeaderName:  "Authorization",
			HeaderTypes: []string{"Bearer"},
			UserIDClaim: "user_id",
			Verify:      VerifyRemote,
			Cache:       AuthCache{Size: 100000, TTL: 30 * time.Second, NegativeTTL: 5 * time.Second},
			Local: LocalVerif{
				Algorithms:          []string{"RS256"},
				JWKSRefreshInterval: 5 * time.Minute,
				JWKSRefetchInterval: 30 * time.Second,
			},
		},
		Database:        Database{Driver: "sqlite", DSN: "jwtgate.db"},
		Users:           Users{RefreshAfter: 10 * time.Minute, CacheSize: 10000},
		IdentityHeaders: IdentityHeaders{Prefix: "X-User-"},
		IdentityToken: IdentityToken{
			Algorithm: AlgES256, KeyFile: "jwtgate-identity-key.pem",
			Lifetime: 60 * time.Second, Issuer: "jwtgate",
		},
		Throttle: Throttle{
			FailuresPerAccount: "10/15m", FailuresPerClient: "100/15m",
			LoginRate: "off", LoginBurst: 5, CacheSize: 10000, AccountsSize: 100000,
			CallsHomePerClient: "20/second",
		},
		Log:         Log{Level: "info", Format: "text"},
		ForwardAuth: ForwardAuth{Headers: ForwardAuthAuto},
	}
}

// LoadSettings reads settings.yaml over the defaults, applies the
// environment overrides and validates the result. Every problem is
// reported at once, each naming its key. When the error is not nil the
// settings must not be served; they are returned, as far as they decoded,
// for reporting.
func LoadSettings(r io.Reader, getenv func(string) string) (Settings, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return Settings{}, fmt.Errorf("settings: %w", err)
	}
	s := DefaultSettings()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true) // "timout: 5s" fails instead of silently keeping the default
	var decodeErr error
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) { // a syntax error: nothing more can be said
			return Settings{}, fmt.Errorf("settings: %w", explainSyntax(err, raw))
		}
		// Unknown keys and bad values: yaml.v3 decoded the rest, so
		// validate it too and report every problem at once.
		decodeErr = fmt.Errorf("settings: %w", explainYAML(err, raw))
	}
	s.Listen = cmp.Or(getenv(EnvListen), s.Listen)
	s.AuthService.URL = cmp.Or(getenv(EnvAuthServiceURL), s.AuthService.URL)
	s.Database.DSN = cmp.Or(getenv(EnvDatabaseDSN), s.Database.DSN)
	// On error s is returned too, as far as it decoded, so `jwtgate check`
	// can go on to probe the database and the auth service.
	return s, errors.Join(decodeErr, s.Validate())
}

// explainYAML rewords yaml.v3's messages so a person sees which key is wrong.
func explainYAML(err error, raw []byte) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	keys := keysByLine(raw)
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		// "line 3: cannot unmarshal ..." -> "auth_service.timeout (line 3): cannot unmarshal ..."
		var line int
		if _, scanErr := fmt.Sscanf(m, "line %d:", &line); scanErr == nil && keys[line] != "" && !strings.Contains(m, ": field ") {
			m = keys[line] + " (" + m[:strings.Index(m, ":")] + ")" + m[strings.Index(m, ":"):]
		}
		// "line 3: field timout not found in type models.AuthService"
		if line, rest, ok := strings.Cut(m, ": field "); ok {
			if name, _, ok := strings.Cut(rest, " not found"); ok {
				m = fmt.Sprintf("%s: unknown key %q", line, name)
				var n int
				if _, scanErr := fmt.Sscanf(line, "line %d", &n); scanErr == nil && keys[n] != "" {
					m = fmt.Sprintf("%s (%s): unknown key %q", keys[n], line, name)
				}
				_, typeName, _ := strings.Cut(rest, " not found in type ")
				if hint := unknownKeyHint(typeName, name); hint != "" {
					m += ": " + hint
				} else {
					m += " (jwtgate config prints every key)"
				}
			}
		}
		// "cannot unmarshal !!str `5 sec` into time.Duration"
		if strings.Contains(m, "time.Duration") {
			m += ` (want a Go duration such as "30s" or "5m")`
		}
		msgs = append(msgs, m)
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// keysByLine maps each line of a YAML document to the dotted key defined
// there (list items as key[i]), to name keys in decoding errors.
func keysByLine(raw []byte) map[int]string {
	var doc yaml.Node
	out := map[int]string{}
	if yaml.Unmarshal(raw, &doc) != nil {
		return out
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				name := k.Value
				if prefix != "" {
					name = prefix + "." + k.Value
				}
				out[k.Line] = name
				if v.Line != k.Line || v.Kind != yaml.ScalarNode {
					walk(v, name)
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				name := fmt.Sprintf("%s[%d]", prefix, i)
				if _, taken := out[c.Line]; !taken || c.Kind == yaml.ScalarNode {
					out[c.Line] = name
				}
				walk(c, name)
			}
		}
	}
	walk(&doc, "")
	return out
}

// Validate checks every value and returns all problems joined, each naming its key.
func (s *Settings) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("settings: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if s.Listen == "" {
		bad("listen", "must not be empty (e.g. \"127.0.0.1:8001\")")
	}
	if s.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be a positive duration, got %s", s.ShutdownTimeout)
	}
	if s.ReadinessInterval <= 0 {
		bad("readiness_interval", "must be a positive duration, got %s", s.ReadinessInterval)
	}
	if s.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(s.MetricsListen); err != nil {
			bad("metrics_listen", "must be host:port (e.g. \"127.0.0.1:9090\"), got %q", s.MetricsListen)
		} else if s.MetricsListen == s.Listen && !strings.HasSuffix(s.Listen, ":0") {
			bad("metrics_listen", "must differ from listen: /metrics is never served on the public listener (set \"\" to turn it off)")
		}
	}
	checkURL := func(key, raw string, required bool) {
		if raw == "" {
			if required {
				bad(key, "must not be empty")
			}
			return
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(key, "must be an http:// or https:// URL with a host, got %q", raw)
		}
	}
	as := &s.AuthService
	checkURL("auth_service.url", as.URL, true)
	for key, p := range map[string]string{
		"auth_service.token_path": as.TokenPath, "auth_service.refresh_path": as.RefreshPath,
		"auth_service.verify_path": as.VerifyPath, "auth_service.blacklist_path": as.BlacklistPath,
		"auth_service.user_path": as.UserPath,
	} {
		if !strings.HasPrefix(p, "/") {
			bad(key, "must be a path starting with /, got %q", p)
		}
	}
	if as.Timeout <= 0 {
		bad("auth_service.timeout", "must be a positive duration, got %s", as.Timeout)
	}
	if as.MaxBodyBytes <= 0 {
		bad("auth_service.max_body_bytes", "must be positive, got %d", as.MaxBodyBytes)
	}
	if as.BodyTimeout < 0 {
		bad("auth_service.body_timeout", "must not be negative (0 turns it off), got %s", as.BodyTimeout)
	}
	if as.Circuit.Failures < 0 {
		bad("auth_service.circuit.failures", "must not be negative (0 turns the breaker off), got %d", as.Circuit.Failures)
	}
	if as.Circuit.Failures > 0 && as.Circuit.CoolDown <= 0 {
		bad("auth_service.circuit.cool_down", "must be a positive duration, got %s", as.Circuit.CoolDown)
	}
	a := &s.Auth
	if a.HeaderName == "" {
		bad("auth.header_name", "must not be empty")
	}
	if a.UserIDClaim == "" {
		bad("auth.user_id_claim", "must not be empty")
	}
	if !slices.Contains([]string{VerifyRemote, VerifyLocal, VerifyHybrid}, a.Verify) {
		bad("auth.verify", "must be remote, local or hybrid, got %q", a.Verify)
	}
	if a.Cache.Size <= 0 {
		bad("auth.cache.size", "must be positive, got %d", a.Cache.Size)
	}
	if a.Cache.TTL <= 0 {
		bad("auth.cache.ttl", "must be a positive duration, got %s", a.Cache.TTL)
	}
	if a.Cache.NegativeTTL < 0 {
		bad("auth.cache.negative_ttl", "must not be negative, got %s", a.Cache.NegativeTTL)
	}
	if a.Cache.StaleGrace < 0 {
		bad("auth.cache.stale_grace", "must not be negative (0 turns it off), got %s", a.Cache.StaleGrace)
	}
	s.validateLocal(bad, checkURL)
	switch s.Database.Driver {
	case "sqlite", "postgres":
	default:
		bad("database.driver", "must be sqlite or postgres, got %q", s.Database.Driver)
	}
	if s.Database.DSN == "" {
		bad("database.dsn", "must not be empty")
	}
	if s.Users.RefreshAfter <= 0 {
		bad("users.refresh_after", "must be a positive duration, got %s", s.Users.RefreshAfter)
	}
	if s.Users.CacheSize <= 0 {
		bad("users.cache_size", "must be positive, got %d", s.Users.CacheSize)
	}
	if s.IdentityHeaders.Prefix == "" {
		bad("identity_headers.prefix", "must not be empty (e.g. \"X-User-\")")
	} else if !isHeaderToken(s.IdentityHeaders.Prefix) {
		bad("identity_headers.prefix", "must be letters, digits and '-' (a header name prefix), got %q", s.IdentityHeaders.Prefix)
	}
	s.TrustedNets = s.TrustedNets[:0]
	for i, raw := range s.TrustedProxies {
		p, err := parsePrefix(raw)
		if err != nil {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "want a CIDR such as \"10.0.0.0/8\" or an address, got %q", raw)
			continue
		}
		s.TrustedNets = append(s.TrustedNets, p)
	}
	if it := &s.IdentityToken; it.Enabled {
		if it.Algorithm != AlgES256 && it.Algorithm != AlgRS256 {
			bad("identity_token.algorithm", "must be ES256 or RS256, got %q", it.Algorithm)
		}
		if it.KeyFile == "" {
			bad("identity_token.key_file", "must not be empty when identity_token.enabled")
		}
		if it.Lifetime <= 0 {
			bad("identity_token.lifetime", "must be a positive duration, got %s", it.Lifetime)
		}
	}
	s.Throttle.validate(bad)
	if !slices.Contains([]string{ForwardAuthAuto, ForwardAuthNginx, ForwardAuthTraefik}, s.ForwardAuth.Headers) {
		bad("forward_auth.headers", "must be auto, nginx or traefik, got %q", s.ForwardAuth.Headers)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(s.Log.Level)) {
		bad("log.level", "must be debug, info, warn or error, got %q", s.Log.Level)
	}
	if s.Log.Format != "text" && s.Log.Format != "json" {
		bad("log.format", "must be text or json, got %q", s.Log.Format)
	}
	seen, names := map[string]int{}, map[string]int{} // seen: path without its trailing slash -> index
	for i := range s.Routes {
		r := &s.Routes[i]
		key := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			r.Name = cmp.Or(strings.Trim(r.Path, "/"), "root")
		}
		if j, dup := names[r.Name]; dup {
			bad(key+".name", "%q is also the name of routes[%d] (names are the identity token's aud)", r.Name, j)
		} else {
			names[r.Name] = i
		}
		base := strings.TrimSuffix(r.Path, "/")
		switch {
		case !strings.HasPrefix(r.Path, "/"):
			bad(key+".path", "must start with /, got %q", r.Path)
		case CleanPath(r.Path) != r.Path:
			bad(key+".path", "%q never matches: request paths are cleaned before matching; write %q", r.Path, CleanPath(r.Path))
		default:
			if j, dup := seen[base]; dup {
				if s.Routes[j].Path == r.Path {
					bad(key+".path", "%q is also routes[%d].path", r.Path, j)
				} else {
					// "/api/x" and "/api/x/" cover the same requests; the
					// longer always wins, so the other never matches.
					bad(key+".path", "%q and routes[%d].path %q cover the same requests, so one shadows the other: keep one", r.Path, j, s.Routes[j].Path)
				}
			} else {
				seen[base] = i
			}
		}
		checkURL(key+".upstream", r.Upstream, true)
		if r.Auth == "" {
			r.Auth = AuthRequired
		}
		if !slices.Contains([]string{AuthRequired, AuthOptional, AuthNone}, r.Auth) {
			bad(key+".auth", "must be required, optional or none, got %q", r.Auth)
		}
		for j, m := range r.Methods {
			r.Methods[j] = strings.ToUpper(m)
		}
		if r.Timeout < 0 {
			bad(key+".timeout", "must not be negative, got %s", r.Timeout)
		}
		if r.BodyTimeout != nil && *r.BodyTimeout < 0 {
			bad(key+".body_timeout", "must not be negative (0 turns it off), got %s", *r.BodyTimeout)
		}
		if r.Allow != "" {
			if r.Auth == AuthNone {
				bad(key+".allow", "has no user to check on a route with auth: none")
			}
			rule, err := CompileRule(r.Allow)
			if err != nil {
				bad(key+".allow", "route %q: allow expression %q does not compile: %v", r.Name, r.Allow, err)
			}
			r.Rule = rule
		}
		for j, f := range r.IdentityHeaders.Fields {
			fkey := fmt.Sprintf("%s.identity_headers.fields[%d]", key, j)
			switch {
			case !isHeaderToken(f) || strings.Trim(f, "-_") == "":
				bad(fkey, "must be a field name of letters, digits and '_', got %q", f)
			case slices.Contains(standardIdentityFields, strings.ReplaceAll(strings.ToLower(f), "-", "_")):
				bad(fkey, "%q is reserved: id, email, username, is_staff, is_superuser and the token are always sent", f)
			case IsReservedClaim(f):
				bad(fkey, "%q is reserved: it would overwrite the identity token's own claim (reserved: %s)", f, strings.Join(ReservedClaims, ", "))
			case slices.ContainsFunc(r.IdentityHeaders.Fields[:j], func(g string) bool {
				return strings.EqualFold(strings.ReplaceAll(g, "-", "_"), strings.ReplaceAll(f, "-", "_"))
			}):
				bad(fkey, "%q is listed twice", f)
			}
		}
	}
	return errors.Join(errs...)
}

// writeMethods are the methods that change something upstream.
var writeMethods = []string{"POST", "PUT", "PATCH", "DELETE"}

// authRank orders route auth modes from weakest to strongest.
var authRank = map[string]int{AuthNone: 0, AuthOptional: 1, AuthRequired: 2}

// Warnings returns settings that are valid but probably not what the
// operator meant, in words that say what to change. Call it after Validate.
func (s *Settings) Warnings() []string {
	var out []string
	if w := metricsListenWarning(s.MetricsListen); w != "" {
		out = append(out, w)
	}
	for i, r := range s.Routes {
		if r.AllowUnusualPaths {
			out = append(out, fmt.Sprintf("routes[%d] (%s): allow_unusual_paths: true forwards paths such as /..;/ and %%5C "+
				"that Tomcat, Spring or IIS may resolve to another route's path; keep it only for an upstream that reads paths as the gateway does", i, r.Path))
		}
		if _, known := authRank[r.Auth]; !known {
			continue // an invalid auth mode is Validate's error; warning about it too is noise
		}
		if r.Auth == AuthNone {
			var writes []string
			for _, m := range writeMethods {
				if len(r.Methods) == 0 || slices.Contains(r.Methods, m) {
					writes = append(writes, m)
				}
			}
			if len(writes) > 0 {
				out = append(out, fmt.Sprintf("routes[%d] (%s): auth: none lets anyone send %s upstream; "+
					"set methods: [GET, HEAD] or auth: required if that is not intended", i, r.Path, strings.Join(writes, ", ")))
			}
		}
		for j, outer := range s.Routes {
			ob := strings.TrimSuffix(outer.Path, "/")
			if i == j || !strings.HasPrefix(r.Path, ob+"/") || len(strings.TrimSuffix(r.Path, "/")) <= len(ob) {
				continue
			}
			// r is nested inside outer and wins for its subtree.
			if authRank[r.Auth] < authRank[outer.Auth] {
				out = append(out, fmt.Sprintf("routes[%d] (%s) is inside routes[%d] (%s) and has auth: %s instead of %s: "+
					"requests under %s skip the outer route's authentication", i, r.Path, j, outer.Path, r.Auth, outer.Auth, r.Path))
			} else if outer.Allow != "" && r.Allow == "" && r.Auth != AuthNone {
				out = append(out, fmt.Sprintf("routes[%d] (%s) is inside routes[%d] (%s) but has no allow rule: "+
					"requests under %s skip %q", i, r.Path, j, outer.Path, r.Path, outer.Allow))
			}
		}
	}
	return out
}

// standardIdentityFields are sent on every authenticated request; "token"
// is the identity token's header.
var standardIdentityFields = []string{"id", "email", "username", "is_staff", "is_superuser", "token"}

// isHeaderToken reports whether s is made of letters, digits, '-' and '_'.
func isHeaderToken(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// parsePrefix reads a CIDR, or a bare address as a single-host prefix.
func parsePrefix(raw string) (netip.Prefix, error) {
	raw = strings.TrimSpace(raw)
	if strings.Contains(raw, "/") {
		p, err := netip.ParsePrefix(raw)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("trusted proxy %q: %w", raw, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(raw)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: %w", raw, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validateLocal checks auth.local: algorithms, intervals, key entries and
// the issuers, whichever verify mode is set (a config must not turn
// invalid the day someone switches to local).
func (s *Settings) validateLocal(bad func(key, format string, args ...any), checkURL func(key, raw string, required bool)) {
	l := &s.Auth.Local
	if l.Leeway < 0 {
		bad("auth.local.leeway", "must not be negative, got %s", l.Leeway)
	}
	if len(l.Algorithms) == 0 {
		bad("auth.local.algorithms", "must list at least one algorithm (e.g. [\"RS256\"])")
	}
	for i, alg := range l.Algorithms {
		if !slices.Contains(Algorithms, alg) {
			bad(fmt.Sprintf("auth.local.algorithms[%d]", i), "%q is not one of %s", alg, strings.Join(Algorithms, ", "))
		}
	}
	if l.JWKSRefreshInterval <= 0 {
		bad("auth.local.jwks_refresh_interval", "must be a positive duration, got %s", l.JWKSRefreshInterval)
	}
	if l.JWKSRefetchInterval <= 0 {
		bad("auth.local.jwks_refetch_interval", "must be a positive duration, got %s", l.JWKSRefetchInterval)
	}
	checkKeys := func(key string, keys []string) {
		for i, k := range keys {
			key := fmt.Sprintf("%s[%d]", key, i)
			name, isEnv := strings.CutPrefix(k, KeyEnvPrefix)
			switch {
			case strings.TrimSpace(k) == "":
				bad(key, "must not be empty: a PEM file or %sVAR_NAME", KeyEnvPrefix)
			case isEnv && !validEnvName(name):
				bad(key, "%q must name an environment variable (letters, digits, _)", k)
			case strings.Contains(k, "-----BEGIN"):
				bad(key, "must be a PEM file name, not the PEM itself")
			}
		}
	}
	checkURL("auth.local.jwks_url", l.JWKSURL, false)
	checkKeys("auth.local.keys", l.Keys)
	if len(l.Issuers) == 0 {
		// Only for a valid local mode: a misspelt verify is reported once, by
		// itself, not again as keys it made look missing.
		if (s.Auth.Verify == VerifyLocal || s.Auth.Verify == VerifyHybrid) && l.JWKSURL == "" && len(l.Keys) == 0 {
			bad("auth.local", "verify: %s needs auth.local.jwks_url, auth.local.keys or auth.local.issuers", s.Auth.Verify)
		}
		if l.JWKSURL != "" && len(l.Keys) > 0 {
			bad("auth.local.keys", "set either auth.local.jwks_url or auth.local.keys, not both")
		}
		return
	}
	for key, set := range map[string]bool{
		"auth.local.jwks_url": l.JWKSURL != "", "auth.local.keys": len(l.Keys) > 0, "auth.local.issuer": l.Issuer != "",
	} {
		if set {
			bad(key, "must be empty when auth.local.issuers is set (give it per issuer)")
		}
	}
	seen := map[string]int{}
	for i, is := range l.Issuers {
		key := fmt.Sprintf("auth.local.issuers[%d]", i)
		if is.Issuer == "" {
			bad(key+".issuer", "must not be empty: a token's iss picks its issuer")
		} else if j, dup := seen[is.Issuer]; dup {
			bad(key+".issuer", "%q is also auth.local.issuers[%d].issuer", is.Issuer, j)
		} else {
			seen[is.Issuer] = i
		}
		checkURL(key+".jwks_url", is.JWKSURL, false)
		checkKeys(key+".keys", is.Keys)
		if (is.JWKSURL == "") == (len(is.Keys) == 0) {
			bad(key, "needs either jwks_url or keys (exactly one)")
		}
	}
	s.validateUserEndpoint(bad)
}

// validateUserEndpoint checks auth.local.issuers[].user_endpoint: users are
// fetched from the auth service only for the issuer whose tokens it issues,
// so among several issuers exactly one names it.
func (s *Settings) validateUserEndpoint(bad func(key, format string, args ...any)) {
	l := &s.Auth.Local
	if len(l.Issuers) == 1 {
		if ue := l.Issuers[0].UserEndpoint; ue != nil && !*ue {
			bad("auth.local.issuers[0].user_endpoint", "must be true (or unset) for the only issuer: its users come from auth_service.user_path")
		}
		return
	}
	var with []int
	for i, is := range l.Issuers {
		if is.UserEndpoint != nil && *is.UserEndpoint {
			with = append(with, i)
		}
	}
	switch {
	case len(with) == 0:
		bad("auth.local.issuers", "with several issuers, exactly one must set user_endpoint: true (the issuer whose tokens the auth service at auth_service.url issues); users of the others cannot be resolved")
	case len(with) > 1:
		bad(fmt.Sprintf("auth.local.issuers[%d].user_endpoint", with[1]), "only one issuer may set user_endpoint: true (auth.local.issuers[%d] does); the auth service issues one issuer's tokens", with[0])
	}
}

// validEnvName reports whether name is a portable environment variable name.
func validEnvName(name string) bool {
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// validate parses the throttle rates and checks the sizes.
func (t *Throttle) validate(bad func(key, format string, args ...any)) {
	for _, r := range []struct {
		key string
		raw string
		dst *Limit
	}{
		{"throttle.failures_per_account", t.FailuresPerAccount, &t.AccountLimit},
		{"throttle.failures_per_client", t.FailuresPerClient, &t.ClientLimit},
		{"throttle.calls_home_per_client", t.CallsHomePerClient, &t.CallsHome},
	} {
		l, err := ParseLimit(r.raw)
		if err != nil {
			bad(r.key, "%v", err)
			continue
		}
		*r.dst = l
	}
	if every, err := ParseRate(t.LoginRate); err != nil {
		bad("throttle.login_rate", "%v", err)
	} else {
		t.LoginEvery = every
	}
	if t.LoginBurst <= 0 {
		bad("throttle.login_burst", "must be positive, got %d", t.LoginBurst)
	}
	if t.CacheSize <= 0 {
		bad("throttle.cache_size", "must be positive, got %d", t.CacheSize)
	}
	if t.AccountsSize <= 0 {
		bad("throttle.accounts_size", "must be positive, got %d", t.AccountsSize)
	}
	if f := t.LoginField; f != "" && (strings.TrimSpace(f) != f || len(f) > 150) {
		bad("throttle.login_field", "must be a body field name without surrounding spaces, got %q", f)
	}
}
