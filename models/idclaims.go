package models

import (
	"slices"
	"strings"
)

// ReservedClaims are the identity token's claims that a route's
// identity_headers.fields must not name: the registered claims of RFC 7519
// §4.1 and every claim the gateway sets itself. A mirrored field of that
// name would overwrite the gateway's value in the signed token (a field
// "sub" holding another user's id, say).
var ReservedClaims = []string{
	"iss", "sub", "aud", "exp", "nbf", "iat", "jti", // RFC 7519 §4.1
	"email", "username", "is_staff", "is_superuser", // set from the mirrored user
}

// IsReservedClaim reports whether a field name is a reserved claim in any
// case and with '-' for '_' (fields are also header names, which fold both).
func IsReservedClaim(field string) bool {
	return slices.Contains(ReservedClaims, strings.ReplaceAll(strings.ToLower(field), "-", "_"))
}
