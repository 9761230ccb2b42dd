package handlers

import (
	"errors"
	"net/http"
	"net/textproto"
	"strings"
)

// errHeaderSpellings refuses a request that carries one header name in two
// spellings (X-Tenant and X_Tenant): a rule would see one value and an
// upstream that folds '_' and '.' into '-' (WSGI, CGI) another, or both.
var errHeaderSpellings = errors.New("a header is sent in two spellings")

// Answers to errHeaderSpellings: 400 on a proxied route, 403 on forward-auth
// (a proxy's auth hook understands only 2xx, 401 and 403).
var (
	errBadHeaderSpellings   = newAPIError(http.StatusBadRequest, codeBadRequest, "A header is sent in two spellings (such as X-Tenant and X_Tenant).")
	errCheckHeaderSpellings = newAPIError(http.StatusForbidden, codePermissionDenied, "A header is sent in two spellings (such as X-Tenant and X_Tenant).")
)

// forwardedPrefix is the folded namespace of X-Forwarded-For, -Host,
// -Proto, -Uri, -Method, -Port, -Prefix...: forwarded metadata believed
// only from a trusted proxy.
const forwardedPrefix = "x-forwarded-"

// headerRules decides which request headers reach an allow rule and an
// upstream. The gateway owns some headers: it sets them (the identity
// namespace, X-Forwarded-*, X-Request-Id) or interprets them (X-Real-IP,
// Forwarded, the token header, X-Original-URI/-Method). Of those only the
// dash spelling is ever passed on, whatever the case: X_Real_IP,
// X.Forwarded.Host and the like are removed, because a WSGI upstream reads
// them as HTTP_X_REAL_IP, the gateway's own header.
type headerRules struct {
	idn   identity
	owned map[string]bool // folded names: "x-real-ip", "authorization"
}

// newHeaderRules builds the rules for an identity prefix and the token
// header (auth.header_name).
func newHeaderRules(idn identity, tokenHeader string) headerRules {
	owned := map[string]bool{
		"x-real-ip": true, "forwarded": true, "x-request-id": true,
		"x-original-uri": true, "x-original-method": true,
	}
	if tokenHeader != "" {
		owned[normalizeHeaderName(tokenHeader)] = true
	}
	return headerRules{idn: idn, owned: owned}
}

// isOwned reports whether a folded header name is one the gateway sets or
// interprets (the identity namespace is handled by identity.strip).
func (hr headerRules) isOwned(folded string) bool {
	return hr.owned[folded] || strings.HasPrefix(folded, forwardedPrefix)
}

// isAlias reports whether a header name is spelled with '_' or '.' where a
// WSGI upstream would read '-'.
func isAlias(name string) bool {
	return strings.IndexByte(name, '_') >= 0 || strings.IndexByte(name, '.') >= 0 // ContainsAny, without building a set per call
}

// hasAlias reports whether any header name is spelled with '_' or '.'.
func hasAlias(h http.Header) bool {
	for k := range h {
		if isAlias(k) {
			return true
		}
	}
	return false
}

// clean prepares a request's headers before its allow rule runs, the same
// way for the proxy and for forward-auth, in place:
//   - every header in the identity namespace goes, in any spelling;
//   - an owned header goes in any spelling but the dash one;
//   - a header the client names in Connection goes, unless the gateway
//     owns it: ReverseProxy would remove it from the outbound request, so
//     the rule must not see it either (the owned ones the gateway sets on
//     the outbound request itself);
//   - one header name left in two spellings is errHeaderSpellings;
//   - when the rule reads request.headers, every header spelled with '_'
//     or '.' goes, so the rule and every upstream (one that folds names and
//     one that does not) see the same headers.
func (hr headerRules) clean(h http.Header, ruleReadsHeaders bool) error {
	hr.idn.strip(h)
	if _, ok := h["Connection"]; ok {
		hr.dropConnectionListed(h)
	}
	if !hasAlias(h) {
		// Keys without '_' or '.' are canonical, so no two of them fold
		// together: the common request costs no allocation here.
		return nil
	}
	seen := make(map[string]string, len(h))
	for k := range h {
		folded := normalizeHeaderName(k)
		if isAlias(k) && hr.isOwned(folded) {
			delete(h, k)
			continue
		}
		if other, dup := seen[folded]; dup && other != k {
			return errHeaderSpellings
		}
		seen[folded] = k
	}
	if ruleReadsHeaders {
		for k := range h {
			if isAlias(k) {
				delete(h, k)
			}
		}
	}
	return nil
}

// hopByHop are the folded names ReverseProxy itself handles (an Upgrade
// for a WebSocket, Te: trailers): never dropped here.
var hopByHop = map[string]bool{
	"connection": true, "proxy-connection": true, "keep-alive": true, "proxy-authenticate": true,
	"proxy-authorization": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
}

// dropConnectionListed removes the headers named in Connection that the
// gateway does not own and ReverseProxy does not handle itself.
func (hr headerRules) dropConnectionListed(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			f := normalizeHeaderName(textproto.TrimString(name))
			if f != "" && !hr.isOwned(f) && !hopByHop[f] {
				h.Del(textproto.TrimString(name))
			}
		}
	}
}

// forwardedNames are the folded names of forwarded metadata outside the
// X-Forwarded- namespace.
var forwardedNames = map[string]bool{"x-real-ip": true, "forwarded": true, "x-original-uri": true, "x-original-method": true}

// dropForwarded removes the forwarded metadata of a client that is not a
// trusted proxy (X-Forwarded-*, X-Real-IP, Forwarded, X-Original-URI and
// -Method), before its rule runs: only a trusted proxy's is believed or
// passed on, so the rule must not see a client's either.
func dropForwarded(h http.Header) {
	for k := range h {
		if isForwardedMeta(k) {
			delete(h, k)
		}
	}
}

// isForwardedMeta reports whether a header name, in any spelling, is
// forwarded metadata (the X-Forwarded- namespace or forwardedNames),
// without allocating. It runs for every header of every request from a
// client that is not a trusted proxy: a name of another length than
// forwardedNames' is answered without folding it or hashing it.
func isForwardedMeta(name string) bool {
	if foldedHasPrefix(name, forwardedPrefix) {
		return true
	}
	switch len(name) {
	case len("forwarded"), len("x-original-uri"), len("x-original-method"): // x-real-ip: 9 too
	default:
		return false
	}
	var buf [len("x-original-method")]byte
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		b[i] = foldHeaderByte(name[i])
	}
	return forwardedNames[string(b)] // no allocation for a map index
}

// foldedHasPrefix reports whether name, folded, starts with the folded
// prefix.
func foldedHasPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if foldHeaderByte(name[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// canonicalHeader is a header's key in an http.Header.
func canonicalHeader(name string) string { return textproto.CanonicalMIMEHeaderKey(name) }
