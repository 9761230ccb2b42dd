package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"jwtgate/handlers"
	"jwtgate/handlers/authn"
	"jwtgate/models"
	"jwtgate/remote"
)

// runCheck reports everything wrong at once: settings, database, auth
// service. It prints problems and warnings and fails only on problems.
func runCheck(ctx context.Context, e *env, _ *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("check takes no arguments, got %q", args)
	}
	out := e.stdout
	problems, warnings := 0, 0
	problem := func(format string, a ...any) {
		problems++
		fmt.Fprintf(out, "  problem: "+format+"\n", a...)
	}

	source, data, err := e.settingsSource()
	fmt.Fprintf(out, "settings %s:\n", source)
	if err != nil {
		problem("%v", err)
		fmt.Fprintf(out, "1 problem.\n")
		return ErrFailed
	}
	s, probs := models.ParseAndValidate(data, e.getenv)
	for _, p := range probs {
		first, rest, _ := strings.Cut(p.String(), "\n")
		problem("%s", first)
		for line := range strings.SplitSeq(rest, "\n") {
			if line != "" { // an allow expression's caret display
				fmt.Fprintf(out, "          %s\n", line)
			}
		}
	}
	for _, w := range s.Warnings() {
		warnings++
		fmt.Fprintf(out, "  warning: %s\n", w)
	}
	if len(probs) == 0 && warnings == 0 {
		fmt.Fprintln(out, "  ok")
	}
	if s.Listen == "" { // a syntax error: nothing decoded to probe with
		fmt.Fprintf(out, "%s.\n", tally(problems, warnings))
		return ErrFailed
	}

	if s.Auth.Verify == models.VerifyLocal || s.Auth.Verify == models.VerifyHybrid {
		// Every discovery document, key files, secrets in the environment
		// and every JWKS, as serve loads them.
		var local *authn.Local
		rs, _, err := authn.ResolveDiscovery(ctx, s, &http.Client{Timeout: s.AuthService.Timeout})
		if err == nil {
			local, err = authn.NewLocal(ctx, authn.LocalConfigFrom(rs), e.getenv, slog.New(slog.DiscardHandler), time.Now)
		}
		if err == nil {
			err = local.Ready()
			local.Close()
		}
		if err != nil {
			fmt.Fprintf(out, "auth.local keys (verify: %s):\n", s.Auth.Verify)
			problem("%v (check auth.local.discovery_url, auth.local.keys, auth.local.jwks_url and the secrets' environment variables)", err)
		} else {
			fmt.Fprintf(out, "auth.local keys (verify: %s): ok\n", s.Auth.Verify)
		}
	}

	if s.Auth.Verify == models.VerifyIntrospect && s.Auth.Local.DiscoveryURL != "" {
		// The introspection endpoint comes from the discovery document.
		if _, _, err := authn.ResolveDiscovery(ctx, s, &http.Client{Timeout: s.AuthService.Timeout}); err != nil {
			fmt.Fprintf(out, "auth.local.discovery_url (verify: introspect):\n")
			problem("%v", err)
		} else {
			fmt.Fprintf(out, "auth.local.discovery_url (verify: introspect): ok\n")
		}
	}

	if s.OIDC.Enabled() && blamed(probs, "oidc.discovery_url", "oidc.client_secret") == "" {
		fmt.Fprintf(out, "oidc.discovery_url (browser login):\n")
		if err := handlers.CheckOIDC(ctx, s, e.getenv); err != nil {
			problem("%v", err)
		} else {
			fmt.Fprintln(out, "  ok")
		}
	}

	if it := s.IdentityToken; it.Enabled && it.KeyFile != "" {
		fmt.Fprintf(out, "identity_token.key_file (%s):\n", it.KeyFile)
		switch st, err := handlers.CheckIdentityKey(it); {
		case err != nil:
			problem("%v", err)
		case st == handlers.IdentityKeyToGenerate:
			fmt.Fprintf(out, "  ok (absent: serve generates a %s key there on first start)\n", it.Algorithm)
		case st == handlers.IdentityKeyLooseMode:
			warnings++
			fmt.Fprintf(out, "  warning: the private key is readable by others; chmod 600 %s\n", it.KeyFile)
		default:
			fmt.Fprintln(out, "  ok")
		}
		switch prev, err := handlers.CheckRetiredKey(it); {
		case err != nil:
			problem("previous key unreadable: %v (jwtgate keys rotate --force rewrites it)", err)
		case !prev.Present:
			fmt.Fprintln(out, "  previous key: none")
		case prev.Published(time.Now()):
			fmt.Fprintf(out, "  previous key: %s, published until %s\n", prev.Kid, prev.Until.UTC().Format(time.RFC3339))
		default:
			fmt.Fprintf(out, "  previous key: %s, expired %s (no longer published)\n", prev.Kid, prev.Until.UTC().Format(time.RFC3339))
		}
	}

	fmt.Fprintf(out, "database (%s %s):\n", s.Database.Driver, redactDSN(s.Database.DSN))
	if key := blamed(probs, "database.driver", "database.dsn", "database"); key != "" {
		fmt.Fprintf(out, "  skipped: fix %s first\n", key) // one problem, reported once
	} else {
		checkDatabase(ctx, s, out, problem)
	}

	fmt.Fprintf(out, "auth service (%s):\n", s.AuthService.URL)
	if key := blamed(probs, "auth_service.url", "auth_service"); key != "" {
		fmt.Fprintf(out, "  skipped: fix %s first\n", key)
	} else {
		checkAuthService(ctx, s, out, problem)
	}

	if c := s.Auth.Cache; c.RedisURL != "" {
		fmt.Fprintf(out, "shared cache (%s):\n", redactURL(c.RedisURL))
		if key := blamed(probs, "auth.cache.redis_url", "auth.cache.redis_secret", "auth.cache.redis_timeout", "auth.cache.redis_prefix"); key != "" {
			fmt.Fprintf(out, "  skipped: fix %s first\n", key)
		} else {
			checkRedis(ctx, c, e.getenv, out, problem)
		}
	}

	fmt.Fprintf(out, "%s.\n", tally(problems, warnings))
	if problems > 0 {
		return ErrFailed
	}
	return nil
}

