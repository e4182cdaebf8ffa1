package cachecore

import (
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
