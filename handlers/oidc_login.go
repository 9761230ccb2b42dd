package handlers

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"jwtgate/handlers/authn"
	"jwtgate/models"
	"jwtgate/remote"
)

// oidcIDCookie holds the ID token between login and logout, for the
// provider's end-session endpoint (id_token_hint). HttpOnly, scoped to
// /auth/oidc/: no page script and no upstream ever sees it.
const (
	oidcIDCookie     = "oidc_id_token"
	oidcIDCookiePath = "/auth/oidc/"
)

// Discovery at start: attempts and the pause before each retry.
var oidcDiscoveryBackoff = []time.Duration{0, 500 * time.Millisecond, 2 * time.Second}

// oidcClient is the provider side of the browser login (oidc:), built once
// at start from the provider's discovery document: the OAuth 2 client,
// the ID token verifier (go-oidc: issuer, audience = client_id, expiry,
// signature against the provider's JWKS), the end-session and revocation
// endpoints, and the state cookie's key.
type oidcClient struct {
	cfg        models.OIDC
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string
	revocation string
	hc         *http.Client
	key        []byte // HMAC key of the state cookie, derived from the client secret
	sessionKey []byte // HMAC key of the session stamp (oidc_session.go), derived from the client secret
	used       *usedStates
	// doc is the discovery document it was built from (the periodic
	// discovery refresh compares the provider's current one with it).
	doc authn.Discovery
}

// usedStates remembers the states this process has finished, until they
// expire, so a replayed callback (its state cookie captured and sent
// again) is refused before the provider is asked. Another replica does
// not know them; there the provider's single-use code refuses the replay.
type usedStates struct {
	mu sync.Mutex
	m  map[string]int64 // state -> its expiry (Unix seconds)
}

// use records state as finished; false when it already was.
func (u *usedStates) use(state string, expires int64, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]int64{}
	}
	if _, seen := u.m[state]; seen {
		return false
	}
	for s, exp := range u.m {
		if exp <= now.Unix() {
			delete(u.m, s)
		}
	}
	u.m[state] = expires
	return true
}

// asymmetricAlgs are the ID token algorithms a verifier holding only the
// provider's public keys can check.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// discoverOIDC fetches oidc.discovery_url, retrying a provider that cannot
// be reached a bounded number of times (it may be starting beside us).
func discoverOIDC(ctx context.Context, hc *http.Client, docURL string) (authn.Discovery, error) {
	var d authn.Discovery
	var err error
	for _, wait := range oidcDiscoveryBackoff {
		select {
		case <-ctx.Done():
			return d, fmt.Errorf("oidc.discovery_url: %w", ctx.Err())
		case <-time.After(wait):
		}
		d, err = authn.Discover(ctx, hc, docURL)
		if err == nil || !errors.Is(err, models.ErrAuthUnavailable) {
			break
		}
	}
	if err != nil {
		return d, fmt.Errorf("oidc.discovery_url: %w", err)
	}
	if d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" {
		return d, fmt.Errorf("oidc.discovery_url: the document of %q names no authorization_endpoint or token_endpoint", d.Issuer)
	}
	return d, nil
}

// newOIDCClient builds the browser login's client from settings: the
// discovery document (fetched with bounded retry) and the client secret
// from the environment. ctx bounds the discovery; the verifier's key
// fetches outlive it.
func newOIDCClient(ctx context.Context, s models.Settings, getenv func(string) string, now func() time.Time) (*oidcClient, error) {
	o := s.OIDC
	hc := &http.Client{Transport: remote.NewTransport(s.AuthService.Timeout), Timeout: s.AuthService.Timeout}
	d, err := discoverOIDC(ctx, hc, o.DiscoveryURL)
	if err != nil {
		return nil, err
	}
	return oidcClientFrom(ctx, s, d, hc, getenv, now)
}

