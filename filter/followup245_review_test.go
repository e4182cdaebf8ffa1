//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z245: follow-up of the fixes 7719281..HEAD, at the filter level.

// One accept-encoding removal the host refused is one host fault. Since
// 2d7e169 the filter counts it in internal_errors where the removal fails
// (stream.encodingKept, or plugin.perform for a late decision), and the
// protocol then refuses the compressed answer as ReasonInternal, whose
// refusal (Flight.refuse) emits ActInternal: internal_errors rises by two
// for the one fault. Expected: internal_errors counts the fault once.
func TestZ245AcceptEncodingRemovalFaultCountedOnce(t *testing.T) {
	for _, late := range []bool{false, true} {
		name := "held"
		if late {
			name = "late"
		}
		t.Run(name, func(t *testing.T) {
			f := &faultPlan{}
			var hs *harness
			if late {
				hs = lateHarness(t, coalesceConfig, withFaults(f))
			} else {
				hs = newHarness(t, coalesceConfig, withFaults(f))
			}
			hs.fault = gzipUpstream(hs)
			f.set(nthCall(1, wasmhost.StatusInternalFailure, isAcceptEncodingRemoval))
			req := chatRequest("one accept-encoding fault, counted once")
			req.Headers = append(req.Headers, [2]string{"accept-encoding", "gzip"})
			res, err := hs.h.Exchange(0, req)
			f.set(nil)
			if err != nil || f.failed() != 1 || res.Status != 200 {
				t.Fatalf("setup: %v, %d faults injected, status %d", err, f.failed(), res.Status)
			}
			if n := hs.counter("modelcache.internal_errors"); n != 1 {
				t.Errorf("one failed accept-encoding removal: internal_errors=%d, want 1 (refused.internal=%d; Cache-Status %q)",
					n, hs.counter("modelcache_route.chat.refused.internal"), hdr(res, "cache-status"))
			}
		})
	}
}
