// Package cli is jwtgate's command line: serve, check, config, users,
// audit, keys, systemd-unit, healthcheck and version.
// It lives under handlers because, like the HTTP handlers, it is a way in
// for people: it parses what they type, calls the same models, remote and
// handlers.NewGateway the server uses, and turns errors into words. main.go
// only dispatches to Run.
package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"jwtgate/models"
)

// ErrFailed is returned when a command has already printed why it failed:
// main exits 1 without repeating it.
var ErrFailed = errors.New("failed")

// command is one subcommand.
type command struct {
	name, args, summary, help string
	run                       func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error
	flags                     func(fs *flag.FlagSet, e *env)
}

// env is what a command runs with.
type env struct {
	getenv  func(string) string
	stdout  io.Writer
	stderr  io.Writer
	version string
	build   Build
	// defaults is the commented default settings file built into the
	// binary: used when no settings file is given or found.
	defaults []byte
	config   string
	users    usersOpts
	audit    auditOpts
	keys     keysOpts
}

// Build is what main builds into the binary.
type Build struct {
	// Version, Commit and Date are set with -ldflags "-X main.version=...
	// -X main.commit=... -X main.date=..."; the commit and its date come
	// from the Go toolchain's VCS stamp when there is one.
	Version, Commit, Date string
	// Settings is the commented default settings.yaml (go:embed): served
	// when there is no settings file and printed by `jwtgate config`.
	Settings []byte
	// SetMemoryLimit sets the process's soft memory limit
	// (runtime/debug.SetMemoryLimit); serve calls it with a default derived
	// from the cache sizes unless GOMEMLIMIT is set. Nil: never set.
	SetMemoryLimit func(int64) int64
	// SetGCPercent sets GOGC (runtime/debug.SetGCPercent); serve calls it
	// when it set the memory limit itself and GOGC is not set. Nil: never.
	SetGCPercent func(int) int
}

const configHelp = "settings file (default $" + models.EnvConfig + ", else ./settings.yaml, else the built-in defaults)"

// Run runs the command args name ("serve" when there is none) without
// built-in default settings. It returns nil for success; any error means
// exit status 1.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, version string) error {
	return RunBuild(ctx, args, getenv, stdout, stderr, Build{Version: version})
}

// RunBuild runs the command args name ("serve" when there is none). Global
// flags (--config PATH, --version, -v, --help) may come before the command
// as well as after it. It returns nil for success; any error means exit
// status 1.
func RunBuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, b Build) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr, version: b.Version, build: b, defaults: b.Settings}
	global, name, args := splitCommand(args)
	if name == "help" {
		if len(args) > 0 {
			return RunBuild(ctx, []string{args[0], "--help"}, getenv, stdout, stderr, b)
		}
		fmt.Fprint(stdout, usage())
		return nil
	}
	for _, c := range commands() {
		if c.name == name {
			return c.start(ctx, e, append(global, args...))
		}
	}
	fmt.Fprint(stderr, usage())
	return fmt.Errorf("unknown command %q (see jwtgate --help)", name)
}

// splitCommand separates the global flags before the command from the
// command's name and arguments: "--config x users list" is users with
// [--config x list]. --version and -v are the version command, a leading
// --help is help; no command is serve.
func splitCommand(args []string) (global []string, name string, rest []string) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		flagName, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a == "-" || a == "--":
			return global, "serve", args
		case isHelp(a):
			return nil, "help", nil
		case flagName == "version" || a == "-v":
			return global, "version", args[1:]
		case flagName == "config" && hasValue:
			global, args = append(global, a), args[1:]
		case flagName == "config" && len(args) > 1:
			global, args = append(global, a, args[1]), args[2:]
		default: // serve's own flags, or a mistake serve's parser reports
			return global, "serve", args
		}
	}
	if len(args) == 0 {
		return global, "serve", nil
	}
	return global, args[0], args[1:]
}

// start parses the command's flags, which may come before or after its
// arguments ("users show 42 --config x.yaml"), and runs it.
func (c command) start(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("jwtgate "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&e.config, "config", "", configHelp)
	if c.flags != nil {
		c.flags(fs, e)
	}
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "usage: jwtgate %s %s\n\n%s\n", c.name, c.args, c.help)
		fmt.Fprintln(e.stdout, "\nflags:")
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		fs.SetOutput(e.stderr)
	}
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return fmt.Errorf("jwtgate %s: %w", c.name, err)
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return c.run(ctx, e, fs, rest)
}

