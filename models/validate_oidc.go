package models

import (
	"slices"
	"strings"
)

// userFields are the mirrored columns users.claims may map.
var userFields = []string{"id", "email", "username", "first_name", "last_name"}

// reservedFields are mirrored columns users.fields must not shadow.
var reservedFields = []string{"id", "email", "username", "first_name", "last_name", "is_active", "is_staff", "is_superuser", "issuer"}

// validateOIDC checks what an OpenID Connect provider brings: where users
// come from (users.source and its mapping), auth.proxy_header and
// introspection. The users expressions are compiled by Compile.
func (s Settings) validateOIDC(p *problemList) {
	u := s.Users
	if !slices.Contains([]string{UsersFromAuthService, UsersFromClaims, UsersFromUserinfo}, u.Source) {
		p.add("users.source", "must be auth_service, claims or userinfo, got %q", u.Source)
	}
	for field, claim := range u.Claims {
		if !slices.Contains(userFields, field) {
			p.add("users.claims."+field, "is not a mapped field (one of %s); extra fields go in users.fields", strings.Join(userFields, ", "))
		}
		if strings.TrimSpace(claim) == "" {
			p.add("users.claims."+field, "must name a claim")
		}
	}
	for name := range u.Fields {
		if slices.Contains(reservedFields, name) {
			p.add("users.fields."+name, "is a mirrored column: map it in users.claims or set is_staff / is_superuser")
		} else if !isHeaderToken(name) {
			p.add("users.fields."+name, "must be letters, digits, '-' and '_' (it may become an identity header)")
		}
	}
	if u.Source == UsersFromUserinfo && !s.hasDiscovery() {
		p.add("users.source", "userinfo needs auth.local.discovery_url (or one per issuer) to find the userinfo endpoint, with verify: local or hybrid")
	}
	if h := s.Auth.ProxyHeader; h != "" {
		if !isHeaderToken(h) {
			p.add("auth.proxy_header", "must be a header name (letters, digits, '-'), got %q", h)
		} else if normalizeHeaderName(h) == normalizeHeaderName(s.Auth.HeaderName) {
			p.add("auth.proxy_header", "must differ from auth.header_name (%q)", s.Auth.HeaderName)
		}
	}
	if s.Auth.Verify == VerifyIntrospect {
		in := s.Auth.Introspection
		p.checkURL("auth.introspection.url", in.URL, false)
		if in.URL == "" && s.Auth.Local.DiscoveryURL == "" {
			p.add("auth.introspection.url", "verify: introspect needs auth.introspection.url or auth.local.discovery_url")
		}
		if in.ClientID == "" {
			p.add("auth.introspection.client_id", "must not be empty with verify: introspect")
		}
		if name, ok := strings.CutPrefix(in.ClientSecret, KeyEnvPrefix); !ok || !validEnvName(name) {
			p.add("auth.introspection.client_secret", "must be %sNAME (the secret is read from that environment variable)", KeyEnvPrefix)
		}
	}
	seen := map[string]int{}
	for i, c := range s.Introspection.Clients {
		key := indexKey("introspection.clients", i)
		switch {
		case c.ID == "" || strings.ContainsAny(c.ID, ":\r\n"):
			p.add(key+".id", "must be a client id without ':' (HTTP Basic), got %q", c.ID)
		default:
			if j, dup := seen[c.ID]; dup {
				p.add(key+".id", "%q is also introspection.clients[%d].id", c.ID, j)
			}
			seen[c.ID] = i
		}
		name, ok := strings.CutPrefix(c.Secret, KeyEnvPrefix)
		if !ok || !validEnvName(name) {
			p.add(key+".secret", "must be %sNAME (the secret is read from that environment variable)", KeyEnvPrefix)
		}
	}
	for i, raw := range s.Introspection.TrustedNetworks {
		if _, err := parsePrefix(raw); err != nil {
			p.add(indexKey("introspection.trusted_networks", i), "want a CIDR such as \"10.0.0.0/8\" or an address, got %q", raw)
		}
	}
}

// hasDiscovery reports whether local verification takes its keys from an
// OpenID provider's discovery document.
func (s Settings) hasDiscovery() bool {
	if s.Auth.Verify == VerifyRemote {
		return false
	}
	if s.Auth.Local.DiscoveryURL != "" {
		return true
	}
	for _, is := range s.Auth.Local.Issuers {
		if is.DiscoveryURL != "" {
			return true
		}
	}
	return false
}

// normalizeHeaderName folds a header name as WSGI does: lower case, '_'
// and '.' read as '-'.
func normalizeHeaderName(h string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(h))
}
