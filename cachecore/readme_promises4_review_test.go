package cachecore

import (
	"testing"
)

// Review Z220 (readme_promises4): README promises of "Stampedes, stale
// answers and refreshes", "Cache-Status and request directives",
// "Failure policies", "Purge API" and "Mesh-wide L2" checked against the
// code.

// README, "Stampedes": the remaining followers are answered with the last
// leader's 429 or 5xx "with its Retry-After, when that is whole seconds;
// more than 65535 is passed as 65535". retryAfterOf drops a value of more
// than ten digits altogether (and one with leading zeros past ten
// characters), so a model that says "come back in 31536000000 s" (a
// quota exhausted for good, whole seconds, more than 65535) has its
// followers answered 429 with no Retry-After: every client of the burst
// retries at once, the stampede the clamp was added to prevent.
// Expected: whole seconds over 65535 are passed as 65535, whatever their
// number of digits; "000000000007" is 7 s.
func TestReadmePromises4LongRetryAfterIsClampedNotDropped(t *testing.T) {
	for _, tc := range []struct{ name, upstream, want string }{
		{"eleven digits", "31536000000", "65535"},
		{"twenty digits", "99999999999999999999", "65535"},
		{"leading zeros", "000000000007", "7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := refreshFollowerAnswer(t, tc.upstream, `{"error":{"message":"quota exhausted","type":"insufficient_quota"}}`)
			if a.Status != 429 {
				t.Fatalf("setup: the follower is answered %d, want 429", a.Status)
			}
			if ra := headerValue(a.Headers, "retry-after"); ra != tc.want {
				t.Fatalf("the model answered 429 with Retry-After: %s (whole seconds); the follower's leader-failed 429 carries retry-after %q, want %q (README: more than 65535 is passed as 65535)", tc.upstream, ra, tc.want)
			}
		})
	}
}
