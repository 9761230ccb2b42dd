package models_test

import (
	"strings"
	"testing"

	"jwtgate/models"
)

// settingsProblemRow is one bad settings.yaml and the one problem it must
// give: the key, the line (0: validation problems carry none) and how the
// message starts.
type settingsProblemRow struct {
	name, yaml string
	key        string
	line       int
	msg        string // prefix of Problem.Msg
}

// settingsProblemRows checks that each row's YAML gives exactly its one
// problem, and that LoadSettings reports it as "settings: KEY: msg" or
// "settings: KEY (line N): msg".
func settingsProblemRows(t *testing.T, rows []settingsProblemRow) {
	t.Helper()
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := models.ParseAndValidate([]byte(tt.yaml), func(string) string { return "" })
			if len(probs) != 1 {
				t.Fatalf("%d problems, want exactly 1 (%s):\n%v", len(probs), tt.key, models.Problems(probs))
			}
			p := probs[0]
			if p.Key != tt.key || p.Line != tt.line || !strings.HasPrefix(p.Msg, tt.msg) {
				t.Fatalf("problem %#v, want key %q line %d message starting %q", p, tt.key, tt.line, tt.msg)
			}
			_, err := models.LoadSettings(strings.NewReader(tt.yaml), func(string) string { return "" })
			want := "settings: " + p.String()
			if err == nil || err.Error() != want {
				t.Fatalf("LoadSettings error %q, want %q", err, want)
			}
		})
	}
}

func TestSettingsProblemsServer(t *testing.T) {
	settingsProblemRows(t, []settingsProblemRow{
		{"empty listen", `listen: ""`, "listen", 0, `must not be empty (e.g. "127.0.0.1:8001")`},
		{"zero shutdown", "shutdown_timeout: 0s", "shutdown_timeout", 0, "must be a positive duration, got 0s"},
		{"negative readiness", "readiness_interval: -1s", "readiness_interval", 0, "must be a positive duration, got -1s"},
		{"metrics without port", "metrics_listen: 127.0.0.1", "metrics_listen", 0, `must be host:port (e.g. "127.0.0.1:9090"), got "127.0.0.1"`},
		{"metrics on listen", "listen: 127.0.0.1:8001\nmetrics_listen: 127.0.0.1:8001", "metrics_listen", 0, "must differ from listen"},
		{"empty database dsn", "database: {dsn: ''}", "database.dsn", 0, "must not be empty"},
		{"database driver in capitals", "database: {driver: SQLite}", "database.driver", 0, `must be sqlite or postgres, got "SQLite"`},
		{"zero users cache", "users: {cache_size: 0}", "users.cache_size", 0, "must be positive, got 0"},
		{"zero refresh_after", "users: {refresh_after: 0s}", "users.refresh_after", 0, "must be a positive duration, got 0s"},
		{"forward_auth envoy", "forward_auth: {headers: envoy}", "forward_auth.headers", 0, `must be auto, nginx or traefik, got "envoy"`},
		{"log level", "log: {level: verbose}", "log.level", 0, `must be debug, info, warn or error, got "verbose"`},
		{"log format", "log: {format: xml}", "log.format", 0, `must be text or json, got "xml"`},
	})
}

