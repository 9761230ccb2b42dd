package handlers

// newDecider builds the access decision from the router's dependencies:
// the HTTP entry points and gRPC ext_authz each build one from the same
// dependencies, so they decide alike.
func newDecider(d routerDeps) *decider {
	cr := credentials{header: d.settings.Auth.HeaderName, types: d.settings.Auth.HeaderTypes}
	return &decider{
		table:   d.table,
		gate:    newGate(d.log, cr, d.auth, newHeaderRules(d.identity, cr.header)),
		idn:     d.identity,
		trusted: d.trusted,
	}
}
