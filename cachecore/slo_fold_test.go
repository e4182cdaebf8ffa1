package cachecore

import (
	"testing"
	"time"
)

// 8a1621a (review Z79): "Its responses were served, though, and a breach
// they hold is not over: they are counted as of now". flushRoute folds
// each bucket that starts beyond now+clockSkewMs into the bucket of now,
// i, and resets bucket i first when it does not start at now's bucket
// start. When bucket i is itself one of the future buckets (a step back
// of a whole window lands on the newest bucket) and a future bucket j < i
// is folded first, bucket i's own counts are wiped before the loop
// reaches it: the newest responses — here the stale ones that hold the
// breach — are dropped, and an idle flush reports a recovery.
func TestSLOFoldFutureBucketsKeepsNowsOwnBucket(t *testing.T) {
	e := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.1,"window":"1m","min_samples":10}}]}`)
	r := e.route("chat")
	width := int64(5000)
	// Start at the bucket of index 1: the stale one is then index 6, with
	// the older (fresh) buckets 1-5 at lower indexes.
	for (e.clock.Now().UnixMilli()/width)%sloBuckets != 0 {
		e.clock.Advance(time.Second)
	}
	e.clock.Advance(time.Duration(width) * time.Millisecond) // index 1
	flush := func() SLOStatus { return flushOneSLO(t, e) }
	st := fiveFreshBucketsThenStale(t, e, r, width)
	if !st.Breached || st.Total != 200 || st.Stale != 100 {
		t.Fatalf("setup: %+v", st)
	}
	idx := (e.clock.Now().UnixMilli() / width) % sloBuckets
	// NTP steps the wall clock back two minutes; the route is idle.
	e.clock.Set(e.clock.Now().Add(-2 * time.Minute))
	if got := (e.clock.Now().UnixMilli() / width) % sloBuckets; got != idx {
		t.Fatalf("setup: now's bucket %d, the stale bucket %d", got, idx)
	}
	st = flush()
	if st.Total != 200 || st.Stale != 100 || !st.Breached || st.Transition {
		t.Fatalf("idle flush after a 2 min step back: total %d stale %d breached %v transition %v (want 200, 100, true, false): the newest bucket's (index %d) own responses were dropped when the older future buckets were folded into it",
			st.Total, st.Stale, st.Breached, st.Transition, idx)
	}
}

// flushOneSLO flushes the staleness SLO of a cache with one SLO route and
// returns that route's status.
func flushOneSLO(t *testing.T, e *testEnv) SLOStatus {
	t.Helper()
	out := e.cache.FlushSLO()
	if len(out) != 1 {
		t.Fatalf("%d statuses", len(out))
	}
	return out[0]
}

// fiveFreshBucketsThenStale serves five buckets of fresh answers on r,
// flushing after each, then one bucket of stale ones, and returns that
// last flush's status.
func fiveFreshBucketsThenStale(t *testing.T, e *testEnv, r *Route, width int64) SLOStatus {
	t.Helper()
	for b := 0; b < 5; b++ {
		for k := 0; k < 20; k++ {
			e.cache.NoteServed(r, 0)
		}
		flushOneSLO(t, e)
		e.clock.Advance(time.Duration(width) * time.Millisecond)
	}
	for k := 0; k < 100; k++ {
		e.cache.NoteServed(r, time.Minute)
	}
	return flushOneSLO(t, e)
}