func TestSettingsProblemsAuth(t *testing.T) {
	settingsProblemRows(t, []settingsProblemRow{
		{"auth service url without scheme", "auth_service: {url: 'localhost:8000'}", "auth_service.url", 0, `must be an http:// or https:// URL with a host, got "localhost:8000"`},
		{"auth service url ftp", "auth_service: {url: 'ftp://h'}", "auth_service.url", 0, "must be an http:// or https:// URL"},
		{"auth service url empty", "auth_service: {url: ''}", "auth_service.url", 0, "must not be empty"},
		{"relative token path", "auth_service: {token_path: 'auth/token/'}", "auth_service.token_path", 0, `must be a path starting with /, got "auth/token/"`},
		{"empty user path", "auth_service: {user_path: ''}", "auth_service.user_path", 0, `must be a path starting with /, got ""`},
		{"zero timeout", "auth_service: {timeout: 0s}", "auth_service.timeout", 0, "must be a positive duration, got 0s"},
		{"zero max body", "auth_service: {max_body_bytes: 0}", "auth_service.max_body_bytes", 0, "must be positive, got 0"},
		{"negative body timeout", "auth_service: {body_timeout: -1s}", "auth_service.body_timeout", 0, "must not be negative (0 turns it off), got -1s"},
		{"negative failures", "auth_service: {circuit: {failures: -1}}", "auth_service.circuit.failures", 0, "must not be negative"},
		{"zero cool down", "auth_service: {circuit: {failures: 3, cool_down: 0s}}", "auth_service.circuit.cool_down", 0, "must be a positive duration, got 0s"},
		{"empty header", "auth: {header_name: ''}", "auth.header_name", 0, "must not be empty"},
		{"empty user id claim", "auth: {user_id_claim: ''}", "auth.user_id_claim", 0, "must not be empty"},
		{"verify capitalised", "auth: {verify: Remote}", "auth.verify", 0, `must be remote, local, hybrid or introspect, got "Remote"`},
		{"zero cache", "auth: {cache: {size: 0}}", "auth.cache.size", 0, "must be positive, got 0"},
		{"zero ttl", "auth: {cache: {ttl: 0s}}", "auth.cache.ttl", 0, "must be a positive duration, got 0s"},
		{"negative negative ttl", "auth: {cache: {negative_ttl: -1s}}", "auth.cache.negative_ttl", 0, "must not be negative, got -1s"},
		{"negative stale grace", "auth: {cache: {stale_grace: -1s}}", "auth.cache.stale_grace", 0, "must not be negative (0 turns it off)"},
		{"redis url http", "auth: {cache: {redis_url: 'http://127.0.0.1:6379', redis_secret: 'env:S'}}", "auth.cache.redis_url", 0, `must start with redis:// or rediss://, got scheme "http"`},
		{"redis url no host", "auth: {cache: {redis_url: 'redis:///0', redis_secret: 'env:S'}}", "auth.cache.redis_url", 0, "must name a host"},
		{"redis url bad db", "auth: {cache: {redis_url: 'redis://127.0.0.1:6379/zero', redis_secret: 'env:S'}}", "auth.cache.redis_url", 0, `path must be a database number, got "/zero"`},
		{"redis url bad port", "auth: {cache: {redis_url: 'redis://127.0.0.1:99999/0', redis_secret: 'env:S'}}", "auth.cache.redis_url", 0, `has a bad port "99999"`},
		{"redis url query", "auth: {cache: {redis_url: 'redis://127.0.0.1:6379/0?dial_timeout=9s', redis_secret: 'env:S'}}", "auth.cache.redis_url", 0, "must not have a query"},
		{"redis without secret", "auth: {cache: {redis_url: 'redis://127.0.0.1:6379/0'}}", "auth.cache.redis_secret", 0, "must be env:NAME when auth.cache.redis_url is set"},
		{"redis inline secret", "auth: {cache: {redis_url: 'redis://127.0.0.1:6379/0', redis_secret: 'hunter2hunter2'}}", "auth.cache.redis_secret", 0, "must be env:NAME"},
		{"zero redis timeout", "auth: {cache: {redis_timeout: 0s}}", "auth.cache.redis_timeout", 0, "must be a positive duration, got 0s"},
		{"redis prefix with space", "auth: {cache: {redis_prefix: 'jwt gate:'}}", "auth.cache.redis_prefix", 0, "must be non-empty, without spaces or control characters"},
	})
}

