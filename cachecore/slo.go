package cachecore

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"
)

// Staleness you can see.
//
// A cached model answer goes stale silently: the model is retrained, the
// world changes. The cache measures it three ways:
//
//   - age at serve: every response of a route records how old its answer was
//     (a histogram, kept by the filter);
//   - a stale-serving rate against an SLO: the share of a route's responses
//     older than freshness_slo.max_age over a sliding window, process-wide.
//     Crossing max_fraction is one WARN line and a stat, not one line per
//     request; coming back under is one recovery line;
//   - shadow comparison: a sampled fraction of hits also asks the upstream in
//     the background and compares the answers with the route's comparator.
//     When too many diverge within a window, the namespace (route, model) is
//     invalidated — a generation change — and the diverged entry is replaced
//     by the fresh answer if it passes admission (shadow.go).
//
// This file holds the stale-serving SLO: the per-VM counts and the shared,
// process-wide sliding window.

const sloBuckets = 12

// sloCounts are one VM's responses not yet flushed to shared data.
type sloCounts struct{ total, stale uint64 }

// sloCountsOf is route r's sloCounts, made if need be.
func (c *Cache) sloCountsOf(r *Route) *sloCounts {
	if c.slo == nil {
		c.slo = map[*Route]*sloCounts{}
	}
	n := c.slo[r]
	if n == nil {
		n = &sloCounts{}
		c.slo[r] = n
	}
	return n
}

// NoteServed counts one response of route with the age of its answer (zero
// for answers fresh from the upstream).
func (c *Cache) NoteServed(r *Route, age time.Duration) {
	if r.FreshnessSLO == nil {
		return
	}
	if c.slo == nil {
		c.slo = map[*Route]*sloCounts{}
	}
	n := c.slo[r]
	if n == nil {
		n = &sloCounts{}
		c.slo[r] = n
	}
	n.total++
	if age > r.FreshnessSLO.MaxAge {
		n.stale++
	}
}

// SLOStatus is a route's stale-serving rate after a flush.
type SLOStatus struct {
	Route      *Route
	Total      uint64 // responses in the window
	Stale      uint64 // of which older than max_age
	Rate       float64
	Breached   bool
	Transition bool // this flush crossed the objective, one way or the other
	Measurable bool // at least min_samples responses in the window
	// Settled: the rate and the verdict are current — the window is
	// measurable, or none of its responses (if any) is stale. A window
	// under min_samples with a stale response keeps the last verdict, so
	// a few requests do not flap the alert; one without a stale response
	// (an idle route's empty window included) clears it: more responses
	// could not show a breach those few do not.
	Settled     bool
	WindowTotal time.Duration
	// Standing: for a window not Settled, the rate of the last settled
	// flush of any VM (the rate that stands with the verdict), read from
	// shared data: a configuration started by a reload shows it, where it
	// showed 0 beside a standing breach (review Z164).
	Standing float64
}

// sloRateKey holds a route's last settled stale-serving rate (ppm, u32).
func sloRateKey(r *Route) string { return "mc:slo-rate:" + r.Name }

// noteRate stores the rate a flush shows — a settled one's, or a lapsed
// breach's new window's — for the VMs that will show it while the window
// is not settled (SLOStatus.Standing); else it reads it. Every such flush
// notes it, read-only ones included: one written only by flushes that
// added counts brought back a rate from before an idle window, or the
// lapsed breach's (review Z170). Last writer wins: each flush measures the
// one shared window.
func (c *Cache) noteRate(st *SLOStatus) {
	if st.Settled || st.Transition && !st.Breached {
		// Written each time, not only when it differs from this VM's
		// last: another VM may have written another since (review Z178).
		// One write a flush, once a second a VM.
		_ = c.store.Set(sloRateKey(st.Route), binary.LittleEndian.AppendUint32(nil, uint32(st.Rate*1e6)), 0)
		return
	}
	if v, _, err := c.store.Get(sloRateKey(st.Route)); err == nil && len(v) == 4 {
		st.Standing = min(float64(binary.LittleEndian.Uint32(v))/1e6, 1)
	}
}

// FlushSLO adds this VM's counts to the shared, process-wide window of each
// route and evaluates the objective. Each crossing is reported by exactly
// one VM (the one whose compare-and-swap made it), so it is logged once.
func (c *Cache) FlushSLO() []SLOStatus {
	var out []SLOStatus
	now := c.nowMs()
	for _, r := range c.cfg.Routes {
		if r.FreshnessSLO == nil {
			continue
		}
		n := c.sloCountsOf(r)
		st, err := c.flushRoute(r, n, now)
		if err != nil {
			continue // counts stay local; next flush tries again
		}
		n.total, n.stale = 0, 0
		out = append(out, st)
	}
	return out
}

