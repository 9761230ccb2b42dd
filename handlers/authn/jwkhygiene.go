package authn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"jwtgate/handlers/keymat"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/MicahParks/jwkset"
)

// privateJWKMembers are the JWK members that hold private key material
// (RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2). A public JWKS carrying one has
// leaked its signing key: anyone who read it can sign tokens. "k" (an oct
// key's secret) is listed for the asymmetric types; oct keys themselves are
// refused when used (see asymmetric).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// unusableJWK says why one JWK of a JWKS must be skipped, or "" to keep
// it: private key material, an RSA key under keymat.MinRSABits, or a key jwkset
// cannot parse (which would otherwise fail the whole JWKS).
func unusableJWK(raw json.RawMessage) string {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return "not a JSON object"
	}
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return "not a JWK: " + err.Error()
	}
	if m.KTY == jwkset.KtyOct {
		return "" // refused when used: a symmetric key in a public JWKS
	}
	for _, name := range privateJWKMembers {
		if _, ok := members[name]; ok {
			return "carries private key material (" + strconv.Quote(name) + ")"
		}
	}
	k, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if errors.Is(err, jwkset.ErrUnsupportedKey) {
		return "" // jwkset skips it too
	}
	if err != nil {
		return "unusable: " + err.Error()
	}
	if err := keymat.CheckPublic(k.Key()); err != nil {
		return err.Error()
	}
	return ""
}

// jwkFilter drops the unusable keys from a JWKS answer before jwkset reads
// it, so one bad key does not make the rest unusable. Each skipped key is
// logged once and counted.
type jwkFilter struct {
	next    http.RoundTripper
	url     string
	log     *slog.Logger
	skipped *atomic.Int64

	mu     sync.Mutex
	logged map[string]bool // kid + reason, logged already
}

// RoundTrip filters a 200 answer that is a JWKS; anything else is left to
// jwkset to report.
func (f *jwkFilter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if filtered, ok := f.filter(body); ok {
		body = filtered
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// filter returns the JWKS without its unusable keys; ok is false when body
// is not a JWKS.
func (f *jwkFilter) filter(body []byte) ([]byte, bool) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Keys == nil {
		return nil, false
	}
	kept := make([]json.RawMessage, 0, len(doc.Keys))
	for i, raw := range doc.Keys {
		if why := unusableJWK(raw); why != "" {
			f.skip(i, raw, why)
			continue
		}
		kept = append(kept, raw)
	}
	out, err := json.Marshal(map[string]any{"keys": kept})
	if err != nil {
		return nil, false
	}
	return out, true
}

// skip logs and counts a skipped key the first time it is seen.
func (f *jwkFilter) skip(i int, raw json.RawMessage, why string) {
	var id struct {
		KID string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &id)
	f.mu.Lock()
	seen := f.logged[id.KID+"\x00"+why]
	if !seen {
		f.logged[id.KID+"\x00"+why] = true
	}
	f.mu.Unlock()
	if seen {
		return
	}
	f.skipped.Add(1)
	f.log.Error("JWKS key skipped: it cannot be used to verify tokens; the other keys stay in use",
		"url", f.url, "index", i, "kid", id.KID, "reason", why)
}
