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
	// waitingShown is this VM's share of the coalesce_waiting gauge, which
	// all of the proxy's VMs add to (one metric per name in Envoy).
	waitingShown int64
	holding      map[uint32]*stream // requests whose headers are held for their body
	counting     map[uint32]*stream // requests whose count waits for their end (a panic may break them first)
	retrying     map[uint32]*stream // requests whose host action failed, tried again each tick (stream.retryLater)
	leading      []*stream          // requests that hold their key's lease (stream.leadingAt)
	free         []*stream          // deleted streams whose memory is reused (newStream); room for maxFreeStreams from the start
	hold         cachecore.HoldState
	// tickArmed: the tick period last armed (setTick).
	tickArmed time.Duration
	// waitTick: the period a VM with waiting followers ticks at most, a
	// quarter of the shortest max_wait of a coalescing route: a follower
	// is checked on ticks, and at a tick_period up to max_wait it waited
	// up to twice max_wait (review Z124).
	waitTick time.Duration
	// holdDue: when the first grace of the requests a check of the held
	// ones kept ends (unix ms; checkHeld); 0: none.
	holdDue int64

	lastSLOFlush time.Time
}

// The time of the current callback, cached: reading the time is a host call
// (proxywasm.WallClockNano), and a callback's decisions all happen at one
// instant anyway. It is VM-wide (all root contexts of the VM share it) and
// read again in the next callback (proxywasm.Callback). It is kept as the
// numbers it is used as: cachecore times everything in unix milliseconds,
// and only a tick asks for a time.Time (now).
var (
	clockNs int64        // unix nanoseconds
	clockMs int64        // clockNs in unix milliseconds
	clockAt = ^uint64(0) // the callback clockNs was read in; none yet
)

// nowMs is the current callback's time in unix milliseconds: the clock is
// read on its first call in a callback. (A wall clock reads after 1970:
// the division's truncation is time.UnixMilli's floor.)
func nowMs() int64 {
	if c := proxywasm.Callback(); c != clockAt {
		clockNs, clockAt = proxywasm.WallClockNano(), c
		clockMs = clockNs / 1e6
	}
	return clockMs
}

// now is nowMs's instant as a time.Time (with its nanoseconds).
func now() time.Time {
	nowMs()
	return time.Unix(0, clockNs)
}

func (p *plugin) now() time.Time { return now() }

func newPlugin(id uint32) *plugin {
	return &plugin{id: id, queues: map[uint64]uint32{}, waiting: map[uint32]*stream{}, holding: map[uint32]*stream{}, counting: map[uint32]*stream{}, retrying: map[uint32]*stream{},
		free: make([]*stream, 0, maxFreeStreams)}
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
	p.waitTick = cfg.TickPeriod
	for _, r := range cfg.Routes {
		if r.Coalesce.Enabled && r.Coalesce.MaxWait > 0 {
			p.waitTick = min(p.waitTick, max(r.Coalesce.MaxWait/4, 10*time.Millisecond))
		}
	}
	p.hold.Setting = cfg.HeaderHold
	p.cache = cachecore.New(cfg, cachecore.Options{
		Store: store,
		Now:   now,
		NowMs: nowMs,
		Rand:  rand.Uint64,
	})
	if was := p.cache.LayoutReplaced(); was != "" {
		proxywasm.LogWarn("store layout changed from " + was + " to " + strconv.Itoa(cfg.Store.Buckets) + "x" + strconv.Itoa(cfg.Store.Ways) +
			" (buckets x ways): the cache starts empty, every model in a new generation. Configurations that share a vm_id must use the same store.buckets and store.ways, or each start empties the other's cache")
	}
	if kept := p.cache.LeaseSlotsKept(); kept != 0 {
		proxywasm.LogWarn("store.lease_slots " + strconv.Itoa(cfg.Store.LeaseSlots) + " takes effect when Envoy restarts: the process keeps " + strconv.Itoa(kept) +
			" lease slots, so that the configuration before this one, still serving the connections it drains, and this one place a key's lease in one slot")
	}
	p.stats = newStats(cfg)
	for p.vmID == 0 {
		p.vmID = rand.Uint64()
	}
	proxywasm.SetPanicHook(func(string, any) { p.stats.panics.Increment(1) })
	vmLife.Module = moduleID
	vmLife.Start(store)
	// The tick re-checks paused followers and held requests. (In the canary
	// VM the timer dies with it; the queue is registered lazily for the same
	// reason.)
	p.setTick(p.tickNeeded())
	proxywasm.LogInfo("started with " + strconv.Itoa(len(cfg.Routes)) + " route(s), " +
		strconv.Itoa(cfg.Store.Buckets*cfg.Store.Ways) + " slots of up to " + strconv.Itoa(cfg.Store.MaxEntryBytes) + " bytes")
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(contextID uint32) types.HttpContext {
	if p.cfg == nil {
		return nil
	}
	if !vmLife.Settled() {
		p.noteLive(true)
	}
	p.ensureQueue()
	return p.newStream(contextID)
}

// ensureQueue registers this VM's wake-up queue unless it is registered:
// a check inlined where every request starts, the registration out of
// line.
func (p *plugin) ensureQueue() {
	if !p.queueOK {
		p.registerQueue()
	}
}

func (p *plugin) registerQueue() {
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
		leader := cachecore.WakeLeader(msg)
		var woken []*stream
		for _, s := range p.waiting {
			if s.x.Request().LeaseFP() == fp {
				woken = append(woken, s)
			}
		}
		for _, s := range woken {
			s.inRoot(func(x *cachecore.Stream) []cachecore.Action { return x.WakeFrom(leader, o, status) }, false)
		}
	}
}

