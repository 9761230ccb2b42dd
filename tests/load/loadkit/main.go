// Command loadkit holds the small programs the load benchmark
// (tests/load/run.sh) and the soak run (tests/soak/run.sh) need besides the
// gateway, the fake auth service and wrk:
//
//	loadkit upstream -listen ADDR                 a tiny API: 200 with a small JSON body
//	loadkit proxy -listen ADDR -target URL        a bare httputil.ReverseProxy (the floor)
//	loadkit keygen -dir DIR                       an RSA key pair (private.pem, public.pem)
//	loadkit mint -users N -count M -out FILE ...  access tokens, one per line
//	loadkit seed -db FILE -users N                users 1..N in a SQLite user mirror
//	loadkit warm -url URL -tokens FILE            every token once, concurrently; all must be 200
//	loadkit soak -gateway URL -pid PID ...        a steady mix of requests, sampling the gateway
//	loadkit freeport                              a free loopback port
//	loadkit gateway -cpuprofile F -- serve ...    the gateway itself, in-process, under the profiler
//
// Servers print their URL on stdout's first line and run until SIGINT or
// SIGTERM. Everything listens on 127.0.0.1 only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadkit:", err)
		os.Exit(1)
	}
}

// commands maps each subcommand to its implementation.
var commands = map[string]func(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error{
	"upstream": cmdUpstream,
	"proxy":    cmdProxy,
	"keygen":   cmdKeygen,
	"mint":     cmdMint,
	"seed":     cmdSeed,
	"warm":     cmdWarm,
	"rr":       cmdRoundRobin,
	"soak":     cmdSoak,
	"freeport": cmdFreePort,
	"gateway":  cmdGateway,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: loadkit upstream|proxy|keygen|mint|seed|warm|rr|soak|freeport|gateway [flags]")
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q", args[0])
	}
	fs := flag.NewFlagSet("loadkit "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	return cmd(ctx, fs, args[1:], stdout)
}

// parse parses flags and refuses positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return nil
}