func TestSettingsProblemsLocal(t *testing.T) {
	settingsProblemRows(t, []settingsProblemRow{
		{"negative leeway", "auth: {local: {leeway: -1s}}", "auth.local.leeway", 0, "must not be negative, got -1s"},
		{"no algorithms", "auth: {local: {algorithms: []}}", "auth.local.algorithms", 0, "must list at least one algorithm"},
		{"alg none", "auth: {local: {algorithms: [RS256, none]}}", "auth.local.algorithms[1]", 0, `"none" is not one of HS256`},
		{"alg lower case", "auth: {local: {algorithms: [rs256]}}", "auth.local.algorithms[0]", 0, `"rs256" is not one of`},
		{"zero refresh", "auth: {local: {jwks_refresh_interval: 0s}}", "auth.local.jwks_refresh_interval", 0, "must be a positive duration"},
		{"zero refetch", "auth: {local: {jwks_refetch_interval: 0s}}", "auth.local.jwks_refetch_interval", 0, "must be a positive duration"},
		{"local without keys", "auth: {verify: local}", "auth.local", 0, "verify: local needs auth.local.jwks_url, auth.local.keys or auth.local.issuers"},
		{"hybrid without keys", "auth: {verify: hybrid}", "auth.local", 0, "verify: hybrid needs"},
		{"jwks url and keys", "auth: {local: {jwks_url: 'http://127.0.0.1:1/j', keys: [k.pem]}}", "auth.local.keys", 0, "set either auth.local.jwks_url or auth.local.keys, not both"},
		{"bad jwks url", "auth: {local: {jwks_url: 'file:///etc/jwks'}}", "auth.local.jwks_url", 0, "must be an http:// or https:// URL"},
		{"empty key", "auth: {local: {keys: ['  ']}}", "auth.local.keys[0]", 0, "must not be empty: a PEM file or env:VAR_NAME"},
		{"env name with digit first", "auth: {local: {keys: ['env:1SECRET']}}", "auth.local.keys[0]", 0, `"env:1SECRET" must name an environment variable`},
		{"env name with dash", "auth: {local: {keys: ['env:JWT-SECRET']}}", "auth.local.keys[0]", 0, `"env:JWT-SECRET" must name`},
		{"inline PEM", "auth: {local: {keys: [a.pem, '-----BEGIN PUBLIC KEY-----']}}", "auth.local.keys[1]", 0, "must be a PEM file name, not the PEM itself"},
		{"issuer beside issuers", "auth: {local: {issuer: a, issuers: [{issuer: b, keys: [k.pem]}]}}", "auth.local.issuer", 0, "must be empty when auth.local.issuers is set"},
		{"empty issuer", "auth: {local: {issuers: [{issuer: '', keys: [k.pem]}]}}", "auth.local.issuers[0].issuer", 0, "must not be empty"},
		{"duplicate issuer", "auth: {local: {issuers: [{issuer: a, keys: [k.pem], user_endpoint: true}, {issuer: a, keys: [k.pem]}]}}", "auth.local.issuers[1].issuer", 0, `"a" is also auth.local.issuers[0].issuer`},
		{"issuer with neither", "auth: {local: {issuers: [{issuer: a}]}}", "auth.local.issuers[0]", 0, "needs either jwks_url or keys (exactly one)"},
		{"issuer with both", "auth: {local: {issuers: [{issuer: a, keys: [k.pem], jwks_url: 'http://127.0.0.1:1/j'}]}}", "auth.local.issuers[0]", 0, "needs either jwks_url or keys"},
		{"only issuer not user endpoint", "auth: {local: {issuers: [{issuer: a, keys: [k.pem], user_endpoint: false}]}}", "auth.local.issuers[0].user_endpoint", 0, "must be true (or unset) for the only issuer"},
		{"no user endpoint among two", "auth: {local: {issuers: [{issuer: a, keys: [k.pem]}, {issuer: b, keys: [k.pem]}]}}", "auth.local.issuers", 0, "with several issuers, exactly one must set user_endpoint: true"},
		{"two user endpoints", "auth: {local: {issuers: [{issuer: a, keys: [k.pem], user_endpoint: true}, {issuer: b, keys: [k.pem], user_endpoint: true}]}}", "auth.local.issuers[1].user_endpoint", 0, "only one issuer may set user_endpoint: true (auth.local.issuers[0] does)"},
	})
}

func TestSettingsProblemsThrottle(t *testing.T) {
	settingsProblemRows(t, []settingsProblemRow{
		{"unknown unit", "throttle: {failures_per_account: 10/fortnight}", "throttle.failures_per_account", 0, `unknown unit "fortnight"`},
		{"count in words", "throttle: {failures_per_client: ten/15m}", "throttle.failures_per_client", 0, "want N/second, N/minute"},
		{"leading zero", "throttle: {failures_per_client: 010/15m}", "throttle.failures_per_client", 0, "want N/second"},
		{"zero count", "throttle: {calls_home_per_client: 0/second}", "throttle.calls_home_per_client", 0, "want N/second"},
		{"no unit", "throttle: {calls_home_per_client: '20'}", "throttle.calls_home_per_client", 0, "want N/second"},
		{"count too large", "throttle: {login_rate: 1000001/day}", "throttle.login_rate", 0, "want N/second"},
		{"zero duration", "throttle: {login_rate: 10/0s}", "throttle.login_rate", 0, `unknown unit "0s"`},
		{"Off capitalised", "throttle: {login_rate: 'Off'}", "throttle.login_rate", 0, "want N/second"},
		{"finer than a nanosecond", "throttle: {login_rate: 1001/1us}", "throttle.login_rate", 0, `"1001/1us" is more than one event per nanosecond`},
		{"zero burst", "throttle: {login_burst: 0}", "throttle.login_burst", 0, "must be positive, got 0"},
		{"zero cache", "throttle: {cache_size: 0}", "throttle.cache_size", 0, "must be positive, got 0"},
		{"zero accounts", "throttle: {accounts_size: 0}", "throttle.accounts_size", 0, "must be positive, got 0"},
		{"login field with space", "throttle: {login_field: ' email'}", "throttle.login_field", 0, `must be a body field name without surrounding spaces, got " email"`},
	})
}

