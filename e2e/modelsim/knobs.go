package modelsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault names a way for a model call to go wrong. The zero value is no fault.
type Fault string

// Faults the simulator can inject into model calls.
const (
	// FaultNone answers normally.
	FaultNone Fault = ""
	// FaultReset hijacks the connection and closes it with a TCP RST before
	// any response byte, as a crashing upstream would.
	FaultReset Fault = "reset"
	// FaultTimeout holds the request until the client goes away, the server
	// closes, or Options.MaxHold passes (then 504), to exercise upstream
	// timeouts.
	FaultTimeout Fault = "timeout"
	// FaultMalformed answers 200 with a body that is not valid JSON (for
	// streams: one event whose data is not valid JSON, then [DONE]).
	FaultMalformed Fault = "malformed"
	// FaultTruncate sends part of the answer and then aborts the connection:
	// JSON bodies stop halfway with a Content-Length promising the whole;
	// streams stop halfway without [DONE].
	FaultTruncate Fault = "truncate"
	// FaultEmpty answers 200 with nothing in it: empty content for chat and
	// completions, no data for embeddings, no labels for the classifier, no
	// results for rerank.
	FaultEmpty Fault = "empty"
	// FaultTrailers answers JSON in full but ends it with a trailer
	// (x-sim-trailer), so the body's last chunk does not end the stream:
	// the trailers do. Not a failure: a quirk a cache must take in.
	FaultTrailers Fault = "trailers"
)

var faults = []Fault{FaultNone, FaultReset, FaultTimeout, FaultMalformed, FaultTruncate, FaultEmpty, FaultTrailers}

// Request headers that override the global knobs for one request. They are
// meant for direct use against the simulator; a cache in front may strip
// them or (correctly) leave them out of its key.
const (
	// HeaderModelVersion is set on every response to the version that
	// answered.
	HeaderModelVersion = "x-model-version"

	HeaderLatency          = "x-sim-latency"          // "300ms" or "300" (milliseconds)
	HeaderChunkDelay       = "x-sim-chunk-delay"      // same syntax, between stream events
	HeaderStatus           = "x-sim-status"           // 400..599
	HeaderFault            = "x-sim-fault"            // a Fault name
	HeaderFinishReason     = "x-sim-finish-reason"    // e.g. length, content_filter
	HeaderCacheControl     = "x-sim-cache-control"    // Cache-Control on the response
	HeaderSimModelVersion  = "x-sim-model-version"    // answer as this version
	HeaderScore            = "x-sim-score"            // classifier top score in [0.01,1]
	HeaderNondeterministic = "x-sim-nondeterministic" // "true": vary id, created, content
)

// Knobs are the global behaviour switches. The JSON names are those of POST
// /__sim/config, where a body updates only the fields it names. Zero values
// mean "off" (or the default version), so Knobs{} is a healthy model.
type Knobs struct {
	// ModelVersion answers x-model-version and feeds every digest; changing
	// it changes every answer and vector. Empty means the default version
	// (Options.Defaults.ModelVersion, else "v1").
	ModelVersion string `json:"model_version"`
	// LatencyMS is added before the first response byte of a model call.
	LatencyMS int `json:"latency_ms"`
	// ChunkDelayMS is added between stream events.
	ChunkDelayMS int `json:"chunk_delay_ms"`
	// Status, when non-zero, answers model calls with that HTTP status and
	// an OpenAI-style error body.
	Status int `json:"status"`
	// Fault is injected into model calls; see the Fault constants.
	Fault Fault `json:"fault"`
	// FailNext, when positive, limits Status and Fault to the next FailNext
	// model calls (status 500 if neither is set). When it counts down to
	// zero, Status and Fault are cleared, so the model recovers by itself;
	// tests of retry and negative caching rely on that.
	FailNext int `json:"fail_next"`
	// FinishReason overrides finish_reason in chat and completion answers.
	FinishReason string `json:"finish_reason"`
	// CacheControl, when set, is sent as the Cache-Control response header
	// of model calls (e.g. "no-store"), to test that the cache honours it.
	CacheControl string `json:"cache_control"`
	// Score, when non-zero, is the classifier's top score unless the input
	// carries a [score=…] marker.
	Score float64 `json:"score"`
	// Nondeterministic makes chat and completion answers differ on every
	// call (id and content gain the call number, created is the clock), so a
	// test can tell a cached answer from a fresh one.
	Nondeterministic bool `json:"nondeterministic"`
}

