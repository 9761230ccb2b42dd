package models

import (
	"maps"
	"time"
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
	ExtAuthz          ExtAuthz        `yaml:"ext_authz"`
	Tracing           Tracing         `yaml:"tracing"`
	Admin             Admin           `yaml:"admin"`
	// Browser is the browser-app mode: HttpOnly cookie sessions, CSRF,
	// allowed origins (settings_browser.go). Off by default.
	Browser Browser `yaml:"browser"`
	// Introspection configures the gateway's own RFC 7662 endpoint,
	// POST /auth/introspect/, for internal services.
	Introspection Introspection `yaml:"introspection"`
	// OIDC is the browser login through an OpenID Connect provider
	// (settings_oidclogin.go). Off by default.
	OIDC   OIDC    `yaml:"oidc"`
	Log    Log     `yaml:"log"`
	Routes []Route `yaml:"routes"`
	// TrustedProxies are the CIDRs (or single addresses) of proxies in front
	// of the gateway whose X-Forwarded-* headers are believed and that may
	// call /auth/check. Default none: the client is the TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
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
	// MaxInFlight bounds the calls home made at once, all kinds together
	// (the bulkhead); the rest wait in FIFO order. Zero (a literal built
	// without DefaultSettings) means DefaultMaxInFlight.
	MaxInFlight int `yaml:"max_in_flight"`
	// PasswordChangePath is where POST /auth/password-change/ is relayed
	// (django-easyjwt: {email, password, new_password}).
	PasswordChangePath string `yaml:"password_change_path"`
	// PasswordResetURL is where GET /auth/password-reset/ redirects (302);
	// empty: 404.
	PasswordResetURL string `yaml:"password_reset_url"`
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
	// edge), recorded in the mirror database's revoked_tokens table; off,
	// they are only evicted from the verify caches. Default true.
	RevokeOnLogout bool `yaml:"revoke_on_logout"`
	// Introspection is the provider's RFC 7662 endpoint verify: introspect
	// asks about every new token.
	Introspection AuthIntrospection `yaml:"introspection"`
	// ProxyHeader names a header a trusted proxy (oauth2-proxy, say) puts
	// the caller's bare access token in (X-Forwarded-Access-Token). It is
	// read only from trusted_proxies and only when the request carries no
	// header_name token; from anyone else it is removed in every spelling.
	// Empty: off.
	ProxyHeader string     `yaml:"proxy_header"`
	Cache       AuthCache  `yaml:"cache"`
	Local       LocalVerif `yaml:"local"`
}

// AuthIntrospection is how verify: introspect reaches the provider.
type AuthIntrospection struct {
	// URL is the introspection endpoint; empty: the one auth.local.discovery_url names.
	URL      string `yaml:"url"`
	ClientID string `yaml:"client_id"`
	// ClientSecret is "env:NAME".
	ClientSecret string `yaml:"client_secret"`
}

// AuthCache sizes the verify cache and bounds how long verdicts live.
type AuthCache struct {
	Size        int           `yaml:"size"`
	TTL         time.Duration `yaml:"ttl"`
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// StaleGrace lets a positive verdict outlive TTL by at most this long
	// while the auth service is unreachable (never past the token's exp).
	StaleGrace time.Duration `yaml:"stale_grace"`
	// RedisURL turns on the shared verdict cache: a second level behind the
	// in-process one, shared by the replicas (redis://host:port/db or
	// rediss://). Empty: off.
	RedisURL string `yaml:"redis_url"`
	// RedisSecret is "env:NAME": the replicas' shared secret that
	// authenticates the verdicts they store in Redis (HMAC). Required with
	// RedisURL.
	RedisSecret string `yaml:"redis_secret"`
	// RedisTimeout bounds every Redis command; a slower Redis is treated
	// as down (the gateway asks the auth service instead).
	RedisTimeout time.Duration `yaml:"redis_timeout"`
	// RedisPrefix starts every key the gateway writes to Redis.
	RedisPrefix string `yaml:"redis_prefix"`
}

// RedisSecretMinBytes is the shortest auth.cache.redis_secret accepted.
const RedisSecretMinBytes = 32

