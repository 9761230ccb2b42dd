package models

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// RuleEnv is what a route's allow expression sees.
type RuleEnv struct {
	// User holds every mirrored field of the caller, the auth service's
	// extra fields (such as services) included.
	User map[string]any `expr:"user"`
	// Claims are the verified token's claims.
	Claims map[string]any `expr:"claims"`
	// Request describes the request being authorised.
	Request RuleRequest `expr:"request"`
}

// RuleRequest is the request part of RuleEnv.
type RuleRequest struct {
	Method string `expr:"method"`
	Path   string `expr:"path"`
	// Headers has lower-case names; filled only for rules that mention headers.
	Headers map[string]string `expr:"headers"`
}

// Rule is a compiled allow expression.
type Rule struct {
	src          string
	prog         *vm.Program
	needsHeaders bool
	needsClaims  bool
}

// CompileRule compiles an allow expression; it must yield a bool.
func CompileRule(src string) (*Rule, error) {
	prog, err := expr.Compile(src, expr.Env(RuleEnv{}), expr.AsBool())
	if err != nil {
		return nil, err
	}
	return &Rule{src: src, prog: prog, needsHeaders: strings.Contains(src, "headers"), needsClaims: strings.Contains(src, "claims")}, nil
}

// String returns the expression's source.
func (r *Rule) String() string { return r.src }

// NeedsHeaders reports whether the expression reads request.headers, so
// callers build that map only when it is used.
func (r *Rule) NeedsHeaders() bool { return r.needsHeaders }

// NeedsClaims reports whether the expression reads claims, so callers
// decode them only when they are used.
func (r *Rule) NeedsClaims() bool { return r.needsClaims }

// Allows evaluates the rule. A runtime error (a field of the wrong type,
// say) is returned and must be treated as a denial.
func (r *Rule) Allows(env *RuleEnv) (bool, error) {
	out, err := expr.Run(r.prog, env)
	if err != nil {
		return false, fmt.Errorf("allow %q: %w", r.src, err)
	}
	ok, _ := out.(bool)
	return ok, nil
}
