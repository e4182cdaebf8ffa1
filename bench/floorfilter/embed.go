package main

import (
	"hash/maphash"
	"strconv"

	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
	"github.com/tidwall/gjson"
)

// Mode "embed" is S9's floor: the least any Go filter that caches
// embeddings item by item does per item in Envoy, without a cache's rules —
// look each input up once in shared data (a slot per item, 16384 slots),
// check the answer is JSON once, store each vector once. No keys beyond a
// hash, no index, no lease, no validation of the vectors, no merge.

const embedSlots = 16384

var embedSeed = maphash.MakeSeed()

type embedState struct{ slots []string }

func embedRequestBody(s *stream, bodySize int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, bodySize)
	if err != nil || !gjson.ValidBytes(body) {
		return types.ActionContinue
	}
	s.embed.slots = s.embed.slots[:0]
	gjson.GetBytes(body, "input").ForEach(func(_, item gjson.Result) bool {
		slot := "floor:e:" + strconv.FormatUint(maphash.String(embedSeed, item.Raw)%embedSlots, 10)
		_, _, _ = proxywasm.GetSharedData(slot)
		s.embed.slots = append(s.embed.slots, slot)
		return true
	})
	return types.ActionContinue
}

func embedResponseBody(s *stream, bodySize int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpResponseBody(0, bodySize)
	if err != nil || !gjson.ValidBytes(body) {
		return types.ActionContinue
	}
	gjson.GetBytes(body, "data").ForEach(func(_, d gjson.Result) bool {
		if i := int(d.Get("index").Int()); i >= 0 && i < len(s.embed.slots) {
			_ = proxywasm.SetSharedData(s.embed.slots[i], []byte(d.Get("embedding").Raw), 0)
		}
		return true
	})
	return types.ActionContinue
}
