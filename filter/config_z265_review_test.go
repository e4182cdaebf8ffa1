//go:build !wasip1

package main

import (
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z265. README (L2): l2.sync_interval is "how often each VM reads
// the mesh's purge log and applies other proxies' purges to its own L1",
// from 100 ms. The log is read on the VM's tick only (OnTick calls
// cachecore.Cache.L2Tick), and a VM with an L2 ticks every tick_period
// (up to 10 s): ParseConfig accepts sync_interval "200ms" beside
// tick_period "5s", and every VM then reads the log every 5 s, not every
// 200 ms — another proxy's purge (a model pulled, an answer found wrong)
// keeps being served from this proxy's L1 25 times longer than
// configured, with no error and no log. tick_period above a route's
// coalesce.max_wait, and l2.lease_ttl under four tick_periods, are
// refused for the same reason (config_sections.go). Expected: such a
// configuration refused, or the VM ticks at least every sync_interval.
// At fault: (*parser).config (config_sections.go) checks lease_ttl, not
// sync_interval, against tick_period; the filter's fastPeriod
// (plugin.go) ignores l2.sync_interval.
func TestConfigZ265L2SyncIntervalBelowTickPeriodIsHonouredOrRefused(t *testing.T) {
	const cfg = `{"upstream_cluster": "model", "tick_period": "5s",
  "l2": {"cluster": "webdis", "timeout": "1s", "lease_ttl": "20s", "sync_interval": "200ms"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"}]}`
	if _, err := cachecore.ParseConfig([]byte(cfg)); err != nil {
		return // refused at start: the operator is told
	}
	w := &l2Webdis{kv: map[string]string{}}
	hs := newHarness(t, cfg, withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.Clusters = append(c.Clusters, "webdis")
		c.HTTPCall = w.call
	})
	hs.h.TickAll()
	if got := hs.h.TickPeriod(0); got > 200*time.Millisecond {
		t.Errorf("a worker VM with l2.sync_interval 200ms ticks every %v: the purge log, read on ticks only, is read every %v", got, got)
	}
}
