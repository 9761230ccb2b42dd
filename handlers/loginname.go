package handlers

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Login bodies the gateway reads the login name from: exactly the media
// types DRF's JSONParser and FormParser take (compared lowercased, as DRF
// does). Anything else is refused before relaying while the per-account
// throttle is on: a body the gateway cannot read would be a guess it cannot
// count.
const (
	mediaJSON = "application/json"
	mediaForm = "application/x-www-form-urlencoded"
)

// defaultLoginFields are the fields read when throttle.login_field is empty.
var defaultLoginFields = []string{"email", "username"}

// loginNames returns the login names a login body carries, as Django
// would read them: for each field, the value SimpleJWT's serializer hands
// to authenticate (the last of duplicates, numbers as Python's str()
// spells them, surrounding whitespace trimmed as DRF's CharField does).
// Fields Django would refuse before checking a password (missing, null,
// bool, list, blank) give no name.
func loginNames(mediaType string, body []byte, fields []string) []string {
	var get func(field string) (string, bool)
	switch mediaType {
	case mediaJSON:
		obj, ok := jsonObject(body)
		if !ok {
			return nil
		}
		get = func(f string) (string, bool) { return jsonLoginValue(obj[f]) }
	case mediaForm:
		vals := pythonParseQSL(body)
		get = func(f string) (string, bool) {
			v, ok := vals[f]
			return v, ok
		}
	default:
		return nil
	}
	var out []string
	for _, f := range fields {
		v, ok := get(f)
		if !ok {
			continue
		}
		if v = strings.TrimFunc(v, pythonSpace); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// jsonObject decodes a JSON object the way Python's json module does for
// what matters here: a repeated key keeps its last value. Numbers are kept
// as written.
func jsonObject(body []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, false
	}
	if _, err := dec.Token(); err == nil { // trailing data: Python's "Extra data"
		return nil, false
	}
	return obj, true
}

// jsonLoginValue is what DRF's CharField makes of a JSON value: strings
// as they are, numbers through Python's str(); anything else is invalid.
func jsonLoginValue(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return pythonNumber(string(v))
	}
	return "", false
}

// pythonNumber spells a JSON number as Python's str() of what json.loads
// returns: an int for an integer literal, else a float (repr).
func pythonNumber(lit string) (string, bool) {
	if !strings.ContainsAny(lit, ".eE") {
		n, ok := new(big.Int).SetString(lit, 10)
		if !ok {
			return "", false
		}
		return n.String(), true
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !math.IsInf(f, 0) {
		return "", false
	}
	return pythonFloatRepr(f), true
}

// pythonFloatRepr is Python's repr(float): the shortest round-trip digits,
// positional when the decimal point falls within -4 < exponent <= 16 (with
// ".0" when integral), else scientific with at least two exponent digits.
func pythonFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	sign := ""
	if math.Signbit(f) {
		sign, f = "-", -f
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	decpt := x + 1 // digits before the decimal point
	if decpt <= -4 || decpt > 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if x < 0 {
			es, x = "-", -x
		}
		return sign + m + "e" + es + strings.Repeat("0", max(0, 2-len(strconv.Itoa(x)))) + strconv.Itoa(x)
	}
	switch {
	case decpt <= 0:
		return sign + "0." + strings.Repeat("0", -decpt) + digits
	case decpt >= len(digits):
		return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
	default:
		return sign + digits[:decpt] + "." + digits[decpt:]
	}
}

// pythonParseQSL reads a form body as Django's QueryDict does (Python's
// parse_qsl with keep_blank_values, "&" the only separator, "+" as space,
// bad percent escapes kept literally, bad UTF-8 replaced; a body that is
// not UTF-8 read as Latin-1) and returns each key's last value, what
// QueryDict.get and DRF's form fields use.
func pythonParseQSL(body []byte) map[string]string {
	s := string(body)
	if !utf8.ValidString(s) {
		var b strings.Builder
		for _, c := range body {
			b.WriteRune(rune(c))
		}
		s = b.String()
	}
	out := map[string]string{}
	for _, pair := range strings.Split(s, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		out[pythonUnquote(strings.ReplaceAll(k, "+", " "))] = pythonUnquote(strings.ReplaceAll(v, "+", " "))
	}
	return out
}

// pythonUnquote is urllib.parse.unquote: valid %XX escapes become bytes,
// decoded as UTF-8 with invalid sequences replaced; anything else is kept.
func pythonUnquote(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var out strings.Builder
	var pending []byte // decoded bytes awaiting UTF-8 decoding
	flush := func() {
		out.WriteString(strings.ToValidUTF8(string(pending), "\uFFFD"))
		pending = pending[:0]
	}
	for i := 0; i < len(s); {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			pending = append(pending, byte(b))
			i += 3
			continue
		}
		pending = append(pending, s[i])
		i++
	}
	flush()
	return out.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// pythonSpace is str.strip()'s whitespace: Unicode White_Space plus the
// information separators U+001C..U+001F, which Python also strips.
func pythonSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// foldLoginName is the spelling a login name is counted under: NFKC, then
// Unicode case folding. Two spellings that Django (or a case-insensitive
// database collation) could take for one account always share a count;
// two accounts differing only in case share one too, which only makes a
// lockout coarser, never lets a guess escape it.
func foldLoginName(name string) string {
	return cases.Fold().String(norm.NFKC.String(name))
}
