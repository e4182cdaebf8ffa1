package cachecore

import (
	"testing"
	"time"
)

// README (freshness_slo): the rate is stale/total over the window, and a
// breach is raised once and cleared once per crossing; RATIONALE ("The
// wall clock may step back"): the 10 s clockSkewMs is for workers' clocks,
// not steps. flushRoute folds only buckets starting beyond now+clockSkewMs
// into now's bucket; with the minimum window of 10 s (the README's own
// example) twelve buckets span 9,996 ms, so after a step back of one
// window the newest bucket, 9,996 ms "ahead", sits in now's slot i without
// being folded, and "starts[i] != start" resets it: its responses — the
// stale ones holding the breach — are dropped, and an idle flush reports
// a recovery of a breach that never ended.
func TestSLOStepBackOfAShortWindowKeepsTheNewestBucket(t *testing.T) {
	e := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions",
	  "freshness_slo":{"max_age":"1s","max_fraction":0.1,"window":"10s","min_samples":10}}]}`)
	r := e.route("chat")
	width := int64(10_000 / sloBuckets) // 833 ms
	for (e.clock.Now().UnixMilli()/width)%sloBuckets != 0 || e.clock.Now().UnixMilli()%width != 0 {
		e.clock.Advance(time.Millisecond)
	}
	e.clock.Advance(time.Duration(width+400) * time.Millisecond) // index 1, 400 ms in
	flush := func() SLOStatus { return flushOneSLO(t, e) }
	st := fiveFreshBucketsThenStale(t, e, r, width)
	if !st.Breached || !st.Transition || st.Total != 200 || st.Stale != 100 {
		t.Fatalf("setup: %+v", st)
	}
	idx := (e.clock.Now().UnixMilli() / width) % sloBuckets
	// NTP steps the wall clock back 10 s (one window); the route is idle.
	e.clock.Set(e.clock.Now().Add(-10 * time.Second))
	if got := (e.clock.Now().UnixMilli() / width) % sloBuckets; got != idx {
		t.Fatalf("setup: now's bucket %d, the stale bucket %d", got, idx)
	}
	st = flush()
	if st.Stale != 100 || !st.Breached || st.Transition {
		t.Fatalf("idle flush after a 10 s step back (window 10s): total %d stale %d rate %.2f breached %v transition %v (want 100 stale, breached, no transition): the newest bucket (slot %d, %d ms ahead of now's start, within clockSkewMs so not folded) was reset for now",
			st.Total, st.Stale, st.Rate, st.Breached, st.Transition, idx, width*sloBuckets)
	}
}
