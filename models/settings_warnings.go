package models

import (
	"fmt"
	"slices"
	"strings"
)

// writeMethods are the methods that change something upstream.
var writeMethods = []string{"POST", "PUT", "PATCH", "DELETE"}

// authRank orders route auth modes from weakest to strongest.
var authRank = map[string]int{AuthNone: 0, AuthOptional: 1, AuthRequired: 2}

// Warnings returns settings that are valid but probably not what the
// operator meant, in words that say what to change. Like Validate it
// leaves s as it is; it says nothing about what Validate refuses.
func (s Settings) Warnings() []string {
	var out []string
	if w := metricsListenWarning(s.MetricsListen); w != "" {
		out = append(out, w)
	}
	out = append(out, s.browserWarnings()...)
	if s.Auth.Cache.RedisURL != "" && (s.Auth.Verify == VerifyLocal || s.Auth.Verify == VerifyIntrospect) {
		out = append(out, fmt.Sprintf("auth.cache.redis_url is set but auth.verify is %s, which does not use the shared cache "+
			"(it serves remote and hybrid verification); remove it or change auth.verify", s.Auth.Verify))
	}
	routes := make([]Route, len(s.Routes))
	for i, r := range s.Routes {
		r.Auth, r.Methods = r.authMode(), r.upperMethods()
		routes[i] = r
	}
	for i, r := range routes {
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
		for j, outer := range routes {
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

// browserWarnings warns about browser mode settings that weaken it.
func (s Settings) browserWarnings() []string {
	if !s.Browser.Enabled {
		return nil
	}
	var out []string
	if !s.Browser.RefreshCookie.Secure {
		out = append(out, "browser.refresh_cookie.secure: false sends the token cookies over plain http; "+
			"keep it for a local http://127.0.0.1 trial only")
	}
	if s.Browser.AccessCookie && !s.Auth.RevokeOnLogout {
		out = append(out, "browser.access_cookie: true without auth.revoke_on_logout: a logged-out access token "+
			"keeps working until it expires (SimpleJWT cannot blacklist access tokens); set auth.revoke_on_logout: true")
	}
	return out
}
