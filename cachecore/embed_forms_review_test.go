package cachecore

import (
	"encoding/base64"
	"math"
	"testing"
)

// Review Z138: embeddings requests in the dialects of real servers that
// answer in the OpenAI shape (object/data[{index, embedding}]/model/usage):
// Voyage and Mistral (output_dtype with encoding_format base64), Jina
// (embedding_type). The cache reads a base64 vector as little-endian
// float32s (vectorDims, decodeVector) unless vLLM's embed_dtype or
// endianness says otherwise (review Z133); these dialects' fields that set
// a base64 vector's element type are not read.

// Voyage (and Mistral) with encoding_format "base64" and output_dtype int8,
// uint8, binary or ubinary answer each vector as the base64 of a NumPy
// array of int8 or uint8 — one byte an element, not four. Admission
// (vectorDims) decodes every base64 vector as little-endian float32
// whatever output_dtype says: four int8 elements whose last is -1 (0xff)
// and third negative read as a NaN, and the whole answer is refused as
// bad_vector. In a quantised vector of 1,024 elements such a group is
// more likely than not, so these requests are mostly never cached, each
// refusal counted as a model's broken vector (refused.bad_vector), and a
// partial batch's answer is thrown away and the whole batch fetched again.
// It is review Z133's embed_dtype defect in Voyage's spelling, which the
// Z133 fix (foreignBytes: embed_dtype, endianness) does not read.
// Expected: such a request passes uncached (embedding_input), as vLLM's
// embed_dtype does, or its answer is admitted.
func TestEmbedFormsVoyageInt8Base64AnswerAdmitted(t *testing.T) {
	// int8 elements 16, 32, -128, -1 and 3, 5, 7, 9: the first four read as
	// the float32 0xff802010, a NaN.
	vec := []byte{0x10, 0x20, 0x80, 0xff, 3, 5, 7, 9}
	answer := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":"` +
		base64.StdEncoding.EncodeToString(vec) + `"}],"model":"voyage-3","usage":{"total_tokens":1}}`
	for _, dtype := range []string{"int8", "uint8", "binary", "ubinary"} {
		t.Run(dtype, func(t *testing.T) {
			body := `{"model":"voyage-3","input":["a"],"encoding_format":"base64","output_dtype":"` + dtype + `"}`
			if got := z133Admit(t, body, answer); got != ReasonNone {
				t.Errorf("a valid %s base64 vector of 8 elements is refused: %s, want admitted (or the request passed uncached)", dtype, got)
			}
		})
	}
}

// Jina's embedding_type "base64" (without encoding_format) answers each
// vector as a base64 string. The cache reads the request as a float one
// (no encoding_format) and refuses every such answer as bad_vector: never
// cached, and every answer counted as a model's broken vector. Expected:
// the request passes uncached (embedding_input), or the answer is read as
// the base64 it is and admitted.
func TestEmbedFormsJinaEmbeddingTypeBase64AnswerAdmitted(t *testing.T) {
	vec := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x3f} // float32 1.0, 0.5
	answer := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":"` +
		base64.StdEncoding.EncodeToString(vec) + `"}],"model":"jina-embeddings-v3","usage":{"total_tokens":1,"prompt_tokens":1}}`
	body := `{"model":"jina-embeddings-v3","input":["a"],"embedding_type":"base64"}`
	if got := z133Admit(t, body, answer); got != ReasonNone {
		t.Errorf("Jina's base64 answer to embedding_type base64 is refused: %s, want admitted (or the request passed uncached)", got)
	}
}

// The shadow comparison (cosine, the embeddings default) decodes Voyage's
// int8 base64 vectors as float32s too. Two answers of an int8 model that
// differ by one step in one element (quantisation's run-to-run noise:
// int8 cosine 0.99994) decode to float32s one of which is four times the
// other (the step lands in an exponent), a "cosine" of about 0.86, far
// below min_cosine 0.999. Every such sample is a divergence, and
// min_samples of them move the model's generation: every client's vectors
// of the model are invalidated by a model that did not change (review
// Z133's big-endian case, in Voyage's spelling). Expected: the request
// passes uncached, or its vectors are compared as the int8s they are.
func TestEmbedFormsShadowVoyageInt8OneStepNoiseAgrees(t *testing.T) {
	cachedVec := []int8{10, -20, 30, 40, 15, -25, 35, 40}
	freshVec := []int8{10, -20, 30, 40, 15, -25, 35, 41}
	var dot, na, nb float64
	for i := range cachedVec {
		a, b := float64(cachedVec[i]), float64(freshVec[i])
		dot, na, nb = dot+a*b, na+a*a, nb+b*b
	}
	if cos := dot / math.Sqrt(na*nb); cos < 0.9999 {
		t.Fatalf("setup: int8 cosine %v", cos)
	}
	enc := func(v []int8) string {
		raw := make([]byte, len(v))
		for i, x := range v {
			raw[i] = byte(x)
		}
		return `"` + base64.StdEncoding.EncodeToString(raw) + `"`
	}
	cached, fresh := enc(cachedVec), enc(freshVec)
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","shared":true,
	  "ttl":"1h","shadow":{"sample":1,"max_concurrent":4,"min_samples":3,"max_divergence":0.5}}]}`)
	body := func(in string) string {
		return `{"model":"voyage-3","input":` + in + `,"encoding_format":"base64","output_dtype":"int8"}`
	}
	answer := func(vec string) string {
		return `{"object":"list","model":"voyage-3","data":[{"object":"embedding","index":0,"embedding":` + vec + `}],"usage":{"total_tokens":1}}`
	}
	shadowNoiseKeepsModel(t, env, body, answer, cached, fresh,
		"int8 vectors one step apart (cosine 0.99994)",
		"three shadow answers of an int8 model one quantisation step apart (alternating)")
}

// Jina's embedding_type "binary" (and "ubinary") packs eight dimensions
// into one int8: a request for dimensions 64 is answered with 8 integers
// an item. Admission holds every vector to the requested dimensions and
// refuses each such answer as dimensions (refused.dimensions, what a server
// that ignores dimensions or a broken answer gets): never cached. Expected:
// a request whose dimensions the answer does not count in elements passes
// uncached (embedding_input), or its answer is admitted.
func TestEmbedFormsJinaBinaryWithDimensionsAnswerAdmitted(t *testing.T) {
	for _, typ := range []string{"binary", "ubinary"} {
		t.Run(typ, func(t *testing.T) {
			answer := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[12,-7,33,101,-128,5,64,0]}],` +
				`"model":"jina-embeddings-v3","usage":{"total_tokens":1,"prompt_tokens":1}}`
			body := `{"model":"jina-embeddings-v3","input":["a"],"dimensions":64,"embedding_type":"` + typ + `"}`
			if got := z133Admit(t, body, answer); got != ReasonNone {
				t.Errorf("Jina's %s answer (64 dimensions packed in 8 elements) is refused: %s, want admitted (or the request passed uncached)", typ, got)
			}
		})
	}
}
