package handlers

import (
	"net/http"

	"jwtgate/models"
)

// resolve cleans a percent-decoded request path and picks its route: the
// one decision the proxy and /auth/check share. why is non-empty when the
// path must be refused because a stack behind the gateway could read it as
// another path than the one the gateway matched and checked: a shape
// models.UnusualPath names, or a lenient reading (path parameters, case,
// trailing dots, a further decoding; models.PathReadings) that falls under
// another route. A route with allow_unusual_paths lets its own unusual
// paths through; a reading that falls under another route is let through
// only when both routes allow it. rt is nil when no route covers the path.
func (t *routeTable) resolve(p string) (clean string, rt *route, why string) {
	clean = models.CleanPath(p)
	rt = t.match(clean)
	if why = models.UnusualPath(clean); why != "" {
		if rt != nil && rt.AllowUnusualPaths {
			why = ""
		}
		return clean, rt, why
	}
	for reading := range models.PathReadings(clean) {
		other := t.matchFold(reading)
		if other == rt || (rt != nil && rt.AllowUnusualPaths && other != nil && other.AllowUnusualPaths) {
			continue
		}
		return clean, rt, "a lenient server reads it as a path of another route"
	}
	return clean, rt, ""
}

// matchFold is match for a lower-cased reading of a path: route paths
// compared case-insensitively.
func (t *routeTable) matchFold(p string) *route {
	for _, r := range t.routes {
		if models.MatchesPrefix(r.Path, p, true) {
			return r
		}
	}
	return nil
}

// errUnusualPath is the proxy's answer to a refused path: 400 bad_request.
func errUnusualPath(why string) *apiError {
	return newAPIError(http.StatusBadRequest, codeBadRequest, "Request path refused: "+why+".")
}

// errCheckUnusualPath is /auth/check's answer to a refused path: a 403, as
// a proxy's auth hook understands only 2xx, 401 and 403.
func errCheckUnusualPath(why string) *apiError {
	return newAPIError(http.StatusForbidden, codePermissionDenied, "Request path refused: "+why+".")
}
