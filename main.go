// Command jwtgate is the public edge in front of per-service APIs: it relays
// token calls to a SimpleJWT auth service, mirrors users, and forwards
// authenticated API calls to upstream services. The commands live in
// handlers/cli; main only wires the process to them.
package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"jwtgate/handlers/cli"
)

// version, commit and date are set at build time with -ldflags
// "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD) -X main.date=...";
// commit and date are only needed where the Go toolchain's VCS stamp is off
// (-buildvcs=false).
var version, commit, date = "dev", "", ""

// defaultSettings is the repository's commented settings.yaml, built in so
// that `jwtgate serve` runs anywhere without a file and `jwtgate config`
// prints it to start from.
//
//go:embed settings.yaml
var defaultSettings []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, cli.ErrFailed) { // already explained
			fmt.Fprintln(os.Stderr, "jwtgate:", err)
		}
		stop()
		os.Exit(1)
	}
}

// run runs one command; see handlers/cli.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return cli.RunBuild(ctx, args, getenv, stdout, stderr, cli.Build{
		Version: version, Commit: commit, Date: date, Settings: defaultSettings, SetMemoryLimit: debug.SetMemoryLimit,
		SetGCPercent: debug.SetGCPercent,
	})
}
