package models

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// This file holds the wording of settings errors: the key and line of a
// decoding error, the nearest known key for a misspelt one, and the line a
// YAML syntax error really is on.

// explainYAML turns yaml.v3's decoding errors into problems that name the
// key and line: "line 3: field timout not found in type
// models.AuthService" becomes auth_service (line 3): unknown key "timout":
// did you mean timeout?
func explainYAML(te *yaml.TypeError, raw []byte) []Problem {
	keys := keysByLine(raw)
	out := make([]Problem, 0, len(te.Errors))
	for _, m := range te.Errors {
		var p Problem
		if _, scanErr := fmt.Sscanf(m, "line %d:", &p.Line); scanErr == nil {
			_, p.Msg, _ = strings.Cut(m, ": ")
			p.Key = keys[p.Line]
		} else {
			p = Problem{Msg: m}
		}
		// "field timout not found in type models.AuthService"
		if rest, ok := strings.CutPrefix(p.Msg, "field "); ok && p.Line > 0 {
			if name, _, ok := strings.Cut(rest, " not found"); ok {
				p.Msg = fmt.Sprintf("unknown key %q", name)
				_, typeName, _ := strings.Cut(rest, " not found in type ")
				if hint := unknownKeyHint(typeName, name); hint != "" {
					p.Msg += ": " + hint
				} else {
					p.Msg += " (jwtgate config prints every key)"
				}
			}
		}
		// "cannot unmarshal !!str `5 sec` into time.Duration"
		if strings.Contains(p.Msg, "time.Duration") {
			p.Msg += ` (want a Go duration such as "30s" or "5m")`
		}
		out = append(out, p)
	}
	return out
}

// settingsKeys maps each struct type of Settings, as yaml.v3 names it in
// "field x not found in type models.AuthService", to its dotted section and
// the YAML keys it accepts.
var settingsKeys = func() map[string]settingsSection {
	out := map[string]settingsSection{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[Settings]().PkgPath() {
			return
		}
		sec := settingsSection{prefix: prefix}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			sec.keys = append(sec.keys, name)
			child := name
			if prefix != "" {
				child = prefix + "." + name
			}
			if f.Type.Kind() == reflect.Slice {
				child += "[]"
			}
			walk(f.Type, child)
		}
		if _, seen := out[t.String()]; !seen {
			out[t.String()] = sec
		}
	}
	walk(reflect.TypeFor[Settings](), "")
	return out
}()

// settingsSection is one mapping of settings.yaml: its dotted prefix
// ("auth.local", "routes[]") and its keys.
type settingsSection struct {
	prefix string
	keys   []string
}

// unknownKeyHint suggests what an unknown key in the section of type
// typeName was meant to be: the nearest key of that section ("did you mean
// timeout?"), else the same key in another section. Empty when nothing is
// close.
func unknownKeyHint(typeName, name string) string {
	sec, ok := settingsKeys[typeName]
	if !ok {
		return ""
	}
	if best := nearestKey(name, sec.keys); best != "" {
		return fmt.Sprintf("did you mean %s?", best)
	}
	norm := normalizeKey(name)
	for _, other := range settingsKeys {
		for _, k := range other.keys {
			if normalizeKey(k) == norm && other.prefix != sec.prefix {
				where := k
				if other.prefix != "" {
					where = other.prefix + "." + k
				}
				return fmt.Sprintf("%s is a key of another section: did you mean %s?", k, where)
			}
		}
	}
	return ""
}

// nearestKey returns the key of keys closest to name by edit distance
// (after folding case and '-' to '_'), or "" when none is close enough to
// be a typo: at most 2 edits, and at most a third of the name's length for
// longer names.
func nearestKey(name string, keys []string) string {
	norm := normalizeKey(name)
	best, bestD := "", 0
	for _, k := range keys {
		d := levenshtein(norm, normalizeKey(k))
		if best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	limit := max(2, len([]rune(norm))/3)
	if best == "" || bestD > limit || bestD >= len([]rune(norm)) {
		return ""
	}
	return best
}

func normalizeKey(k string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "-", "_")
}

// levenshtein is the edit distance between a and b (insertions, deletions
// and substitutions of runes).
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// yamlLinePrefix is yaml.v3's "yaml: line N: " (absent from some errors).
var yamlLinePrefix = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// explainSyntax rewords a YAML syntax error as a problem that names the
// line it is on. yaml.v3 names the line where the enclosing construct
// starts ("line 1: did not find expected '-' indicator" for a bad indent on
// line 4) or no line at all (control characters), so the line is found
// again: the first line at which the document, cut there, already fails
// with the same message.
func explainSyntax(err error, raw []byte) Problem {
	msg := err.Error()
	m := yamlLinePrefix.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Msg: msg}
	}
	what := msg[len(m[0]):]
	lines := bytes.SplitAfter(raw, []byte("\n"))
	for n := 1; n <= len(lines); n++ {
		var node yaml.Node
		perr := yaml.Unmarshal(bytes.Join(lines[:n], nil), &node)
		if perr == nil {
			continue
		}
		pm := yamlLinePrefix.FindStringSubmatch(perr.Error())
		if pm == nil || perr.Error()[len(pm[0]):] != what {
			continue
		}
		text := strings.TrimRight(string(lines[n-1]), "\r\n")
		if len(text) > 80 {
			text = text[:77] + "..."
		}
		return Problem{Line: n, Msg: fmt.Sprintf("YAML syntax error: %s: %q", what, text)}
	}
	line, _ := strconv.Atoi(m[1]) // 0 when yaml.v3 named none
	return Problem{Line: line, Msg: "YAML syntax error: " + what}
}

// keysByLine maps each line of a YAML document to the dotted key defined
// there (list items as key[i]), to name keys in decoding errors.
func keysByLine(raw []byte) map[int]string {
	var doc yaml.Node
	out := map[int]string{}
	if yaml.Unmarshal(raw, &doc) != nil {
		return out
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				name := k.Value
				if prefix != "" {
					name = prefix + "." + k.Value
				}
				out[k.Line] = name
				if v.Line != k.Line || v.Kind != yaml.ScalarNode {
					walk(v, name)
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				name := fmt.Sprintf("%s[%d]", prefix, i)
				if _, taken := out[c.Line]; !taken || c.Kind == yaml.ScalarNode {
					out[c.Line] = name
				}
				walk(c, name)
			}
		}
	}
	walk(&doc, "")
	return out
}
