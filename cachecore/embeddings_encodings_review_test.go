package cachecore

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"testing"
)

// Review Z133: what the cache reads from vectors in the encodings vLLM's
// embeddings API answers in. vLLM's EmbeddingRequest takes embed_dtype
// (float32, float16, bfloat16, fp8_e4m3, fp8_e5m2) and endianness (native,
// big, little) for encoding_format "base64": the base64 string then holds
// the vector's elements in that dtype and byte order (kinds.go keys both,
// review Z122, because "they set the form of a base64 vector"). The cache
// stores the upstream's bytes verbatim, so it needs no decoding to serve
// them; but admission (vectorDims) decodes every base64 vector as
// little-endian float32 whatever the request asked for.

// (Adapted to the fix: a base64 request in another element type or byte
// order now passes uncached, embedding_input, and nothing of it is read;
// such a request counts as not refused here.)
func z133Admit(t *testing.T, body, answer string) Reason {
	t.Helper()
	c, r := newEmbCache(t)
	req := embRequest(c, r, body)
	if req.Bypassed() {
		if req.Reason == ReasonEmbeddingInput {
			return ReasonNone
		}
		t.Fatalf("setup: request bypassed: %s", req.Reason)
	}
	c.Lookup(req)
	return c.AdmitBody(req, [][2]string{{"content-type", "application/json"}}, []byte(answer)).Reason
}

func z133Answer(vec []byte) string {
	return `{"object":"list","data":[{"object":"embedding","index":0,"embedding":"` +
		base64.StdEncoding.EncodeToString(vec) + `"}],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}`
}

// A request for dimensions N in a 16- or 8-bit embed_dtype is answered with
// N elements of 2 or 1 bytes, which vectorDims counts as N/2 or N/4
// float32s (or refuses as "not whole float32s"): every such answer is
// refused (refused.dimensions / refused.bad_vector), so these requests are
// never cached — a valid answer in a valid encoding refused.
func TestReviewZ133NarrowEmbedDtypeAnswerAdmitted(t *testing.T) {
	f16 := func(vals ...uint16) []byte {
		var out []byte
		for _, v := range vals {
			out = binary.LittleEndian.AppendUint16(out, v)
		}
		return out
	}
	for _, tc := range []struct {
		name, dtype string
		dims        int
		vec         []byte
	}{
		// 1.0, 2.0, 0.5, -1.0 as IEEE half floats.
		{"float16 dimensions 4", "float16", 4, f16(0x3C00, 0x4000, 0x3800, 0xBC00)},
		// 1.0, 2.0, 0.5 as bfloat16 (a Matryoshka model cut to 3).
		{"bfloat16 dimensions 3", "bfloat16", 3, f16(0x3F80, 0x4000, 0x3F00)},
		// four fp8_e4m3 values (1.0, 2.0, 0.5, -1.0).
		{"fp8_e4m3 dimensions 4", "fp8_e4m3", 4, []byte{0x38, 0x40, 0x30, 0xB8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"model":"e","input":["a"],"encoding_format":"base64","embed_dtype":"` + tc.dtype +
				`","dimensions":` + string(rune('0'+tc.dims)) + `}`
			if got := z133Admit(t, body, z133Answer(tc.vec)); got != ReasonNone {
				t.Errorf("a %d-element %s base64 vector answering dimensions %d is refused: %s, want admitted", tc.dims, tc.dtype, tc.dims, got)
			}
		})
	}
}

// endianness "big": a float32 vector's elements byte-reversed. Read as
// little-endian, an ordinary element such as 0x3F00807F (≈ 0.502) becomes
// 0x7F80003F, a NaN, and the whole answer is refused as bad_vector: about
// one element in 256 does this, so most big-endian answers of a real model
// (384 elements and more) are never stored, and a partial batch's answer
// is thrown away and the whole batch fetched again (items.refetch).
func TestReviewZ133BigEndianBase64AnswerAdmitted(t *testing.T) {
	var vec []byte
	for _, bitsv := range []uint32{0x3F00807F, math.Float32bits(0.25)} {
		vec = binary.BigEndian.AppendUint32(vec, bitsv)
	}
	if v := math.Float32frombits(0x3F00807F); !(v > 0.5 && v < 0.51) {
		t.Fatalf("setup: %v", v)
	}
	body := `{"model":"e","input":["a"],"encoding_format":"base64","endianness":"big"}`
	if got := z133Admit(t, body, z133Answer(vec)); got != ReasonNone {
		t.Errorf("a big-endian float32 vector [0.502, 0.25] is refused: %s, want admitted", got)
	}
}

// A float vector holding 1e39: finite as a float64, but no float32 — which
// every embedding model computes in and which the base64 check holds
// answers to (a base64 element decoding to ±Inf is bad_vector) — can hold
// it: a client that keeps vectors as float32 (numpy, FAISS, pgvector's
// real[]) reads +Inf. README: "every number finite" before anything is
// stored; the same answer in base64 would have been refused, in float it
// is stored and served for the ttl.
func TestReviewZ133FloatVectorBeyondFloat32Refused(t *testing.T) {
	for _, v := range []string{"1e39", "-3.5e38"} {
		ans := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,` + v +
			`]}],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}`
		if got := z133Admit(t, `{"model":"e","input":["a"]}`, ans); got != ReasonBadVector {
			t.Errorf("float vector element %s (±Inf as float32) admitted as %q, want %s", v, got, ReasonBadVector)
		}
	}
}

// The shadow comparison (compare "cosine", the kind's default) decodes the
// cached and the fresh base64 vector as little-endian float32 too
// (decodeVector), whatever endianness the request asked for. A big-endian
// vector read so takes its lowest mantissa byte as sign and exponent: two
// answers that differ in the last bit of their elements (a GPU's
// run-to-run noise) decode to values orders of magnitude apart, and their
// "cosine" is far below min_cosine. Every such sample is a divergence, and
// min_samples of them move the model's generation: every client's vectors
// of the model are invalidated by a model that did not change.
func TestReviewZ133ShadowBigEndianOneULPNoiseAgrees(t *testing.T) {
	be := func(bitsv ...uint32) string {
		var out []byte
		for _, x := range bitsv {
			out = binary.BigEndian.AppendUint32(out, x)
		}
		return `"` + base64.StdEncoding.EncodeToString(out) + `"`
	}
	// 0.5, 0.25, -0.125, 0.0625; and the same, the first three one ulp up.
	cached := be(0x3F000000, 0x3E800000, 0xBE000000, 0x3D800000)
	fresh := be(0x3F000001, 0x3E800001, 0xBE000001, 0x3D800000)
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","shared":true,
	  "ttl":"1h","shadow":{"sample":1,"max_concurrent":4,"min_samples":3,"max_divergence":0.5}}]}`)
	body := func(in string) string {
		return `{"model":"e","input":` + in + `,"encoding_format":"base64","endianness":"big"}`
	}
	answer := func(vec string) string {
		return `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":` + vec + `}]}`
	}
	// (Adapted to the fix: a request passed uncached compares nothing and
	// invalidates nothing.)
	shadowNoiseKeepsModel(t, env, body, answer, cached, fresh,
		"big-endian vectors equal to one ulp (cosine 1 - 1e-14)",
		"three shadow answers equal to the cached vector to one ulp (two variants, alternating)")
}

// shadowNoiseKeepsModel stores the vector cached for item 0 and for
// another client's item on env's route "embed" (body: a request of its
// input; answer: an answer of one vector), then holds fresh, the model's
// run-to-run noise, to agreeing with cached, and three shadow samples
// alternating fresh and cached to leaving the other client's vector
// served. A request the route passes uncached compares nothing: it passes.
// what and samples name the vectors and the samples in the messages.
func shadowNoiseKeepsModel(t *testing.T, env *testEnv, body, answer func(string) string, cached, fresh, what, samples string) {
	t.Helper()
	req, _ := env.lookup("embed", nil, body(`"item 0"`))
	if req.Bypassed() && req.Reason == ReasonEmbeddingInput {
		return // passed uncached: nothing compared, nothing invalidated
	}
	env.fill(req, jsonCT, answer(cached), 10)
	req, _ = env.lookup("embed", nil, body(`"someone else's"`))
	env.fill(req, jsonCT, answer(cached), 10)

	req, d := env.lookup("embed", nil, body(`["item 0"]`))
	if d != Serve {
		t.Fatalf("setup: the cached item is not a hit: %v", d)
	}
	agree, ok := env.cache.compareFresh(req, jsonCT, []byte(answer(fresh)))
	if !ok || !agree {
		t.Errorf("%s compared agree=%v comparable=%v, want agree", what, agree, ok)
	}
	var events []string
	for s := 0; s < 3; s++ {
		req, d := env.lookup("embed", nil, body(`["item 0"]`))
		if d != Serve {
			break // invalidated already
		}
		// The model's run-to-run noise: one answer, then the other.
		got := fresh
		if s%2 == 1 {
			got = cached
		}
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
		for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(answer(got))}) {
			if a.Kind == ActCount {
				events = append(events, EventNames[a.Event])
			}
		}
	}
	if _, d := env.lookup("embed", nil, body(`"someone else's"`)); d != Serve {
		t.Errorf("%s invalidated every vector of the model (another client's is no longer served); counted %v", samples, events)
	}
}

// A base64 request in another element type or byte order passes uncached
// (embedding_input); the default ones, written out, are cached as before,
// and so is a float request whatever embed_dtype says (its vectors are
// JSON numbers).
func TestBase64InForeignBytesPassesUncached(t *testing.T) {
	c, r := newEmbCache(t)
	for body, bypass := range map[string]bool{
		`{"model":"e","input":["a"],"encoding_format":"base64","embed_dtype":"float16"}`:                       true,
		`{"model":"e","input":["a"],"encoding_format":"base64","endianness":"big"}`:                            true,
		`{"model":"e","input":["a"],"encoding_format":"base64","embed_dtype":"float32","endianness":"little"}`: false,
		`{"model":"e","input":["a"],"encoding_format":"base64","endianness":"native"}`:                         false,
		`{"model":"e","input":["a"],"encoding_format":"float","embed_dtype":"float16"}`:                        false,
		`{"model":"e","input":["a"],"embed_dtype":"bfloat16"}`:                                                 false,
	} {
		req := embRequest(c, r, body)
		if got := req.Bypassed() && req.Reason == ReasonEmbeddingInput; got != bypass {
			t.Errorf("%s: bypassed %v (%s), want %v", body, req.Bypassed(), req.Reason, bypass)
		}
	}
}
