//go:build wasip1

package proxywasm

import (
	"runtime"
	_ "unsafe" // go:linkname
)

// writeBarrier is the runtime's flag "a collection is marking" (the write
// barrier is on from the start of marking to its end). The runtime keeps
// it linkable by name (go.dev/issue/67401); it is only read here.
//
//go:linkname writeBarrier runtime.writeBarrier
var writeBarrier struct {
	enabled bool
	pad     [3]byte
	alignme uint64
}

// yieldToCollector lets the collector's background worker run when a
// collection is marking, and reports whether it did. In a wasip1 module
// the runtime runs other goroutines only when the callback's goroutine
// yields: without this, marking advances only through the assists charged
// to allocations, so it lasts across many callbacks that all pay the write
// barrier (and the assists). A yield when nothing is marking would cost a
// trip through the scheduler (≈ 1.5 µs under V8), hence the check.
func yieldToCollector() bool {
	if !writeBarrier.enabled {
		return false
	}
	runtime.Gosched()
	return true
}