// OnTick re-checks what may be stuck: followers whose wake-up was lost or
// who waited too long, and requests held for a body that never comes.
func (p *plugin) OnTick() {
	p.noteLive(false)
	p.ensureQueue()
	if p.queueOK && len(p.waiting) > 0 {
		// Wake-ups already posted come first: a tick that runs before its
		// queue callback would otherwise wake a follower without the
		// leader's outcome and status.
		p.OnQueueReady(p.queueID)
	}
	for _, s := range p.leading {
		p.performAll(s.x.KeepLease()) // before the followers' checks: a lease kept is still led
	}
	for _, s := range p.waiting {
		s.inRoot((*cachecore.Stream).Tick, false)
	}
	for id, s := range p.retrying {
		if proxywasm.SetEffectiveContext(id) != nil || s.retry() == nil {
			delete(p.retrying, id) // gone, or done at last
			s.retry = nil
		}
	}
	if p.hold.Watching() {
		p.checkHeld()
		p.hold.Probe(nowMs())
	} else if len(p.holding) > 0 {
		p.unwatchHeld()
	}
	p.flushSLO(p.now())
	p.performAll(p.cache.L2Tick())
	p.showWaiting(int64(len(p.waiting)))
	p.stats.runtime.flush()
	switch {
	case !p.tickNeeded():
		p.setTick(false)
	case p.tickArmed != p.fastPeriod():
		// Armed at HoldGrace for a request no longer held (and needed
		// still, e.g. by the L2's purge log): back to tick_period.
		p.setTick(true)
	}
}

// showWaiting moves this VM's share of coalesce_waiting to n. The gauge
// is the proxy's, not the VM's: a VM setting it to its own count showed
// only the count of whichever VM ticked last.
func (p *plugin) showWaiting(n int64) {
	if n != p.waitingShown {
		p.stats.waiting.Add(n - p.waitingShown)
		p.waitingShown = n
	}
}

// OnPluginDone takes this VM's share out of coalesce_waiting when the
// plugin ends (a configuration replaced, the proxy draining), and its
// routes' stale-serving gauges (clearSLOGauges).
func (p *plugin) OnPluginDone() bool {
	p.showWaiting(0)
	p.clearSLOGauges()
	return true
}

// tickNeeded: something in this VM needs a tick every tick_period — a
// paused follower (a lost wake-up costs at most that), a request held for
// its body, the L2's purge log (read every l2.sync_interval), or a leader
// whose coalesce.max_wait is too short for its lease to be kept at the
// idle period (cachecore.Stream.LeaseTicksFast). Any other leader's lease
// is kept by the idle tick.
func (p *plugin) tickNeeded() bool {
	if len(p.waiting) > 0 || len(p.holding) > 0 || p.cfg.L2 != nil {
		return true
	}
	for _, s := range p.leading {
		if s.x.LeaseTicksFast() {
			return true
		}
	}
	return false
}

