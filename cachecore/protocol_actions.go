package cachecore

import (
	"encoding/binary"
	"strconv"
	"strings"
	"time"
)

// The request protocol is sans-IO: a Flight (protocol.go) takes events
// (a miss, a wake-up, a tick, the end of a lead, the result of a call) and
// returns Actions. The host — the proxy-wasm filter, or a test — performs
// them in order and feeds back what happened; it decides nothing.

// ActionKind says what the host must do.
type ActionKind uint8

const (
	// actNone is no action: the Kind of a slot no list has used, or one
	// cleared. Every action written has another Kind, so the slots of an
	// array that lists have used are the ones before its first actNone
	// (clearActions).
	actNone ActionKind = iota
	// ActWait: keep the request paused; a wake-up or a tick continues it.
	ActWait
	// ActServeEntry: answer the client from req.Entry (HitResponse); the
	// request's Status says how (hit, stale, collapsed, stale-if-error).
	ActServeEntry
	// ActServeLocal: answer the client with Status/Headers/Body
	// (CacheStatus is the request status it counts as). If the local reply
	// cannot be sent and Resume is set (the Stream sets it on every local
	// answer, an entry's too), the host forwards instead (fail open:
	// SendFailed), even a request that asked only-if-cached.
	ActServeLocal
	// ActForward: send the request upstream. Resume: it was paused (a
	// follower) and must be resumed; otherwise the current callback
	// continues it.
	ActForward
	// ActCount: count Event on the request's route.
	ActCount
	// ActWake: post Message to the wake-up queue of every worker in VMs.
	ActWake
	// ActDispatch: make Call, then continue with Call.Done on its result
	// (see Call).
	ActDispatch
	// ActStored: note what AdmitAndStore did (Stored), for the stats and
	// the log: stored, or refused with its reason and the upstream Status.
	ActStored
	// ActLog: log Message at Level.
	ActLog
	// ActNoteStore: note only the side effects of a store (model version
	// change, occupancy), not a stored/refused count.
	ActNoteStore
	// ActRefused: count a response not stored for Reason (upstream Status).
	ActRefused
	// ActReplaceResponse: replace the held response (headers not yet
	// sent) whole: Status, Headers in place of every header it held, and
	// Body (the host sets its content-length); Message is its
	// Cache-Status.
	ActReplaceResponse
	// ActResumeResponse: let the held response go on.
	ActResumeResponse
	// ActDropResponseBody: empty the held response's body buffer (an
	// answer that will be replaced whole, read no further).
	ActDropResponseBody
	// ActSendReplacement is ActReplaceResponse for a body larger than the
	// proxy's buffer is known to hold (max_entry_bytes): sent as a local
	// reply in place of the held response, which never enters the buffer
	// (replaced in place if the host refuses the reply).
	ActSendReplacement
	// ActInternal: count an internal error.
	ActInternal
	// ActReplaceBody: replace the held response's body with Body (and its
	// content-length), and remove the response headers Headers names (their
	// first elements): those that described the body replaced.
	ActReplaceBody
	// ActSetHeader: set the response header Name to Value.
	ActSetHeader
	// ActBypass: the request passes untouched, counted as a bypass for
	// Reason (and as a request of CacheStatus); its Cache-Status says so.
	ActBypass
	// ActCountRequest: count a request of CacheStatus on Route.
	ActCountRequest
	// ActRecordAge: record N (ms) in Route's age-at-serve histogram.
	ActRecordAge
	// ActSetProperty: set the filter state Name to Body.
	ActSetProperty
	// ActRemoveRequestHeader: remove the request header Name (before the
	// headers go upstream).
	ActRemoveRequestHeader
	// ActFreed: N entries left the shared table other than through a
	// store or the purge API's answer (another proxy's purge, a dropped
	// L1, a purge done again once L2 had it, an L2 copy a purge overtook):
	// the host lowers its count of occupied slots.
	ActFreed
	// ActRemoveResponseHeader: remove the response header Name (an
	// upstream's x-modelcache- header, before the headers go to the client).
	ActRemoveResponseHeader
)

