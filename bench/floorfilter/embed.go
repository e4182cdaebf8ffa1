package main

import (
	"strconv"
	"unsafe"

	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
	"github.com/tidwall/gjson"
)

// Mode "embed" is S9's floor: the least any Go filter that caches
// embeddings item by item does per item in Envoy, without a cache's rules —
// look each input up once in shared data (a slot per item, 16384 slots),
// check the answer is JSON once, store each vector once. No keys beyond a
// hash, no index, no lease, no validation of the vectors, no merge, and
// no garbage per item (buffers reused as modelcache reuses its own).

// Mode "embed-calls" is the floor of modelcache's own design for a new
// item: the same JSON work as "embed" plus exactly the shared-data calls
// modelcache makes per new item and per batch (HC row "embeddings, 32 new
// items"), with values of about the same size — per item: the bucket's
// index read at the lookup (and, for the batch's first two items, before
// it their preferred way's entry: a batch turns to the index first once
// its misses outnumber its hits by two), then the index and the entry
// written; per batch: the model record read once (at the
// lookup; the new leader keeps that state), the lease slot read before the
// first index read and taken with that read (a CAS set), and released (a
// get and a CAS set). What modelcache costs above it is its code, not its
// calls.

const (
	embedSlots = 16384
	embedWays  = 4 // modelcache's bench table: 4096 buckets of 4 ways
	// embedPreferredReads is how many new items of a batch modelcache
	// looks up through their preferred way before the index.
	embedPreferredReads = 2
)

type embedState struct {
	slots []uint64
	lease uint64 // embed-calls: the batch's lease slot
	// embed-cached: a batch gone upstream, its inputs (for their stores)
	items [][]byte
}

// embedIndex stands for a bucket index as modelcache writes it (a header
// and 4 ways: ≈ 84 bytes).
var embedIndex [84]byte

func embedCalls() bool { return mode == "embed-calls" }

func embedRequestBody(s *stream, bodySize int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause
	}
	b, err := proxywasm.GetHttpRequestBodyInto(body, 0, bodySize)
	if cap(b) > cap(body) {
		body = b[:0]
	}
	if err != nil || !gjson.ValidBytes(b) {
		return types.ActionContinue
	}
	s.embed.slots = s.embed.slots[:0]
	if embedCalls() {
		readModel(0)
		s.embed.lease = fnv64(b) % 4096
	}
	var leaseCAS uint32
	ahead := false
	gjson.Get(unsafe.String(unsafe.SliceData(b), len(b)), "input").ForEach(func(_, item gjson.Result) bool {
		slot := fnv64(unsafe.Slice(unsafe.StringData(item.Raw), len(item.Raw))) % embedSlots
		if !embedCalls() || len(s.embed.slots) < embedPreferredReads {
			_, _, _ = getShared("fl:v:", slot)
		}
		if embedCalls() {
			if !ahead { // the lease slot, read ahead of the first index
				_, leaseCAS, _ = getShared("fl:l:", s.embed.lease)
				ahead = true
			}
			_, _, _ = getShared("fl:i:", slot/embedWays)
		}
		s.embed.slots = append(s.embed.slots, slot)
		return true
	})
	if embedCalls() {
		// The lease, taken with the read ahead (the new leader reads
		// nothing more).
		putU64(lease[0:], s.embed.lease)
		key = strconv.AppendUint(append(key[:0], "fl:l:"...), s.embed.lease, 16)
		_ = proxywasm.SetSharedData(keyString(), lease[:], leaseCAS)
	}
	return types.ActionContinue
}

func embedResponseBody(s *stream, bodySize int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause
	}
	answer, err := proxywasm.GetHttpResponseBody(0, bodySize)
	if err != nil || !gjson.ValidBytes(answer) {
		return types.ActionContinue
	}
	gjson.Get(unsafe.String(unsafe.SliceData(answer), len(answer)), "data").ForEach(func(_, d gjson.Result) bool {
		if i := int(d.Get("index").Int()); i >= 0 && i < len(s.embed.slots) {
			key = strconv.AppendUint(append(key[:0], "fl:v:"...), s.embed.slots[i], 16)
			v := d.Get("embedding").Raw
			if embedCalls() {
				key = strconv.AppendUint(append(key[:0], "fl:i:"...), s.embed.slots[i]/embedWays, 16)
				putU64(embedIndex[:], s.embed.slots[i])
				_ = proxywasm.SetSharedData(keyString(), embedIndex[:], 0)
				key = strconv.AppendUint(append(key[:0], "fl:v:"...), s.embed.slots[i], 16)
			}
			_ = proxywasm.SetSharedData(keyString(), unsafe.Slice(unsafe.StringData(v), len(v)), 0)
		}
		return true
	})
	if embedCalls() { // release the lease
		_, cas, _ := getShared("fl:l:", s.embed.lease)
		_ = proxywasm.SetSharedData(keyString(), nil, cas)
	}
	return types.ActionContinue
}

