package handlers

import (
	"net/http"
	"strings"
)

// maxRelayJSONDepth bounds the nesting of a JSON body relayed to a token
// endpoint. SimpleJWT's bodies are flat objects ({"refresh": "..."}); a
// body nested ~1500 deep made Django's recursive JSON parser raise
// RecursionError (a 500), which any client could send.
const maxRelayJSONDepth = 8

// errBodyTooDeep refuses such a body before it is relayed.
var errBodyTooDeep = newAPIError(http.StatusBadRequest, "bad_request", "JSON request body is nested too deeply.")

// relayBodyTooDeep says whether a token call's body must be refused: one
// the auth service may parse as JSON and nested deeper than
// maxRelayJSONDepth. contentType is what is relayed (the request's, without
// parameters). The auth service (Django REST framework) picks its parser
// by that content type, and its JSON parser also matches wildcards and an
// absent type may be parsed by a future parser: so every body is checked
// unless the content type names one of the flat form encodings.
func relayBodyTooDeep(contentType string, body []byte) bool {
	if strings.EqualFold(contentType, "application/x-www-form-urlencoded") || strings.EqualFold(contentType, "multipart/form-data") {
		return false
	}
	return jsonDepthExceeds(body, maxRelayJSONDepth)
}

// jsonDepthExceeds says whether b opens more than limit arrays or objects
// at once, counting brackets outside strings without parsing: a body that
// is not valid JSON is measured the same way, as a recursive parser would
// descend into it before finding the error.
func jsonDepthExceeds(b []byte, limit int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > limit {
				return true
			}
		case (c == ']' || c == '}') && depth > 0:
			depth--
		}
	}
	return false
}
