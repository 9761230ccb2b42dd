package models

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// This file reads settings.yaml: the YAML over the defaults (unknown keys
// refused), then the environment overrides. Rewording yaml.v3's errors is
// settings_explain.go's; checking values is Validate's (validate*.go);
// building what the gateway runs on is Compile's (compile.go).

// LoadSettings reads settings.yaml over the defaults, applies the
// environment overrides and validates the result. Every problem is
// reported at once, each naming its key; the error is a Problems then.
// When the error is not nil the settings must not be served; they are
// returned, as far as they decoded, for reporting.
func LoadSettings(r io.Reader, getenv func(string) string) (Settings, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return Settings{}, fmt.Errorf("settings: %w", err)
	}
	s, probs := ParseAndValidate(raw, getenv)
	return s, Problems(probs).Err()
}

// ParseAndValidate decodes raw (see ParseSettings) and, when it is YAML at
// all, validates what decoded, so every problem is reported at once: the
// decoding ones (unknown keys, values of the wrong type, with their lines)
// first, then Validate's.
func ParseAndValidate(raw []byte, getenv func(string) string) (Settings, []Problem) {
	s, probs, decoded := ParseSettings(raw, getenv)
	if !decoded {
		return s, probs
	}
	return s, append(probs, s.Validate()...)
}

// ParseSettings decodes raw over DefaultSettings (unknown keys are
// problems, not silently ignored) and applies the environment overrides
// ($JWTGATE_LISTEN, $JWTGATE_AUTH_SERVICE_URL, $JWTGATE_DATABASE_DSN). It
// does not validate. A key of the wrong type or an unknown key is a problem
// naming its key and line, and the rest still decodes; when raw is not YAML
// at all, decoded is false, the zero Settings is returned and the one
// problem names the line.
func ParseSettings(raw []byte, getenv func(string) string) (s Settings, probs []Problem, decoded bool) {
	s = DefaultSettings()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true) // "timout: 5s" fails instead of silently keeping the default
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) { // a syntax error: nothing more can be said
			return Settings{}, []Problem{explainSyntax(err, raw)}, false
		}
		// Unknown keys and bad values: yaml.v3 decoded the rest.
		probs = explainYAML(te, raw)
	}
	s.Listen = cmp.Or(getenv(EnvListen), s.Listen)
	s.AuthService.URL = cmp.Or(getenv(EnvAuthServiceURL), s.AuthService.URL)
	s.Database.DSN = cmp.Or(getenv(EnvDatabaseDSN), s.Database.DSN)
	return s, probs, true
}