// OnHttpStreamBroken (proxywasm.StreamBrokenNotifier) takes a stream that
// a panic left broken off the VM's lists. The binding calls none of its
// methods again (neither its end nor its deletion), so it would stay
// listed for good. On the leading list, every tick would keep the lease of
// a request that will neither store nor release it: every later request
// for its key followed, and waited max_wait for nothing. Unlisted, its
// lead ends as one whose client left does (Stream.Broken): the lease is
// released and a follower leads next. On the waiting or holding list, it was counted in coalesce_waiting for as
// long as the VM lived and kept the VM ticking at tick_period. A request
// whose count waited for its end is counted now: it never ends here; so is
// one not counted yet (a follower, a request held for its body or waiting
// on a call of its own), which the binding sends upstream: it was never
// counted (review Z158). The binding tells of a broken stream twice (at
// the panic, and at its deletion): it is ended once (brokenSeen).
func (p *plugin) OnHttpStreamBroken(id uint32) {
	broken := streamOf(proxywasm.HttpContextOf(id))
	if s := p.counting[id]; s != nil {
		delete(p.counting, id)
		s.countingListed = false
		broken = s
	}
	delete(p.waiting, id)
	delete(p.holding, id)
	for _, s := range p.leading {
		if s.id == id {
			p.unlead(s)
			broken = s
			break
		}
	}
	if broken != nil && !broken.brokenSeen {
		broken.brokenSeen = true
		broken.perform(broken.x.Broken(proxywasm.HasBrokenReply(id)))
		if broken.bodyLate { // its end will not come to count it (review Z168)
			broken.bodyLate = false
			broken.rs.bypassed(cachecore.ReasonBodyLate)
		}
	}
}

// streamOf is the plugin's stream of context h (nil: none), also where a
// test build wraps it (crashtest.go).
func streamOf(h types.HttpContext) *stream {
	switch s := h.(type) {
	case *stream:
		return s
	case interface{ filterStream() *stream }:
		return s.filterStream()
	}
	return nil
}

// lead lists s among the VM's leaders, whose leases its ticks keep.
func (p *plugin) lead(s *stream) {
	p.leading = append(p.leading, s)
	s.leadingAt = len(p.leading)
}

// unlead takes s off the leading list (if it is on it): the last leader
// takes its place.
func (p *plugin) unlead(s *stream) {
	i := s.leadingAt - 1
	if i < 0 {
		return
	}
	last := len(p.leading) - 1
	if i != last { // most often s is the last one listed: nothing moves
		m := p.leading[last]
		p.leading[i], m.leadingAt = m, i+1
	}
	p.leading[last] = nil
	p.leading = p.leading[:last]
	s.leadingAt = 0
}

// setTick arms the VM's tick at fastPeriod (fast) or at the idle period.
// A VM with nothing waiting in it wakes once a second instead of ten
// times: each tick wakes its thread, and at a fixed rate of requests that
// is extra CPU per request (BENCHMARKS.md). The host re-arms the timer
// from now, so a follower that starts waiting is re-checked one
// tick_period later, as before. It changes only when the need does: when
// a stream joins an empty list, or on a tick that finds the lists empty.
// When the two periods are one (tick_period of a second or more) nothing is
// re-armed: that would only put the next tick off.
func (p *plugin) setTick(fast bool) {
	period := p.fastPeriod()
	if !fast {
		period = max(p.cfg.TickPeriod, cachecore.IdleTickPeriod)
	}
	if period == p.tickArmed {
		return
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(period.Milliseconds())); err != nil {
		proxywasm.LogWarn("cannot set tick period: " + err.Error())
		return // tried again when the need next changes
	}
	p.tickArmed = period
}

