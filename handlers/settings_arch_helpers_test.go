package handlers

import "jwtgate/models"

// settingsCompiled wraps routes written in a test as the compiled routes
// newRouteTable takes (no allow rules; names and methods as written).
func settingsCompiled(rs []models.Route) []models.CompiledRoute {
	out := make([]models.CompiledRoute, 0, len(rs))
	for _, r := range rs {
		out = append(out, models.CompiledRoute{Route: r})
	}
	return out
}