// oidcClientFrom builds the browser login's client from the provider's
// discovery document d.
func oidcClientFrom(ctx context.Context, s models.Settings, d authn.Discovery, hc *http.Client, getenv func(string) string, now func() time.Time) (*oidcClient, error) {
	o := s.OIDC
	name := strings.TrimPrefix(o.ClientSecret, models.KeyEnvPrefix)
	secret := getenv(name)
	if secret == "" {
		return nil, fmt.Errorf("oidc.client_secret: environment variable %s is empty", name)
	}
	var algs []string
	for _, a := range d.IDTokenAlgs {
		if slices.Contains(asymmetricAlgs, a) {
			algs = append(algs, a)
		}
	}
	pc := oidc.ProviderConfig{
		IssuerURL: d.Issuer, AuthURL: d.AuthorizationEndpoint, TokenURL: d.TokenEndpoint,
		UserInfoURL: d.UserinfoEndpoint, JWKSURL: d.JWKSURI, Algorithms: algs,
	}
	keysCtx := oidc.ClientContext(context.WithoutCancel(ctx), hc)
	provider := pc.NewProvider(keysCtx)
	return &oidcClient{
		cfg: o,
		oauth: oauth2.Config{
			ClientID: o.ClientID, ClientSecret: secret, RedirectURL: o.RedirectURL, Scopes: o.Scopes,
			// client_secret_basic, OpenID Connect's default; never a second
			// try with the code in the body (AutoDetect would send it twice).
			Endpoint: oauth2.Endpoint{AuthURL: d.AuthorizationEndpoint, TokenURL: d.TokenEndpoint, AuthStyle: oauth2.AuthStyleInHeader},
		},
		verifier:   provider.VerifierContext(keysCtx, &oidc.Config{ClientID: o.ClientID, Now: now}),
		endSession: d.EndSessionEndpoint,
		revocation: d.RevocationEndpoint,
		hc:         hc,
		key:        oidcStateKey(secret),
		sessionKey: oidcSessionKey(secret),
		doc:        d,
		used:       &usedStates{},
	}, nil
}

// oidcSessions is what the login needs of the authenticator: the access
// token verified and its user mirrored exactly as an API call does it,
// a logout's revocation, and the user's cutoff for a session's refresh.
type oidcSessions interface {
	Authenticate(ctx context.Context, raw string) (authn.Principal, error)
	Revoke(ctx context.Context, raw string)
	// CheckSession refuses a session of user started at start that the
	// user's cutoff or inactive flag ends (the decision's answer).
	CheckSession(ctx context.Context, user models.UserKey, start time.Time) error
}

// oidcLogin serves GET /auth/oidc/login, /callback and /logout.
type oidcLogin struct {
	cl          *oidcClient
	b           *browser
	log         *slog.Logger
	auth        oidcSessions
	userIDClaim string
	now         func() time.Time
}

// Refusals of the browser login.
var (
	errOIDCBadCallback = newAPIError(http.StatusBadRequest, codeBadRequest,
		"The callback needs exactly one code and one state.")
	errOIDCNoIDToken = newAPIError(http.StatusUnauthorized, codeTokenNotValid,
		"The provider's answer holds no valid ID token for this login.")
	errOIDCOtherUser = newAPIError(http.StatusUnauthorized, codeTokenNotValid,
		"The provider's access token and ID token name different users.")
)

// nextAllowed is the origin check of an absolute next: the listed origins
// and the gateway's own (redirect_url's).
func (o *oidcLogin) nextAllowed(origin string) bool {
	if o.b.listed(origin) {
		return true
	}
	u, err := url.Parse(o.cl.cfg.RedirectURL)
	return err == nil && strings.ToLower(u.Scheme+"://"+u.Host) == origin
}

