package cachecore

import (
	"strings"
	"testing"
)

// The :authority of the cache's own calls to webdis and to the embeddings
// server names the host they ask; an empty one asks no host at all, and
// every call failed (each a breaker failure) where the configuration could
// have said so at start (review Z244's suspicion).
func TestEmptyCallAuthorityIsRefused(t *testing.T) {
	for cfg, want := range map[string]string{
		`{"l2":{"cluster":"webdis","authority":""},"routes":[{"name":"c","kind":"chat","path_prefix":"/v1"}]}`:                "l2.authority: must not be empty",
		`{"routes":[{"name":"c","kind":"chat","path_prefix":"/v1","semantic":{"embedding":{"cluster":"e","authority":""}}}]}`: "routes[0].semantic.embedding.authority: must not be empty",
	} {
		if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", cfg, err, want)
		}
	}
}
