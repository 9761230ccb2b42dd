package handlers

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"jwtgate/handlers/authn"
	"jwtgate/models"
	"jwtgate/remote"
)

// userinfoFetcher is the UserFetcher of users.source: userinfo: the
// userinfo endpoint of the issuer whose users the gateway resolves (the
// only one, or the one with user_endpoint: true), from its discovery
// document.
func userinfoFetcher(s models.Settings, discovered authn.Discovered, mapping *models.UserMapping) (*authn.Userinfo, error) {
	iss := s.UserEndpointIssuer()
	d, ok := discovered[iss]
	if !ok || d.UserinfoEndpoint == "" {
		return nil, fmt.Errorf("users.source: userinfo needs the discovery document of issuer %q to name a userinfo_endpoint", iss)
	}
	hc := &http.Client{Transport: remote.NewTransport(s.AuthService.Timeout), Timeout: s.AuthService.Timeout}
	return authn.NewUserinfo(d.UserinfoEndpoint, hc, mapping), nil
}

// introspectionClient is the RFC 7662 client of verify: introspect:
// auth.introspection.url, or the endpoint auth.local.discovery_url names;
// the secret from the environment; auth_service.circuit's breaker.
func introspectionClient(s models.Settings, discovered authn.Discovered, getenv func(string) string, log *slog.Logger, now func() time.Time) (*authn.Introspection, error) {
	in := s.Auth.Introspection
	endpoint := in.URL
	if endpoint == "" {
		endpoint = discovered[s.Auth.Local.Issuer].IntrospectionEndpoint
	}
	if endpoint == "" {
		return nil, fmt.Errorf("auth.introspection.url: the discovery document of %q names no introspection_endpoint", s.Auth.Local.Issuer)
	}
	secret := getenv(strings.TrimPrefix(in.ClientSecret, models.KeyEnvPrefix))
	if secret == "" {
		return nil, fmt.Errorf("auth.introspection.client_secret: environment variable %s is empty", strings.TrimPrefix(in.ClientSecret, models.KeyEnvPrefix))
	}
	hc := &http.Client{Transport: remote.NewTransport(s.AuthService.Timeout), Timeout: s.AuthService.Timeout}
	return authn.NewIntrospection(authn.IntrospectionConfig{
		Endpoint: endpoint, ClientID: in.ClientID, ClientSecret: secret,
		Failures: s.AuthService.Circuit.Failures, CoolDown: s.AuthService.Circuit.CoolDown,
	}, hc, log, now), nil
}