func commands() []command {
	return []command{
		{name: "serve", args: "[--config PATH]", summary: "run the gateway (the default)", run: runServe,
			help: "Runs the gateway until SIGTERM or SIGINT, then stops accepting, lets in-flight requests\n" +
				"finish (at most shutdown_timeout), closes the database and exits 0. Without a settings\n" +
				"file it runs on the built-in defaults (jwtgate config prints them)."},
		{name: "check", args: "[--config PATH]", summary: "validate settings, open the database, probe the auth service", run: runCheck,
			help: "Loads and validates the settings, reporting every problem with the key to change, warns\n" +
				"about settings that are valid but risky, opens the database read-only and asks the auth\n" +
				"service. It changes nothing on disk. Exit status 0 when nothing is wrong (warnings\n" +
				"allowed), 1 otherwise."},
		{name: "config", args: "", summary: "print the default settings file (jwtgate config > settings.yaml)", run: runConfig,
			help: "Prints the commented default settings.yaml built into the binary: every key, its default\n" +
				"and what it means. Start your own from it: jwtgate config > settings.yaml"},
		{name: "users", args: "list [--json] | show ID | delete ID | purge --older-than D | revoke ID | deactivate ID | activate ID",
			summary: "inspect or trim the local user mirror; revoke a user's tokens",
			run:     runUsers, flags: usersFlags,
			help: "  list            the mirrored users (id, username, email, active, staff, fetched)\n" +
				"  show ID         one user's whole record as JSON\n" +
				"  delete ID       remove a user from the mirror; every replica forgets its cached copy and\n" +
				"                  fetches it from the auth service on next use\n" +
				"  purge --older-than D\n" +
				"                  remove users not fetched for D (e.g. 720h or 30d)\n" +
				"  revoke ID       refuse every token of the user issued before now (this second), on\n" +
				"                  every running replica within a second; a new login works\n" +
				"  deactivate ID   mark the user inactive in the mirror (403 user_inactive) and revoke their\n" +
				"                  tokens; the auth service's is_active wins again at the next re-fetch\n" +
				"                  (users.refresh_after), the revoked tokens stay refused\n" +
				"  activate ID     mark the user active in the mirror (tokens revoked before stay refused)\n" +
				"Every change is written to audit_events (jwtgate audit)."},
		{name: "audit", args: "[--since D|TIME] [--json]", summary: "print the admin and operator actions (audit_events)",
			run: runAudit, flags: auditFlags,
			help: "Prints who revoked, deactivated, activated, deleted or purged which user, when, and the\n" +
				"request id of an admin API call, oldest first. --since takes a duration back from now\n" +
				"(24h, 7d) or an RFC 3339 time; default: everything."},
		{name: "keys", args: "rotate [--force] | show", summary: "rotate or show the identity token's signing key",
			run: runKeys, flags: keysFlags,
			help: "  rotate   generate a new identity_token.key_file (identity_token.algorithm) and keep the\n" +
				"           current key's public half in <key_file>.previous: running gateways sign with the\n" +
				"           new key within seconds and publish the old one in /.well-known/jwks.json for\n" +
				"           identity_token.lifetime + 1m more. Refused while the previous rotation's key\n" +
				"           is still published, unless --force (which drops it at once).\n" +
				"  show     the current and previous kid, and until when the previous is published"},
		{name: "systemd-unit", args: "", summary: "print the systemd unit (jwtgate systemd-unit > /etc/systemd/system/jwtgate.service)",
			run: runSystemdUnit, help: "Prints jwtgate.service: jwtgate serve --config /etc/jwtgate/settings.yaml as a dynamic\n" +
				"user, its SQLite mirror and identity key in the state directory /var/lib/jwtgate,\n" +
				"everything else read-only, ExecReload sending SIGHUP. Install it with\n" +
				"jwtgate systemd-unit > /etc/systemd/system/jwtgate.service"},
		{name: "healthcheck", args: "[--config PATH]", summary: "ask the running gateway's /healthz (a container HEALTHCHECK)", run: runHealthcheck,
			help: "GETs /healthz from the gateway these settings describe, on its listen address (a wildcard\n" +
				"such as 0.0.0.0 is asked on loopback), within 3s. Exit status 0 on 200, 1 otherwise.\n" +
				"For container images without curl: HEALTHCHECK CMD [\"jwtgate\", \"healthcheck\"]"},
		{name: "version", args: "", summary: "print the version, commit, build date, Go and dependency versions (also --version, -v)",
			run: runVersion, help: "Prints jwtgate's version, the commit and date it was built from, the Go version and\n" +
				"the versions of the main dependencies."},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: jwtgate [--config PATH] [command] [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-12s %s\n", c.name, c.summary)
	}
	b.WriteString("\nThe settings file is --config, else $" + models.EnvConfig + ", else ./settings.yaml, else the\n" +
		"built-in defaults. Flags may come before or after the command.\n" +
		"Run jwtgate COMMAND --help for a command's details.\n")
	return b.String()
}

func runConfig(_ context.Context, e *env, _ *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("config takes no arguments, got %q", args)
	}
	if len(e.defaults) == 0 {
		return errors.New("config: this build has no default settings built in")
	}
	_, err := e.stdout.Write(e.defaults)
	return err
}

// builtinSource names the built-in defaults where a file name would go.
const builtinSource = "built-in defaults (jwtgate config prints them)"

// settingsSource is where the settings come from: --config, else
// $JWTGATE_CONFIG, else ./settings.yaml, else the built-in defaults. A file
// named by --config or the environment must exist.
func (e *env) settingsSource() (name string, data []byte, err error) {
	path, explicit := e.config, true
	if path == "" {
		path = e.getenv(models.EnvConfig)
	}
	if path == "" {
		path, explicit = "settings.yaml", false
	}
	data, err = os.ReadFile(path)
	switch {
	case err == nil:
		return path, data, nil
	case !explicit && errors.Is(err, fs.ErrNotExist) && len(e.defaults) > 0:
		return builtinSource, e.defaults, nil
	}
	return path, nil, fmt.Errorf("cannot read the settings file: %w (pass --config PATH or set $%s)", err, models.EnvConfig)
}

// loadSettings reads and validates the settings; source names where they
// came from (a path or the built-in defaults).
func (e *env) loadSettings() (s models.Settings, source string, err error) {
	source, data, err := e.settingsSource()
	if err != nil {
		return models.Settings{}, source, err
	}
	s, err = models.LoadSettings(bytes.NewReader(data), e.getenv)
	if err != nil {
		return s, source, fmt.Errorf("%s: %w", source, err)
	}
	return s, source, nil
}

// newLogger builds the configured slog logger.
func newLogger(cfg models.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }
