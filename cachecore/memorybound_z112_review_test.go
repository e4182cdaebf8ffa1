package cachecore

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// An embeddings batch's entries are encoded into one buffer sized, at the
// first item stored, as that item's entry times the number of items. A
// client puts one long item first and many short ones after it: one
// request of 110 KB within the default max_request_bytes, answered with
// 83 KB, makes the VM allocate about 150 MB for entries of about 0.5 MB
// (the same items in another order: 2 MB). Under wasm the linear memory
// grown for it is never given back, far outside README's per-VM bound.
func TestZ112EmbeddingsBatchEncodeIsSizedByItsEntries(t *testing.T) {
	clock := newFakeClock()
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`)
	c := New(cfg, Options{Store: NewMemStore(), Now: clock.Now, Rand: seededRand(1)})
	items := []string{strings.Repeat("x", 100<<10)} // the long item first
	for i := range 1500 {
		items = append(items, fmt.Sprint(i))
	}
	body := `{"model":"m","input":["` + strings.Join(items, `","`) + `"]}`
	if len(body) > cfg.MaxRequestBytes {
		t.Fatalf("setup: body of %d bytes over max_request_bytes", len(body))
	}
	s, _ := embStream(c, body, 1)
	ans := embAnswer(items)
	rd := &fakeReader{respHeaders: [][2]string{{":status", "200"}, {"content-type", "application/json"}, {"content-length", fmt.Sprint(len(ans))}}, respBody: ans}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s.ResponseHeaders(false, rd)
	s.ResponseBody(len(ans), true, rd)
	s.Done(rd)
	runtime.ReadMemStats(&after)
	if n, _ := c.table.Occupied(); n < 1000 {
		t.Fatalf("setup: only %d items stored", n)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
		t.Errorf("storing one %d-byte batch's answer of %d bytes allocated %d MiB", len(body), len(ans), got>>20)
	}
}

// The table's entry read buffer is a scratch buffer the VM keeps for reuse
// like the canonicaliser's and the entry encoder's: after one hit on an
// entry near max_entry_bytes (up to 64 MiB), later hits on small entries
// must not leave the VM holding that peak for good (README "Memory bound":
// the scratch buffers kept are of up to 32 KiB each).
func TestZ112TableReadBufferNotKeptAtPeak(t *testing.T) {
	e := newEnv(t, `{"max_request_bytes":4194304,"store":{"max_entry_bytes":4194304},
		"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	big := strings.Repeat("a long answer ", 2<<20/14)
	req, d := e.lookup("chat", alice, chatRequest("big"))
	if req.Bypassed() || d != Forward {
		t.Fatalf("first look: bypassed %v (%s), %v", req.Bypassed(), req.Reason, d)
	}
	e.fill(req, jsonCT, chatResponse(big), 10)
	small, d := e.lookup("chat", alice, chatRequest("small"))
	if d != Forward {
		t.Fatalf("small first look: %v", d)
	}
	e.fill(small, jsonCT, chatResponse("hi"), 10)

	if _, d := e.lookup("chat", alice, chatRequest("big")); d != Serve {
		t.Fatalf("the large answer is not a hit: %v", d)
	}
	for range 3 {
		if _, d := e.lookup("chat", alice, chatRequest("small")); d != Serve {
			t.Fatalf("the small answer is not a hit: %v", d)
		}
	}
	if n := cap(e.cache.table.entBuf); n > maxSpareBuffer {
		t.Errorf("after small hits the table's entry read buffer keeps %d bytes of one earlier large hit, over %d", n, maxSpareBuffer)
	}
}

// The canonical-body memo keeps "the canonical forms of its last 8 request
// bodies of up to 16 KiB" (README, "Memory bound"; canonMemo: "at most
// 2 × 8 × 16 KiB per VM"). A canonical form can be several times its raw
// body (a number 1e20, 5 bytes, canonicalises to 23), and the memo keeps
// it whole: a client sending such bodies of just under 16 KiB makes each
// slot keep about 96 KiB, three times the bound, for the VM's life.
func TestZ112CanonMemoKeepsNoMoreThanItsBound(t *testing.T) {
	e := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	seed, _ := e.lookup("chat", alice, chatRequest("seed")) // the model's record holds an answer: bodies are remembered
	e.fill(seed, jsonCT, chatResponse("x"), 1)
	for i := range canonMemoSlots * 4 {
		body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"q` + strings.Repeat("x", i) + `"}],"logit_bias":[` +
			strings.Repeat("1e20,", 3150) + `1]}`
		if len(body) > canonMemoMaxBody {
			t.Fatalf("setup: body of %d bytes is over the memo's %d", len(body), canonMemoMaxBody)
		}
		if req, _ := e.lookup("chat", alice, body); req.Bypassed() {
			t.Fatalf("setup: bypassed (%s)", req.Reason)
		}
	}
	total := 0
	for _, s := range e.cache.memo.slots {
		total += cap(s.buf)
	}
	if bound := 2 * canonMemoSlots * canonMemoMaxBody; total > bound {
		t.Errorf("the canonical-body memo keeps %d bytes, over its bound of %d (2 × %d slots × %d)", total, bound, canonMemoSlots, canonMemoMaxBody)
	}
}

// A model record is live "until the last entry stored under it expires"
// (README, "Shared state under hostile traffic"). An answer the store
// refuses after the record was settled — its entry, the canonical request
// and the answer together, is over max_entry_bytes though the body alone
// is not — stores no entry, yet keeps its model's record live for twice
// the entry's life. Sixteen such models fill their model-table slot with
// records holding nothing, and a seventeenth model there is refused
// (model_table_full) long after their young time, although no entry of
// theirs exists.
func TestZ112RefusedAnswerKeepsNoModelRecordLive(t *testing.T) {
	env := newEnv(t, `{"store":{"buckets":4096,"ways":4,"max_entry_bytes":4096},
		"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions","ttl":"1h"}]}`)
	models := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot+1)
	prompt := strings.Repeat("p", 2500) // keyed whole: with the answer, over 4096 bytes
	answer := chatResponse(strings.Repeat("a", 2000))
	for _, m := range models[:modelsPerSlot] {
		req, d := env.lookup("chat", bob, withModel(chatRequest(prompt), m))
		if req.Bypassed() || d != Forward {
			t.Fatalf("setup: %s: bypassed %v (%s), %v", m, req.Bypassed(), req.Reason, d)
		}
		st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(answer), OriginUpstream, 10)
		if st.Reason != ReasonTooLarge {
			t.Fatalf("setup: %s: the answer was not refused as too large but %q", m, st.Reason)
		}
	}
	if n, _ := env.cache.table.Occupied(); n != 0 {
		t.Fatalf("setup: %d entries stored", n)
	}
	env.clock.Advance(time.Minute) // past every record's young time (30 s)

	req, _ := env.lookup("chat", alice, withModel(chatRequest("hi"), models[modelsPerSlot]))
	st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("hello")), OriginUpstream, 10)
	if st.Reason != ReasonNone {
		t.Errorf("a new model's answer is refused (%q): its slot's 16 records hold no entry at all, kept live by answers the store refused", st.Reason)
	}
}
