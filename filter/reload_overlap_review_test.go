//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// copyShared makes dst's shared data hold every key of src, as one
// process's shared data would (the two hosts stand for the two
// configurations of one Envoy process in a reload's overlap; the test
// hands the data over at quiet points only).
func copyShared(src, dst *harness) {
	for _, k := range src.h.SharedDataKeys() {
		v, _, _ := src.h.SharedData(k)
		dst.h.SetSharedData(k, v, 0)
	}
}

// Review Z42 (1), in the real module. RATIONALE ("A reload overlaps two
// configurations"): a purge by replay sent to the new configuration also
// removes the key under the layout it replaced, where the old
// configuration, still serving its draining connections, keeps storing
// and serving. Only the Cache whose New swapped mc:layout knows the
// replaced layout, and that is the configuration's canary VM, which is
// killed: no worker of the new configuration purges under the old
// layout. The purge answers 200 and the old configuration still serves
// the purged answer (HIT).
func TestPurgeSentToTheNewConfigurationReachesTheOldLayout(t *testing.T) {
	cfgA := strings.Replace(chatConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "store": {"buckets": 16, "ways": 4},`, 1)
	cfgB := strings.Replace(chatConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "store": {"buckets": 16, "ways": 8},`, 1)
	t.Run("ways-4-to-8", func(t *testing.T) { purgeThroughNewConfiguration(t, cfgA, cfgB, true) })
	// Control: a reload that keeps the layout (the purge under the
	// layout both share reaches the old configuration's entry).
	t.Run("control-same-layout", func(t *testing.T) { purgeThroughNewConfiguration(t, cfgA, cfgA, false) })
}

func purgeThroughNewConfiguration(t *testing.T, cfgA, cfgB string, changed bool) {
	old := newHarness(t, cfgA, withWorkers(2)) // the configuration before the reload
	seed := map[string][]byte{}
	for _, k := range old.h.SharedDataKeys() {
		seed[k], _, _ = old.h.SharedData(k)
	}
	nw := newHarness(t, cfgB, withWorkers(2), func(_ *harness, c *wasmhost.Config) { c.SharedData = seed }) // the reload
	if len(nw.h.LogsContaining("store layout changed from 16x4 to 16x8")) != map[bool]int{true: 1}[changed] {
		t.Fatalf("setup: no layout change logged: %v", nw.h.Logs())
	}
	copyShared(nw, old) // one process: the old configuration reads what the new one wrote
	served := 0
	for i := range 8 {
		body := chatBody("purged during the overlap " + strings.Repeat("x", i))
		old.post(0, "/v1/chat/completions", body)
		expectCacheStatus(t, old.post(0, "/v1/chat/completions", body), "hit")
		copyShared(old, nw)
		res := reviewPurge(nw, i%2, `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer tenant-a","host":"models"},"body":`+body+`}`)
		copyShared(nw, old)
		if r := old.post(0, "/v1/chat/completions", body); strings.Contains(hdr(r, "cache-status"), "hit") {
			t.Logf("key %d: purge answered %d %s; the old configuration then answers Cache-Status %q", i, res.Status, res.Body, hdr(r, "cache-status"))
			served++
		}
	}
	if served > 0 {
		t.Fatalf("%d of 8 entries purged by replay through the new configuration's workers (purge answered 200) are still served by the old configuration", served)
	}
}
