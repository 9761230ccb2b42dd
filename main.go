// Command jwtgate is the public edge in front of per-service APIs: it relays
// token calls to a SimpleJWT auth service, mirrors users, and forwards
// authenticated API calls to upstream services.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"jwtgate/handlers"
	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "jwtgate:", err)
		os.Exit(1)
	}
}

const usage = `usage: jwtgate [command] [--config PATH]

commands:
  serve     run the gateway (the default)
  check     validate settings, open the database, probe the auth service
  version   print the version

The settings file is --config, else $JWTGATE_CONFIG, else ./settings.yaml.
`

// run parses the command line and runs one command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("jwtgate "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	config := fs.String("config", "", "settings file (default $JWTGATE_CONFIG or ./settings.yaml)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "jwtgate", version)
		return nil
	case "serve":
		s, err := loadSettings(*config, getenv)
		if err != nil {
			return err
		}
		return serve(ctx, s, newLogger(s.Log, stderr))
	case "check":
		return check(ctx, *config, getenv, stdout)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

func loadSettings(path string, getenv func(string) string) (models.Settings, error) {
	if path == "" {
		path = getenv(models.EnvConfig)
	}
	if path == "" {
		path = "settings.yaml"
	}
	f, err := os.Open(path)
	if err != nil {
		return models.Settings{}, fmt.Errorf("settings: %w", err)
	}
	defer f.Close()
	s, err := models.LoadSettings(f, getenv)
	if err != nil {
		return models.Settings{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func newLogger(cfg models.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the gateway until ctx ends, then drains in-flight requests.
func serve(ctx context.Context, s models.Settings, log *slog.Logger) error {
	gw, err := handlers.NewGateway(ctx, s, log, handlers.Options{})
	if err != nil {
		return err
	}
	defer gw.Close()
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           gw.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("jwtgate serving", "listen", ln.Addr().String(), "auth_service", s.AuthService.URL,
		"database", s.Database.Driver, "routes", len(s.Routes), "version", version)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", s.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// check validates settings, opens the database and probes the auth service.
func check(ctx context.Context, config string, getenv func(string) string, out io.Writer) error {
	s, err := loadSettings(config, getenv)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "settings: ok")
	if s.Auth.Verify != models.VerifyRemote {
		// Key files, secrets in the environment and every JWKS, as serve loads them.
		local, err := authn.NewLocal(ctx, authn.LocalConfigFrom(s), getenv, slog.New(slog.DiscardHandler), time.Now)
		if err != nil {
			return err
		}
		err = local.Ready()
		local.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "auth.local keys (verify: %s): ok\n", s.Auth.Verify)
	}
	st, err := models.OpenStore(ctx, s.Database, time.Now)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	_ = st.Close()
	fmt.Fprintf(out, "database (%s): ok\n", s.Database.Driver)
	cctx, cancel := context.WithTimeout(ctx, s.AuthService.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodPost, strings.TrimSuffix(s.AuthService.URL, "/")+s.AuthService.VerifyPath, strings.NewReader(`{"token":""}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("auth service %s: not reachable: %w", s.AuthService.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("auth service %s: verify_path %s answered %d", s.AuthService.URL, s.AuthService.VerifyPath, resp.StatusCode)
	}
	fmt.Fprintf(out, "auth service %s: ok (verify answered %d)\n", s.AuthService.URL, resp.StatusCode)
	return nil
}
