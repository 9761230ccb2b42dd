package models

import (
	"cmp"
	"slices"
	"strings"
)

// validateRoutes checks routes: unique names and paths, paths that can
// match, upstreams, auth modes, bounds, allow rules (compiled, then
// dropped: Compile keeps them) and identity header fields.
func validateRoutes(p *problemList, routes []Route) {
	seen, names := map[string]int{}, map[string]int{} // seen: path without its trailing slash -> index
	for i, r := range routes {
		key := indexKey("routes", i)
		name := r.routeName()
		if j, dup := names[name]; dup {
			p.add(key+".name", "%q is also the name of routes[%d] (names are the identity token's aud)", name, j)
		} else {
			names[name] = i
		}
		base := strings.TrimSuffix(r.Path, "/")
		switch {
		case !strings.HasPrefix(r.Path, "/"):
			p.add(key+".path", "must start with /, got %q", r.Path)
		case CleanPath(r.Path) != r.Path:
			p.add(key+".path", "%q never matches: request paths are cleaned before matching; write %q", r.Path, CleanPath(r.Path))
		default:
			if j, dup := seen[base]; dup {
				if routes[j].Path == r.Path {
					p.add(key+".path", "%q is also routes[%d].path", r.Path, j)
				} else {
					// "/api/x" and "/api/x/" cover the same requests; the
					// longer always wins, so the other never matches.
					p.add(key+".path", "%q and routes[%d].path %q cover the same requests, so one shadows the other: keep one", r.Path, j, routes[j].Path)
				}
			} else {
				seen[base] = i
			}
		}
		p.checkURL(key+".upstream", r.Upstream, true)
		auth := r.authMode()
		if !slices.Contains([]string{AuthRequired, AuthOptional, AuthNone}, auth) {
			p.add(key+".auth", "must be required, optional or none, got %q", auth)
		}
		if r.Timeout < 0 {
			p.add(key+".timeout", "must not be negative, got %s", r.Timeout)
		}
		if r.BodyTimeout != nil && *r.BodyTimeout < 0 {
			p.add(key+".body_timeout", "must not be negative (0 turns it off), got %s", *r.BodyTimeout)
		}
		if r.Allow != "" {
			if auth == AuthNone {
				p.add(key+".allow", "has no user to check on a route with auth: none")
			}
			if _, err := CompileRule(r.Allow); err != nil {
				p.add(key+".allow", "route %q: allow expression %q does not compile: %v", name, r.Allow, err)
			}
		}
		validateRouteFields(p, key, r.IdentityHeaders.Fields)
	}
}

// validateRouteFields checks routes[i].identity_headers.fields.
func validateRouteFields(p *problemList, key string, fields []string) {
	for j, f := range fields {
		fkey := indexKey(key+".identity_headers.fields", j)
		switch {
		case !isHeaderToken(f) || strings.Trim(f, "-_") == "":
			p.add(fkey, "must be a field name of letters, digits and '_', got %q", f)
		case slices.Contains(standardIdentityFields, strings.ReplaceAll(strings.ToLower(f), "-", "_")):
			p.add(fkey, "%q is reserved: id, email, username, is_staff, is_superuser and the token are always sent", f)
		case IsReservedClaim(f):
			p.add(fkey, "%q is reserved: it would overwrite the identity token's own claim (reserved: %s)", f, strings.Join(ReservedClaims, ", "))
		case slices.ContainsFunc(fields[:j], func(g string) bool {
			return strings.EqualFold(strings.ReplaceAll(g, "-", "_"), strings.ReplaceAll(f, "-", "_"))
		}):
			p.add(fkey, "%q is listed twice", f)
		}
	}
}

// standardIdentityFields are sent on every authenticated request; "token"
// is the identity token's header.
var standardIdentityFields = []string{"id", "email", "username", "is_staff", "is_superuser", "token"}

// routeName is the route's name: name, else its path without slashes,
// else "root".
func (r Route) routeName() string {
	return cmp.Or(r.Name, strings.Trim(r.Path, "/"), "root")
}

// authMode is the route's auth mode: auth, else required.
func (r Route) authMode() string {
	return cmp.Or(r.Auth, AuthRequired)
}

// upperMethods returns the route's methods upper-cased, in a new slice.
func (r Route) upperMethods() []string {
	if r.Methods == nil {
		return nil
	}
	out := make([]string, len(r.Methods))
	for i, m := range r.Methods {
		out[i] = strings.ToUpper(m)
	}
	return out
}
