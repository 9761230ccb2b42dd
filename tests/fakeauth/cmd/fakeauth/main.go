// Command fakeauth runs the fake SimpleJWT auth service standalone, for load tests of the gateway.
//
//	fakeauth -listen 127.0.0.1:8000 -users 1000
//
// It prints the service URL on stdout and serves until SIGINT or SIGTERM. With -stats-listen it
// also serves the call counters as JSON ({"total": N, "paths": {"/auth/token/verify/": N, ...}})
// at GET /calls on that address and prints "stats URL" as stdout's second line, so a load test
// can count calls home per request while the service runs. Users are
// user1@example.com … userN@example.com with password "password" and services ["billing"]. The
// HS256 key is -secret, else $FAKEAUTH_SECRET, else a random one printed on stderr.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"jwtgate/tests/fakeauth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakeauth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8000", "address to listen on")
	secret := fs.String("secret", "", "HS256 signing key (default $FAKEAUTH_SECRET, else random)")
	users := fs.Int("users", 0, "create user1@example.com..userN@example.com with password \"password\"")
	rotate := fs.Bool("rotate", false, "rotate refresh tokens and blacklist the old one")
	stringID := fs.Bool("string-user-id", false, "mint the user id claim as a string (SimpleJWT >= 5.5.1)")
	accessTTL := fs.Duration("access-ttl", 5*time.Minute, "access token lifetime")
	refreshTTL := fs.Duration("refresh-ttl", 24*time.Hour, "refresh token lifetime")
	statsListen := fs.String("stats-listen", "", "also serve GET /calls (call counters as JSON) on this address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *users < 0 {
		return errors.New("-users must not be negative")
	}

	key := cmp.Or(*secret, getenv("FAKEAUTH_SECRET"))
	generated := key == ""
	if generated {
		// Printable, so the operator can hand the very same bytes to the gateway.
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("random secret: %w", err)
		}
		key = hex.EncodeToString(b)
	}

	srv, err := fakeauth.New(fakeauth.Options{
		Addr:         *listen,
		Secret:       []byte(key),
		AccessTTL:    *accessTTL,
		RefreshTTL:   *refreshTTL,
		StringUserID: *stringID,
		Rotate:       *rotate,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	for i := 1; i <= *users; i++ {
		srv.AddUser(fakeauth.User{
			Email:    fmt.Sprintf("user%d@example.com", i),
			Username: fmt.Sprintf("user%d", i),
			Password: "password",
			Extra:    map[string]any{"services": []string{"billing"}},
		})
	}

	fmt.Fprintln(stdout, srv.URL())
	if *statsListen != "" {
		stop, err := serveStats(*statsListen, srv, stdout)
		if err != nil {
			return err
		}
		defer stop()
	}
	if generated {
		fmt.Fprintf(stderr, "fakeauth: random HS256 secret (set -secret or FAKEAUTH_SECRET to choose one): %s\n", key)
	}
	<-ctx.Done()
	srv.Close()
	fmt.Fprintf(stderr, "fakeauth: %d requests %v\n", srv.TotalCalls(), srv.CallCounts())
	return nil
}

// serveStats serves the call counters at GET /calls and prints the URL.
func serveStats(addr string, srv *fakeauth.Server, stdout io.Writer) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stats listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"total": srv.TotalCalls(), "paths": srv.CallCounts()})
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	fmt.Fprintf(stdout, "stats http://%s/calls\n", ln.Addr())
	return func() { _ = hs.Close() }, nil
}
