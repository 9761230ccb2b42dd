package tests

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"jwtgate/models"
)

// settingsKeys lists every settings key models.Settings accepts, as dotted
// paths ("auth.cache.ttl"); the fields of list entries appear once, under
// "list[]." ("routes[].allow").
func settingsKeys(t reflect.Type, prefix string, out *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		name := tag[0]
		if name == "-" {
			continue
		}
		if slices.Contains(tag[1:], "inline") || (f.Anonymous && name == "") {
			settingsKeys(f.Type, prefix, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		key := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct && ft.PkgPath() == "jwtgate/models":
			settingsKeys(ft, key+".", out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem().PkgPath() == "jwtgate/models":
			settingsKeys(ft.Elem(), key+"[].", out)
		default:
			*out = append(*out, key)
		}
	}
}

// yamlKeys lists the dotted paths of the keys settings.yaml spells out
// (list entries as "list[].field").
func yamlKeys(n *yaml.Node, prefix string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			yamlKeys(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := prefix + n.Content[i].Value
			out[key] = true
			v := n.Content[i+1]
			switch v.Kind {
			case yaml.MappingNode:
				yamlKeys(v, key+".", out)
			case yaml.SequenceNode:
				for _, e := range v.Content {
					if e.Kind == yaml.MappingNode {
						yamlKeys(e, key+"[].", out)
					}
				}
			}
		}
	}
}

// TestReadmeSettingsReference keeps the README's settings reference, the
// commented settings.yaml and the settings the gateway accepts in step:
// every key the gateway accepts has a row in the reference and is
// documented in settings.yaml (as a key, or for fields of list entries
// that the default file leaves empty, in a comment), and every row names
// a real key.
func TestReadmeSettingsReference(t *testing.T) {
	var keys []string
	settingsKeys(reflect.TypeFor[models.Settings](), "", &keys)

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, ref, ok := strings.Cut(string(readme), "\n## Settings reference\n")
	if !ok {
		t.Fatal("README.md has no '## Settings reference' section")
	}
	if i := strings.Index(ref, "\n## "); i >= 0 {
		ref = ref[:i]
	}
	rowKey := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
	rows := map[string]bool{}
	for _, m := range rowKey.FindAllStringSubmatch(ref, -1) {
		if rows[m[1]] {
			t.Errorf("README settings reference: two rows for %s", m[1])
		}
		rows[m[1]] = true
	}

	raw, err := os.ReadFile("../settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	inYAML := map[string]bool{}
	yamlKeys(&doc, "", inYAML)
	comments := map[string]bool{} // field names mentioned as "name:" in a comment
	commentKey := regexp.MustCompile(`([a-z_]+):`)
	for _, line := range strings.Split(string(raw), "\n") {
		if _, c, ok := strings.Cut(line, "#"); ok {
			for _, m := range commentKey.FindAllStringSubmatch(c, -1) {
				comments[m[1]] = true
			}
		}
	}

	for _, k := range keys {
		if !rows[k] {
			t.Errorf("README settings reference has no row for `%s`", k)
		}
		last := k[strings.LastIndexAny(k, ".]")+1:]
		parent := k[:max(strings.LastIndex(k, "."), 0)]
		// A key the default file leaves out (a field of list entries, or an
		// option shown commented out) is documented in a comment.
		documented := inYAML[k] || (comments[last] && (strings.Contains(k, "[]") || inYAML[parent]))
		if !documented {
			t.Errorf("settings.yaml does not document %s", k)
		}
	}
	for k := range rows {
		if !slices.Contains(keys, k) {
			t.Errorf("README settings reference names %s, which is not a settings key", k)
		}
	}
}