// Validate reports the first invalid field by its JSON name.
func (k Knobs) Validate() error {
	switch {
	case !headerSafe(k.ModelVersion):
		return fmt.Errorf("model_version: %q is not a valid header value", k.ModelVersion)
	case k.LatencyMS < 0:
		return fmt.Errorf("latency_ms: must be >= 0, got %d", k.LatencyMS)
	case k.ChunkDelayMS < 0:
		return fmt.Errorf("chunk_delay_ms: must be >= 0, got %d", k.ChunkDelayMS)
	case k.Status != 0 && (k.Status < 400 || k.Status > 599):
		return fmt.Errorf("status: must be 0 or 400..599, got %d", k.Status)
	case !validFault(k.Fault):
		return fmt.Errorf("fault: unknown fault %q (want one of reset, timeout, malformed, truncate, empty)", k.Fault)
	case k.FailNext < 0:
		return fmt.Errorf("fail_next: must be >= 0, got %d", k.FailNext)
	case !headerSafe(k.FinishReason) || strings.ContainsAny(k.FinishReason, " \t"):
		return fmt.Errorf("finish_reason: %q is not a single token", k.FinishReason)
	case !headerSafe(k.CacheControl):
		return fmt.Errorf("cache_control: %q is not a valid header value", k.CacheControl)
	case k.Score != 0 && (k.Score < MinScore || k.Score > 1):
		return fmt.Errorf("score: must be 0 (unset) or in [%v,1], got %v", MinScore, k.Score)
	}
	return nil
}

func validFault(f Fault) bool {
	for _, g := range faults {
		if f == g {
			return true
		}
	}
	return false
}

// headerSafe rejects control characters, which would let a knob split or
// corrupt a response header.
func headerSafe(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// overrides holds the x-sim-* headers of one request; nil fields are absent.
type overrides struct {
	version          *string
	latency          *time.Duration
	chunkDelay       *time.Duration
	status           *int
	fault            *Fault
	finishReason     *string
	cacheControl     *string
	score            *float64
	nondeterministic *bool
}

// parseOverrides reads the x-sim-* headers, naming the first bad one, so a
// typo in a test fails loudly instead of silently testing the happy path.
func parseOverrides(h http.Header) (overrides, error) {
	var o overrides
	str := func(name string) (string, bool) {
		v := h.Values(name)
		if len(v) == 0 {
			return "", false
		}
		return strings.TrimSpace(v[0]), true
	}
	if v, ok := str(HeaderSimModelVersion); ok {
		if v == "" {
			return o, fmt.Errorf("%s: must not be empty", HeaderSimModelVersion)
		}
		o.version = &v
	}
	for _, d := range []struct {
		name string
		dst  **time.Duration
	}{{HeaderLatency, &o.latency}, {HeaderChunkDelay, &o.chunkDelay}} {
		if v, ok := str(d.name); ok {
			dur, err := parseDelay(v)
			if err != nil {
				return o, fmt.Errorf("%s: %v", d.name, err)
			}
			*d.dst = &dur
		}
	}
	if v, ok := str(HeaderStatus); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 400 || n > 599 {
			return o, fmt.Errorf("%s: want a status in 400..599, got %q", HeaderStatus, v)
		}
		o.status = &n
	}
	if v, ok := str(HeaderFault); ok {
		f := Fault(strings.ToLower(v))
		if !validFault(f) {
			return o, fmt.Errorf("%s: unknown fault %q", HeaderFault, v)
		}
		o.fault = &f
	}
	if v, ok := str(HeaderFinishReason); ok {
		o.finishReason = &v
	}
	if v, ok := str(HeaderCacheControl); ok {
		o.cacheControl = &v
	}
	if v, ok := str(HeaderScore); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < MinScore || f > 1 {
			return o, fmt.Errorf("%s: want a number in [%v,1], got %q", HeaderScore, MinScore, v)
		}
		o.score = &f
	}
	if v, ok := str(HeaderNondeterministic); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("%s: want true or false, got %q", HeaderNondeterministic, v)
		}
		o.nondeterministic = &b
	}
	return o, nil
}

// parseDelay accepts a Go duration ("300ms", "1.5s") or bare milliseconds.
func parseDelay(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("must be >= 0, got %q", v)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration like 300ms, got %q", v)
	}
	return d, nil
}

// callKnobs is what one model call does: the global knobs as of the call,
// with fail_next applied and the request's headers laid over them.
type callKnobs struct {
	version          string
	latency          time.Duration
	chunkDelay       time.Duration
	status           int
	fault            Fault
	finishReason     string
	cacheControl     string
	score            float64
	nondeterministic bool
}

func (k Knobs) forCall(o overrides) callKnobs {
	c := callKnobs{
		version:          k.ModelVersion,
		latency:          time.Duration(k.LatencyMS) * time.Millisecond,
		chunkDelay:       time.Duration(k.ChunkDelayMS) * time.Millisecond,
		status:           k.Status,
		fault:            k.Fault,
		finishReason:     k.FinishReason,
		cacheControl:     k.CacheControl,
		score:            k.Score,
		nondeterministic: k.Nondeterministic,
	}
	if o.version != nil {
		c.version = *o.version
	}
	if o.latency != nil {
		c.latency = *o.latency
	}
	if o.chunkDelay != nil {
		c.chunkDelay = *o.chunkDelay
	}
	if o.status != nil {
		c.status = *o.status
	}
	if o.fault != nil {
		c.fault = *o.fault
	}
	if o.finishReason != nil {
		c.finishReason = *o.finishReason
	}
	if o.cacheControl != nil {
		c.cacheControl = *o.cacheControl
	}
	if o.score != nil {
		c.score = *o.score
	}
	if o.nondeterministic != nil {
		c.nondeterministic = *o.nondeterministic
	}
	return c
}
