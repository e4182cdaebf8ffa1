package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/internal/wasmbuild"
)

// A VM that traps must not switch the cache off for good. These tests load
// the crash-test module (built with -tags modelcache_crashtest, see
// filter/crashtest.go; the product module has no such path), which makes
// its VM trap — V8 stack overflow, as a runaway recursion would — on a
// request carrying crashTestHeader. Envoy's own counters are
// wasm.modelcache.vm_reload_success / _backoff / _failure.

const crashTestHeader, crashTestValue = "x-modelcache-crash", "now"

// crashTrapLine is V8's trap as Envoy logs it; the second field is the thread.
var crashTrapLine = regexp.MustCompile(`\]\[(\d+)\]\[error\]\[wasm\][^\n]*proxy_on_request_headers failed: Uncaught RangeError: Maximum call stack size exceeded`)

// crashes returns the number of VM traps in Envoy's log so far and the
// distinct worker threads they happened on.
func (e *envoyProc) crashes() (n int, threads map[string]bool) {
	threads = map[string]bool{}
	for _, m := range crashTrapLine.FindAllStringSubmatch(e.Log(), -1) {
		n++
		threads[m[1]] = true
	}
	return n, threads
}

// newConnClient opens a new connection per request, so that requests spread
// over Envoy's workers (a kept-alive connection stays on one worker).
var newConnClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}, Timeout: 30 * time.Second}

