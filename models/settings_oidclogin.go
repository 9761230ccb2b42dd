package models

import (
	"net/url"
	"slices"
	"strings"
)

// OIDCCallbackPath is the gateway's callback of the browser login through
// an OpenID Connect provider: oidc.redirect_url must name it.
const OIDCCallbackPath = "/auth/oidc/callback"

// OIDC configures the browser login through an OpenID Connect provider
// (authorization code flow with PKCE): GET /auth/oidc/login, /callback and
// /logout. Empty discovery_url, client_id and redirect_url turn it off.
type OIDC struct {
	// DiscoveryURL is the provider's /.well-known/openid-configuration.
	DiscoveryURL string `yaml:"discovery_url"`
	// ClientID is the gateway's client at the provider; ID tokens must name
	// it in aud.
	ClientID string `yaml:"client_id"`
	// ClientSecret is "env:NAME": the client secret is read from that
	// environment variable. It also keys the login state cookie's HMAC, so
	// every replica sharing it can finish a login another one started.
	ClientSecret string `yaml:"client_secret"`
	// RedirectURL is the callback the provider sends the browser back to:
	// this gateway's public URL with the path /auth/oidc/callback.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes are requested at login; openid is required.
	Scopes []string `yaml:"scopes"`
	// PostLogoutRedirectURL is where the provider sends the browser after
	// its end-session endpoint (post_logout_redirect_uri), or where
	// /auth/oidc/logout redirects when the provider has none; empty: "/".
	PostLogoutRedirectURL string `yaml:"post_logout_redirect_url"`
}

// Enabled reports whether the browser login through a provider is on.
func (o OIDC) Enabled() bool {
	return o.DiscoveryURL != "" || o.ClientID != "" || o.RedirectURL != ""
}

// DefaultOIDC returns oidc's defaults (off).
func DefaultOIDC() OIDC {
	return OIDC{Scopes: []string{"openid", "email", "profile"}}
}

// validateOIDCLogin checks the oidc section: once any of discovery_url,
// client_id or redirect_url is set, all three are required, the secret is
// env:NAME, the callback is this gateway's /auth/oidc/callback, openid is
// among the scopes, and browser mode with the access cookie is on (the
// session the login ends in is browser mode's).
func (s Settings) validateOIDCLogin(p *problemList) {
	o := s.OIDC
	if !o.Enabled() {
		return
	}
	p.checkURL("oidc.discovery_url", o.DiscoveryURL, true)
	if o.ClientID == "" {
		p.add("oidc.client_id", "must not be empty when oidc is configured")
	}
	if name, ok := strings.CutPrefix(o.ClientSecret, KeyEnvPrefix); !ok || !validEnvName(name) {
		p.add("oidc.client_secret", "must be %sNAME (the secret is read from that environment variable)", KeyEnvPrefix)
	}
	p.checkURL("oidc.redirect_url", o.RedirectURL, true)
	if u, err := url.Parse(o.RedirectURL); err == nil && o.RedirectURL != "" && (u.Path != OIDCCallbackPath || u.RawQuery != "" || u.Fragment != "" || u.User != nil) {
		p.add("oidc.redirect_url", "must be this gateway's URL with the path %s and no query (e.g. \"https://app.example.com%s\"), got %q", OIDCCallbackPath, OIDCCallbackPath, o.RedirectURL)
	}
	if !slices.Contains(o.Scopes, "openid") {
		p.add("oidc.scopes", "must include openid, got %q", o.Scopes)
	}
	for i, sc := range o.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n\"\\") {
			p.add(indexKey("oidc.scopes", i), "must be one scope token, got %q", sc)
		}
	}
	p.checkURL("oidc.post_logout_redirect_url", o.PostLogoutRedirectURL, false)
	if !s.Browser.Enabled {
		p.add("browser.enabled", "must be true with oidc: the provider login ends in browser mode's cookie session")
	} else if !s.Browser.AccessCookie {
		p.add("browser.access_cookie", "must be true with oidc: the provider's access token is kept in the HttpOnly access cookie")
	}
}
