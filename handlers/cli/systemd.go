package cli

import (
	"context"
	_ "embed" // the systemd unit
	"flag"
	"fmt"
)

// systemdUnit is jwtgate.service, the hardened systemd unit `jwtgate
// systemd-unit` prints (README: Packaging).
//
//go:embed jwtgate.service
var systemdUnit []byte

func runSystemdUnit(_ context.Context, e *env, _ *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("systemd-unit takes no arguments, got %q", args)
	}
	_, err := e.stdout.Write(systemdUnit)
	return err
}
