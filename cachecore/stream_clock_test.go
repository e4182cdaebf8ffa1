package cachecore

import "testing"

// A wall clock stepped back while a request was upstream gives no compute
// time, not 2^32 ms less the step: early refresh (XFetch) would refresh
// almost every hit of the entry stored with it.
func TestComputeTimeAfterClockStepsBack(t *testing.T) {
	env := newEnv(t, testConfig)
	s := &Stream{streamFields: streamFields{c: env.cache, forwardedAt: env.cache.NowMs() + 3_600_000}}
	if ms := s.computeMs(); ms != 0 {
		t.Fatalf("compute time %d ms after the clock stepped back an hour", ms)
	}
	s.forwardedAt = env.cache.NowMs() - 1500
	if ms := s.computeMs(); ms != 1500 {
		t.Fatalf("compute time %d ms, want 1500", ms)
	}
}