// LocalVerif configures in-process signature verification (verify: local or hybrid).
type LocalVerif struct {
	// DiscoveryURL is an OpenID provider's /.well-known/openid-configuration:
	// it sets jwks_url and issuer (and the userinfo endpoint) from the
	// document, fetched at start. jwks_url and keys must then be empty;
	// issuer, when set, must match the document's.
	DiscoveryURL string        `yaml:"discovery_url"`
	JWKSURL      string        `yaml:"jwks_url"`
	Keys         []string      `yaml:"keys"`
	Algorithms   []string      `yaml:"algorithms"`
	Issuer       string        `yaml:"issuer"`
	Audience     string        `yaml:"audience"`
	Leeway       time.Duration `yaml:"leeway"`
	// JWKSRefreshInterval is how often every JWKS, and every discovery
	// document (auth.local's, the issuers', oidc's), is fetched again.
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
	// DiscoveryURL sets this issuer's jwks_url (and issuer, when empty)
	// from the provider's discovery document, as auth.local.discovery_url.
	DiscoveryURL string   `yaml:"discovery_url"`
	Issuer       string   `yaml:"issuer"`
	JWKSURL      string   `yaml:"jwks_url"`
	Keys         []string `yaml:"keys"`
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

// Users configures where mirrored users come from and the mirror's cache
// and freshness.
type Users struct {
	RefreshAfter time.Duration `yaml:"refresh_after"`
	CacheSize    int           `yaml:"cache_size"`
	// Source is where a user's record comes from: UsersFromAuthService
	// (auth_service.user_path, the default), UsersFromClaims (the verified
	// token's claims) or UsersFromUserinfo (the provider's userinfo
	// endpoint, with the caller's token).
	Source string `yaml:"source"`
	// Claims maps mirrored fields (id, email, username, first_name,
	// last_name) to the claims they come from; unset fields keep the
	// OIDC defaults (DefaultUserClaims).
	Claims map[string]string `yaml:"claims"`
	// IsStaff and IsSuperuser are expr-lang expressions over claims that
	// set the flags; empty: false.
	IsStaff     string `yaml:"is_staff"`
	IsSuperuser string `yaml:"is_superuser"`
	// Fields are extra mirrored fields, each an expr-lang expression over
	// claims (services: 'claims.resource_access?.["my-api"]?.roles ?? []').
	Fields map[string]string `yaml:"fields"`
}

// Values of users.source.
const (
	UsersFromAuthService = "auth_service"
	UsersFromClaims      = "claims"
	UsersFromUserinfo    = "userinfo"
)

// DefaultUserClaims is users.claims for the fields it does not name: the
// OpenID Connect standard claims.
var DefaultUserClaims = map[string]string{
	"id": "sub", "email": "email", "username": "preferred_username",
	"first_name": "given_name", "last_name": "family_name",
}

// Introspection configures POST /auth/introspect/ (RFC 7662): who may ask.
type Introspection struct {
	// Clients authenticate with HTTP Basic (id and secret).
	Clients []IntrospectionClient `yaml:"clients"`
	// TrustedNetworks are CIDRs (or addresses) whose callers need no
	// client credentials.
	TrustedNetworks []string `yaml:"trusted_networks"`
}

// IntrospectionClient is one entry of introspection.clients.
type IntrospectionClient struct {
	ID string `yaml:"id"`
	// Secret is "env:NAME": the secret is read from that environment
	// variable, so it stays out of settings.yaml.
	Secret string `yaml:"secret"`
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
	// RateLimit limits the route's requests per user and per client.
	RateLimit RouteRateLimit `yaml:"rate_limit"`
}

// RouteIdentity lists mirrored user fields a route sends upstream as
// <prefix><Field-Name> headers (services -> X-User-Services), lists and
// maps JSON-encoded, and puts in the identity token.
type RouteIdentity struct {
	Fields []string `yaml:"fields"`
}

// DefaultMaxInFlight is auth_service.max_in_flight when it is not set.
const DefaultMaxInFlight = 32

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
	// VerifyIntrospect asks the provider's introspection endpoint (RFC
	// 7662) about every new token, opaque or JWT (cached like remote).
	VerifyIntrospect = "introspect"
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
			URL:                "http://127.0.0.1:8000",
			TokenPath:          "/auth/token/",
			RefreshPath:        "/auth/token/refresh/",
			VerifyPath:         "/auth/token/verify/",
			BlacklistPath:      "/auth/token/blacklist/",
			UserPath:           "/auth/users/{user_id}/",
			Timeout:            5 * time.Second,
			MaxBodyBytes:       64 << 10,
			BodyTimeout:        10 * time.Second,
			Circuit:            Circuit{Failures: 5, CoolDown: 10 * time.Second},
			MaxInFlight:        DefaultMaxInFlight,
			PasswordChangePath: "/auth/password-change/",
		},
		Auth: Auth{
			HeaderName:     "Authorization",
			HeaderTypes:    []string{"Bearer"},
			UserIDClaim:    "user_id",
			Verify:         VerifyRemote,
			RevokeOnLogout: true,
			Cache:          AuthCache{Size: 100000, TTL: 30 * time.Second, NegativeTTL: 5 * time.Second, RedisTimeout: 50 * time.Millisecond, RedisPrefix: "jwtgate:v1:"},
			Local: LocalVerif{
				Algorithms:          []string{"RS256"},
				JWKSRefreshInterval: 5 * time.Minute,
				JWKSRefetchInterval: 30 * time.Second,
			},
		},
		Database:        Database{Driver: "sqlite", DSN: "jwtgate.db"},
		Users:           Users{RefreshAfter: 10 * time.Minute, CacheSize: 10000, Source: UsersFromAuthService, Claims: maps.Clone(DefaultUserClaims), Fields: map[string]string{}},
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
		Browser:     DefaultBrowser(),
		OIDC:        DefaultOIDC(),
	}
}
