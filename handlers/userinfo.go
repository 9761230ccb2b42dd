package handlers

import (
	"fmt"
	"net/http"

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