// stateCookie writes (or, with value "", deletes) a login's state cookie:
// HttpOnly, SameSite=Lax whatever the browser settings say (Strict would
// drop it on the provider's redirect back, a top-level cross-site GET),
// Secure as browser mode's cookies, only sent to the callback path.
func (o *oidcLogin) stateCookie(w http.ResponseWriter, state, value string) {
	maxAge := int(oidcStateTTL / time.Second)
	if value == "" {
		maxAge = -1
	}
	http.SetCookie(w, &http.Cookie{
		Name: stateCookieName(state), Value: value, Path: models.OIDCCallbackPath, Domain: o.b.cfg.RefreshCookie.Domain,
		MaxAge: maxAge, Secure: o.b.cfg.RefreshCookie.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// login serves GET /auth/oidc/login?next=/path: a fresh state, nonce and
// PKCE verifier, sealed in the login's own state cookie, and a redirect to
// the provider's authorization endpoint.
func (o *oidcLogin) login(c *gin.Context) {
	q := c.Request.URL.Query()
	if len(q["next"]) > 1 {
		errOIDCBadCallback.abort(c)
		return
	}
	st := oidcLoginState{
		State: randomToken(32), Nonce: randomToken(32), Verifier: oauth2.GenerateVerifier(),
		Next: safeNext(q.Get("next"), o.nextAllowed), Expires: o.now().Add(oidcStateTTL).Unix(),
	}
	o.stateCookie(c.Writer, st.State, sealState(o.cl.key, st))
	c.Header("Cache-Control", "no-store")
	c.Header("Location", o.cl.oauth.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)))
	c.Status(http.StatusFound)
}

// callback serves GET /auth/oidc/callback: the provider's answer. The
// state must match this browser's state cookie (which is then deleted: a
// state is used once), the code is exchanged with the PKCE verifier, the
// ID token verified (issuer, audience, expiry, signature, nonce, at_hash),
// the access token verified and its user mirrored by the configured
// auth.verify and users.source (the very decision API calls make), and the
// browser session of browser mode set: access token in the HttpOnly access
// cookie, refresh token in the refresh cookie, a fresh CSRF cookie, and the
// ID token in its HttpOnly cookie for logout. Then a redirect to next.
func (o *oidcLogin) callback(c *gin.Context) {
	q := c.Request.URL.Query()
	if e := q["error"]; len(e) > 0 {
		if s := q.Get("state"); validState(s) {
			o.stateCookie(c.Writer, s, "")
		}
		newAPIError(http.StatusBadRequest, codeBadRequest, "The provider did not log you in: "+oauthErrorCode(e[0])+".").abort(c)
		return
	}
	if len(q["state"]) != 1 || len(q["code"]) != 1 || q.Get("code") == "" {
		errOIDCBadCallback.abort(c)
		return
	}
	state := q.Get("state")
	if !validState(state) {
		errOIDCState.abort(c)
		return
	}
	value, twice := cookie(c.Request.Header, stateCookieName(state))
	o.stateCookie(c.Writer, state, "") // used once, whatever happens next
	if twice || value == "" {
		errOIDCState.abort(c)
		return
	}
	st, err := openState(o.cl.key, value, state, o.now())
	if err == nil && !o.cl.used.use(state, st.Expires, o.now()) {
		err = errors.New("state cookie: replayed")
	}
	if err != nil {
		o.log.InfoContext(c.Request.Context(), "oidc callback refused", "why", err.Error())
		errOIDCState.abort(c)
		return
	}
	ctx := context.WithValue(c.Request.Context(), oauth2.HTTPClient, o.cl.hc)
	tok, err := o.cl.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		fail(c, o.log, exchangeError(err))
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := o.cl.verifier.Verify(ctx, rawID)
	if err == nil && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		err = errors.New("nonce does not match the login's")
	}
	if err == nil && idt.AccessTokenHash != "" {
		err = idt.VerifyAccessToken(tok.AccessToken)
	}
	if err != nil || tok.AccessToken == "" {
		o.log.InfoContext(c.Request.Context(), "oidc callback: ID token refused", "err", err)
		errOIDCNoIDToken.abort(c)
		return
	}
	p, err := o.auth.Authenticate(c.Request.Context(), tok.AccessToken)
	if err != nil {
		fail(c, o.log, err)
		return
	}
	if !o.sameUser(p, idt.Subject, idt.Issuer) {
		errOIDCOtherUser.abort(c)
		return
	}
	w := c.Writer
	o.b.setCookie(w, o.b.cfg.AccessCookieName, tok.AccessToken, "/", o.maxAge(tok.AccessToken, tok.Expiry), true)
	if tok.RefreshToken != "" {
		// Marked: its refresh goes to the provider (oidc_refresh.go);
		// stamped with the session's start and user (oidc_session.go).
		st := oidcStamp{Start: o.now(), User: p.User.Key()}
		o.b.setCookie(w, o.b.cfg.RefreshCookie.Name, sealSession(o.cl.sessionKey, st, tok.RefreshToken), o.b.cfg.RefreshCookie.Path, o.maxAge(tok.RefreshToken, time.Time{}), true)
	}
	o.b.setCookie(w, oidcIDCookie, rawID, oidcIDCookiePath, 0, true)
	o.b.setCSRF(w)
	c.Header("Cache-Control", "no-store")
	c.Header("Location", safeNext(st.Next, o.nextAllowed))
	c.Status(http.StatusFound)
}

// sameUser reports whether the access token's user is the one sub and
// iss name (the ID token's): the sub claim (or, when auth.user_id_claim is
// sub, the token's user id) and, when the principal names an issuer, the
// issuer.
func (o *oidcLogin) sameUser(p authn.Principal, sub, iss string) bool {
	own := ""
	if o.userIDClaim == "sub" {
		own = p.Token.UserID
	} else if s, ok := p.Claims()["sub"].(string); ok {
		own = s
	}
	if own != "" && own != sub {
		return false
	}
	return p.Issuer == "" || p.Issuer == iss
}

// maxAge is a token cookie's Max-Age: the token's remaining lifetime from
// its exp claim, else from exp (the token endpoint's expires_in), else a
// session cookie (0).
func (o *oidcLogin) maxAge(tok string, exp time.Time) int {
	if s := o.b.lifetime(tok); s != 0 {
		return s
	}
	if !exp.IsZero() {
		return max(int(exp.Sub(o.now())/time.Second), 1)
	}
	return 0
}