func TestSettingsProblemsIdentity(t *testing.T) {
	settingsProblemRows(t, []settingsProblemRow{
		{"empty prefix", "identity_headers: {prefix: ''}", "identity_headers.prefix", 0, "must not be empty"},
		{"prefix with space", "identity_headers: {prefix: 'X User-'}", "identity_headers.prefix", 0, `must be letters, digits and '-' (a header name prefix), got "X User-"`},
		{"prefix with colon", "identity_headers: {prefix: 'X-User:'}", "identity_headers.prefix", 0, "must be letters, digits and '-'"},
		{"prefix length 33", "trusted_proxies: [127.0.0.1, 10.0.0.0/33]", "trusted_proxies[1]", 0, `want a CIDR such as "10.0.0.0/8" or an address, got "10.0.0.0/33"`},
		{"host name", "trusted_proxies: [proxy.internal]", "trusted_proxies[0]", 0, "want a CIDR"},
		{"empty entry", "trusted_proxies: ['']", "trusted_proxies[0]", 0, "want a CIDR"},
		{"hmac identity token", "identity_token: {enabled: true, algorithm: HS256}", "identity_token.algorithm", 0, `must be ES256 or RS256, got "HS256"`},
		{"lower-case alg", "identity_token: {enabled: true, algorithm: es256}", "identity_token.algorithm", 0, "must be ES256 or RS256"},
		{"no key file", "identity_token: {enabled: true, key_file: ''}", "identity_token.key_file", 0, "must not be empty when identity_token.enabled"},
		{"zero lifetime", "identity_token: {enabled: true, lifetime: 0s}", "identity_token.lifetime", 0, "must be a positive duration"},
	})
}

// settingsRoute is a valid route entry, with extra keys after it.
func settingsRoute(path, extra string) string {
	return "  - path: " + path + "\n    upstream: http://127.0.0.1:9\n" + extra
}

func TestSettingsProblemsRoutes(t *testing.T) {
	settingsProblemRows(t, []settingsProblemRow{
		{"same explicit name", "routes:\n" + settingsRoute("/a/", "    name: x\n") + settingsRoute("/b/", "    name: x\n"),
			"routes[1].name", 0, `"x" is also the name of routes[0] (names are the identity token's aud)`},
		{"explicit name equals a defaulted one", "routes:\n" + settingsRoute("/a/", "") + settingsRoute("/b/", "    name: a\n"),
			"routes[1].name", 0, `"a" is also the name of routes[0]`},
		{"two roots", "routes:\n" + settingsRoute("/", "") + settingsRoute("/b/", "    name: root\n"),
			"routes[1].name", 0, `"root" is also the name of routes[0]`},
		{"path without slash", "routes:\n" + settingsRoute("api/", ""), "routes[0].path", 0, `must start with /, got "api/"`},
		{"path with dot segment", "routes:\n" + settingsRoute("/api/../admin/", ""), "routes[0].path", 0, `"/api/../admin/" never matches: request paths are cleaned before matching; write "/admin/"`},
		{"path with double slash", "routes:\n" + settingsRoute("/api//x/", ""), "routes[0].path", 0, `"/api//x/" never matches`},
		{"same path twice", "routes:\n" + settingsRoute("/a/", "") + settingsRoute("/a/", "    name: a2\n"), "routes[1].path", 0, `"/a/" is also routes[0].path`},
		{"with and without slash", "routes:\n" + settingsRoute("/a", "") + settingsRoute("/a/", "    name: a2\n"),
			"routes[1].path", 0, `"/a/" and routes[0].path "/a" cover the same requests, so one shadows the other: keep one`},
		{"no upstream", "routes:\n  - path: /a/\n", "routes[0].upstream", 0, "must not be empty"},
		{"upstream without host", "routes:\n  - path: /a/\n    upstream: 'http://'\n", "routes[0].upstream", 0, "must be an http:// or https:// URL with a host"},
		{"auth capitalised", "routes:\n" + settingsRoute("/a/", "    auth: Required\n"), "routes[0].auth", 0, `must be required, optional or none, got "Required"`},
		{"negative timeout", "routes:\n" + settingsRoute("/a/", "    timeout: -1s\n"), "routes[0].timeout", 0, "must not be negative, got -1s"},
		{"negative body timeout", "routes:\n" + settingsRoute("/a/", "    body_timeout: -1s\n"), "routes[0].body_timeout", 0, "must not be negative (0 turns it off)"},
		{"allow without auth", "routes:\n" + settingsRoute("/a/", "    auth: none\n    allow: user.is_staff\n"), "routes[0].allow", 0, "has no user to check on a route with auth: none"},
		{"allow does not compile", "routes:\n" + settingsRoute("/a/", "    allow: 'user.is_staff &&'\n"), "routes[0].allow", 0, `route "a": allow expression "user.is_staff &&" does not compile: `},
		{"empty field", "routes:\n" + settingsRoute("/a/", "    identity_headers: {fields: ['--']}\n"), "routes[0].identity_headers.fields[0]", 0, `must be a field name of letters, digits and '_', got "--"`},
		{"standard field in capitals", "routes:\n" + settingsRoute("/a/", "    identity_headers: {fields: [Email]}\n"), "routes[0].identity_headers.fields[0]", 0, `"Email" is reserved: id, email`},
		{"standard field with dash", "routes:\n" + settingsRoute("/a/", "    identity_headers: {fields: [tenant, is-staff]}\n"), "routes[0].identity_headers.fields[1]", 0, `"is-staff" is reserved: id, email`},
		{"token claim", "routes:\n" + settingsRoute("/a/", "    identity_headers: {fields: [aud]}\n"), "routes[0].identity_headers.fields[0]", 0, `"aud" is reserved: it would overwrite the identity token's own claim`},
		{"listed twice as - and _", "routes:\n" + settingsRoute("/a/", "    identity_headers: {fields: [tenant_id, Tenant-Id]}\n"), "routes[0].identity_headers.fields[1]", 0, `"Tenant-Id" is listed twice`},
	})
}

