// Package cli is jwtgate's command line: serve, check, users and version.
// It lives under handlers because, like the HTTP handlers, it is a way in
// for people: it parses what they type, calls the same models, remote and
// handlers.NewGateway the server uses, and turns errors into words. main.go
// only dispatches to Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
	config  string
	users   usersOpts
}

const configHelp = "settings file (default $" + models.EnvConfig + ", else ./settings.yaml)"

// Run runs the command args name ("serve" when there is none). It returns
// nil for success; any error means exit status 1.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, version string) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr, version: version}
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	} else if len(args) > 0 && isHelp(args[0]) {
		name, args = "help", nil // plain "jwtgate --help": every command
	}
	if name == "help" {
		if len(args) > 0 {
			return Run(ctx, []string{args[0], "--help"}, getenv, stdout, stderr, version)
		}
		fmt.Fprint(stdout, usage())
		return nil
	}
	for _, c := range commands() {
		if c.name == name {
			return c.start(ctx, e, args)
		}
	}
	fmt.Fprint(stderr, usage())
	return fmt.Errorf("unknown command %q (see jwtgate --help)", name)
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
				"finish (at most shutdown_timeout), closes the database and exits 0."},
		{name: "check", args: "[--config PATH]", summary: "validate settings, open the database, probe the auth service", run: runCheck,
			help: "Loads and validates the settings, reporting every problem with the key to change, warns\n" +
				"about settings that are valid but risky, opens the database and asks the auth service.\n" +
				"Exit status 0 when nothing is wrong (warnings allowed), 1 otherwise."},
		{name: "users", args: "list [--json] | show ID | delete ID | purge --older-than D", summary: "inspect or trim the local user mirror",
			run: runUsers, flags: usersFlags,
			help: "  list            the mirrored users (id, username, email, active, staff, fetched)\n" +
				"  show ID         one user's whole record as JSON\n" +
				"  delete ID       remove a user from the mirror; every replica forgets its cached copy and\n" +
				"                  fetches it from the auth service on next use\n" +
				"  purge --older-than D\n" +
				"                  remove users not fetched for D (e.g. 720h or 30d)"},
		{name: "version", args: "", summary: "print the version", run: runVersion, help: "Prints jwtgate's version."},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: jwtgate [command] [--config PATH]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	b.WriteString("\nThe settings file is --config, else $" + models.EnvConfig + ", else ./settings.yaml.\n" +
		"Run jwtgate COMMAND --help for a command's details.\n")
	return b.String()
}

func runVersion(_ context.Context, e *env, _ *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("version takes no arguments")
	}
	fmt.Fprintln(e.stdout, "jwtgate", e.version)
	return nil
}

// settingsPath is --config, else $JWTGATE_CONFIG, else ./settings.yaml.
func (e *env) settingsPath() string {
	if e.config != "" {
		return e.config
	}
	if p := e.getenv(models.EnvConfig); p != "" {
		return p
	}
	return "settings.yaml"
}

// loadSettings reads and validates the settings file.
func (e *env) loadSettings() (models.Settings, error) {
	path := e.settingsPath()
	f, err := os.Open(path)
	if err != nil {
		return models.Settings{}, fmt.Errorf("cannot read the settings file: %w (pass --config PATH or set $%s)", err, models.EnvConfig)
	}
	defer f.Close()
	s, err := models.LoadSettings(f, e.getenv)
	if err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
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
