package cachecore

import (
	"encoding/json"
	"strings"
	"testing"
)

// A purge.token with leading or trailing white space passes validation
// (its length counts the spaces), but no request can ever present it:
// PurgeAuthorized trims the header's token, and HTTP strips white space
// around a header value anyway. The purge API then answers 401 to every
// call, the operator's included. Either such a token is refused at start,
// or the bearer token as a client can send it is accepted.
func TestPurgeTokenWithSurroundingSpaceIsUsable(t *testing.T) {
	for _, token := range []string{" purge-token-0123456789", "purge-token-0123456789 ", "purge-token-0123456789\t"} {
		t.Run(strings.ReplaceAll(token, "\t", `\t`), func(t *testing.T) {
			cfg := `{"purge":{"path":"/_modelcache/purge","token":` + jsonQuote(token) + `},` + minimalChat[1:]
			if _, err := ParseConfig([]byte(cfg)); err != nil {
				return // refused at start: the operator is told
			}
			env := newEnv(t, cfg)
			for _, h := range []string{"Bearer " + token, "Bearer " + strings.TrimSpace(token)} {
				if env.cache.PurgeAuthorized(hdr("authorization", strings.TrimSpace(h))) {
					return
				}
			}
			t.Fatalf("token %q accepted by the configuration, but no Authorization header a client can send is authorized", token)
		})
	}
}

func jsonQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\t", `\t`).Replace(s) + `"`
}

// A control character inside the token (a newline pasted with it, a NUL)
// cannot be carried by an HTTP header either: Envoy refuses such a header
// value, so every purge would be answered 401. Refused at start.
func TestPurgeTokenWithControlCharactersIsRefused(t *testing.T) {
	for _, token := range []string{"purge-token\n0123456789", "purge-token\x000123456789", "purge-token\x7f0123456789"} {
		t.Run(strings.ToValidUTF8(strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return '?'
			}
			return r
		}, token), "?"), func(t *testing.T) {
			b, _ := json.Marshal(token)
			cfg := `{"purge":{"path":"/_modelcache/purge","token":` + string(b) + `},` + minimalChat[1:]
			if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), "purge.token") {
				t.Fatalf("token %q: %v, want a purge.token error", token, err)
			}
		})
	}
}