// Decoding problems carry the line of settings.yaml they are on (and, as
// before, a flow list on its key's line is named by its first item).
func TestSettingsProblemsDecode(t *testing.T) {
	settingsProblemRows(t, []settingsProblemRow{
		{"unknown key", "auth_service:\n  url: http://127.0.0.1:8000\n  timout: 5s\n", "auth_service.timout", 3, `unknown key "timout": did you mean timeout?`},
		{"unknown key in a route", "routes:\n  - path: /a/\n    upstream: http://127.0.0.1:9\n    Methods: [GET]\n", "routes[0].Methods[0]", 4, `unknown key "Methods": did you mean methods?`},
		{"duration in words", "auth:\n  cache:\n    ttl: 5 sec\n", "auth.cache.ttl", 3, "cannot unmarshal !!str `5 sec` into time.Duration (want a Go duration"},
		{"list for a string", "auth_service:\n  url: [1]\n", "auth_service.url[0]", 2, "cannot unmarshal !!seq into string"},
		{"syntax error", "auth:\n  verify: remote\n    cache: {}\n", "", 3, "YAML syntax error: mapping values are not allowed in this context"},
		{"tab indent", "auth:\n\tverify: remote\n", "", 2, "YAML syntax error: found character that cannot start any token"},
	})
}

// Problem.String is what check prints and serve joins: key and line when
// known.
func TestSettingsProblemString(t *testing.T) {
	for _, tt := range []struct {
		p    models.Problem
		want string
	}{
		{models.Problem{Key: "log.level", Msg: "bad"}, "log.level: bad"},
		{models.Problem{Key: "log.level", Line: 3, Msg: "bad"}, "log.level (line 3): bad"},
		{models.Problem{Line: 3, Msg: "YAML syntax error: x"}, "line 3: YAML syntax error: x"},
		{models.Problem{Msg: "YAML syntax error: x"}, "YAML syntax error: x"},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
	ps := models.Problems{{Key: "a", Msg: "x"}, {Key: "b", Line: 2, Msg: "y"}}
	if got, want := ps.Error(), "settings: a: x\nsettings: b (line 2): y"; got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
	if models.Problems(nil).Err() != nil {
		t.Error("no problems is a non-nil error")
	}
}

// TestSharedCacheWarning: the shared cache is ignored by verify: local
// and introspect, and check says so.
func TestSharedCacheWarning(t *testing.T) {
	for _, verify := range []string{models.VerifyRemote, models.VerifyHybrid, models.VerifyLocal, models.VerifyIntrospect} {
		s := models.DefaultSettings()
		s.Auth.Verify, s.Auth.Cache.RedisURL = verify, "redis://127.0.0.1:6379/0"
		warned := strings.Contains(strings.Join(s.Warnings(), "\n"), "auth.cache.redis_url is set but auth.verify is "+verify)
		if want := verify == models.VerifyLocal || verify == models.VerifyIntrospect; warned != want {
			t.Errorf("verify %s: warned %v, want %v", verify, warned, want)
		}
	}
}