// LogLevel of an ActLog action.
type LogLevel uint8

const (
	LogDebug LogLevel = iota
	LogInfo
	LogWarn
)

// Action is one instruction to the host. Which fields matter depends on
// Kind.
type Action struct {
	Kind        ActionKind
	Reason      Reason // ActRefused
	Resume      bool   // ActForward: resume a paused request
	Rewrite     bool   // ActForward: send Body upstream instead of the client's
	Late        bool   // ActForward: the headers went upstream already (late decision): only the body can change
	CountLater  bool   // ActForward: not counted now (its outcome can still change): the stream counts it when it ends
	Event       Event  // ActCount
	N           int    // ActCount: how many (0: one); ActForward: cached items; ActRecordAge: ms
	Route       *Route // ActCount, ActStored: the route counted on
	Status      int    // ActServeLocal: HTTP status; ActStored: the upstream's
	CacheStatus Status // ActServeLocal, ActForward, ActBypass, ActCountRequest: the request status counted
	Headers     [][2]string
	Body        []byte
	Stored      *Stored  // ActStored, ActNoteStore
	Name, Value string   // ActSetHeader
	Request     *Request // ActStored: the request the answer belongs to
	VMs         []uint64 // ActWake
	Message     []byte   // ActWake: the encoded wake-up; ActLog: the text
	Level       LogLevel // ActLog
	Call        *Call    // ActDispatch
}

// clearActions zeroes the slots of a that action lists have used, letting
// go of what they point to (bodies, requests, calls) while their stream
// waits to be reused. Lists are written from a's first slot on, every
// action with a Kind other than actNone, so the slots used are those
// before the first actNone: as many as the longest list since a was last
// cleared.
//
// One copy for a Stream's two arrays, and a loop of its own:
// clear() enters the runtime's pointer-clearing and bulk write-barrier
// code, three functions more on every reused stream's path.
//
//go:noinline
func clearActions(a []Action) {
	for i := range a {
		if a[i].Kind == actNone {
			return
		}
		a[i] = Action{}
	}
}

// Call is an asynchronous step of the protocol: the host dispatches it to
// Cluster with a deadline (Timeout) and continues the protocol with Done,
// called exactly once — with the answer, with Failed set if the call got
// no answer in time or failed, or with NotStarted set if it could not be
// dispatched at all. Background refresh, shadow comparison and the
// embeddings refetch are calls today; an embeddings lookup for a semantic
// cache or a read from a remote tier is the same action.
type Call struct {
	Cluster string
	Headers [][2]string
	Body    []byte
	Timeout time.Duration
	// Stream, if non-zero, is the request the call belongs to: the host
	// continues it on that request (and drops the result if the request
	// is gone). Zero: a background call of the worker.
	Stream uint32
	// Started is counted once the call is dispatched (if Route is set).
	Started Event
	Route   *Route
	// Done continues the protocol with the call's result.
	Done func(CallResult) []Action
	// Gone, if set, is called instead of Done when the call's Stream is
	// gone by the time the result arrives (its actions are the worker's:
	// counts, logs, calls with no Stream) — e.g. to release what the call
	// may have taken.
	Gone func(CallResult) []Action
	// MaxBody, if non-zero, is the largest answer body the protocol
	// takes from the call: the host reads at most one byte more, enough
	// for the protocol to see it too large. An answer refused for its
	// size is then not copied into the VM whole, whose memory would keep
	// that size for good (a wasm memory never shrinks). Zero: the whole
	// answer (a refetch relays it to the client).
	MaxBody int

	start int64 // when it was made (ms), for the compute time
}

// CallResult is how a Call ended.
//
// Headers and Body are the protocol's to keep: the host hands over memory
// of their own (the filter reads a call's answer into fresh buffers).
type CallResult struct {
	NotStarted bool // the host could not dispatch it
	Failed     bool // no answer (reset, timeout), or one the host would not hand over (Unread)
	// Unread: the model answered, but the host would not hand the answer
	// over (a fault of the proxy's, not the model's). Failed too.
	Unread  bool
	Status  int
	Headers [][2]string
	Body    []byte
}

