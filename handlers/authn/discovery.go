package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"jwtgate/models"
)

// Discovery is the part of an OpenID provider's discovery document
// (/.well-known/openid-configuration) the gateway uses.
type Discovery struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
	// The browser login's endpoints (oidc:), and the algorithms its ID
	// tokens are signed with.
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	EndSessionEndpoint    string   `json:"end_session_endpoint"`
	RevocationEndpoint    string   `json:"revocation_endpoint"`
	IDTokenAlgs           []string `json:"id_token_signing_alg_values_supported"`
}

// maxDiscoveryBytes bounds a discovery document.
const maxDiscoveryBytes = 1 << 20

// Discover fetches and checks one discovery document: an issuer and an
// http(s) jwks_uri must be present. Errors name what is wrong; a provider
// that cannot be reached matches models.ErrAuthUnavailable.
func Discover(ctx context.Context, hc *http.Client, docURL string) (Discovery, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return Discovery{}, fmt.Errorf("discovery %s: %w", docURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return Discovery{}, fmt.Errorf("discovery %s: %w: %w", docURL, models.ErrAuthUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Discovery{}, fmt.Errorf("discovery %s: status %d: %w", docURL, resp.StatusCode, models.ErrAuthUnavailable)
	}
	var d Discovery
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDiscoveryBytes)).Decode(&d); err != nil {
		return Discovery{}, fmt.Errorf("discovery %s: not a discovery document: %w", docURL, err)
	}
	if d.Issuer == "" {
		return Discovery{}, fmt.Errorf("discovery %s: no issuer", docURL)
	}
	for _, ep := range []struct{ name, val string }{
		{"jwks_uri", d.JWKSURI}, {"introspection_endpoint", d.IntrospectionEndpoint}, {"userinfo_endpoint", d.UserinfoEndpoint},
		{"authorization_endpoint", d.AuthorizationEndpoint}, {"token_endpoint", d.TokenEndpoint},
		{"end_session_endpoint", d.EndSessionEndpoint}, {"revocation_endpoint", d.RevocationEndpoint},
	} {
		if ep.val == "" && ep.name != "jwks_uri" {
			continue
		}
		if u, err := url.Parse(ep.val); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Discovery{}, fmt.Errorf("discovery %s: %s %q is not an http(s) URL", docURL, ep.name, ep.val)
		}
	}
	return d, nil
}

// Discovered are the discovery documents settings name, by the iss they
// declare.
type Discovered map[string]Discovery

// ResolveDiscovery fetches every discovery document auth.local names
// (discovery_url, or per issuer) and returns the settings with jwks_url
// and issuer filled in from them. A configured issuer must match its
// document's: a token's iss is checked against it. Settings without
// discovery come back unchanged, with no fetch.
func ResolveDiscovery(ctx context.Context, s models.Settings, hc *http.Client) (models.Settings, Discovered, error) {
	if s.Auth.Verify == models.VerifyRemote {
		return s, nil, nil
	}
	found := Discovered{}
	l := &s.Auth.Local
	resolve := func(key, docURL string, issuer, jwksURL *string) error {
		d, err := Discover(ctx, hc, docURL)
		if err != nil {
			return fmt.Errorf("%s.discovery_url: %w", key, err)
		}
		if *issuer != "" && *issuer != d.Issuer {
			return fmt.Errorf("%s.issuer is %q but its discovery document says %q", key, *issuer, d.Issuer)
		}
		*issuer, *jwksURL = d.Issuer, d.JWKSURI
		found[d.Issuer] = d
		return nil
	}
	var errs []error
	if l.DiscoveryURL != "" {
		errs = append(errs, resolve("auth.local", l.DiscoveryURL, &l.Issuer, &l.JWKSURL))
	}
	if len(l.Issuers) > 0 {
		l.Issuers = append([]models.LocalIssuer(nil), l.Issuers...) // not the caller's
	}
	seen := map[string]int{}
	for i := range l.Issuers {
		is := &l.Issuers[i]
		key := fmt.Sprintf("auth.local.issuers[%d]", i)
		if is.DiscoveryURL != "" {
			errs = append(errs, resolve(key, is.DiscoveryURL, &is.Issuer, &is.JWKSURL))
		}
		if j, dup := seen[is.Issuer]; dup && is.Issuer != "" {
			errs = append(errs, fmt.Errorf("%s.issuer: %q is also auth.local.issuers[%d]'s (from its discovery document)", key, is.Issuer, j))
		}
		seen[is.Issuer] = i
	}
	if err := errors.Join(errs...); err != nil {
		return s, nil, err
	}
	return s, found, nil
}
