package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"jwtgate/handlers"
	"jwtgate/models"
)

func runServe(ctx context.Context, e *env, _ *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", args)
	}
	s, source, err := e.loadSettings()
	if err != nil {
		return err
	}
	cfg, probs := models.Compile(s)
	if len(probs) > 0 { // loadSettings validated them: not expected
		return fmt.Errorf("%s: %w", source, models.Problems(probs))
	}
	log := newLogger(s.Log, e.stderr)
	log.Info("settings", "from", source)
	for _, w := range s.Warnings() {
		log.Warn("settings: " + w)
	}
	applyMemoryLimit(s, e.getenv, e.build.SetMemoryLimit, e.build.SetGCPercent, log)
	gw, err := handlers.NewGateway(ctx, cfg, log, handlers.Options{Getenv: e.getenv, Version: e.version})
	if err != nil {
		return err
	}
	defer func() {
		if err := gw.Close(); err != nil {
			log.Error("close", "err", err)
		}
	}()

	servers := []*http.Server{newServer(gw.Handler)}
	addrs := []string{s.Listen}
	// /metrics only ever on its own address (default 127.0.0.1:9090);
	// metrics_listen: "" turns it off.
	if s.MetricsListen != "" {
		servers = append(servers, newServer(gw.Metrics))
		addrs = append(addrs, s.MetricsListen)
	}
	errc := make(chan error, len(servers)+1)
	for i, srv := range servers {
		ln, err := net.Listen("tcp", addrs[i])
		if err != nil {
			for _, started := range servers[:i] {
				_ = started.Close()
			}
			if i == 1 {
				return fmt.Errorf("metrics_listen: listen on %s: %w (the default is 127.0.0.1:9090, also Prometheus' own port: "+
					"set metrics_listen to a free address, or to \"\" to turn /metrics off)", addrs[i], err)
			}
			return fmt.Errorf("listen on %s: %w", addrs[i], err)
		}
		go func() { errc <- srv.Serve(ln) }()
		addrs[i] = ln.Addr().String()
	}
	extAuthzAt, stopExtAuthz, err := serveExtAuthz(gw, s.ExtAuthz.GRPCListen, errc)
	if err != nil {
		for _, started := range servers {
			_ = started.Close()
		}
		return err
	}
	defer stopExtAuthz(s.ShutdownTimeout)
	metricsAt := "off"
	if len(addrs) > 1 {
		metricsAt = addrs[1]
	}
	reloadOnSignals(ctx, e, gw, s, source, log)
	log.Info("jwtgate serving", "listen", addrs[0], "metrics_listen", metricsAt, "ext_authz_grpc_listen", extAuthzAt,
		"auth_service", s.AuthService.URL, "database", s.Database.Driver, "routes", len(s.Routes), "version", e.version)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Stop accepting, let in-flight requests finish within shutdown_timeout;
	// the deferred Close then stops the background work and the database.
	log.Info("shutting down: finishing in-flight requests", "timeout", s.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w (in-flight requests cut off after shutdown_timeout %s)", err, s.ShutdownTimeout))
			_ = srv.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
