package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"jwtgate/models"
	"jwtgate/remote"
)

// oidcRefreshMark prefixes the refresh cookie's value of a session the
// provider login made: POST /auth/token/refresh/ sends such a token to the
// provider's token endpoint (refresh_token grant), any other to the auth
// service. One cookie carries both the token and where it belongs, so they
// cannot drift apart (a later password login overwrites both at once).
// The mark is visible to the client and it may change it; that is safe
// because a token sent to the wrong party only fails there: the provider
// answers invalid_grant to a SimpleJWT token and SimpleJWT 401 to the
// provider's, and either way the session ends (401, cookies cleared).
const oidcRefreshMark = "oidc:"

// unmarkRefresh splits a refresh cookie's value into the token (a
// provider session's stamp dropped, unchecked: for revoking it) and
// whether the provider login made it.
func unmarkRefresh(v string) (tok string, provider bool) {
	rest, provider := strings.CutPrefix(v, oidcRefreshMark)
	if !provider {
		return v, false
	}
	_, tok = splitSession(rest)
	return tok, true
}

// errOIDCRefreshUser refuses a refresh whose new tokens name another user
// than the session's.
var errOIDCRefreshUser = newAPIError(http.StatusUnauthorized, codeTokenNotValid,
	"The provider's new tokens name another user than the session's.")

// refreshSession is the provider side of POST /auth/token/refresh/ for a
// session the provider login made: the refresh_token grant with the
// gateway's client credentials, then the same checks as the callback (the
// ID token, when the provider sends one, verified and naming the access
// token's user; the access token verified and its user mirrored by
// auth.verify and users.source) and the session's user kept (the access
// cookie's sub, when the request still carries it). It answers what the
// auth service would: 200 with {"access", "refresh"} (the refresh marked),
// or 401 token_not_valid when the provider refuses the token (revoked,
// expired, reused after rotation: invalid_grant) or the new tokens fail a
// check. A provider that cannot be reached, or answers 5xx, is an error
// matching models.ErrAuthUnavailable (503; the cookies stay).
//
// Before the provider is asked, the cookie's stamp (oidc_session.go) must
// verify and the session's user must not have been cut off since it
// started (logout-all, jwtgate users revoke, the admin API, deactivation:
// authn's CheckSession, the decision's own lookup), else the session ends
// here: 401 token_not_valid "Token has been revoked" (403 user_inactive for
// an inactive user), cookies cleared, the refresh token revoked at the
// provider (best effort). A cookie from before sessions were stamped has
// no stamp and is refused the same way: the user logs in again. After the
// refresh, the new access token's user must be the stamped one, and the
// stamp is carried over unchanged onto the rotated token.
func (o *oidcLogin) refreshSession(ctx context.Context, stamped, prevAccess string) (remote.Response, error) {
	st, refresh, err := openSession(o.cl.sessionKey, stamped)
	if err == nil {
		err = o.auth.CheckSession(ctx, st.User, st.Start)
	}
	if err != nil {
		ae := errorFor(ctx, o.log, err)
		if errors.Is(err, errSessionStamp) {
			ae = errTokenRevoked
		} else if ae.status != http.StatusUnauthorized && ae.status != http.StatusForbidden {
			return remote.Response{}, err
		}
		o.log.InfoContext(ctx, "oidc refresh: session ended before the provider was asked", "why", err.Error())
		o.endProviderSession(ctx, refresh)
		return refusal(ae), nil
	}
	hctx := context.WithValue(ctx, oauth2.HTTPClient, o.cl.hc)
	tok, err := o.cl.oauth.TokenSource(hctx, &oauth2.Token{RefreshToken: refresh}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return refusal(errTokenNotValid), nil
		}
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			// Our client is refused (invalid_client, a misconfiguration), not
			// the user's token: the session is kept.
			o.log.WarnContext(ctx, "oidc refresh: the provider refused the gateway's request", "error", oauthErrorCode(re.ErrorCode), "status", re.Response.StatusCode)
		}
		return remote.Response{}, fmt.Errorf("oidc refresh: %w: %w", models.ErrAuthUnavailable, err)
	}
	if tok.AccessToken == "" {
		return refusal(errTokenNotValid), nil
	}
	p, err := o.auth.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		if ae := errorFor(ctx, o.log, err); ae.status == http.StatusUnauthorized {
			return refusal(ae), nil
		}
		return remote.Response{}, err
	}
	if rawID, _ := tok.Extra("id_token").(string); rawID != "" {
		idt, err := o.cl.verifier.Verify(hctx, rawID)
		if err == nil && idt.AccessTokenHash != "" {
			err = idt.VerifyAccessToken(tok.AccessToken)
		}
		if err != nil {
			o.log.InfoContext(ctx, "oidc refresh: ID token refused", "err", err)
			return refusal(errOIDCNoIDToken), nil
		}
		if !o.sameUser(p, idt.Subject, idt.Issuer) {
			return refusal(errOIDCOtherUser), nil
		}
	}
	if p.User == nil || p.User.Key() != st.User {
		return refusal(errOIDCRefreshUser), nil
	}
	if prev, err := models.TokenClaims(prevAccess); prevAccess != "" && err == nil {
		// Unverified (it may have expired): it is the session's previous
		// access token, which only the gateway sets; a mismatch can only be
		// a planted or mixed cookie, and refusing is the safe side.
		sub, _ := prev["sub"].(string)
		iss, _ := prev["iss"].(string)
		if !o.sameUser(p, sub, iss) {
			return refusal(errOIDCRefreshUser), nil
		}
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refresh // no rotation: the session keeps its token
	}
	body, _ := json.Marshal(map[string]string{"access": tok.AccessToken, "refresh": sealSession(o.cl.sessionKey, st, tok.RefreshToken)})
	return remote.Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}, nil
}

// refusal is e as an auth service answer.
func refusal(e *apiError) remote.Response {
	h := http.Header{"Content-Type": {"application/json"}}
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", authChallenge)
	}
	return remote.Response{Status: e.status, Header: h, Body: e.body}
}

// endProviderSession revokes a session's refresh token at the provider
// (RFC 7009), best effort: the cookies are cleared whatever it answers.
func (o *oidcLogin) endProviderSession(ctx context.Context, refresh string) {
	if refresh == "" || o.cl.revocation == "" {
		return
	}
	if err := o.revokeAtProvider(context.WithoutCancel(ctx), refresh); err != nil {
		o.log.WarnContext(ctx, "oidc: could not revoke the refresh token at the provider; cookies cleared anyway", "err", err)
	}
}
