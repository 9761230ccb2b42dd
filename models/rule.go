package models

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
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

// Bounds on one evaluation of an allow rule. expr-lang's memory budget
// counts ranges, array and map literals and some builtins, but not strings
// built with + (a loop of "s + s" doubles forever): strings are bounded
// here instead, and the builtins that could build unbounded strings or
// collections without being counted are refused when the rule compiles.
const (
	// RuleMemoryBudget is the VM's budget per evaluation (elements of
	// ranges, arrays and maps built); 1..1e9 exceeds it before allocating.
	RuleMemoryBudget = 100_000
	// RuleMaxString is the longest string + (or string()) may build.
	RuleMaxString = 64 << 10
)

// ErrRuleBudget is returned when an evaluation exceeds a bound; the rule
// denies and the gateway logs a warning.
var ErrRuleBudget = errors.New("allow rule exceeded its evaluation budget")

// ruleBuiltins are the builtins an allow rule may call: tests, lookups and
// conversions whose results are no larger than their inputs. Not allowed:
// repeat, join, replace, split, splitAfter, map, reduce, groupBy, sortBy,
// concat, flatten, toJSON, fromJSON, toBase64, fromBase64, toPairs,
// fromPairs and any other: they build strings or collections whose size
// expr-lang does not count, so a rule could exhaust memory.
var ruleBuiltins = []string{
	"all", "none", "any", "one", "filter", "find", "findIndex", "findLast", "findLastIndex", "count",
	"len", "type", "abs", "ceil", "floor", "round", "int", "float", "string",
	"trim", "trimPrefix", "trimSuffix", "upper", "lower", "indexOf", "lastIndexOf", "hasPrefix", "hasSuffix",
	"max", "min", "sum", "mean", "median", "now", "duration", "date", "first", "last", "get", "keys", "values",
}

// Names of the bounded replacements the compiler patches in.
const (
	ruleConcatFunc = "jwtgate_concat"
	ruleStringFunc = "string"
)

// Rule is a compiled allow expression.
type Rule struct {
	src          string
	prog         *vm.Program
	needsHeaders bool
	needsClaims  bool
}

// CompileRule compiles an allow expression; it must yield a bool. It
// refuses builtins whose cost cannot be bounded and expressions that
// exceed the evaluation budget without any input (1..1e9, say).
func CompileRule(src string) (*Rule, error) {
	guard := &ruleGuard{}
	prog, err := expr.Compile(src,
		expr.Env(RuleEnv{}), expr.AsBool(),
		expr.Function(ruleConcatFunc, ruleConcat, new(func(any, any) any)),
		expr.Function(ruleStringFunc, ruleString, new(func(any) string)),
		expr.Patch(guard),
	)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(guard.errs...); err != nil {
		return nil, err
	}
	r := &Rule{src: src, prog: prog, needsHeaders: strings.Contains(src, "headers"), needsClaims: strings.Contains(src, "claims")}
	// A rule that blows its budget with no user, claims or headers at all
	// would deny every request: refuse it now rather than on each request.
	if _, err := r.Allows(&RuleEnv{}); errors.Is(err, ErrRuleBudget) {
		return nil, fmt.Errorf("cannot be evaluated within its budget (%d elements, strings up to %d bytes): %w", RuleMemoryBudget, RuleMaxString, err)
	}
	return r, nil
}

// String returns the expression's source.
func (r *Rule) String() string { return r.src }

// NeedsHeaders reports whether the expression reads request.headers, so
// callers build that map only when it is used.
func (r *Rule) NeedsHeaders() bool { return r.needsHeaders }

// NeedsClaims reports whether the expression reads claims, so callers
// decode them only when they are used.
func (r *Rule) NeedsClaims() bool { return r.needsClaims }

// Allows evaluates the rule within RuleMemoryBudget and RuleMaxString. A
// runtime error (a field of the wrong type, say, or ErrRuleBudget) is
// returned and must be treated as a denial.
func (r *Rule) Allows(env *RuleEnv) (bool, error) {
	machine := vm.VM{MemoryBudget: RuleMemoryBudget}
	out, err := machine.Run(r.prog, env)
	if err != nil {
		if strings.Contains(err.Error(), "memory budget exceeded") && !errors.Is(err, ErrRuleBudget) {
			err = fmt.Errorf("%w: %w", ErrRuleBudget, err)
		}
		return false, fmt.Errorf("allow %q: %w", r.src, err)
	}
	ok, _ := out.(bool)
	return ok, nil
}

// ruleGuard is an AST patch: it refuses builtins outside ruleBuiltins and
// turns every + that may join strings into a call of ruleConcat.
type ruleGuard struct {
	errs []error
}

// Visit implements ast.Visitor.
func (g *ruleGuard) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BuiltinNode:
		g.builtin(n.Name)
	case *ast.CallNode:
		// A builtin parsed as a call (in a pipe, say); unknown names are
		// left to the type checker's "unknown func".
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value != ruleConcatFunc && id.Value != ruleStringFunc {
			if _, known := builtin.Index[id.Value]; known {
				g.builtin(id.Value)
			}
		}
	case *ast.BinaryNode:
		if n.Operator == "+" && mayBeString(n.Left.Type()) && mayBeString(n.Right.Type()) {
			call := &ast.CallNode{
				Callee:    &ast.IdentifierNode{Value: ruleConcatFunc},
				Arguments: []ast.Node{n.Left, n.Right},
			}
			ast.Patch(node, call)
		}
	}
}

func (g *ruleGuard) builtin(name string) {
	if slices.Contains(ruleBuiltins, name) {
		return
	}
	g.errs = append(g.errs, fmt.Errorf("%s() is not allowed in an allow rule: its cost cannot be bounded (allowed: %s)",
		name, strings.Join(ruleBuiltins, ", ")))
}

// mayBeString reports whether a value of type t may be a string at run
// time: a string, or a type the checker does not know (map values).
func mayBeString(t reflect.Type) bool {
	return t == nil || t.Kind() == reflect.String || t.Kind() == reflect.Interface
}

// ruleConcat is + with the length of a joined string bounded.
func ruleConcat(args ...any) (any, error) {
	a, b := args[0], args[1]
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		if len(as)+len(bs) > RuleMaxString {
			return nil, fmt.Errorf("%w: a string longer than %d bytes", ErrRuleBudget, RuleMaxString)
		}
		return as + bs, nil
	}
	return runtime.Add(a, b), nil
}

// ruleString is the string() builtin for scalars only: string() of a
// collection renders every element, and nested references to one array
// render it again at every level.
func ruleString(args ...any) (any, error) {
	switch v := args[0].(type) {
	case string:
		return v, nil
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64,
		time.Time, time.Duration, fmt.Stringer:
		s := fmt.Sprintf("%v", v)
		if len(s) > RuleMaxString {
			return nil, fmt.Errorf("%w: a string longer than %d bytes", ErrRuleBudget, RuleMaxString)
		}
		return s, nil
	}
	return nil, fmt.Errorf("string() of a %T is not allowed in an allow rule: only of strings, numbers and booleans", args[0])
}