// envoyCallReply reports a call's answer that Envoy made itself: a call
// has no response code details to tell (a request's answer has: Origin),
// so it is known by Envoy's local replies as its AsyncClient sends them,
// a text/plain 504 "upstream request timeout" for a call past its
// timeout, a 503 "no healthy upstream" or "upstream connect error or
// disconnect/reset before headers…" for one that reached no model.
func envoyCallReply(res CallResult) bool {
	if res.Failed || res.NotStarted || res.Status != 503 && res.Status != 504 {
		return false
	}
	if ct, _ := header(res.Headers, "content-type"); !strings.HasPrefix(ct, "text/plain") {
		return false
	}
	b := string(res.Body)
	if res.Status == 504 {
		return b == "upstream request timeout"
	}
	return b == "no healthy upstream" || strings.HasPrefix(b, "upstream connect error or disconnect/reset before headers")
}

// CallStatus reads the :status of a call's answer headers (0 if none).
func CallStatus(headers [][2]string) int {
	v, _ := header(headers, ":status")
	return statusCode(v)
}

// statusCode reads a :status value (0 if it is not a number): Envoy's
// codecs write it as three digits.
func statusCode(v string) int {
	n, ok := parseDecimal(v)
	if !ok {
		return 0
	}
	return int(n)
}

// The wake-up message a finished leader posts to each waiting worker's
// queue: 'W', the key's lease fingerprint, the outcome, for a failure the
// leader's response status (0 if none), and the leader (its worker and
// request: a worker's followers of the key may follow a later leader by
// the time the message is read), and the failure's Retry-After seconds (0:
// none). 26 bytes, little-endian.
const wakeLen = 26

// wakeLenV1 is the length of a wake-up message without its Retry-After.
const wakeLenV1 = 24

func encodeWake(fp uint64, o Outcome, status int, by LeaseHolder) []byte {
	msg := make([]byte, wakeLen)
	msg[0] = 'W'
	binary.LittleEndian.PutUint64(msg[1:], fp)
	msg[9] = byte(o)
	binary.LittleEndian.PutUint16(msg[10:], uint16(status))
	binary.LittleEndian.PutUint64(msg[12:], by.VM)
	binary.LittleEndian.PutUint32(msg[20:], by.Stream)
	binary.LittleEndian.PutUint16(msg[24:], uint16(status>>retryAfterShift))
	return msg
}

// WakeLeader is the leader a wake-up message names (zero: none); msg is
// one DecodeWake accepted.
func WakeLeader(msg []byte) LeaseHolder {
	return LeaseHolder{binary.LittleEndian.Uint64(msg[12:]), binary.LittleEndian.Uint32(msg[20:])}
}

// DecodeWake reads a wake-up message; ok is false for anything else.
//
// A message of 24 bytes, without the Retry-After, is read too: a VM of the
// module before it (a rollout, a reload) wakes this one's followers, which
// otherwise waited for their tick.
func DecodeWake(msg []byte) (fp uint64, o Outcome, status int, ok bool) {
	if len(msg) != wakeLen && len(msg) != wakeLenV1 || msg[0] != 'W' || msg[9] > byte(OutcomeAbandoned) {
		return 0, 0, 0, false
	}
	status = int(binary.LittleEndian.Uint16(msg[10:]))
	if len(msg) == wakeLen {
		status |= int(binary.LittleEndian.Uint16(msg[24:])) << retryAfterShift
	}
	return binary.LittleEndian.Uint64(msg[1:]), Outcome(msg[9]), status, true
}

// WakeQueueName is the name of worker vm's wake-up queue. A shared queue
// has a single consumer — the last VM that registered its name — so every
// worker has its own.
func WakeQueueName(vm uint64) string { return "modelcache/wake/" + strconv.FormatUint(vm, 16) }
