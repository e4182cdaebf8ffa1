package cachecore

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Two workers store items of one bucket: the one whose lookups read the
// index first stores last. Its first index write carries the CAS its
// lookups saw, which another worker's store has since changed: it must
// fail, read the index again and claim other ways, so that both workers'
// items stay cached.
func TestBatchStoreWithStaleIndexView(t *testing.T) {
	cfg := mustParse(t, `{"store":{"buckets":1,"ways":16},"routes":[{"name":"embed","kind":"embeddings","path_prefix":"/embed/","ttl":"24h"}]}`)
	store, clock := NewMemStore(), newFakeClock()
	a := &embBench{c: New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(1)}), clock: clock}
	b := &embBench{c: New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(2)}), clock: clock}
	a.route, b.route = a.c.routeByName("embed"), b.c.routeByName("embed")
	items := func(prefix string, n int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, fmt.Sprintf("%q", fmt.Sprintf("%s item %d", prefix, i)))
		}
		return out
	}
	body := func(items []string) []byte {
		return []byte(`{"model":"m","input":[` + strings.Join(items, ",") + `]}`)
	}
	// Create the model record and the index, so that both workers look up.
	if _, got := a.exchange(t, body(items("seed", 1))); got != "0/1" {
		t.Fatalf("seed: %s", got)
	}
	// A's request is looked up (its view of the index is read) …
	var s Stream
	ab := body(items("a", 4))
	hs := [][2]string{{":authority", "127.0.0.1:10100"}, {"authorization", "Bearer bench-tenant"}, {"content-type", "application/json"}, {"content-length", fmt.Sprint(len(ab))}}
	s.Begin(a.c, a.route, "POST", "/embed/v1/embeddings", hs, false, true, 1, 99)
	_, acts := s.RequestBody(len(ab), true, &fakeReader{reqBody: ab}, &HoldState{})
	if len(acts) == 0 || acts[len(acts)-1].Kind != ActForward {
		t.Fatalf("A: %s", streamActs(acts))
	}
	// … B stores its items meanwhile …
	if _, got := b.exchange(t, body(items("b", 4))); got != "0/4" {
		t.Fatalf("B: %s", got)
	}
	// … and A's answer arrives.
	ans := embBenchAnswer(ab)
	rd := &fakeReader{respHeaders: [][2]string{{":status", "200"}, {"content-type", "application/json"}, {"content-length", fmt.Sprint(len(ans))}}, respBody: ans}
	s.ResponseHeaders(false, rd)
	if _, acts := s.ResponseBody(len(ans), true, rd); !strings.Contains(streamActs(acts), "stored") {
		t.Fatalf("A's store: %s", streamActs(acts))
	}
	all := append(append(items("seed", 1), items("a", 4)...), items("b", 4)...)
	if _, got := b.exchange(t, body(all)); got != "9/9" {
		t.Fatalf("after both stores: %s cached, want 9/9", got)
	}
}

// sortByBucket is a stable sort by bucket.
func TestSortByBucketIsStable(t *testing.T) {
	x := uint64(1)
	for n := 0; n < 200; n += 7 {
		ins := make([]batchInsert, n)
		for i := range ins {
			x = x*6364136223846793005 + 1442695040888963407
			ins[i] = batchInsert{bucket: x >> 60, way: i}
		}
		want := slices.Clone(ins)
		slices.SortStableFunc(want, func(a, b batchInsert) int { return cmp.Compare(a.bucket, b.bucket) })
		got := sortByBucket(slices.Clone(ins))
		for i := range want {
			if got[i].bucket != want[i].bucket || got[i].way != want[i].way {
				t.Fatalf("n=%d: position %d holds bucket %d item %d, want bucket %d item %d", n, i, got[i].bucket, got[i].way, want[i].bucket, want[i].way)
			}
		}
	}
}