func doNewConn(t *testing.T, url, body string, headers ...string) *response {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := newConnClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// crashAllWorkers sends crash requests on fresh connections until the VM of
// every one of the workers has trapped at least once.
func crashAllWorkers(t *testing.T, e *envoyProc, url, body string, workers int, headers ...string) {
	t.Helper()
	h := append([]string{crashTestHeader, crashTestValue}, headers...)
	for try := 0; try < 100; try++ {
		r := doNewConn(t, url, body, h...)
		if r.Status == 200 && r.CacheStatus() != "" {
			t.Fatalf("a crash request was answered by the filter: %d %q", r.Status, r.CacheStatus())
		}
		if _, threads := e.crashes(); len(threads) >= workers {
			return
		}
	}
	n, threads := e.crashes()
	t.Fatalf("after 100 crash requests, %d traps on %d of %d workers", n, len(threads), workers)
}

// TestFailReloadRecoversWithCacheIntact: with the shipped failure_policy
// (FAIL_RELOAD), an entry is stored, every worker's VM is made to trap, and
// then Envoy reloads each VM, the entry stored before the crash is still a
// hit (no upstream call: shared data outlived the VMs), new keys are cached
// again, and the plugin counts exactly the restarts Envoy made.
//
// With failure_policy FAIL_OPEN this test fails: after the crash the
// workers skip the filter, answers come without Cache-Status, and no VM
// is ever reloaded (TestFailOpenCrashLeavesCacheOff shows that state).
func TestFailReloadRecoversWithCacheIntact(t *testing.T) {
	const workers = 2
	e := startEnvoy(t, envoyOpts{Concurrency: workers, Wasm: wasmbuild.FilterWithTags(t, "modelcache_crashtest")})
	url := e.URL + "/v1/chat/completions"
	auth := []string{"authorization", "Bearer reload"}
	before := chat("stored before the crash")

	expectCS(t, doNewConn(t, url, before, auth...), "fwd=miss", "stored")
	expectCS(t, doNewConn(t, url, before, auth...), "hit")
	calls := e.Sim.Calls("/v1/chat/completions")
	if calls != 1 {
		t.Fatalf("%d upstream calls before the crash, want 1", calls)
	}
	if n := e.Stat("wasmcustom.modelcache.vm_restarts"); n != 0 {
		t.Fatalf("vm_restarts = %d before any crash", n)
	}

	crashAllWorkers(t, e, url, chat("crash"), workers, auth...)
	crashedAt := time.Now()
	if e.Sim.Calls("/v1/chat/completions") != calls {
		t.Fatal("a crash request reached the model")
	}

	// Recovery: ask for the pre-crash entry on fresh connections until every
	// trap has been followed by a successful reload. Meanwhile a request may
	// meet a worker in its reload backoff (503 from Envoy, fail closed); any
	// answer that does come through must be the cached one.
	var (
		firstHit             time.Duration
		recovered            time.Duration
		during503, duringHit int
		slowest              time.Duration
	)
	deadline := time.Now().Add(30 * time.Second)
	for {
		start := time.Now()
		r := doNewConn(t, url, before, auth...)
		if d := time.Since(start); d > slowest {
			slowest = d
		}
		switch {
		case r.Status == 503 && r.CacheStatus() == "":
			during503++
			time.Sleep(10 * time.Millisecond) // poll interval while a worker backs off
		case r.Status == 200 && strings.Contains(r.CacheStatus(), "hit"):
			duringHit++
			if firstHit == 0 {
				firstHit = time.Since(crashedAt)
			}
		default:
			t.Fatalf("after the crash: %d Cache-Status %q (want a hit, or 503 while a worker backs off); "+
				"the filter is off or the entry was lost", r.Status, r.CacheStatus())
		}
		// Each trap is followed by exactly one successful reload of that
		// worker's VM (Envoy's log may lag its stats, hence >=).
		traps, _ := e.crashes()
		reloads := e.Stat("wasm.modelcache.vm_reload_success")
		if reloads >= int64(traps) && duringHit > 0 {
			recovered = time.Since(crashedAt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 30 s after the crash: %d traps, %d reloads (backoff %d, failures %d), %d hits, %d 503s",
				traps, reloads, e.Stat("wasm.modelcache.vm_reload_backoff"), e.Stat("wasm.modelcache.vm_reload_failure"),
				duringHit, during503)
		}
	}
	traps, threads := e.crashes()
	t.Logf("%d traps on %d workers; first hit %v after the last trap, all VMs reloaded after %v; "+
		"meanwhile %d hits and %d 503s (reload backoff); slowest request %v",
		traps, len(threads), firstHit.Round(time.Millisecond), recovered.Round(time.Millisecond),
		duringHit, during503, slowest.Round(time.Millisecond))

	// Every worker caches again: the old entry hits on fresh connections,
	// with no upstream call, and a new key misses once then hits.
	for i := 0; i < 8; i++ {
		expectCS(t, doNewConn(t, url, before, auth...), "hit")
	}
	if n := e.Sim.Calls("/v1/chat/completions"); n != calls {
		t.Fatalf("%d upstream calls after the reload, want still %d: the cache did not survive", n, calls)
	}
	after := chat("stored after the reload")
	expectCS(t, doNewConn(t, url, after, auth...), "fwd=miss", "stored")
	for i := 0; i < 4; i++ {
		expectCS(t, doNewConn(t, url, after, auth...), "hit")
	}
	if n := e.Sim.Calls("/v1/chat/completions"); n != calls+1 {
		t.Fatalf("%d upstream calls, want %d", n, calls+1)
	}

	// The plugin counted each VM Envoy reloaded, and logged it.
	reloads := e.Stat("wasm.modelcache.vm_reload_success")
	if got := e.WaitStat("wasmcustom.modelcache.vm_restarts", reloads); got != reloads {
		t.Fatalf("modelcache.vm_restarts = %d, Envoy reloaded %d VMs", got, reloads)
	}
	if want := fmt.Sprintf("VM restarted (%d)", reloads); !strings.Contains(e.Log(), want) {
		t.Fatalf("log lacks %q", want)
	}
}

// TestFailOpenCrashLeavesCacheOff is the contrast: with failure_policy
// FAIL_OPEN a worker whose VM trapped skips the filter for the rest of the
// process's life. Traffic flows, uncached and unlabelled, and Envoy never
// reloads the VM.
func TestFailOpenCrashLeavesCacheOff(t *testing.T) {
	const workers = 2
	e := startEnvoy(t, envoyOpts{Concurrency: workers, FailurePolicy: "FAIL_OPEN",
		Wasm: wasmbuild.FilterWithTags(t, "modelcache_crashtest")})
	url := e.URL + "/v1/chat/completions"
	auth := []string{"authorization", "Bearer reload"}
	before := chat("stored before the crash")
	expectCS(t, doNewConn(t, url, before, auth...), "fwd=miss", "stored")
	expectCS(t, doNewConn(t, url, before, auth...), "hit")

	crashAllWorkers(t, e, url, chat("crash"), workers, auth...)
	// Longer than FAIL_RELOAD's backoff (base 1 s, at most 1.5 s): a
	// reloading policy would have brought the VMs back by now. There is
	// nothing to poll for — the point is that nothing happens.
	time.Sleep(2 * time.Second)
	calls := e.Sim.Calls("/v1/chat/completions")
	for i := 0; i < 6; i++ {
		r := doNewConn(t, url, before, auth...)
		if r.Status != 200 || r.CacheStatus() != "" {
			t.Fatalf("FAIL_OPEN after a crash: %d Cache-Status %q, want 200 straight from the model", r.Status, r.CacheStatus())
		}
	}
	if n := e.Sim.Calls("/v1/chat/completions"); n != calls+6 {
		t.Fatalf("%d upstream calls for 6 requests, want every one upstream", n-calls)
	}
	if n := e.Stat("wasm.modelcache.vm_reload_success"); n != 0 {
		t.Fatalf("FAIL_OPEN reloaded %d VMs", n)
	}
}
