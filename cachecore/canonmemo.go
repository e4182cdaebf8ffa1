package cachecore

import "unsafe"

// canonMemo remembers the canonical form of the request bodies this VM saw
// last, so that a body sent again byte for byte — a client repeating a
// request, the common case of a hit — is not canonicalised again. A slot
// is used only after its raw body compared equal byte for byte with the
// request's, for the same route (so the same key selection), so the memo
// can never change a key: a crafted hash collision only costs a
// canonicalisation. Bodies are memoised up to canonMemoMaxBody bytes, in
// canonMemoSlots slots, each with its canonical form within twice that:
// at most 2 × 8 × 16 KiB per VM (remember).
type canonMemo struct {
	slots [canonMemoSlots]canonMemoSlot
}

const (
	canonMemoSlots   = 8
	canonMemoMaxBody = 16 << 10
)

// A slot holds a raw body and its canonical form one after the other in
// one buffer (rawLen bytes of raw body): one copy into it, not two.
type canonMemoSlot struct {
	route *Route
	// spread: memoSpread of the raw body. A body of another spread is
	// not the slot's, and is not compared byte for byte: a new body (a
	// miss) that lands on a slot taken runs no comparison.
	spread uint64
	buf    []byte
	rawLen int
	stream bool
	model  string
}

// canonicalize keys req from its body, req.Body: req.canonical is the
// body's canonical form (Canonicalizer.Append with the selection of k's
// route), req.Stream its "stream" and, on a route whose model field is a
// plain top-level name, req.Model that field ("" if absent), through the
// memo. The results go to the request directly: one place for them, not
// a result struct copied out and then into req. The body is read from
// req, not passed: SetBody's call passes three words fewer.
//
// A body that is not canonical JSON bypasses req (canonReason). A body
// canonicalised here is not kept yet: it returns the slot the body is
// kept in (remember) once SetBody knows the model's state, nil when the
// body came from the memo, is too large for it or bypassed req. (One word
// of result, not three with an error: SetBody reads req's status.)
func (c *Cache) canonicalize(req *Request, k *routeKeying) *canonMemoSlot {
	r, body := k.route, req.Body
	var slot *canonMemoSlot
	if len(body) <= canonMemoMaxBody {
		spread := memoSpread(body)
		slot = &c.memo.slots[memoSlotOf(spread)]
		if slot.route == r && slot.spread == spread && equalFromEnd(slot.buf[:slot.rawLen], body) {
			req.canonical = append(req.canonical[:0], slot.buf[slot.rawLen:]...)
			req.Stream, req.Model = slot.stream, slot.model
			return nil
		}
	}
	out, err := c.canon.Append(req.canonical[:0], body, &k.sel)
	if err != nil {
		c.canon.dropLargeCaptures()
		req.bypass(canonReason(err))
		return nil
	}
	v, _ := c.canon.Captured(0)
	stream, model := string(v) == "true", ""
	if k.plainModel { // the model is the selection's second capture
		if v, ok := c.canon.Captured(1); ok {
			model = c.modelName(v)
		}
	}
	c.canon.dropLargeCaptures()
	req.canonical, req.Stream, req.Model = out, stream, model
	return slot
}

// remember keeps req's body, canonicalised (canonicalize), in slot, the
// one canonicalize returned for it, for the next request that sends it
// again byte for byte. SetBody calls it only for a model with an answer
// stored under its record: under an empty one (no answer ever stored, as
// on a route whose answers are all no-store) a body sent again cannot be
// a hit, and the copy would be work for nothing. If this body's own
// answer is the model's first stored, the next request to send it
// canonicalises it once more, and is remembered then.
//
// A slot keeps at most 2 × canonMemoMaxBody bytes: a body whose canonical
// form is longer than that with it (a number such as 1e20, 5 bytes, is 23
// canonical) is not kept, where slots of 96 KiB each were (review Z112).
//
//go:noinline
func (c *Cache) remember(slot *canonMemoSlot, req *Request) {
	body := req.Body
	need := len(body) + len(req.canonical)
	if need > 2*canonMemoMaxBody {
		return
	}
	if cap(slot.buf) < need {
		slot.buf = make([]byte, 0, need)
	}
	slot.route, slot.spread, slot.rawLen = req.Route, memoSpread(body), len(body)
	slot.buf = append(append(slot.buf[:0], body...), req.canonical...)
	slot.stream, slot.model = req.Stream, req.Model
}

// memoSlotOf picks a body's slot from its spread (memoSpread).
func memoSlotOf(spread uint64) uint64 { return (spread >> 32) % canonMemoSlots }

// memoSpread is a body's spread, from its length and a few of its bytes: a
// cheap one, not an identity (the raw bodies are compared).
func memoSpread(b []byte) uint64 {
	const k = 0xff51afd7ed558ccd
	h := uint64(len(b)) * 0x9e3779b97f4a7c15
	if n := len(b); n >= 16 { // three 8-byte words, the middle one within bounds
		// Unchecked loads written out, not a loop over the offsets:
		// within the inliner's budget, so canonicalize runs no function
		// for it.
		p := unsafe.Pointer(unsafe.SliceData(b))
		h = (h ^ word(p, 0)) * k
		h = (h ^ word(p, n/2)) * k
		h = (h ^ word(p, n-8)) * k
	}
	return h
}
