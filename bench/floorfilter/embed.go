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

const embedSlots = 16384

type embedState struct{ slots []uint64 }

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
	gjson.Get(unsafe.String(unsafe.SliceData(b), len(b)), "input").ForEach(func(_, item gjson.Result) bool {
		slot := fnv64(unsafe.Slice(unsafe.StringData(item.Raw), len(item.Raw))) % embedSlots
		_, _, _ = getShared("fl:v:", slot)
		s.embed.slots = append(s.embed.slots, slot)
		return true
	})
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
			_ = proxywasm.SetSharedData(keyString(), unsafe.Slice(unsafe.StringData(v), len(v)), 0)
		}
		return true
	})
	return types.ActionContinue
}
