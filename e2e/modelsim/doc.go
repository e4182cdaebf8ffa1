// Package modelsim is a deterministic stand-in for an OpenAI-compatible model
// server. It sits behind Envoy in the modelcache end-to-end tests, benchmarks
// and demo, so that the cache can be judged against a model whose every answer
// is known in advance.
//
// # Why deterministic
//
// A cache is correct when a cached answer is indistinguishable from the answer
// the model would have given. Real models are neither reproducible nor free,
// so the simulator answers with pure functions of (model version, request):
// identical requests get byte-identical bodies (including id and created),
// different prompts or sampling parameters get different answers, and
// switching the model version changes every answer and vector while keeping
// shapes and dimensions. Tests compute the expected uncached reference with
// [ChatAnswer], [CompletionAnswer], [EmbeddingAnswer], [EmbeddingVector],
// [ClassifyAnswer], [RerankAnswer], [RelevanceScore] or, byte for byte,
// [ExpectedBody], all of which share the code path the HTTP handler uses.
//
// What feeds the chat and completion digest: the whole JSON request object
// after decoding (so key order, whitespace and number spelling do not matter)
// minus the delivery-only fields "stream", "stream_options" and "user". A
// streamed and a non-streamed request therefore carry the same id, created and
// content, and any parameter the cache forgets to key on (temperature, seed,
// tools, response_format, …) visibly changes the answer.
//
// # Endpoints
//
//	POST /v1/chat/completions  chat, streaming (SSE) and tool calls
//	POST /v1/completions       legacy text completions, streaming too
//	POST /v1/embeddings        string, string array, token array, token arrays; float or base64
//	POST /v1/classify          {model, input} -> {model, label, score, labels}
//	POST /v1/rerank            {model, query, documents, top_n?, return_documents?} -> {id, model, results, usage}
//
// Every response carries x-model-version. The control API lives on the same
// listener under /__sim/ (stats, config, reset, pause, resume) and is not
// counted as model traffic.
//
// # Knobs
//
// Faults and delays are configured globally ([Server.SetKnobs], POST
// /__sim/config), because through a cache request headers may never reach the
// model, or per request with x-sim-* headers, which override the global knobs
// for that request only. See [Knobs] and the Header* constants.
//
// # Concurrency
//
// A Server is safe for concurrent use: counters are atomics, knobs and the
// embeddings log are guarded by one mutex, and the deterministic functions
// share no state at all.
package modelsim
