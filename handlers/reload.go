package handlers

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"jwtgate/models"
)

// Reload loads the settings again (load is the same loader serve started
// with) and, when they are valid, swaps the snapshot the gateway runs on:
// routes, rules, identity headers, the identity token, throttle limits,
// trusted proxies, forward-auth, local keys and issuers, and timeouts.
// Requests in flight finish on the snapshot they started with. The verify
// and user caches and the revocations survive; cached verdicts are
// dropped only when a verification setting changed (verifyChanged). Rate
// limit and login throttle counts survive while their limit is unchanged
// (attachRateLimits, newLoginGuard).
// Settings a running gateway cannot change (listen, database,
// metrics_listen, auth_service) are logged as needing a restart and kept.
//
// When the new settings are invalid, or the snapshot cannot be built (a
// key file that does not parse, or a new local verifier whose JWKS cannot
// be fetched or holds no usable key), nothing changes: every problem is
// logged, jwtgate_config_reloads_total{result="error"} counts it, and the
// error is returned. Reloads are serialised.
func (g *Gateway) Reload(ctx context.Context, load func() (models.Settings, error)) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	c := g.core
	refuse := func(err error) error {
		c.m.Reloaded(false)
		for _, p := range reloadProblems(err) {
			c.log.ErrorContext(ctx, "settings reload refused; the running settings stay", "problem", p)
		}
		return err
	}
	s, err := load()
	if err != nil {
		return refuse(err)
	}
	prev := g.snap.Load()
	s, kept := keepRestartOnly(prev.settings, s)
	for _, k := range kept {
		c.log.WarnContext(ctx, "settings reload: "+k+" changed; it needs a restart and stays as it was", "key", k)
	}
	cfg, probs := models.Compile(s)
	if len(probs) > 0 {
		return refuse(models.Problems(probs))
	}
	cfg, discovered, err := discover(ctx, cfg)
	if err != nil {
		return refuse(err)
	}
	snap, err := g.verification(ctx, cfg, discovered, prev)
	if err != nil {
		return refuse(err)
	}
	verifier, local := snap.verifiers(c.remote)
	drop := verifyChanged(prev.settings, s)
	snap.authn = g.Auth.Reconfigured(snap.auth, verifier, local, drop)
	if err := g.finish(snap, prev); err != nil {
		snap.closeNew(prev)
		return refuse(err)
	}
	g.snap.Store(snap)
	g.Local = snap.local
	if prev.local != nil && prev.local != snap.local {
		prev.local.Close() // its requests in flight keep verifying with the keys it has
	}
	c.m.Reloaded(true)
	c.log.InfoContext(ctx, "settings reloaded", "routes", len(s.Routes), "verdicts_dropped", drop)
	return nil
}

// keepRestartOnly returns next with the settings a running gateway cannot
// change put back to running's, and the keys that changed.
func keepRestartOnly(running, next models.Settings) (models.Settings, []string) {
	var kept []string
	if next.Listen != running.Listen {
		kept = append(kept, "listen")
		next.Listen = running.Listen
	}
	if next.MetricsListen != running.MetricsListen {
		kept = append(kept, "metrics_listen")
		next.MetricsListen = running.MetricsListen
	}
	if !reflect.DeepEqual(next.Database, running.Database) {
		kept = append(kept, "database")
		next.Database = running.Database
	}
	// Where users come from is wired into the shared user loader.
	if next.Users.Source != running.Users.Source {
		kept = append(kept, "users.source")
		next.Users.Source = running.Users.Source
	}
	// The auth service client (its breaker, connections and calls in
	// flight) is shared by every snapshot.
	if !reflect.DeepEqual(next.AuthService, running.AuthService) {
		kept = append(kept, "auth_service")
		next.AuthService = running.AuthService
	}
	// The browser login's provider client is built once, at start.
	if !reflect.DeepEqual(next.OIDC, running.OIDC) {
		kept = append(kept, "oidc")
		next.OIDC = running.OIDC
	}
	// The Redis client (its connections and circuit) is built once.
	if rc, nc := running.Auth.Cache, next.Auth.Cache; rc.RedisURL != nc.RedisURL || rc.RedisSecret != nc.RedisSecret ||
		rc.RedisTimeout != nc.RedisTimeout || rc.RedisPrefix != nc.RedisPrefix {
		kept = append(kept, "auth.cache.redis_*")
		next.Auth.Cache.RedisURL, next.Auth.Cache.RedisSecret = rc.RedisURL, rc.RedisSecret
		next.Auth.Cache.RedisTimeout, next.Auth.Cache.RedisPrefix = rc.RedisTimeout, rc.RedisPrefix
	}
	return next, kept
}

// verifyChanged reports whether a cached verdict could be wrong under next:
// the verify mode, the local verifier's keys, issuers and rules, or the
// claims a verdict is read from changed.
func verifyChanged(running, next models.Settings) bool {
	a, b := running.Auth, next.Auth
	return a.Verify != b.Verify || a.UserIDClaim != b.UserIDClaim ||
		!reflect.DeepEqual(a.Local, b.Local) || !reflect.DeepEqual(running.UserIssuers(), next.UserIssuers())
}

// reloadProblems splits a settings error into its problems, one per line.
func reloadProblems(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		out = []string{fmt.Sprint(errors.Unwrap(err))}
	}
	return out
}
