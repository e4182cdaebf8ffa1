package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// S4 sets modelcache's host calls per request beside its floors' as their
// claim to do the row's real work, and HC prints them per kind of request;
// a row's load sends thousands of new keys down one route. So the count
// must be of such a request, not of the route's first, which reads and
// writes what the later ones find (the model's record under the route's
// namespace).
func TestHostCallsAreARequestInSteadyState(t *testing.T) {
	r, wasm := hcTestRun(t)
	if err := runHostCalls(r); err != nil {
		t.Fatal(err)
	}
	hcTitles := map[string]string{"pass other-route": "route not cached", "pass bypass": "bypass (request no-store)",
		"pass uncacheable": "miss, answer not storable"}
	for _, label := range []string{"pass other-route", "pass bypass", "pass uncacheable"} {
		req := s4HostCallRequests[label]
		got, err := r.countHostCalls(wasm, label, req)
		if err != nil {
			t.Fatal(err)
		}
		var hcRow *row
		for i := range r.rows {
			if r.rows[i].Metric == "host calls per request: "+hcTitles[label] {
				hcRow = &r.rows[i]
			}
		}
		if hcRow == nil {
			t.Fatalf("HC printed no row for %q", hcTitles[label])
		}
		// The same kind of request, after several of its kind.
		hc := hcTestHost(t, r, wasm)
		if err := hc.warm(); err != nil {
			t.Fatal(err)
		}
		for n := 10; n < 13; n++ {
			if _, err := hc.count(label, req(n)); err != nil {
				t.Fatal(err)
			}
		}
		want, err := hc.count(label, req(13))
		hc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if g, w := fmt.Sprint(got.Total, " ", breakdown(got.ByName)), fmt.Sprint(want.Total, " ", breakdown(want.ByName)); g != w {
			t.Errorf("%s: S4 counted %s, but a request of the kind in steady state makes %s", label, g, w)
		}
		if g, w := hcRow.Value+" "+hcRow.Baselines, fmt.Sprint(want.Total, " ", breakdown(want.ByName)); g != w {
			t.Errorf("HC %s: counted %s, but a request of the kind in steady state makes %s", hcTitles[label], g, w)
		}
	}
}

// hcTestRun is a run of HC's for a test: the module make build built (the
// test is skipped without it, unless the tools are required) and the
// benchmark's 1 KiB answer.
func hcTestRun(t *testing.T) (*run, string) {
	t.Helper()
	wasm := filepath.Join(repoRoot(), "build", "modelcache.wasm")
	if _, err := os.Stat(wasm); err != nil {
		if os.Getenv("MODELCACHE_REQUIRE_TOOLS") != "" {
			t.Fatalf("%v (make build makes it)", err)
		}
		t.Skipf("%v: run make build first", err)
	}
	payload, err := os.ReadFile(filepath.Join(repoRoot(), "bench", "payloads", "chat-1k.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &run{ctx: context.Background(), s: settings{Root: repoRoot(), Wasm: wasm}, data: map[string]any{},
		origin: &origin{payloads: map[string][]byte{"1k": payload}}}, wasm
}

// hcTestHost loads wasm into HC's host for a test; the caller closes it.
func hcTestHost(t *testing.T, r *run, wasm string) *hcHost {
	t.Helper()
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := newHCHost(r, b)
	if err != nil {
		t.Fatal(err)
	}
	return hc
}
