package models

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeObject decodes b, a JSON object that checkShape has accepted (valid
// JSON, bounded depth), into what json.Unmarshal into a map[string]any
// gives: objects as map[string]any, arrays as []any, numbers as
// json.Number when useNumber is set (json.Decoder.UseNumber), else
// float64. It is one pass without reflection; a string with an escape or
// invalid UTF-8 is unquoted by encoding/json itself. ok is false when it
// leaves the whole text to encoding/json (a number float64 cannot hold).
func decodeObject(b []byte, useNumber bool) (m map[string]any, ok bool) {
	d := objDecoder{b: b, useNumber: useNumber}
	d.skip()
	if d.i >= len(b) || b[d.i] != '{' {
		return nil, false
	}
	v, ok := d.object()
	return v, ok
}

// objDecoder reads one JSON text known to be valid.
type objDecoder struct {
	b         []byte
	i         int
	useNumber bool
}

func (d *objDecoder) skip() { d.i = skipSpace(d.b, d.i) }

func (d *objDecoder) value() (any, bool) {
	d.skip()
	if d.i >= len(d.b) {
		return nil, false
	}
	switch d.b[d.i] {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		return d.str()
	case 't':
		d.i += len("true")
		return true, true
	case 'f':
		d.i += len("false")
		return false, true
	case 'n':
		d.i += len("null")
		return nil, true
	}
	return d.number()
}

func (d *objDecoder) object() (map[string]any, bool) {
	m := map[string]any{}
	d.i++ // {
	d.skip()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, true
	}
	for d.i < len(d.b) {
		d.skip()
		k, ok := d.str()
		if !ok {
			return nil, false
		}
		d.skip()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, false
		}
		d.i++
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		m[k] = v
		if done, ok := d.after('}'); !ok {
			return nil, false
		} else if done {
			return m, true
		}
	}
	return nil, false
}

// after reads what follows a member or element: a comma (more follow) or
// closer (done); anything else is not ok.
func (d *objDecoder) after(closer byte) (done, ok bool) {
	d.skip()
	if d.i >= len(d.b) {
		return false, false
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return false, true
	case closer:
		d.i++
		return true, true
	}
	return false, false
}

func (d *objDecoder) array() ([]any, bool) {
	a := make([]any, 0) // encoding/json: [] is an empty slice, not nil
	d.i++               // [
	d.skip()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return a, true
	}
	for d.i < len(d.b) {
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		a = append(a, v)
		if done, ok := d.after(']'); !ok {
			return nil, false
		} else if done {
			return a, true
		}
	}
	return nil, false
}

// str reads a string at d.i. One without escapes and of valid UTF-8 is its
// bytes; any other is unquoted by encoding/json (escapes, surrogates,
// invalid UTF-8 as U+FFFD).
func (d *objDecoder) str() (string, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	end, escaped := stringEnd(d.b, d.i)
	if end < 0 {
		return "", false
	}
	quoted := d.b[d.i : end+1]
	d.i = end + 1
	inner := quoted[1 : len(quoted)-1]
	if !escaped || (!hasBackslash(inner) && utf8.Valid(inner)) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return "", false
	}
	return s, true
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

func (d *objDecoder) number() (any, bool) {
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			d.i++
			continue
		}
		break
	}
	if d.i == start {
		return nil, false
	}
	text := string(d.b[start:d.i])
	if d.useNumber {
		return json.Number(text), true
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, false // out of range: encoding/json's error, not ours to copy
	}
	return f, true
}