// Mode "embed-cached" is S9's floor for a batch whose every item is
// cached: the least a Go filter that answers such a batch from shared
// data does, with modelcache's calls for it (HC row "embeddings, 32 items,
// all cached": the model record and one read per item, one local
// answer). Per item it reads one value, compares the input stored in it
// with the request's (a cache must never answer one input with another's
// vector) and appends the vector to the answer, which is built in a reused
// buffer and sent by the proxy. No lease, no index, no freshness, no
// merge of fresh and cached items. A batch with any item not stored goes
// upstream, and its answer stores every item (the warm-up does that).

// cachedAnswer is the reused buffer of embed-cached's answers.
var cachedAnswer []byte

// cachedHeaders are embed-cached's answer headers (made once).
var cachedHeaders = [][2]string{{"content-type", "application/json"}, {"cache-status", "floor; hit"}}

// embedCachedRequestBody answers the batch when every item is stored; else
// it keeps the items for the answer's stores and lets the batch go.
func embedCachedRequestBody(s *stream, bodySize int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause
	}
	b, err := readBody(bodySize)
	if err != nil || !gjson.ValidBytes(b) {
		return types.ActionContinue
	}
	req := unsafe.String(unsafe.SliceData(b), len(b))
	readModel(0)
	a := append(cachedAnswer[:0], `{"object":"list","data":[`...)
	n, all := 0, true
	gjson.Get(req, "input").ForEach(func(_, item gjson.Result) bool {
		raw := unsafe.Slice(unsafe.StringData(item.Raw), len(item.Raw))
		v, _, err := getShared("fl:c:", fnv64(raw))
		if err != nil || len(v) < 4 {
			all = false
			return false
		}
		stored := v[4:]
		l := int(uint32(v[0]) | uint32(v[1])<<8 | uint32(v[2])<<16 | uint32(v[3])<<24)
		if l > len(stored) || string(stored[:l]) != item.Raw {
			all = false // another input under this hash
			return false
		}
		if n > 0 {
			a = append(a, ',')
		}
		a = append(a, `{"object":"embedding","index":`...)
		a = strconv.AppendInt(a, int64(n), 10)
		a = append(a, `,"embedding":`...)
		a = append(a, stored[l:]...)
		a = append(a, '}')
		n++
		return true
	})
	cachedAnswer = a
	if !all || n == 0 {
		// Not every item is stored: upstream, keeping the items (their
		// stores follow the answer; only the warm-up comes here).
		s.embed.items = s.embed.items[:0]
		gjson.Get(req, "input").ForEach(func(_, item gjson.Result) bool {
			s.embed.items = append(s.embed.items, []byte(item.Raw))
			return true
		})
		return types.ActionContinue
	}
	a = append(a, `],"model":`...)
	a = append(a, gjson.Get(req, "model").Raw...)
	a = append(a, `,"usage":{"prompt_tokens":0,"total_tokens":0}}`...)
	cachedAnswer = a
	ctrs[0].Increment(1)
	ctrs[1].Increment(1)
	_ = proxywasm.SendHttpResponse(200, cachedHeaders, a, -1)
	return types.ActionPause
}

// embedCachedResponseBody stores each item of an answer from upstream: its
// input, then its vector.
func embedCachedResponseBody(s *stream, bodySize int, endOfStream bool) types.Action {
	if len(s.embed.items) == 0 {
		return types.ActionContinue
	}
	if !endOfStream {
		return types.ActionPause // until the answer is complete
	}
	answer, err := proxywasm.GetHttpResponseBody(0, bodySize)
	if err != nil || !gjson.ValidBytes(answer) {
		return types.ActionContinue
	}
	gjson.Get(unsafe.String(unsafe.SliceData(answer), len(answer)), "data").ForEach(func(_, d gjson.Result) bool {
		i := int(d.Get("index").Int())
		if i < 0 || i >= len(s.embed.items) {
			return true
		}
		in, v := s.embed.items[i], d.Get("embedding").Raw
		val := make([]byte, 4, 4+len(in)+len(v))
		val[0], val[1], val[2], val[3] = byte(len(in)), byte(len(in)>>8), byte(len(in)>>16), byte(len(in)>>24)
		val = append(append(val, in...), v...)
		key = strconv.AppendUint(append(key[:0], "fl:c:"...), fnv64(in), 16)
		_ = proxywasm.SetSharedData(keyString(), val, 0)
		return true
	})
	s.embed.items = nil
	return types.ActionContinue
}
