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
// the cache handle and the stats, and the VM-wide machinery of single
// flight: this VM's wake-up queue, its paused followers, its tick, and the
// background calls it dispatched.
type plugin struct {
	types.DefaultPluginContext
	id    uint32
	cfg   *cachecore.Config
	cache *cachecore.Cache
	stats *stats

	// vmID names this VM to the others (in leases and queue names).
	vmID    uint64
	queueID uint32
	queueOK bool
	queues  map[uint64]uint32 // other VMs' wake queues, resolved on demand
	waiting map[uint32]*stream
	holding map[uint32]*stream // requests whose headers are held for their body
	hold    holdMode
	stalls  int // held requests that never saw a body (while hold is unknown)

	lastSLOFlush time.Time
}

// The time of the current callback, cached: reading the time is a host call
// (two, wall and monotonic), and a callback's decisions all happen at one
// instant anyway. It is VM-wide (all root contexts of the VM share it) and
// reset by the binding at the start of every callback.
var (
	clockNow time.Time
	clockSet bool
)

func init() { proxywasm.SetCallbackHook(func() { clockSet = false }) }

func now() time.Time {
	if !clockSet {
		clockNow, clockSet = time.Now(), true
	}
	return clockNow
}

func (p *plugin) now() time.Time { return now() }

// holdMode records whether Envoy lets the plugin read a body while it holds
// the request headers (PluginConfig allow_on_headers_stop_iteration).
type holdMode uint8

const (
	holdUnknown     holdMode = iota
	holdSupported            // a body arrived while headers were held
	holdUnsupported          // held requests stalled: pass them through
)

func newPlugin(id uint32) *plugin {
	return &plugin{id: id, queues: map[uint64]uint32{}, waiting: map[uint32]*stream{}, holding: map[uint32]*stream{}}
}

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
		Now:   now,
		Rand:  rand.Uint64,
	})
	p.stats = newStats(cfg)
	for p.vmID == 0 {
		p.vmID = rand.Uint64()
	}
	proxywasm.SetPanicHook(func(string, any) { p.stats.panics.Increment(1) })
	noteVMStart()
	// The tick re-checks paused followers and held requests. (In the canary
	// VM the timer dies with it; the queue is registered lazily for the same
	// reason.)
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(cfg.TickPeriod.Milliseconds())); err != nil {
		proxywasm.LogWarn("cannot set tick period: " + err.Error())
	}
	proxywasm.LogInfo("started with " + strconv.Itoa(len(cfg.Routes)) + " route(s), " +
		strconv.Itoa(cfg.Store.Buckets*cfg.Store.Ways) + " slots of up to " + strconv.Itoa(cfg.Store.MaxEntryBytes) + " bytes")
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(contextID uint32) types.HttpContext {
	if p.cfg == nil {
		return nil
	}
	p.noteLive(true)
	p.ensureQueue()
	return &stream{p: p, id: contextID}
}

func (p *plugin) ensureQueue() {
	if p.queueOK {
		return
	}
	id, err := proxywasm.RegisterSharedQueue(cachecore.WakeQueueName(p.vmID))
	if err != nil {
		proxywasm.LogWarn("cannot register wake-up queue (followers fall back to ticks): " + err.Error())
		return
	}
	p.queueID, p.queueOK = id, true
}

// wake posts a wake-up message to the queue of every VM in vms.
func (p *plugin) wake(vms []uint64, msg []byte) {
	for _, vm := range vms {
		q, ok := p.queues[vm]
		if !ok {
			id, err := proxywasm.ResolveSharedQueue("", cachecore.WakeQueueName(vm))
			if err != nil {
				continue // not registered (yet): its tick will notice
			}
			q = id
			p.queues[vm] = q
		}
		if err := proxywasm.EnqueueSharedQueue(q, msg); err != nil {
			delete(p.queues, vm)
		}
	}
}

// OnQueueReady delivers wake-ups to this VM's paused followers.
func (p *plugin) OnQueueReady(queueID uint32) {
	for {
		msg, err := proxywasm.DequeueSharedQueue(queueID)
		if err != nil {
			return // ErrorStatusEmpty: drained
		}
		fp, o, status, ok := cachecore.DecodeWake(msg)
		if !ok {
			continue
		}
		for _, s := range p.waitingFor(fp) {
			s.wake(o, status)
		}
	}
}

func (p *plugin) waitingFor(fp uint64) []*stream {
	var out []*stream
	for _, s := range p.waiting {
		if s.req.LeaseFP() == fp {
			out = append(out, s)
		}
	}
	return out
}

// OnTick re-checks what may be stuck: followers whose wake-up was lost or
// who waited too long, and requests held for a body that never comes.
func (p *plugin) OnTick() {
	p.noteLive(false)
	p.ensureQueue()
	now := p.now()
	if p.queueOK && len(p.waiting) > 0 {
		// Wake-ups already posted come first: a tick that runs before its
		// queue callback would otherwise wake a follower without the
		// leader's outcome and status.
		p.OnQueueReady(p.queueID)
	}
	for _, s := range p.waiting {
		s.tick()
	}
	if p.hold != holdSupported {
		p.checkHeld(now)
	}
	p.flushSLO(now)
	p.performAll(p.cache.L2Tick())
	p.stats.waiting.Set(uint64(len(p.waiting)))
}

// checkHeld handles requests whose headers are held while their body never
// arrives. With allow_on_headers_stop_iteration off (e.g. Istio's
// WasmPlugin), Envoy does not call on_request_body for a stream whose
// headers are paused, so such a request would hang. After a grace period
// the request is let through uncached; once that has happened and no body
// was ever seen while headers were held, the VM stops holding headers.
func (p *plugin) checkHeld(now time.Time) {
	for id, s := range p.holding {
		if now.Sub(s.heldSince) < holdGrace {
			continue
		}
		delete(p.holding, id)
		if err := proxywasm.SetEffectiveContext(s.id); err != nil {
			continue
		}
		if s.performRequest(s.fl.Bypass(cachecore.ReasonHoldUnsupported)) == types.ActionContinue {
			_ = proxywasm.ResumeHttpRequest()
		}
		p.stalls++
		if p.hold == holdUnknown && p.stalls >= holdStallsToGiveUp {
			p.hold = holdUnsupported
			p.stats.holdUnsupported.Increment(1)
			proxywasm.LogWarn("a request body never reached the filter while its headers were held: " +
				"set allow_on_headers_stop_iteration: true in the wasm PluginConfig (Envoy >= 1.35). " +
				"Until then cacheable requests pass through uncached.")
		}
	}
}

// holdGrace is how long a held request may wait for its first body bytes
// before the filter lets it through; after holdStallsToGiveUp such stalls
// with no body ever seen while holding, the VM stops holding headers. A
// single body seen while holding proves Envoy delivers them, for good.
const (
	holdGrace          = 250 * time.Millisecond
	holdStallsToGiveUp = 3
)
