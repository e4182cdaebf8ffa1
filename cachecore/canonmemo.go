package cachecore

import "encoding/binary"

// canonMemo remembers the canonical form of the request bodies this VM saw
// last, so that a body sent again byte for byte — a client repeating a
// request, the common case of a hit — is not canonicalised again. A slot
// is used only after its raw body compared equal byte for byte with the
// request's, for the same route (so the same key selection), so the memo
// can never change a key: a crafted hash collision only costs a
// canonicalisation. Bodies are memoised up to canonMemoMaxBody bytes, in
// canonMemoSlots slots: at most 2 × 8 × 16 KiB per VM.
type canonMemo struct {
	slots [canonMemoSlots]canonMemoSlot
}

const (
	canonMemoSlots   = 8
	canonMemoMaxBody = 16 << 10
)

type canonMemoSlot struct {
	route     *Route
	raw       []byte
	canonical []byte
	stream    bool
	model     string
	hasModel  bool
}

// canonical is the canonical body of a request and what the
// canonicaliser captured of it.
type canonical struct {
	body     []byte
	stream   bool
	model    string // a plain top-level model field, when hasModel
	hasModel bool
}

// canonicalize appends body's canonical form to dst (Canonicalizer.Append
// with the selection of k's route), through the memo.
func (c *Cache) canonicalize(dst, body []byte, k *routeKeying) (canonical, error) {
	r := k.route
	var slot *canonMemoSlot
	if len(body) <= canonMemoMaxBody {
		if c.memo == nil {
			c.memo = &canonMemo{}
		}
		slot = &c.memo.slots[memoSlot(body)]
		if slot.route == r && equalFromEnd(slot.raw, body) {
			return canonical{append(dst, slot.canonical...), slot.stream, slot.model, slot.hasModel}, nil
		}
	}
	out, err := c.canon.Append(dst, body, &k.sel)
	if err != nil {
		c.canon.dropLargeCaptures()
		return canonical{}, err
	}
	v, _ := c.canon.Captured(0)
	res := canonical{body: out, stream: string(v) == "true"}
	if k.plainModel { // the model is the selection's second capture
		if v, ok := c.canon.Captured(1); ok {
			res.model, res.hasModel = c.modelName(v), true
		}
	}
	c.canon.dropLargeCaptures()
	if slot != nil {
		slot.route = r
		slot.raw = append(slot.raw[:0], body...)
		slot.canonical = append(slot.canonical[:0], out...)
		slot.stream, slot.model, slot.hasModel = res.stream, res.model, res.hasModel
	}
	return res, nil
}

// memoSlot picks a body's slot from its length and a few of its bytes: a
// cheap spread, not an identity (the raw bodies are compared).
func memoSlot(b []byte) uint64 {
	h := uint64(len(b)) * 0x9e3779b97f4a7c15
	if len(b) >= 16 { // three 8-byte words, the middle one within bounds
		le := binary.LittleEndian
		for _, off := range [...]int{0, len(b) / 2, len(b) - 8} {
			h = (h ^ le.Uint64(b[off:])) * 0xff51afd7ed558ccd
		}
	}
	return (h >> 32) % canonMemoSlots
}
