package cli

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// mainDependencies are the modules whose versions `jwtgate version` prints:
// the ones that decide how requests, tokens and the database behave.
var mainDependencies = []string{
	"github.com/gin-gonic/gin",
	"github.com/golang-jwt/jwt/v5",
	"github.com/MicahParks/keyfunc/v3",
	"github.com/expr-lang/expr",
	"gorm.io/gorm",
	"gorm.io/driver/sqlite",
	"gorm.io/driver/postgres",
	"github.com/jackc/pgx/v5",
	"go.yaml.in/yaml/v3",
}

func runVersion(_ context.Context, e *env, _ *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("version takes no arguments")
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	fmt.Fprint(e.stdout, versionText(e.build, bi))
	return nil
}

// versionText is what `jwtgate version` prints, from the -ldflags values
// and the build information the Go toolchain records (bi may be nil; it
// has no vcs.* settings when built with -buildvcs=false, when b.Commit and
// b.Date stand in).
func versionText(b Build, bi *debug.BuildInfo) string {
	var out strings.Builder
	version := b.Version
	setting := func(key string) string {
		if bi == nil {
			return ""
		}
		for _, s := range bi.Settings {
			if s.Key == key {
				return s.Value
			}
		}
		return ""
	}
	if (version == "" || version == "dev") && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version // go install jwtgate@vX.Y.Z
	}
	fmt.Fprintf(&out, "jwtgate %s\n", orUnknown(version))
	commit := orUnknown(cmp.Or(setting("vcs.revision"), b.Commit))
	if setting("vcs.modified") == "true" {
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintf(&out, "  commit:  %s\n", commit)
	fmt.Fprintf(&out, "  date:    %s\n", orUnknown(cmp.Or(setting("vcs.time"), b.Date)))
	goVersion := runtime.Version()
	if bi != nil && bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	fmt.Fprintf(&out, "  go:      %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	if bi != nil {
		out.WriteString("  dependencies:\n")
		for _, path := range mainDependencies {
			for _, d := range bi.Deps {
				if d.Path != path {
					continue
				}
				v := d.Version
				if d.Replace != nil {
					v += " => " + d.Replace.Path + " " + d.Replace.Version
				}
				fmt.Fprintf(&out, "    %s %s\n", d.Path, v)
			}
		}
	}
	return out.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