func (c *Cache) flushRoute(r *Route, n *sloCounts, now int64) (SLOStatus, error) {
	slo := r.FreshnessSLO
	width := slo.Window.Milliseconds() / sloBuckets
	if width < 1 {
		width = 1
	}
	key := "mc:slo:" + r.Name
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		raw, cas, err := c.store.Get(key)
		exists := err == nil
		if err != nil && !errIs(err, ErrNotFound) {
			return SLOStatus{}, err
		}
		breached, starts, totals, stales := decodeSLO(raw)
		start := now - now%width
		i := int((now / width) % sloBuckets)
		// A bucket that starts after now (beyond another worker's clock
		// read a little later) was counted before the wall clock stepped
		// back: no window would hold it until the clock caught up, and an
		// idle route kept its breach that long (review Z70). Its
		// responses were served, though, and a breach they hold is not
		// over: they are counted as of now, leaving the window one
		// window later (reviews Z77, Z79).
		future := false
		var ft, fs uint64
		for j := range starts {
			// (Now's own slot holding a later start, within the skew, is
			// one too: reset for now, it lost them; review Z81.)
			if starts[j] > now+clockSkewMs || j == i && starts[j] > start {
				// All of them first, now's own bucket too if it is one:
				// folded one by one, a bucket reset for now lost the
				// counts it held (review Z80).
				future = true
				ft, fs = ft+uint64(totals[j]), fs+uint64(stales[j])
				starts[j], totals[j], stales[j] = 0, 0, 0
			}
		}
		if future {
			if starts[i] != start {
				starts[i], totals[i], stales[i] = start, 0, 0
			}
			totals[i] = uint32(min(uint64(totals[i])+ft, math.MaxUint32/2))
			stales[i] = uint32(min(uint64(stales[i])+fs, math.MaxUint32/2))
		}
		// A window empty until this flush clears the verdict, as its
		// evaluation would have had a VM flushed it: a proxy suspended for
		// days, then resumed with a few requests, kept a breach measured
		// before (review Z28).
		lapsed := breached && windowEmpty(starts, totals, now-slo.Window.Milliseconds())
		if starts[i] != start {
			starts[i], totals[i], stales[i] = start, 0, 0
		}
		totals[i] += uint32(min(n.total, math.MaxUint32/2))
		stales[i] += uint32(min(n.stale, math.MaxUint32/2))
		st := SLOStatus{Route: r, WindowTotal: slo.Window}
		for j := 0; j < sloBuckets; j++ {
			if starts[j] > now-slo.Window.Milliseconds() {
				st.Total += uint64(totals[j])
				st.Stale += uint64(stales[j])
			}
		}
		if st.Total > 0 {
			st.Rate = float64(st.Stale) / float64(st.Total)
		}
		st.Measurable = st.Total >= uint64(slo.MinSamples)
		// Under min_samples, a window with a stale response keeps the
		// last verdict, so a few requests do not flap the alert; one with
		// none (an idle route's empty window included) clears it:
		// nothing in the window was served stale.
		st.Settled = st.Measurable || st.Stale == 0
		next := breached && !lapsed
		if st.Settled {
			next = st.Rate > slo.MaxFraction
		}
		// A breach after a lapsed one is a new one: reported again.
		st.Breached, st.Transition = next, next != breached || lapsed && next
		if n.total == 0 && !st.Transition && exists && !future {
			c.noteRate(&st)
			return st, nil // nothing to add: read-only evaluation
		}
		if !exists {
			if cas, err = CreateCAS(c.store); err != nil {
				return SLOStatus{}, err
			}
		}
		err = c.store.Set(key, encodeSLO(next, starts, totals, stales), cas)
		if errIs(err, ErrCasMismatch) {
			continue
		}
		if err == nil {
			c.noteRate(&st)
		}
		return st, err
	}
	return SLOStatus{}, ErrContention
}

// windowEmpty reports whether no bucket that started after from holds a
// response.
func windowEmpty(starts [sloBuckets]int64, totals [sloBuckets]uint32, from int64) bool {
	for j := range starts {
		if starts[j] > from && totals[j] > 0 {
			return false
		}
	}
	return true
}

func decodeSLO(raw []byte) (bool, [sloBuckets]int64, [sloBuckets]uint32, [sloBuckets]uint32) {
	var starts [sloBuckets]int64
	var totals, stales [sloBuckets]uint32
	if len(raw) != 3+16*sloBuckets || raw[0] != 'M' || raw[1] != 'S' {
		return false, starts, totals, stales
	}
	le := binary.LittleEndian
	for i := 0; i < sloBuckets; i++ {
		b := raw[3+16*i:]
		starts[i] = int64(le.Uint64(b))
		totals[i] = le.Uint32(b[8:])
		stales[i] = le.Uint32(b[12:])
	}
	return raw[2] == 1, starts, totals, stales
}

func encodeSLO(breached bool, starts [sloBuckets]int64, totals, stales [sloBuckets]uint32) []byte {
	b := make([]byte, 3, 3+16*sloBuckets)
	b[0], b[1] = 'M', 'S'
	if breached {
		b[2] = 1
	}
	le := binary.LittleEndian
	for i := 0; i < sloBuckets; i++ {
		b = le.AppendUint64(b, uint64(starts[i]))
		b = le.AppendUint32(b, totals[i])
		b = le.AppendUint32(b, stales[i])
	}
	return b
}

// SLOFlushEvery is how often a VM adds its responses to the shared
// stale-serving window and evaluates the objective.
const SLOFlushEvery = time.Second

// Message is the log line of a crossing of the objective (cacheName: the
// cache's name, for the namespace).
func (st SLOStatus) Message(cacheName string) string {
	slo := st.Route.FreshnessSLO
	state := "recovered"
	if st.Breached {
		state = "breached"
	}
	head := "stale-serving SLO " + state + " on route " + st.Route.Name + " (namespace " + cacheName + "/" + st.Route.Name + "): "
	if st.Total == 0 {
		return head + "no responses in the last " + slo.Window.String()
	}
	return head +
		strconv.FormatUint(st.Stale, 10) + " of " + strconv.FormatUint(st.Total, 10) +
		" responses (" + strconv.FormatFloat(100*st.Rate, 'f', 1, 64) + "%) in the last " + slo.Window.String() +
		" were older than " + slo.MaxAge.String() + "; objective " + strconv.FormatFloat(100*slo.MaxFraction, 'f', 1, 64) + "%"
}
