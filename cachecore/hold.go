package cachecore

import "time"

// HoldState is what a VM knows about holding request headers: whether the
// proxy lets a plugin read a body while it holds them (Envoy's PluginConfig
// allow_on_headers_stop_iteration), and what header_hold asks for.
//
// With the option off (e.g. Istio's WasmPlugin), Envoy does not call
// on_request_body for a stream whose headers are paused: it buffers the
// body and hands it over whole once the plugin lets the headers go. So a
// request held for HoldGrace without a body is let go: under header_hold
// "auto" it is then decided late, on the body Envoy delivers after the
// headers (Stream.Rescue); under "hold" it passes uncached. It is a
// stall if its body then reaches the plugin at once (HoldResumeWindow):
// the proxy had it and withheld it; a body that comes later, or never,
// is a slow client's. Once HoldStallsToGiveUp stalls happened with no
// body ever seen while holding, the VM stops holding: "auto" decides every request late from
// then on, "hold" passes them uncached. A single body seen while holding
// proves the proxy delivers them, for good. Under "late" nothing is held.
type HoldState struct {
	// Setting is the configuration's header_hold.
	Setting HeaderHold
	mode    holdMode
	stalls  int
	// gaveUpAt: when (ms) the VM last gave up holding; under "hold" it
	// tries again HoldProbeAgain later (Probe). gaveUp: it did once.
	gaveUpAt int64
	gaveUp   bool
}

type holdMode uint8

const (
	holdUnknown     holdMode = iota
	holdSupported            // a body arrived while headers were held
	holdUnsupported          // held requests stalled: stop holding
)

const (
	HoldGrace          = 250 * time.Millisecond
	HoldStallsToGiveUp = 3
	// HoldResumeWindow: a request let go counts as a stall only if its
	// body reaches the plugin this soon after, as the body a proxy that
	// cannot hold buffered meanwhile does; a slow client's comes later,
	// or never, and counts nothing (review Z94).
	HoldResumeWindow = 10 * time.Millisecond
	// HoldProbeAgain: how long a VM under "hold" that gave up holding
	// passes requests uncached before it holds again, one stall from
	// giving up anew: a slow client whose bodies happened to come just
	// after they were let go, three times, is not believed for good.
	HoldProbeAgain = time.Minute
)

// HoldUnsupportedWarning is logged once when a VM gives up holding under
// header_hold "hold".
const HoldUnsupportedWarning = "a request body never reached the filter while its headers were held: " +
	"set allow_on_headers_stop_iteration: true in the wasm PluginConfig (Envoy >= 1.35). " +
	"Until then cacheable requests pass through uncached."

// LateDecisionWarning is logged once when a VM gives up holding under
// header_hold "auto".
const LateDecisionWarning = "a request body never reached the filter while its headers were held " +
	"(allow_on_headers_stop_iteration is off, as under Istio's WasmPlugin): deciding late from now on — " +
	"the headers go upstream at once and a hit resets the upstream request opened for them. " +
	"Set allow_on_headers_stop_iteration: true to hold headers instead."

// Holdable reports whether requests may still be held for their body.
func (h *HoldState) Holdable() bool { return h.Setting != HoldLate && h.mode != holdUnsupported }

// Late reports whether a request that is not held is decided late (else
// it passes uncached).
func (h *HoldState) Late() bool { return h.Setting != HoldHeaders }

// Watching reports whether held requests must be watched for stalls
// (nobody has proven yet that bodies arrive while headers are held).
func (h *HoldState) Watching() bool { return h.Setting != HoldLate && h.mode != holdSupported }

// BodySeen: a body arrived while its headers were held.
func (h *HoldState) BodySeen() { h.mode = holdSupported }

// Stalled counts a held request let go for want of a body (nowMs: the
// time); it reports true when that makes the VM give up holding for the
// first time.
func (h *HoldState) Stalled(nowMs int64) bool {
	h.stalls++
	if h.mode == holdUnknown && h.stalls >= HoldStallsToGiveUp {
		h.mode, h.gaveUpAt = holdUnsupported, nowMs
		first := !h.gaveUp
		h.gaveUp = true
		return first
	}
	return false
}

// letGoReason is why a request let go under "hold" passes uncached. On a
// VM that never gave up holding, body_late: the let-go proves nothing yet,
// and a slow client's body on a proxy that holds was counted as the
// proxy's lack of support, which fired ModelcacheNotCaching (review Z160);
// stalls make the VM give up (Stalled), and its requests then pass as
// hold_unsupported. On a VM that gave up before and holds again (Probe),
// hold_unsupported: the let-go is most likely the proxy's again.
func (h *HoldState) letGoReason() Reason {
	if h.gaveUp {
		return ReasonHoldUnsupported
	}
	return ReasonBodyLate
}

// Probe is the VM's periodic look (nowMs: the time): under "hold", a VM
// that gave up holding HoldProbeAgain ago holds again, one stall from
// giving up anew; a body seen while holding then proves the proxy
// delivers them, for good. (Under "auto" a VM that gave up still caches,
// deciding late.)
func (h *HoldState) Probe(nowMs int64) {
	if h.mode != holdUnsupported || h.Setting != HoldHeaders {
		return
	}
	if nowMs < h.gaveUpAt { // the wall clock stepped back
		h.gaveUpAt = nowMs
	}
	if nowMs-h.gaveUpAt >= HoldProbeAgain.Milliseconds() {
		h.mode, h.stalls = holdUnknown, HoldStallsToGiveUp-1
	}
}

// Warning is the text to log when the VM gives up holding.
func (h *HoldState) Warning() string {
	if h.Late() {
		return LateDecisionWarning
	}
	return HoldUnsupportedWarning
}
