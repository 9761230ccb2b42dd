package fakeauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// object is a JSON object that keeps its key order, so bodies come out byte for byte as DRF's
// renderer writes them (compact, declaration order) and tests can compare strings.
type object []member

type member struct {
	key string
	val any
}

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(m.key)
		if err != nil {
			return nil, err
		}
		v, err := marshal(m.val)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", m.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o object) set(key string, val any) object {
	for i := range o {
		if o[i].key == key {
			o[i].val = val
			return o
		}
	}
	return append(o, member{key, val})
}

// marshal encodes like DRF's JSONRenderer: compact, and "<", ">", "&" left as they are.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// detail is DRF's body for an exception with a string detail.
func detail(msg string) object { return object{{"detail", msg}} }

// tokenNotValid is SimpleJWT's InvalidToken body.
func tokenNotValid(msg string) object { return object{{"detail", msg}, {"code", "token_not_valid"}} }

// setCommonHeaders adds the headers Django's default middleware and DRF put on every API response.
func setCommonHeaders(h http.Header, allow string) {
	h.Set("Vary", "Accept")
	if allow != "" {
		h.Set("Allow", allow)
	}
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// writeJSON writes a DRF response. Every 401 carries the WWW-Authenticate challenge: SimpleJWT's
// token views and its authentication class both declare realm "api".
func writeJSON(w http.ResponseWriter, status int, body any, allow string) {
	b, err := marshal(body)
	if err != nil {
		writeDjangoPage(w, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	setCommonHeaders(h, allow)
	h.Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="api"`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client may be gone; nothing to do about it
}

// writeDjangoPage writes the plain HTML page Django (DEBUG=False) serves for errors outside DRF:
// unknown URLs, unhandled exceptions, oversized bodies.
func writeDjangoPage(w http.ResponseWriter, status int) {
	title, text := "Server Error (500)", ""
	switch status {
	case http.StatusNotFound:
		title, text = "Not Found", "The requested resource was not found on this server."
	case http.StatusBadRequest:
		title = "Bad Request (400)"
	}
	body := "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>" + title + "</title>\n</head>\n<body>\n  <h1>" +
		title + "</h1><p>" + text + "</p>\n</body>\n</html>\n"
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// maxBody is Django's DATA_UPLOAD_MAX_MEMORY_SIZE.
const maxBody = 2621440

// errTooBig marks a body over maxBody: Django answers with its HTML 400 page, not DRF JSON.
var errTooBig = errors.New("request body too large")

// parseData reads a request body the way DRF's default parsers do and returns request.data, or a
// 4xx DRF body (or errTooBig). JSON may decode to a non-object; the serializer rejects that.
func parseData(r *http.Request) (any, int, object, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, 0, nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBody {
		return nil, 0, nil, errTooBig
	}
	if len(body) == 0 {
		// DRF skips the parsers when there is no body: every field is then "required".
		return map[string]any{}, 0, nil, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	switch mt {
	case "application/json":
		v, msg := decodeJSON(body)
		if msg != "" {
			return nil, http.StatusBadRequest, detail("JSON parse error - " + msg), nil
		}
		return v, 0, nil, nil
	case "application/x-www-form-urlencoded":
		q, _ := url.ParseQuery(string(body)) // Django's QueryDict skips what it cannot parse
		return formValues(q), 0, nil, nil
	case "multipart/form-data":
		r.Body = io.NopCloser(bytes.NewReader(body))
		if params["boundary"] == "" {
			return nil, http.StatusBadRequest, detail("Multipart form parse error - Invalid boundary in multipart: None"), nil
		}
		if err := r.ParseMultipartForm(maxBody); err != nil {
			return nil, http.StatusBadRequest, detail("Multipart form parse error - " + err.Error()), nil
		}
		return formValues(r.MultipartForm.Value), 0, nil, nil
	}
	return nil, http.StatusUnsupportedMediaType, detail(fmt.Sprintf("Unsupported media type \"%s\" in request.", ct)), nil
}

// formValues turns a form into request.data; QueryDict.get returns a key's last value.
func formValues(q map[string][]string) map[string]any {
	m := make(map[string]any, len(q))
	for k, vs := range q {
		if len(vs) > 0 {
			m[k] = vs[len(vs)-1]
		}
	}
	return m
}

// decodeJSON decodes body and, on failure, returns a message in the style of Python's json module
// ("Expecting value: line 1 column 1 (char 0)"), which DRF puts after "JSON parse error - ".
func decodeJSON(body []byte) (any, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil {
		off := dec.InputOffset()
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			rest := body[off:]
			off += int64(len(rest) - len(bytes.TrimLeft(rest, " \t\r\n")))
			return nil, pyPos("Extra data", body, off)
		}
		return v, ""
	}
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		what := "Expecting value"
		switch msg := syn.Error(); {
		case strings.Contains(msg, "beginning of object key"):
			what = "Expecting property name enclosed in double quotes"
		case strings.Contains(msg, "after object key:value pair"), strings.Contains(msg, "after array element"):
			what = "Expecting ',' delimiter"
		case strings.Contains(msg, "after object key"):
			what = "Expecting ':' delimiter"
		case strings.Contains(msg, "in string"):
			what = "Invalid control character at"
		}
		return nil, pyPos(what, body, max(syn.Offset-1, 0))
	default: // io.EOF (blank body) or io.ErrUnexpectedEOF (truncated)
		return nil, pyPos("Expecting value", body, int64(len(body)))
	}
}

// pyPos formats a position as Python's json.JSONDecodeError does.
func pyPos(what string, body []byte, off int64) string {
	off = min(off, int64(len(body)))
	before := body[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return fmt.Sprintf("%s: line %d column %d (char %d)", what, line, col, off)
}

// pyType names a decoded JSON value's Python type, for DRF's "Expected a dictionary" error.
func pyType(v any) string {
	switch x := v.(type) {
	case []any:
		return "list"
	case string:
		return "str"
	case bool:
		return "bool"
	case json.Number:
		if strings.ContainsAny(x.String(), ".eE") {
			return "float"
		}
		return "int"
	}
	return "NoneType"
}

// charField validates one serializers.CharField of request.data: the value (trimmed, as DRF's
// trim_whitespace does) or the error message.
func charField(data map[string]any, name string) (string, string) {
	v, ok := data[name]
	if !ok {
		return "", "This field is required."
	}
	var s string
	switch x := v.(type) {
	case nil:
		return "", "This field may not be null."
	case string:
		s = x
	case json.Number:
		s = x.String()
	default:
		return "", "Not a valid string."
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "This field may not be blank."
	}
	return s, ""
}

// fields validates the serializer's CharFields in declaration order. On failure it returns
// DRF's 400 body: {"field": ["message"], ...}, or a non_field_errors body for data that is not a
// JSON object.
func fields(data any, names ...string) ([]string, object) {
	m, ok := data.(map[string]any)
	if !ok {
		if data == nil {
			return nil, object{{"non_field_errors", []string{"No data provided"}}}
		}
		return nil, object{{"non_field_errors", []string{"Invalid data. Expected a dictionary, but got " + pyType(data) + "."}}}
	}
	vals := make([]string, len(names))
	var errs object
	for i, n := range names {
		v, msg := charField(m, n)
		if msg != "" {
			errs = append(errs, member{n, []string{msg}})
		}
		vals[i] = v
	}
	return vals, errs
}

// isoTime renders a datetime as DRF's DateTimeField does: Python's isoformat() in the service's
// time zone (microseconds only when non-zero), with "+00:00" shortened to "Z".
func isoTime(t time.Time, loc *time.Location) string {
	t = t.In(loc)
	layout := "2006-01-02T15:04:05-07:00"
	if t.Nanosecond()/1000 != 0 {
		layout = "2006-01-02T15:04:05.000000-07:00"
	}
	s := t.Format(layout)
	if rest, ok := strings.CutSuffix(s, "+00:00"); ok {
		s = rest + "Z"
	}
	return s
}
