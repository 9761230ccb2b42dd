package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"

	"jwtgate/handlers/cli"
)

// cmdGateway runs the gateway's own command line (what the jwtgate binary
// runs) in this process under the CPU profiler, writing the profile when
// the gateway stops (SIGTERM), and a heap profile if asked:
//
//	loadkit gateway -cpuprofile cpu.pprof -- serve --config settings.yaml
func cmdGateway(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	cpu := fs.String("cpuprofile", "", "write a CPU profile here")
	heap := fs.String("memprofile", "", "write a heap profile here when the gateway stops")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return errors.Join(err, f.Close())
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	err := cli.Run(ctx, fs.Args(), os.Getenv, stdout, os.Stderr, "profiled")
	if *heap != "" {
		runtime.GC()
		f, ferr := os.Create(*heap)
		if ferr != nil {
			return errors.Join(err, ferr)
		}
		err = errors.Join(err, pprof.WriteHeapProfile(f), f.Close())
	}
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}
