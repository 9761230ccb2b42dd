package models

import (
	"fmt"
	"slices"
	"strings"
)

// validate checks auth.local: algorithms, intervals, key entries and the
// issuers, whichever verify mode is set (a config must not turn invalid the
// day someone switches to local); verify is auth.verify, usersSource
// users.source (users from claims need no user endpoint).
func (l LocalVerif) validate(p *problemList, verify, usersSource string) {
	if l.Leeway < 0 {
		p.add("auth.local.leeway", "must not be negative, got %s", l.Leeway)
	}
	if len(l.Algorithms) == 0 {
		p.add("auth.local.algorithms", "must list at least one algorithm (e.g. [\"RS256\"])")
	}
	for i, alg := range l.Algorithms {
		if !slices.Contains(Algorithms, alg) {
			p.add(indexKey("auth.local.algorithms", i), "%q is not one of %s", alg, strings.Join(Algorithms, ", "))
		}
	}
	if l.JWKSRefreshInterval <= 0 {
		p.add("auth.local.jwks_refresh_interval", "must be a positive duration, got %s", l.JWKSRefreshInterval)
	}
	if l.JWKSRefetchInterval <= 0 {
		p.add("auth.local.jwks_refetch_interval", "must be a positive duration, got %s", l.JWKSRefetchInterval)
	}
	p.checkURL("auth.local.jwks_url", l.JWKSURL, false)
	p.checkURL("auth.local.discovery_url", l.DiscoveryURL, false)
	checkKeys(p, "auth.local.keys", l.Keys)
	if len(l.Issuers) == 0 {
		// Only for a valid local mode: a misspelt verify is reported once, by
		// itself, not again as keys it made look missing.
		if (verify == VerifyLocal || verify == VerifyHybrid) && l.JWKSURL == "" && len(l.Keys) == 0 && l.DiscoveryURL == "" {
			p.add("auth.local", "verify: %s needs auth.local.jwks_url, auth.local.keys or auth.local.issuers (or auth.local.discovery_url)", verify)
		}
		if l.JWKSURL != "" && len(l.Keys) > 0 {
			p.add("auth.local.keys", "set either auth.local.jwks_url or auth.local.keys, not both")
		}
		if l.DiscoveryURL != "" && (l.JWKSURL != "" || len(l.Keys) > 0) {
			p.add("auth.local.discovery_url", "sets the keys itself: auth.local.jwks_url and auth.local.keys must be empty")
		}
		return
	}
	if l.DiscoveryURL != "" {
		p.add("auth.local.discovery_url", "must be empty when auth.local.issuers is set (give it per issuer)")
	}
	for _, single := range []struct {
		key string
		set bool
	}{
		{"auth.local.jwks_url", l.JWKSURL != ""}, {"auth.local.keys", len(l.Keys) > 0}, {"auth.local.issuer", l.Issuer != ""},
	} {
		if single.set {
			p.add(single.key, "must be empty when auth.local.issuers is set (give it per issuer)")
		}
	}
	seen := map[string]int{}
	for i, is := range l.Issuers {
		key := indexKey("auth.local.issuers", i)
		if is.Issuer == "" && is.DiscoveryURL == "" {
			p.add(key+".issuer", "must not be empty (or come from discovery_url): a token's iss picks its issuer")
		} else if is.Issuer == "" {
			// Set from the discovery document at start.
		} else if j, dup := seen[is.Issuer]; dup {
			p.add(key+".issuer", "%q is also auth.local.issuers[%d].issuer", is.Issuer, j)
		} else {
			seen[is.Issuer] = i
		}
		p.checkURL(key+".jwks_url", is.JWKSURL, false)
		p.checkURL(key+".discovery_url", is.DiscoveryURL, false)
		checkKeys(p, key+".keys", is.Keys)
		sources := 0
		for _, set := range []bool{is.JWKSURL != "", len(is.Keys) > 0, is.DiscoveryURL != ""} {
			if set {
				sources++
			}
		}
		if sources != 1 {
			p.add(key, "needs either jwks_url or keys (exactly one), or discovery_url alone")
		}
	}
	if usersSource != UsersFromClaims {
		l.validateUserEndpoint(p)
	}
}

// checkKeys checks the entries of a keys list at key: PEM file names or
// env:VAR_NAME.
func checkKeys(p *problemList, key string, keys []string) {
	for i, k := range keys {
		key := indexKey(key, i)
		name, isEnv := strings.CutPrefix(k, KeyEnvPrefix)
		switch {
		case strings.TrimSpace(k) == "":
			p.add(key, "must not be empty: a PEM file or %sVAR_NAME", KeyEnvPrefix)
		case isEnv && !validEnvName(name):
			p.add(key, "%q must name an environment variable (letters, digits, _)", k)
		case strings.Contains(k, "-----BEGIN"):
			p.add(key, "must be a PEM file name, not the PEM itself")
		}
	}
}

// validateUserEndpoint checks auth.local.issuers[].user_endpoint: users are
// fetched from the auth service only for the issuer whose tokens it issues,
// so among several issuers exactly one names it.
func (l LocalVerif) validateUserEndpoint(p *problemList) {
	if len(l.Issuers) == 1 {
		if ue := l.Issuers[0].UserEndpoint; ue != nil && !*ue {
			p.add("auth.local.issuers[0].user_endpoint", "must be true (or unset) for the only issuer: its users come from auth_service.user_path")
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
		p.add("auth.local.issuers", "with several issuers, exactly one must set user_endpoint: true (the issuer whose tokens the auth service at auth_service.url issues); users of the others cannot be resolved")
	case len(with) > 1:
		p.add(fmt.Sprintf("auth.local.issuers[%d].user_endpoint", with[1]), "only one issuer may set user_endpoint: true (auth.local.issuers[%d] does); the auth service issues one issuer's tokens", with[0])
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
