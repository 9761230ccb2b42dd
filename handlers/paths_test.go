package handlers

import (
	"net/http"
	"testing"

	"jwtgate/models"
)

// TestPathsResolve: the proxy and /auth/check share resolve. Unusual
// shapes are refused unless the matched route opts out; a lenient reading
// under another route is refused unless both routes opt out.
func TestPathsResolve(t *testing.T) {
	routes := []models.Route{
		{Name: "api", Path: "/api/", Upstream: "http://u1"},
		{Name: "billing", Path: "/api/billing/", Upstream: "http://u1"},
		{Name: "legacy", Path: "/legacy/", Upstream: "http://u2", AllowUnusualPaths: true},
		{Name: "legacy-admin", Path: "/legacy/Admin/", Upstream: "http://u2", AllowUnusualPaths: true},
		{Name: "old", Path: "/old/", Upstream: "http://u3", AllowUnusualPaths: true},
		{Name: "old-admin", Path: "/old/admin/", Upstream: "http://u3"},
	}
	table, err := newRouteTable(settingsCompiled(routes), http.DefaultTransport, nil, nil, newIdentity("X-User-"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string // percent-decoded, as net/http hands it over
		route   string // "" for none
		refused bool
	}{
		{"/api/billing/x", "billing", false},
		{"/api/billing/x;v=1", "billing", false},
		{"/api/billing/../reports/x", "api", false},
		{"/api/billing/..;/reports/x", "billing", true},
		{"/api/billing/..\\reports", "billing", true},
		{"/api/billing/\uFF0E\uFF0E/reports", "billing", true},
		{"/api/billing;v=1/x", "api", true},
		{"/API/BILLING/x", "", true},
		{"/Api/Billing/x", "", true},
		{"/api/Billing/x", "api", true},
		{"/api/billing./x", "api", true},
		{"/nowhere/..;/x", "", true},
		{"/legacy/..;/x", "legacy", false},           // the route opts out
		{"/legacy/admin/x", "legacy", false},         // a reading under legacy-admin: both opt out
		{"/old/..;/x", "old", false},                 // old opts out
		{"/old/ADMIN/x", "old", true},                // a reading under old-admin, which does not
		{"/old/admin;x/y", "old", true},              // the same through a path parameter
		{"/old/admin/..;/x", "old-admin", true},      // old-admin does not opt out
		{"/legacy/Admin/x", "legacy-admin", false},   // exact match of a mixed-case route path
		{"/api/billing/%2e%2e/x", "billing", true},   // "%2e" survived net/http's decoding (sent as %252e)
		{"/api/billing/%2Fx", "billing", false},      // "%2F" sent as %252F: one segment either way
		{"/api/billing%2F..%2Fx", "api", true},       // ... unless it hides a dot segment
		{"/api/billing/\x00", "billing", true},       // NUL
		{"/api/billing/caf\xe9", "billing", true},    // invalid UTF-8
		{"/api/billing/caf\u00e9", "billing", false}, // UTF-8
	}
	for _, tt := range tests {
		_, rt, why := table.resolve(tt.path)
		name := ""
		if rt != nil {
			name = rt.Name
		}
		if name != tt.route || (why != "") != tt.refused {
			t.Errorf("resolve(%q) = route %q, why %q; want route %q, refused %v", tt.path, name, why, tt.route, tt.refused)
		}
	}
}