// exchangeError maps a failed code exchange: the provider refusing the
// code (4xx) is the client's 400; a provider that is down, slow or
// failing (5xx) is 503, never a refusal.
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
		return newAPIError(http.StatusBadRequest, codeBadRequest, "The provider refused the authorization code: "+oauthErrorCode(re.ErrorCode)+".")
	}
	return fmt.Errorf("oidc code exchange: %w: %w", models.ErrAuthUnavailable, err)
}

// oauthErrorCode is an OAuth error code fit to repeat: RFC 6749 codes are
// lower-case letters and '_'; anything else is not echoed.
func oauthErrorCode(code string) string {
	if code == "" || len(code) > 64 || strings.ContainsFunc(code, func(r rune) bool { return (r < 'a' || r > 'z') && r != '_' }) {
		return "error"
	}
	return code
}

// logoutAllowed is the CSRF check of GET /auth/oidc/logout (the contract
// makes it a GET, which any page could otherwise fire with an <img>): a
// browser's Sec-Fetch-Site must say same-origin or none (typed, a
// bookmark); another site's request needs a Referer (or Origin) from an
// allowed origin. Without fetch metadata (curl, old browsers) a Referer,
// when sent, must be allowed.
func (o *oidcLogin) logoutAllowed(r *http.Request) bool {
	site := r.Header.Values("Sec-Fetch-Site")
	if len(site) == 1 && (site[0] == "same-origin" || site[0] == "none") {
		return true
	}
	origin := requestOrigin(r.Header)
	if origin == "" {
		return len(site) == 0
	}
	return o.b.originAllowed(origin, r.Host)
}

// logout serves GET /auth/oidc/logout: the access token revoked at the
// edge (auth.revoke_on_logout), the refresh token revoked at the provider
// (best effort), every session cookie cleared, then a redirect to the
// provider's end-session endpoint with id_token_hint, client_id and
// post_logout_redirect_uri; without one, to post_logout_redirect_url.
func (o *oidcLogin) logout(c *gin.Context) {
	if !o.logoutAllowed(c.Request) {
		errOriginNotAllowed.abort(c)
		return
	}
	h := c.Request.Header
	access, _ := cookie(h, o.b.cfg.AccessCookieName)
	refresh, _ := cookie(h, o.b.cfg.RefreshCookie.Name)
	refresh, _ = unmarkRefresh(refresh)
	idTok, _ := cookie(h, oidcIDCookie)
	ctx := context.WithoutCancel(c.Request.Context())
	if access != "" {
		o.auth.Revoke(ctx, access)
	}
	if refresh != "" && o.cl.revocation != "" {
		if err := o.revokeAtProvider(ctx, refresh); err != nil {
			o.log.WarnContext(ctx, "oidc logout: could not revoke the refresh token at the provider; cookies cleared anyway", "err", err)
		}
	}
	o.b.clearCookies(c.Writer)
	o.b.setCookie(c.Writer, oidcIDCookie, "", oidcIDCookiePath, -1, true)
	c.Header("Cache-Control", "no-store")
	c.Header("Location", o.afterLogout(idTok))
	c.Status(http.StatusFound)
}

// afterLogout is where a logout sends the browser.
func (o *oidcLogin) afterLogout(idTok string) string {
	post := o.cl.cfg.PostLogoutRedirectURL
	if o.cl.endSession == "" {
		if post == "" {
			return "/"
		}
		return post
	}
	u, err := url.Parse(o.cl.endSession)
	if err != nil {
		return "/"
	}
	q := u.Query()
	q.Set("client_id", o.cl.cfg.ClientID)
	if idTok != "" {
		q.Set("id_token_hint", idTok)
	}
	if post != "" {
		q.Set("post_logout_redirect_uri", post)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// revokeAtProvider revokes a refresh token at the provider's revocation
// endpoint (RFC 7009) as the gateway's client.
func (o *oidcLogin) revokeAtProvider(ctx context.Context, refresh string) error {
	form := url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.cl.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("revocation request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(o.cl.oauth.ClientID), url.QueryEscape(o.cl.oauth.ClientSecret))
	resp, err := o.cl.hc.Do(req)
	if err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation: status %d", resp.StatusCode)
	}
	return nil
}

// CheckOIDC fetches oidc.discovery_url and reads the client secret as
// serve does, for jwtgate check; nil when oidc is off or all is well.
func CheckOIDC(ctx context.Context, s models.Settings, getenv func(string) string) error {
	if !s.OIDC.Enabled() {
		return nil
	}
	_, err := newOIDCClient(ctx, s, getenv, time.Now)
	return err
}
