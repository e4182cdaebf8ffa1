package main

import (
	"runtime/metrics"

	"github.com/modelcache/modelcache/filter/proxywasm"
)

// The Go runtime inside each VM, reported on tick as counters (summed over
// VMs like every modelcache stat): heap allocations, garbage-collection
// cycles, and the times a marking collection was let run at the end of a
// request (proxywasm.GCYields). They make the cost of garbage on the
// request path visible in Envoy's stats — allocations per request, GC
// cycles per 10k requests — without a profiler.
type runtimeStats struct {
	allocs, gcs, yields ctr
	samples             [2]metrics.Sample
}

// runtimeLast is the VM's runtime as last added to the counters. It is the
// VM's, not a root context's: a VM may have more than one (two filter
// configurations sharing a vm_id, a reload into the same VM), and each
// root that kept its own reading added the same allocations again (review
// Z135).
var runtimeLast struct {
	counts [2]uint64
	yields uint64
}

func newRuntimeStats() *runtimeStats {
	r := &runtimeStats{allocs: counter("modelcache.vm_heap_allocs"), gcs: counter("modelcache.vm_gc_cycles"),
		yields: counter("modelcache.vm_gc_yields")}
	r.samples[0].Name = "/gc/heap/allocs:objects"
	r.samples[1].Name = "/gc/cycles/total:gc-cycles"
	r.flush()
	return r
}

// flush adds what the runtime counted since the last flush.
func (r *runtimeStats) flush() {
	metrics.Read(r.samples[:])
	for i, c := range [2]ctr{r.allocs, r.gcs} {
		if r.samples[i].Value.Kind() != metrics.KindUint64 {
			continue
		}
		v := r.samples[i].Value.Uint64()
		if last := &runtimeLast.counts[i]; v > *last {
			c.Increment(v - *last)
			*last = v
		}
	}
	if y := proxywasm.GCYields(); y > runtimeLast.yields {
		r.yields.Increment(y - runtimeLast.yields)
		runtimeLast.yields = y
	}
}
