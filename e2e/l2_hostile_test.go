package e2e

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func l2VersionedConfig() string {
	return strings.Replace(l2Config("1s"), `"share_authorities": true,`,
		`"share_authorities": true, "model_version": {"body_path": "system_fingerprint"},`, 1)
}

// TestL2VersionedPurgeAndTrimmedLog, on a route versioned by the answer's
// body (system_fingerprint): an L2 hit is copied into L1; an entry purge
// on a proxy that never saw the version still reaches L2 and the other
// proxies' L1; the purge log holds no credential; and a purge after the
// log was deleted still reaches the other proxies' L1.
func TestL2VersionedPurgeAndTrimmedLog(t *testing.T) {
	s := startL2(t)
	cfg := l2VersionedConfig()
	a, b, c := startL2Envoy(t, s, cfg), startL2Envoy(t, s, cfg), startL2Envoy(t, s, cfg)
	auth := []string{"authorization", "Bearer tenant-a"}
	url := "/v1/chat/completions"
	written := map[*envoyProc]int64{}
	answer := func(e *envoyProc, prompt string) {
		t.Helper()
		expectCS(t, do(t, "POST", e.URL+url, chat(prompt), auth...), "fwd=miss", "stored")
		written[e]++
		if got := e.WaitStat("wasmcustom.modelcache_route.chat.l2.written", written[e]); got != written[e] {
			t.Fatalf("l2.written = %d, want %d", got, written[e])
		}
	}
	purge := func(e *envoyProc, prompt string) {
		t.Helper()
		body := `{"path":"` + url + `","headers":{"authorization":"Bearer tenant-a"},"body":` + chat(prompt) + `}`
		if r := do(t, "POST", e.URL+"/modelcache/purge", body, "authorization", "Bearer 0123456789abcdef-l2"); r.Status != 200 {
			t.Fatalf("purge: %d %s", r.Status, r.Body)
		}
	}
	// Polls B until the entry is no longer served (the purge log is read
	// every 500 ms); bounded.
	goneOnB := func(prompt string) {
		t.Helper()
		var cs string
		for i := 0; i < 100; i++ {
			r := do(t, "POST", b.URL+url, chat(prompt), auth...)
			if cs = r.CacheStatus(); !strings.Contains(cs, "hit") {
				written[b]++ // B asked its model and wrote the answer
				b.WaitStat("wasmcustom.modelcache_route.chat.l2.written", written[b])
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("B still serves the purged entry: %q", cs)
	}

	// body_path version: an L2 hit is installed in B's L1.
	answer(a, "versioned")
	answer(b, "B learns the version")
	expectCS(t, do(t, "POST", b.URL+url, chat("versioned"), auth...), "hit", "detail=l2")
	r := do(t, "POST", b.URL+url, chat("versioned"), auth...)
	if cs := r.CacheStatus(); !strings.Contains(cs, "hit") || strings.Contains(cs, "l2") {
		t.Fatalf("B's second request is not an L1 hit: %q", cs)
	}

	// C never saw the version: its entry purge still reaches L2 and B's L1.
	purge(c, "versioned")
	goneOnB("versioned")

	// No credential in the purge log.
	out, err := s.doAs(true, "GET", "/LRANGE/mc:purges/0/-1", nil)
	if err != nil || !strings.Contains(out, "LRANGE") {
		t.Fatalf("LRANGE: %q %v", out, err)
	}
	for _, f := range strings.Split(out, `"`) {
		if raw, err := base64.StdEncoding.DecodeString(f); err == nil && strings.Contains(string(raw), "tenant-a") {
			t.Fatalf("credential in the purge log: %q", raw)
		}
	}

	// The operator deletes the log; a later purge still reaches B's L1.
	if out, _ := s.doAs(true, "GET", "/DEL/mc:purges.raw", nil); out != ":1\r\n" {
		t.Fatalf("DEL: %q", out)
	}
	// Every VM of A and B drops its L1 when it finds the log gone, and
	// renews its models' generations with it: an answer upstream across
	// such a drop is rightly not stored (invalidated). The answers below
	// start once the drops are over.
	droppedAll(t, a)
	droppedAll(t, b)
	answer(a, "after the trim")
	expectCS(t, do(t, "POST", b.URL+url, chat("after the trim"), auth...), "hit", "detail=l2")
	purge(a, "after the trim")
	goneOnB("after the trim")
}

// droppedAll waits until e's VMs have dropped their L1 for a lost purge
// log: the drop is logged at least once, and no VM logs another for three
// of its reads (sync_interval 500 ms); bounded.
func droppedAll(t *testing.T, e *envoyProc) {
	t.Helper()
	const msg = "purge log was trimmed or deleted since this VM last read it"
	seen, since := 0, time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		n := strings.Count(e.Log(), msg)
		if n != seen {
			seen, since = n, time.Now()
		}
		if seen > 0 && time.Since(since) > 1500*time.Millisecond {
			return
		}
	}
	t.Fatalf("no steady L1 drop for the lost purge log (%d logged)", seen)
}
