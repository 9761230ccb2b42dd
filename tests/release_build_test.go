package tests

import (
	"debug/buildinfo"
	"os"
	"strings"
	"testing"
)

// The shipped binary is built with releaseBuildTags, which leave gin's
// MessagePack codec out; every way it is built for users says so, and the
// binary the tests run is that build.
func TestReleaseBuildLeavesOutMessagePack(t *testing.T) {
	info, err := buildinfo.ReadFile(gatewayBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	var tags string
	for _, s := range info.Settings {
		if s.Key == "-tags" {
			tags = s.Value
		}
	}
	if tags != releaseBuildTags {
		t.Errorf("the tests' binary was built with -tags %q, want %q", tags, releaseBuildTags)
	}
	for _, d := range info.Deps {
		if strings.HasPrefix(d.Path, "github.com/ugorji/go") {
			t.Errorf("the release build links %s %s: gin's MessagePack codec is back in", d.Path, d.Version)
		}
	}
	for _, f := range []struct{ path, build string }{
		{"../Dockerfile", "go build -tags " + releaseBuildTags + " "},
		{"../README.md", "go build -tags " + releaseBuildTags + " -o jwtgate ."},
		{"load/lib.sh", "go build -tags " + releaseBuildTags + " "},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), f.build) {
			t.Errorf("%s does not build with %q", f.path, f.build)
		}
	}
}