// fastPeriod is the period of a VM that needs ticks: tick_period, or
// HoldGrace while a request is held for its body and tick_period is
// longer (it is let go at HoldGrace, not a whole tick_period later).
func (p *plugin) fastPeriod() time.Duration {
	period := p.cfg.TickPeriod
	if len(p.holding) > 0 {
		period = min(period, cachecore.HoldGrace)
		if p.holdDue != 0 {
			// (This callback's clock: clockMs may be an earlier one's.)
			if left := time.Duration(p.holdDue-nowMs()) * time.Millisecond; left > 0 {
				period = min(period, max(left, 10*time.Millisecond))
			}
		}
	}
	if len(p.waiting) > 0 {
		period = min(period, p.waitTick)
	}
	return period
}

// unwatchHeld takes the requests held for their body off the holding list
// once nothing is watched (the proxy was seen to deliver bodies): their
// bodies come as any request's, the tick no longer looks at them, and
// listed they kept the VM ticking fast for as long as a slow client held
// one open (review Z124). Out of line: the list is most often empty.
//
//go:noinline
func (p *plugin) unwatchHeld() {
	for id, s := range p.holding {
		delete(p.holding, id)
		s.holdingListed = false
	}
}

// tickFast: the tick runs at least as often as fastPeriod. Armed faster
// for a held request, it is not slowed down until nothing needs it.
func (p *plugin) tickFast() bool { return p.tickArmed > 0 && p.tickArmed <= p.fastPeriod() }

// checkHeld lets through requests held for a body that never comes
// (cachecore.HoldState says why and when).
func (p *plugin) checkHeld() {
	p.holdDue = 0
	for id, s := range p.holding {
		if !s.x.HeldTooLong() {
			// Its grace may end before the next tick of the period the
			// first held request set: the tick is armed for it
			// (fastPeriod). Left to that period, a request held a few ms
			// after another was let go at nearly twice the grace (review
			// Z269).
			if due := nowMs() + s.x.HoldLeft(); p.holdDue == 0 || due < p.holdDue {
				p.holdDue = due
			}
			continue
		}
		delete(p.holding, id)
		s.holdingListed = false
		letGo := func(x *cachecore.Stream) []cachecore.Action { return x.LetGo(&p.hold) }
		if s.inRoot(letGo, true) && p.hold.Watching() {
			nowMs()
			s.letGoAt = clockNs
		}
	}
}

// stalled judges a request let go for want of a body by when its body
// comes (s.letGoAt): at once, as a proxy that cannot hold headers hands
// over the body it buffered meanwhile, it counts as a stall
// (cachecore.HoldState); later, or never, it was a slow client's, on a
// proxy that may well hold. Counted as stalls, one client's three held
// back bodies made a fresh worker stop holding for every tenant, for good
// (review Z94). A wall clock stepped back in between says nothing: a
// negative wait counts nothing either (review Z95).
//
//go:noinline
func (p *plugin) stalled(s *stream) {
	nowMs()
	after := clockNs - s.letGoAt
	s.letGoAt = 0
	// A proxy proven to hold since the let-go (a body seen while held)
	// stalls nothing: the body is a slow client's (review Z185).
	stall := after >= 0 && after <= int64(cachecore.HoldResumeWindow) && p.hold.Watching()
	if s.bodyLate {
		s.bodyLate = false
		s.rs.bypassed(s.x.LetGoJudged(stall))
	}
	if !stall || !p.hold.Stalled(clockMs) {
		return
	}
	if !p.hold.Late() { // else it keeps caching, deciding late (late.* stats)
		p.stats.holdUnsupported.Increment(1)
	}
	proxywasm.LogWarn(p.hold.Warning())
}

// vmLife is this VM instance's part in counting restarts
// (cachecore.VMLife): a Go global lives exactly as long as its VM.
var vmLife cachecore.VMLife

// moduleID names this build (the Makefile sets it to a digest of the
// module's sources: -ldflags -X main.moduleID=…), so that the VMs of a
// new version pushed while traffic flows are not counted as restarts.
// Empty in a build without it: every late VM counts.
var moduleID string

func (p *plugin) noteLive(request bool) {
	if restarted, warning := vmLife.Live(store, request); restarted {
		p.stats.restarts.Increment(1)
		proxywasm.LogWarn(warning)
	}
}
