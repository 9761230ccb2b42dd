package cli

import (
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
	fmt.Fprint(e.stdout, versionText(e.version, bi))
	return nil
}

// versionText is what `jwtgate version` prints, from the -ldflags version
// and the build information the Go toolchain records (bi may be nil).
func versionText(version string, bi *debug.BuildInfo) string {
	var b strings.Builder
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
	fmt.Fprintf(&b, "jwtgate %s\n", orUnknown(version))
	commit := orUnknown(setting("vcs.revision"))
	if setting("vcs.modified") == "true" {
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintf(&b, "  commit:  %s\n", commit)
	fmt.Fprintf(&b, "  date:    %s\n", orUnknown(setting("vcs.time")))
	goVersion := runtime.Version()
	if bi != nil && bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	fmt.Fprintf(&b, "  go:      %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	if bi != nil {
		b.WriteString("  dependencies:\n")
		for _, path := range mainDependencies {
			for _, d := range bi.Deps {
				if d.Path != path {
					continue
				}
				v := d.Version
				if d.Replace != nil {
					v += " => " + d.Replace.Path + " " + d.Replace.Version
				}
				fmt.Fprintf(&b, "    %s %s\n", d.Path, v)
			}
		}
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
