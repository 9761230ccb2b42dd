package handlers

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"jwtgate/handlers/authn"
	"jwtgate/models"
	"jwtgate/remote"
)

// startDiscoveryRefresh fetches the discovery documents the running
// settings name (auth.local.discovery_url, auth.local.issuers[].
// discovery_url, oidc.discovery_url) every auth.local.jwks_refresh_interval,
// as the JWKS are, and follows what they say (refreshDiscovery). It returns
// the function that stops it and waits.
func (g *Gateway) startDiscoveryRefresh() func() {
	ctx, cancel := context.WithCancel(g.core.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			t := time.NewTimer(g.snap.Load().settings.Auth.Local.JWKSRefreshInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			g.refreshDiscovery(ctx)
		}
	}()
	return func() { cancel(); <-done }
}

// discoveryDoc is one discovery document the running gateway follows.
type discoveryDoc struct {
	key, url string
	running  authn.Discovery
}

// runningDocs lists the documents snap's settings name, with what each
// said when the running values were built.
func (g *Gateway) runningDocs(snap *snapshot) []discoveryDoc {
	var out []discoveryDoc
	s := snap.settings
	l := s.Auth.Local
	if s.Auth.Verify != models.VerifyRemote {
		if l.DiscoveryURL != "" {
			out = append(out, discoveryDoc{"auth.local", l.DiscoveryURL, snap.discovered[l.Issuer]})
		}
		for i, is := range l.Issuers {
			if is.DiscoveryURL != "" {
				out = append(out, discoveryDoc{fmt.Sprintf("auth.local.issuers[%d]", i), is.DiscoveryURL, snap.discovered[is.Issuer]})
			}
		}
	}
	if oc := g.core.oidc; oc != nil {
		out = append(out, discoveryDoc{"oidc", s.OIDC.DiscoveryURL, oc.doc})
	}
	return out
}

// discoveryChanges names the fields the gateway uses that differ between
// the running document a and the provider's current one b.
func discoveryChanges(a, b authn.Discovery) []string {
	var out []string
	for _, f := range []struct{ name, was, is string }{
		{"jwks_uri", a.JWKSURI, b.JWKSURI},
		{"introspection_endpoint", a.IntrospectionEndpoint, b.IntrospectionEndpoint},
		{"userinfo_endpoint", a.UserinfoEndpoint, b.UserinfoEndpoint},
		{"authorization_endpoint", a.AuthorizationEndpoint, b.AuthorizationEndpoint},
		{"token_endpoint", a.TokenEndpoint, b.TokenEndpoint},
		{"end_session_endpoint", a.EndSessionEndpoint, b.EndSessionEndpoint},
		{"revocation_endpoint", a.RevocationEndpoint, b.RevocationEndpoint},
		{"id_token_signing_alg_values_supported", strings.Join(a.IDTokenAlgs, " "), strings.Join(b.IDTokenAlgs, " ")},
	} {
		if f.was != f.is {
			out = append(out, fmt.Sprintf("%s: %q -> %q", f.name, f.was, f.is))
		}
	}
	return out
}

// refreshDiscovery fetches every document the running settings name once
// and, when one says something new the gateway uses, rebuilds what
// depends on it: the verification through Reload with the running
// settings (the file is not read again; the new snapshot's jwks_url,
// introspection endpoint and verdicts follow the documents), the
// userinfo fetcher's endpoint and the browser login's client. A document
// whose issuer changed is refused and logged (tokens' iss would change:
// that is a new provider, for an operator to configure); a fetch that
// fails keeps the running values, and the failures of one round are
// logged in one line.
func (g *Gateway) refreshDiscovery(ctx context.Context) {
	c := g.core
	snap := g.snap.Load()
	docs := g.runningDocs(snap)
	if len(docs) == 0 {
		return
	}
	hc := &http.Client{Transport: remote.NewTransport(snap.settings.AuthService.Timeout), Timeout: snap.settings.AuthService.Timeout}
	defer hc.CloseIdleConnections()
	type fetched struct {
		d   authn.Discovery
		err error
	}
	got := map[string]fetched{}
	userIss := snap.settings.UserEndpointIssuer()
	var failed []string
	reload := false
	var oidcDoc *authn.Discovery
	for _, doc := range docs {
		f, ok := got[doc.url]
		if !ok {
			f.d, f.err = authn.Discover(ctx, hc, doc.url)
			got[doc.url] = f
			if f.err != nil {
				failed = append(failed, doc.key+": "+f.err.Error())
			}
		}
		if f.err != nil {
			continue
		}
		if f.d.Issuer != doc.running.Issuer {
			c.log.ErrorContext(ctx, "discovery refresh: the document names another issuer; refused, the running values stay (tokens' iss would change: configure the new provider)",
				"key", doc.key+".discovery_url", "issuer", doc.running.Issuer, "document_issuer", f.d.Issuer)
			continue
		}
		changes := discoveryChanges(doc.running, f.d)
		if len(changes) == 0 {
			continue
		}
		c.log.InfoContext(ctx, "discovery document changed; following it", "key", doc.key+".discovery_url", "changes", strings.Join(changes, "; "))
		switch {
		case doc.key == "oidc":
			oidcDoc = &f.d
		default:
			reload = true
			if ui := c.userinfo; ui != nil && doc.running.Issuer == userIss && f.d.UserinfoEndpoint != "" {
				ui.SetEndpoint(f.d.UserinfoEndpoint) // users.source: userinfo (its fetcher outlives snapshots)
			}
		}
	}
	if len(failed) > 0 {
		c.log.WarnContext(ctx, "discovery refresh failed; the running values stay", "failures", strings.Join(failed, " | "))
	}
	if oidcDoc != nil && g.followOIDC(ctx, snap.settings, *oidcDoc) {
		reload = true // the router holds the browser login's client
	}
	if !reload {
		return
	}
	err := g.Reload(ctx, func() (models.Settings, error) {
		return undiscovered(g.snap.Load().settings), nil
	})
	if err != nil {
		c.log.ErrorContext(ctx, "discovery refresh: could not rebuild the verification; the running values stay", "err", err)
	}
}

// followOIDC rebuilds the browser login's client from the provider's new
// document d and makes the next snapshot use it; false when it cannot be
// built (logged; the running client stays).
func (g *Gateway) followOIDC(ctx context.Context, s models.Settings, d authn.Discovery) bool {
	prev := g.core.oidc
	oc, err := oidcClientFrom(ctx, s, d, prev.hc, g.core.getenv, g.core.now)
	if err != nil {
		g.core.log.ErrorContext(ctx, "discovery refresh: could not rebuild the browser login's client; it stays as it was", "err", err)
		return false
	}
	oc.used = prev.used // a state finished before stays finished
	g.reloadMu.Lock()
	g.core.oidc = oc // read by finish, under reloadMu
	g.reloadMu.Unlock()
	return true
}

// undiscovered is s as the file states it, for a reload: the jwks_url
// that discovery filled in emptied (validation refuses it beside a
// discovery_url), the issuer kept (so a document naming another issuer is
// refused by the reload too).
func undiscovered(s models.Settings) models.Settings {
	l := &s.Auth.Local
	if l.DiscoveryURL != "" {
		l.JWKSURL = ""
	}
	l.Issuers = slices.Clone(l.Issuers)
	for i := range l.Issuers {
		if l.Issuers[i].DiscoveryURL != "" {
			l.Issuers[i].JWKSURL = ""
		}
	}
	return s
}
