package main

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// plugin is the root context of one VM: it owns the parsed configuration,
// the cache handle and the stats, and (for coalescing and background work)
// receives ticks, queue notifications and HTTP-call responses.
type plugin struct {
	types.DefaultPluginContext
	id    uint32
	cfg   *cachecore.Config
	cache *cachecore.Cache
	stats *stats
}

func newPlugin(id uint32) *plugin { return &plugin{id: id} }

// OnPluginStart parses and validates the whole configuration. A bad one
// refuses to start: Envoy then rejects the filter config, and the log says
// which field is wrong and why.
func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCritical("cannot read plugin configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	cfg, err := cachecore.ParseConfig(data)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			proxywasm.LogCritical("invalid configuration: " + line)
		}
		return types.OnPluginStartStatusFailed
	}
	p.cfg = cfg
	p.cache = cachecore.New(cfg, cachecore.Options{
		Store: sharedStore{},
		Now:   time.Now,
		Rand:  rand.Uint64,
	})
	p.stats = newStats(cfg)
	proxywasm.SetPanicHook(func(string, any) { p.stats.panics.Increment(1) })
	proxywasm.LogInfo("started with " + strconv.Itoa(len(cfg.Routes)) + " route(s), " +
		strconv.Itoa(cfg.Store.Buckets*cfg.Store.Ways) + " slots of up to " + strconv.Itoa(cfg.Store.MaxEntryBytes) + " bytes")
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(contextID uint32) types.HttpContext {
	if p.cfg == nil {
		return nil
	}
	return &stream{p: p, id: contextID}
}
