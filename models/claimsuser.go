package models

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// UserMapping turns an OpenID provider's claims (a verified token's, or a
// userinfo answer) into a mirrored user: users.claims, users.is_staff,
// users.is_superuser and users.fields, compiled. It is read-only after
// CompileUserMapping and safe for concurrent use.
type UserMapping struct {
	// Claims maps every mapped field to its claim (defaults filled in).
	Claims      map[string]string
	isStaff     *vm.Program
	isSuperuser *vm.Program
	fields      map[string]*vm.Program
	fieldNames  []string // sorted, for a stable evaluation order
}

// claimsEnv is what a users expression sees.
type claimsEnv struct {
	Claims map[string]any `expr:"claims"`
}

// CompileUserMapping compiles the users section's mapping; problems name
// the key and the expression.
func CompileUserMapping(u Users) (*UserMapping, []Problem) {
	var p problemList
	m := &UserMapping{Claims: maps.Clone(DefaultUserClaims), fields: map[string]*vm.Program{}}
	maps.Copy(m.Claims, u.Claims)
	m.isStaff = compileUserExpr(&p, "users.is_staff", u.IsStaff, true)
	m.isSuperuser = compileUserExpr(&p, "users.is_superuser", u.IsSuperuser, true)
	for name, src := range u.Fields {
		m.fields[name] = compileUserExpr(&p, "users.fields."+name, src, false)
		m.fieldNames = append(m.fieldNames, name)
	}
	slices.Sort(m.fieldNames)
	if len(p) > 0 {
		return nil, p
	}
	return m, nil
}

// compileUserExpr compiles one users expression with the allow rules'
// bounds (builtins whose cost is unbounded are refused, strings capped);
// nil for an empty one.
func compileUserExpr(p *problemList, key, src string, asBool bool) *vm.Program {
	if src == "" {
		return nil
	}
	guard := &ruleGuard{}
	opts := []expr.Option{
		expr.Env(claimsEnv{}),
		expr.Function(ruleConcatFunc, ruleConcat, new(func(any, any) any)),
		expr.Function(ruleStringFunc, ruleString, new(func(any) string)),
		expr.Patch(guard),
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err == nil {
		for _, gerr := range guard.errs {
			err = gerr
		}
	}
	if err != nil {
		p.add(key, "expression %q does not compile: %v", src, err)
		return nil
	}
	return prog
}

// run evaluates prog over claims within the allow rules' budget.
func runUserExpr(prog *vm.Program, claims map[string]any) (any, error) {
	machine := vm.VM{MemoryBudget: RuleMemoryBudget}
	return machine.Run(prog, claimsEnv{Claims: claims})
}

// User builds the mirrored record of the user claims describe, in the
// namespace issuer ("" for the auth service's single namespace). The id
// claim must be present; an expression that fails to evaluate is an
// error (the request is refused rather than a flag silently dropped).
func (m *UserMapping) User(issuer string, claims map[string]any, now time.Time) (User, error) {
	id, ok := IDString(claims[m.Claims["id"]])
	if !ok {
		return User{}, fmt.Errorf("claims: no usable %q claim for the user id: %w", m.Claims["id"], ErrUserRejected)
	}
	u := User{
		Issuer: issuer, ID: id,
		Email:     str(claims[m.Claims["email"]]),
		Username:  str(claims[m.Claims["username"]]),
		FirstName: str(claims[m.Claims["first_name"]]),
		LastName:  str(claims[m.Claims["last_name"]]),
		IsActive:  true,
		FetchedAt: now,
	}
	var err error
	if u.IsStaff, err = m.flag(m.isStaff, claims); err != nil {
		return User{}, fmt.Errorf("users.is_staff: %w", err)
	}
	if u.IsSuperuser, err = m.flag(m.isSuperuser, claims); err != nil {
		return User{}, fmt.Errorf("users.is_superuser: %w", err)
	}
	if len(m.fieldNames) > 0 {
		u.Fields = make(map[string]any, len(m.fieldNames))
		for _, name := range m.fieldNames {
			v, err := runUserExpr(m.fields[name], claims)
			if err != nil {
				return User{}, fmt.Errorf("users.fields.%s: %w", name, err)
			}
			u.Fields[name] = jsonValue(v)
		}
	}
	return u, nil
}

func (m *UserMapping) flag(prog *vm.Program, claims map[string]any) (bool, error) {
	if prog == nil {
		return false, nil
	}
	v, err := runUserExpr(prog, claims)
	if err != nil {
		return false, err
	}
	b, _ := v.(bool)
	return b, nil
}

// jsonValue returns v as it reads back from the mirror's JSON column, so a
// fresh record and a stored one compare equal (SameUser).
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	return out
}

// SameUser reports whether two records of one user say the same: the
// mapped columns, the flags and the extra fields (not the timestamps).
func SameUser(a, b User) bool {
	return a.Issuer == b.Issuer && a.ID == b.ID && a.Email == b.Email && a.Username == b.Username &&
		a.FirstName == b.FirstName && a.LastName == b.LastName && a.IsActive == b.IsActive &&
		a.IsStaff == b.IsStaff && a.IsSuperuser == b.IsSuperuser &&
		(len(a.Fields) == 0 && len(b.Fields) == 0 || reflect.DeepEqual(a.Fields, b.Fields))
}

// compileOIDC compiles the users mapping (users.source claims or
// userinfo), defaults auth.user_id_claim to sub for such sources, and
// parses introspection.trusted_networks.
func compileOIDC(p *problemList, rt *Runtime) {
	s := &rt.Settings
	if s.Users.Source != UsersFromAuthService {
		m, probs := CompileUserMapping(s.Users)
		*p = append(*p, probs...)
		rt.Users = m
		if s.Auth.UserIDClaim == DefaultSettings().Auth.UserIDClaim {
			// SimpleJWT's user_id is not an OIDC claim: the user is sub.
			s.Auth.UserIDClaim = "sub"
		}
	}
	for _, raw := range s.Introspection.TrustedNetworks {
		if pfx, err := parsePrefix(raw); err == nil {
			rt.IntrospectionNets = append(rt.IntrospectionNets, pfx)
		}
	}
}
