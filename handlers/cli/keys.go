package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"jwtgate/handlers"
	"jwtgate/handlers/keymat"
	"jwtgate/models"
)

// keysOpts are the keys command's flags.
type keysOpts struct {
	force bool
}

func keysFlags(fs *flag.FlagSet, e *env) {
	fs.BoolVar(&e.keys.force, "force", false, "rotate even while the previous key is still published (it is dropped at once)")
}

// runKeys rotates or shows the identity token's signing key.
func runKeys(_ context.Context, e *env, _ *flag.FlagSet, args []string) error {
	if len(args) != 1 || (args[0] != "rotate" && args[0] != "show") {
		return fmt.Errorf("keys: want rotate or show, got %q (see jwtgate keys --help)", args)
	}
	s, source, err := e.loadSettings()
	if err != nil {
		return err
	}
	it := s.IdentityToken
	if !it.Enabled {
		return fmt.Errorf("%s: identity_token.enabled is false: there is no identity token key to %s", source, args[0])
	}
	now := time.Now()
	if args[0] == "show" {
		return showKeys(e, it, now)
	}
	rot, err := keymat.Rotate(it.KeyFile, it.Algorithm, now, handlers.RetiredKeyWindow(it), e.keys.force)
	if err != nil {
		return fmt.Errorf("identity_token.key_file: %w", err)
	}
	newKid, err := keymat.KeyID(rot.New.Public())
	if err != nil {
		return err
	}
	oldKid, err := keymat.KeyID(rot.Retired.Public)
	if err != nil {
		return err
	}
	until := rot.Retired.RetiredAt.Add(handlers.RetiredKeyWindow(it))
	fmt.Fprintf(e.stdout, "rotated identity_token.key_file %s (%s):\n", it.KeyFile, it.Algorithm)
	fmt.Fprintf(e.stdout, "  new kid:     %s (running gateways sign with it within seconds; no restart)\n", newKid)
	fmt.Fprintf(e.stdout, "  retired kid: %s (in %s, published in the JWKS until %s)\n",
		oldKid, keymat.PreviousPath(it.KeyFile), until.UTC().Format(time.RFC3339))
	if rot.Dropped != nil {
		if kid, err := keymat.KeyID(rot.Dropped); err == nil && kid != oldKid {
			fmt.Fprintf(e.stdout, "  dropped kid: %s (the key retired before; no longer published)\n", kid)
		}
	}
	return nil
}

// showKeys prints the current and retired key's kid and how long the
// retired one stays published.
func showKeys(e *env, it models.IdentityToken, now time.Time) error {
	kid, err := handlers.IdentityKeyID(it)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "identity_token.key_file %s (%s):\n  current kid:  %s\n", it.KeyFile, it.Algorithm, kid)
	prev, err := handlers.CheckRetiredKey(it)
	switch {
	case err != nil:
		fmt.Fprintf(e.stdout, "  previous:     unreadable: %v\n", err)
		return ErrFailed
	case !prev.Present:
		fmt.Fprintln(e.stdout, "  previous:     none")
	case prev.Published(now):
		fmt.Fprintf(e.stdout, "  previous kid: %s (retired %s, published until %s)\n", prev.Kid,
			prev.RetiredAt.UTC().Format(time.RFC3339), prev.Until.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(e.stdout, "  previous kid: %s (retired %s, expired %s: no longer published)\n", prev.Kid,
			prev.RetiredAt.UTC().Format(time.RFC3339), prev.Until.UTC().Format(time.RFC3339))
	}
	return nil
}
