package cachecore

import "time"

// HoldState is what a VM knows about holding request headers: whether the
// proxy lets a plugin read a body while it holds them (Envoy's PluginConfig
// allow_on_headers_stop_iteration). With the option off (e.g. Istio's
// WasmPlugin), Envoy does not call on_request_body for a stream whose
// headers are paused, so such a request would hang. After HoldGrace a held
// request is let through uncached; once HoldStallsToGiveUp such stalls
// happened with no body ever seen while holding, the VM stops holding
// headers. A single body seen while holding proves the proxy delivers
// them, for good.
type HoldState struct {
	mode   holdMode
	stalls int
}

type holdMode uint8

const (
	holdUnknown     holdMode = iota
	holdSupported            // a body arrived while headers were held
	holdUnsupported          // held requests stalled: pass them through
)

const (
	HoldGrace          = 250 * time.Millisecond
	HoldStallsToGiveUp = 3
)

// HoldUnsupportedWarning is logged once when a VM gives up holding.
const HoldUnsupportedWarning = "a request body never reached the filter while its headers were held: " +
	"set allow_on_headers_stop_iteration: true in the wasm PluginConfig (Envoy >= 1.35). " +
	"Until then cacheable requests pass through uncached."

// Holdable reports whether requests may still be held for their body.
func (h *HoldState) Holdable() bool { return h.mode != holdUnsupported }

// Watching reports whether held requests must be watched for stalls
// (nobody has proven yet that bodies arrive while headers are held).
func (h *HoldState) Watching() bool { return h.mode != holdSupported }

// BodySeen: a body arrived while its headers were held.
func (h *HoldState) BodySeen() { h.mode = holdSupported }

// Stalled counts a held request let through for want of a body; it
// reports true when that makes the VM give up holding (once).
func (h *HoldState) Stalled() bool {
	h.stalls++
	if h.mode == holdUnknown && h.stalls >= HoldStallsToGiveUp {
		h.mode = holdUnsupported
		return true
	}
	return false
}
