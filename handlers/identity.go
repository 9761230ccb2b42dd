package handlers

import (
	"encoding/json"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"jwtgate/handlers/authn"
	"jwtgate/models"
)

// identity writes the caller's identity headers and removes every
// client-supplied header in their namespace.
type identity struct {
	prefix                                string
	norm                                  string   // prefix lower-cased, '_' and '.' as '-'
	id, email, username, staff, superuser string   // canonical header names
	token                                 string   // the identity token's header, <prefix>Token
	signer                                *keyring // nil: no identity token
	// issuer is <prefix>Issuer, sent when several issuers are trusted
	// (sendIssuer): user 1 of one issuer is not user 1 of another.
	issuer     string
	sendIssuer bool
	memo       *identityMemo // each cached user's standard header values
}

// newIdentity builds the identity headers for a prefix; set signer to send
// the identity token too.
func newIdentity(prefix string) identity {
	name := func(s string) string { return textproto.CanonicalMIMEHeaderKey(prefix + s) }
	return identity{
		prefix:    prefix,
		norm:      normalizeHeaderName(prefix),
		id:        name("Id"),
		email:     name("Email"),
		username:  name("Username"),
		staff:     name("Is-Staff"),
		superuser: name("Is-Superuser"),
		token:     name("Token"),
		issuer:    name("Issuer"),
		memo:      &identityMemo{},
	}
}

// identityField is an extra mirrored field a route sends upstream.
type identityField struct {
	name   string // the field as the auth service names it: "services"
	header string // its header: "X-User-Services"
}

// fields resolves a route's identity_headers.fields to header names.
func (idn identity) fields(names []string) []identityField {
	out := make([]identityField, 0, len(names))
	for _, n := range names {
		out = append(out, identityField{name: n, header: textproto.CanonicalMIMEHeaderKey(idn.prefix + strings.ReplaceAll(n, "_", "-"))})
	}
	return out
}

// normalizeHeaderName folds a header name the way an upstream could read it:
// any case, and '_' or '.' where '-' stands (WSGI/CGI turn X_User_Id and
// X-User-Id into one variable).
func normalizeHeaderName(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = foldHeaderByte(c)
	}
	return string(b)
}

func foldHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	case c == '_' || c == '.':
		return '-'
	}
	return c
}

// spoofed reports whether a header name falls in the identity namespace in
// any spelling, without allocating.
func (idn identity) spoofed(name string) bool {
	return foldedHasPrefix(name, idn.norm)
}

// strip removes every header in the identity namespace.
func (idn identity) strip(h http.Header) {
	for k := range h {
		if idn.spoofed(k) {
			delete(h, k)
		}
	}
}

// identityValues are a user's identity header values, built once per
// cached user record: the standard headers in a fixed order, an empty value
// left out. Each value slice has cap == len, so an append elsewhere copies
// instead of writing into the shared array.
type identityValues []identityHeader

// identityHeader is one identity header and its value.
type identityHeader struct {
	name  string
	value []string
}

// standardHeaders are the identity headers every authenticated request
// carries, in a fixed order.
type standardHeaders [5]identityHeader

// standard lists the identity headers every authenticated request carries,
// with the user's value for each. A new identity header is one line here
// (and one more in standardHeaders' length).
func (idn identity) standard(u *models.User) standardHeaders {
	return standardHeaders{
		{idn.id, []string{headerValue(u.ID)}},
		{idn.email, []string{headerValue(u.Email)}},
		{idn.username, []string{headerValue(u.Username)}},
		{idn.staff, []string{strconv.FormatBool(u.IsStaff)}},
		{idn.superuser, []string{strconv.FormatBool(u.IsSuperuser)}},
	}
}

// identityBlock holds one user's identity values in one allocation: the
// headers, and the value slices they point into, side by side.
type identityBlock struct {
	headers standardHeaders
	values  [len(standardHeaders{})]string
}

// values builds a user's identity header values (memoised per cached user
// record by identityMemo). A header whose value is empty (a user with no
// username, say) is omitted: an upstream then sees no header rather than an
// empty one. The values are laid out together, in one block and one string
// behind it, so writing a user's headers on the warm path reads a few
// adjacent cache lines, not one scattered allocation per value (with many
// users in use the misses showed in the load rows' profiles).
func (idn identity) values(u *models.User) identityValues {
	all := idn.standard(u)
	var parts [len(all)]string
	for i, h := range all {
		parts[i] = h.value[0]
	}
	text := strings.Join(parts[:], "")
	b := new(identityBlock)
	n, off := 0, 0
	for _, h := range all {
		v := h.value[0]
		if v == "" {
			continue
		}
		b.values[n] = text[off : off+len(v)]
		off += len(v)
		b.headers[n] = identityHeader{h.name, b.values[n : n+1 : n+1]}
		n++
	}
	return b.headers[:n:n]
}

// write writes the caller's identity for a route into h: the standard
// headers, the route's extra fields and, with the identity token on, tok
// (signedToken). Empty values are left out; the caller has already removed
// the client's headers in the identity namespace.
func (idn *identity) write(h http.Header, p *authn.Principal, rt *route, tok string) {
	for _, ih := range idn.memo.get(p.User, idn.values) {
		h[ih.name] = ih.value
	}
	if idn.sendIssuer && p.Issuer != "" {
		h[idn.issuer] = []string{headerValue(p.Issuer)}
	}
	for _, f := range rt.fields {
		if v, ok := p.Attrs[f.name]; ok && v != nil {
			if s := headerValue(v); s != "" {
				h[f.header] = []string{s}
			}
		}
	}
	if idn.signer != nil {
		h[idn.token] = []string{tok}
	}
}

// signedToken returns the caller's signed identity token for a route, or
// "" when the identity token is off.
func (idn *identity) signedToken(p *authn.Principal, rt *route) (string, error) {
	if idn.signer == nil {
		return "", nil
	}
	u := p.User
	claims := jwt.MapClaims{
		"sub": u.ID, "email": u.Email, "username": u.Username,
		"is_staff": u.IsStaff, "is_superuser": u.IsSuperuser,
	}
	for _, f := range rt.fields {
		// Settings refuse reserved names; never let one overwrite a claim.
		if v, ok := p.Attrs[f.name]; ok && !models.IsReservedClaim(f.name) {
			claims[f.name] = v
		}
	}
	return idn.signer.sign(claims, rt.Name)
}

// identityMemo keeps each user record's identity header values, so the
// warm path does not rebuild them per request. authn hands out one
// *models.User per cached record and replaces the record, never changes
// it, when the user is refreshed; the values are kept on the record itself
// (models.User.Derived, owned by this memo), so they go when authn drops
// the record and a new record gets new values. Nothing here holds a
// record: no map to look up per request, no weak handle or cleanup per
// user.
type identityMemo struct {
	_ byte // non-zero size: every memo is a distinct owner
}

// get returns u's values, building them with build the first time.
func (im *identityMemo) get(u *models.User, build func(*models.User) identityValues) identityValues {
	if v, ok := u.Derived(im); ok {
		return v.(identityValues)
	}
	v := build(u)
	u.SetDerived(im, v)
	return v
}

// headerValue renders a mirrored value as one header line: strings as they
// are, numbers and booleans in their JSON form, lists and maps as JSON. A
// string with control characters (a newline in a name, say) is sent
// JSON-quoted so it can neither break the request nor be dropped.
func headerValue(v any) string {
	switch x := v.(type) {
	case string:
		if strings.IndexFunc(x, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
			return x
		}
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // ["R&D"], not ["R\u0026D"]
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}
