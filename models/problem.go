package models

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with the settings: the dotted key it concerns
// ("routes[0].allow"; empty when no key can be named, as for a YAML syntax
// error), the line of settings.yaml it is on when known (0 otherwise), and
// what is wrong, in words that say what to change.
type Problem struct {
	Key  string
	Line int
	Msg  string
}

// String is the problem as `jwtgate check` prints it and serve reports it
// (after "settings: "): "key (line N): msg", "key: msg", "line N: msg" or
// just msg.
func (p Problem) String() string {
	switch {
	case p.Key != "" && p.Line > 0:
		return fmt.Sprintf("%s (line %d): %s", p.Key, p.Line, p.Msg)
	case p.Key != "":
		return p.Key + ": " + p.Msg
	case p.Line > 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Msg)
	}
	return p.Msg
}

// Problems is every problem found in the settings, as one error: each on
// its own line, "settings: " before it.
type Problems []Problem

// Error joins the problems, one a line.
func (ps Problems) Error() string {
	lines := make([]string, 0, len(ps))
	for _, p := range ps {
		lines = append(lines, "settings: "+p.String())
	}
	return strings.Join(lines, "\n")
}

// Err returns ps as an error, nil when there are none.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// problemList collects problems while validating.
type problemList []Problem

// add records a problem with key and a formatted message.
func (l *problemList) add(key, format string, args ...any) {
	*l = append(*l, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}
