package handlers

// newDecider builds the access decision from the router's dependencies:
// the HTTP entry points and gRPC ext_authz each build one from the same
// dependencies, so they decide alike.
func newDecider(d routerDeps, br *browser) *decider {
	cr := newCredentials(d.settings.Auth.HeaderName, d.settings.Auth.HeaderTypes)
	var auth authenticator = d.auth
	if d.tracing != nil {
		auth = tracedAuth{next: d.auth, tracer: d.tracing.Tracer(), mode: d.settings.Auth.Verify}
	}
	return &decider{
		table:   d.table,
		gate:    withProxyHeader(newGate(d.log, cr, auth, newHeaderRules(d.identity, cr.header)), d.settings.Auth.ProxyHeader),
		idn:     d.identity,
		trusted: d.trusted,
		browser: br,
	}
}