// blamed returns the first of keys that a settings problem is about (the
// key itself or an item of it, key[i]), or "". A probe that such a key
// makes pointless is skipped rather than reported as a second problem.
func blamed(probs []models.Problem, keys ...string) string {
	for _, p := range probs {
		for _, k := range keys {
			if p.Key == k || strings.HasPrefix(p.Key, k+"[") {
				return k
			}
		}
	}
	return ""
}

// checkDatabase reports on the user mirror without changing it.
func checkDatabase(ctx context.Context, s models.Settings, out io.Writer, problem func(string, ...any)) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	n, err := models.InspectStore(dctx, s.Database)
	cancel()
	switch {
	case errors.Is(err, models.ErrNoDatabase):
		fmt.Fprintln(out, "  ok: the file does not exist yet (serve creates it; check creates nothing)")
	case err != nil:
		problem("cannot open it: %v (check database.driver and database.dsn, or $%s)", err, models.EnvDatabaseDSN)
	default:
		fmt.Fprintf(out, "  ok (%d mirrored users)\n", n)
	}
}

// checkAuthService asks the auth service's verify endpoint.
func checkAuthService(ctx context.Context, s models.Settings, out io.Writer, problem func(string, ...any)) {
	rc, err := remote.New(s.AuthService, remote.Options{})
	if err == nil {
		err = rc.Probe(ctx)
	}
	if err != nil {
		problem("not answering: %v (is auth_service.url right and the service running? verify_path must exist)", err)
	} else {
		fmt.Fprintln(out, "  ok")
	}
}

func tally(problems, warnings int) string {
	plural := func(n int, word string) string {
		if n == 1 {
			return "1 " + word
		}
		return fmt.Sprintf("%d %ss", n, word)
	}
	return plural(problems, "problem") + ", " + plural(warnings, "warning")
}

// redactDSN hides a password in a PostgreSQL DSN, URL or key=value form.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.IndexByte(rest, '@'); at >= 0 {
			if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
				return dsn[:i+3] + rest[:colon] + ":***" + rest[at:]
			}
		}
		return dsn
	}
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if strings.HasPrefix(f, "password=") {
			fields[i] = "password=***"
		}
	}
	return strings.Join(fields, " ")
}

// checkRedis pings the shared cache's Redis and checks its secret.
func checkRedis(ctx context.Context, c models.AuthCache, getenv func(string) string, out io.Writer, problem func(string, ...any)) {
	name := strings.TrimPrefix(c.RedisSecret, models.KeyEnvPrefix)
	if n := len(getenv(name)); n < models.RedisSecretMinBytes {
		problem("auth.cache.redis_secret: environment variable %s must hold at least %d bytes, got %d", name, models.RedisSecretMinBytes, n)
	}
	sc, err := remote.NewSharedCache(c, nil, nil)
	if err != nil {
		problem("%v", err)
		return
	}
	defer sc.Close()
	if err := sc.Ping(ctx); err != nil {
		// serve still starts and calls home instead: a problem all the
		// same, the replicas would not share their verdicts.
		problem("%v (auth.cache.redis_url; serve would start and call home for every token this replica has not seen)", err)
		return
	}
	fmt.Fprintln(out, "  ok")
}

// redactURL hides a URL's password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
