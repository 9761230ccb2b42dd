package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"jwtgate/handlers/authn"
	"jwtgate/models"
	"jwtgate/remote"
)

// Gateway is jwtgate wired together: the HTTP handler and what it owns.
type Gateway struct {
	// Handler serves the whole HTTP surface.
	Handler http.Handler
	// Store is the user mirror.
	Store *models.Store
	// Auth authenticates tokens and resolves users.
	Auth *authn.Authenticator
	// Remote is the auth service client.
	Remote *remote.Client
	// Local is the in-process verifier of verify: local and hybrid; nil for
	// verify: remote. Its Ready says whether every JWKS has been fetched.
	Local *authn.Local
}

// Options adjust a Gateway for tests; the zero value is production.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Getenv reads the environment (HMAC secrets of auth.local.keys);
	// nil means os.Getenv.
	Getenv func(string) string
}

// NewGateway opens the database and builds the auth service client, the
// authenticator and the router from settings.
func NewGateway(ctx context.Context, s models.Settings, log *slog.Logger, opt Options) (*Gateway, error) {
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	store, err := models.OpenStore(ctx, s.Database, now)
	if err != nil {
		return nil, err
	}
	rc, err := remote.New(s.AuthService, nil)
	if err != nil {
		return nil, errors.Join(err, store.Close())
	}
	// remote: every new token is verified by the auth service (cached).
	// local: in-process only, never a call home to authenticate (the
	// verdict is cached too, which saves CPU; never past exp).
	// hybrid: remote as above, plus the local check on every request.
	var verifier authn.Verifier = rc
	var local *authn.Local
	if s.Auth.Verify != models.VerifyRemote {
		getenv := opt.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		lc := authn.LocalConfigFrom(s)
		lc.HTTPClient = &http.Client{Transport: remote.NewTransport(s.AuthService.Timeout)}
		local, err = authn.NewLocal(ctx, lc, getenv, log, now)
		if err != nil {
			return nil, errors.Join(err, store.Close())
		}
		if s.Auth.Verify == models.VerifyLocal {
			verifier = local
		}
	}
	fail := func(err error) (*Gateway, error) {
		if local != nil {
			local.Close()
		}
		return nil, errors.Join(err, store.Close())
	}
	var sig *signer
	if s.IdentityToken.Enabled {
		if sig, err = newSigner(s.IdentityToken, now, log); err != nil {
			return fail(err)
		}
	}
	login, err := newLoginThrottle(s.Throttle, now)
	if err != nil {
		return fail(err)
	}
	auth, err := authn.New(authn.ConfigFrom(s), verifier, rc, store, log, now)
	if err != nil {
		return fail(err)
	}
	if s.Auth.Verify == models.VerifyHybrid {
		auth.Local = local
	}
	trusted := trustedProxies(s.TrustedNets)
	idn := newIdentity(s.IdentityHeaders.Prefix)
	idn.signer = sig
	auth.Derive = idn.values // identity header values built once per cached user
	table, err := newRouteTable(s.Routes, upstreamTransport(), log, trusted, idn)
	if err != nil {
		return fail(err)
	}
	router := newRouter(routerDeps{
		log: log, settings: s, remote: rc, auth: auth, table: table,
		identity: idn, signer: sig, login: login, trusted: trusted, now: now,
	})
	return &Gateway{Handler: router, Store: store, Auth: auth, Remote: rc, Local: local}, nil
}

// Close stops the JWKS refreshes and releases the database.
func (g *Gateway) Close() error {
	if g.Local != nil {
		g.Local.Close()
	}
	if err := g.Store.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// upstreamTransport pools keep-alive connections to every upstream.
func upstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}
