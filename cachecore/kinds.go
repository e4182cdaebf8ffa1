package cachecore

import (
	"strings"

	"github.com/tidwall/gjson"
)

// Kind is the endpoint kind of a route; it picks the defaults for keys,
// admission and validation.
type Kind string

const (
	KindChat        Kind = "chat"        // OpenAI chat/completions
	KindCompletions Kind = "completions" // OpenAI legacy completions
	KindEmbeddings  Kind = "embeddings"  // OpenAI embeddings
	KindClassify    Kind = "classify"    // a classifier returning scores
	KindJSON        Kind = "json"        // any JSON-in, JSON-out model API
	KindRerank      Kind = "rerank"      // Cohere/Jina/TEI/vLLM rerank
)

// kindSpec is everything that differs between endpoint kinds. Every
// kind-dependent decision reads it; a new kind is one entry in kinds plus
// its tests.
type kindSpec struct {
	kind Kind

	// Key defaults: top-level request fields keyed (nil: all but
	// ignoreFields) and fields that cannot change the answer.
	keyFields    []string
	ignoreFields []string
	// finishReasons: the finish_reason values admitted by default.
	finishReasons []string

	// Shadow comparator defaults (shadow.compare, shadow.paths).
	shadowCompare string
	shadowPaths   []string

	// question: the top-level fields that hold what is asked; key_fields
	// must keep them (an allowlist without them keys every question alike).
	question []string
	// formKeyed: top-level request fields that change the answer's form
	// (a stream's usage chunk, how many choices or results, log
	// probabilities, the prompt's own tokens, a vector's encoding and
	// length): kept in the key as sent whatever key_fields and
	// ignore_fields say. "stream" is one: the key's stream byte reads
	// only a literal true, and a lenient server streams "true" or 1 too
	// (review Z87).
	formKeyed []string
	// streams: the kind's answers may be SSE streams the cache records
	// and replays (and assembles to judge them).
	streams bool
	// textChoices: choices carry "text" (legacy completions), not a
	// "message".
	textChoices bool
	// perItem: each input item of a request has its own entry
	// (embeddings.go); the request carries a batch.
	perItem bool

	// parse reads what the kind's admission needs from the request body
	// once it is keyed (checked JSON); a reason bypasses the request.
	parse func(c *Cache, req *Request, body []byte) Reason
	// admit is the kind's completeness check on a checked JSON answer,
	// run before the route's rules and confidence tiers.
	admit func(req *Request, body []byte) Reason
}

// kinds is the table of endpoint kinds, in the order configuration errors
// list them.
var kinds = []*kindSpec{
	{
		kind:          KindChat,
		ignoreFields:  []string{"user", "metadata", "store"}, // client-side tags and storage hints
		question:      []string{"messages"},
		finishReasons: []string{"stop"},
		shadowCompare: "text",
		shadowPaths:   []string{"choices.#.message.content", "choices.#.message.tool_calls", "choices.#.message.function_call"}, // (the legacy call too; review Z268)
		// vLLM's echo and generation-prompt flags: the last message
		// echoed into the answer, or continued rather than answered.
		// OpenAI's audio output (modalities, audio: message.audio),
		// vLLM's tokens as ids and llama.cpp's post-sampling
		// probabilities and n_probs (another logprobs form) too (review
		// Z122).
		formKeyed: []string{"stream", "stream_options", "n", "logprobs", "top_logprobs", "prompt_logprobs", "return_token_ids",
			"echo", "add_generation_prompt", "continue_final_message",
			"modalities", "audio", "return_tokens_as_token_ids", "post_sampling_probs", "n_probs",
			// Whether the answer is tool calls or text, and how many
			// (review Z199; function_call, the legacy tool_choice: review
			// Z202; the tools a call may name: review Z231); a reasoning
			// member or web search's annotations in the message, and the
			// servers' thinking toggles (vLLM's and SGLang's
			// chat_template_kwargs and separate_reasoning, OpenRouter's
			// reasoning, Qwen's enable_thinking, GLM's thinking: review
			// Z231; reasoning_effort "none", Ollama's and others': review
			// Z232).
			"tool_choice", "function_call", "parallel_tool_calls", "tools", "functions",
			"include_reasoning", "reasoning_format", "reasoning", "reasoning_effort", "chat_template_kwargs", "separate_reasoning",
			"enable_thinking", "thinking", "web_search_options",
			// JSON or text, and which JSON or grammar constrains it:
			// OpenAI's response_format (whose JSON the admission checks:
			// asksJSON), vLLM's guided_* and structured_outputs,
			// llama.cpp's json_schema and grammar (review Z243).
			"response_format", "guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs",
			"json_schema", "grammar"},
		streams: true,
		admit:   checkCompletion,
	},
	{
		kind:          KindCompletions,
		ignoreFields:  []string{"user", "metadata", "store"},
		question:      []string{"prompt"},
		finishReasons: []string{"stop"},
		shadowCompare: "text",
		shadowPaths:   []string{"choices.#.text"},
		// vLLM's prompt_embeds asks the question in prompt's place, and
		// its tokens as ids, llama.cpp's n_probs and post-sampling
		// probabilities set the logprobs' form (review Z122).
		formKeyed: []string{"stream", "stream_options", "n", "best_of", "logprobs", "echo", "prompt_logprobs", "return_token_ids",
			"prompt_embeds", "return_tokens_as_token_ids", "n_probs", "post_sampling_probs",
			"response_format", "guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs",
			"json_schema", "grammar"},
		streams:     true,
		textChoices: true,
		admit:       checkCompletion,
	},
	{
		kind:          KindEmbeddings,
		ignoreFields:  []string{"user"},
		shadowCompare: "cosine",
		// input: each item has its own key; the request's (its lease,
		// identical whole batches coalescing) holds them all, whatever
		// key_fields says.
		// vLLM's embed_dtype and endianness: what a base64 vector's
		// bytes mean (review Z122).
		// Voyage's and Mistral's output_dimension is their dimensions,
		// Google's output_dimensionality too (review Z215).
		formKeyed: []string{"input", "encoding_format", "dimensions", "embed_dtype", "endianness", "output_dimension", "output_dimensionality"},
		perItem:   true,
		parse:     (*Cache).parseEmbeddings,
		admit:     checkEmbeddingsData,
	},
	{
		kind:          KindClassify,
		shadowCompare: "label",
		shadowPaths:   []string{"label"},
		parse:         parseInputs,
	},
	{
		kind:          KindJSON,
		shadowCompare: "exact",
		parse:         parseInputs,
	},
	{
		kind:          KindRerank,
		question:      []string{"query", "documents"},
		shadowCompare: "exact",
		shadowPaths:   []string{"results.#.index"}, // the ranking, not score jitter
		formKeyed:     []string{"top_n", "return_documents"},
		parse:         parseRerank,
		admit:         checkRerank,
	},
}

// kindSpecs is kinds, set by init, since the table's functions themselves
// read it (an initialisation cycle otherwise). Every request looks its
// kind up: a scan of the few kinds runs less code than a map would
// (RATIONALE.md, "The code a request runs").
var kindSpecs []*kindSpec

// jsonSpec answers for a kind the table does not know (a Route built by
// hand): no kind-specific behaviour at all.
var jsonSpec *kindSpec

func init() {
	kindSpecs = kinds
	jsonSpec, _ = lookupKind(KindJSON)
}

func lookupKind(k Kind) (*kindSpec, bool) {
	for _, s := range kindSpecs {
		if s.kind == k {
			return s, true
		}
	}
	return nil, false
}

// spec returns k's entry in the kinds table.
func (k Kind) spec() *kindSpec {
	if s, ok := lookupKind(k); ok {
		return s
	}
	return jsonSpec
}

func knownKind(k Kind) bool {
	_, ok := lookupKind(k)
	return ok
}

func kindList() string {
	s := make([]string, 0, len(kinds))
	for _, k := range kinds {
		s = append(s, string(k.kind))
	}
	return strings.Join(s, ", ")
}

// PerItem reports whether the route caches each input item of a request
// separately (embeddings).
func (r *Route) PerItem() bool { return r.Kind.spec().perItem }

// Streams reports whether the route's answers may be recorded event
// streams.
func (r *Route) Streams() bool { return r.Kind.spec().streams }

// checkEmbeddingsData refuses an embeddings answer without data.
func checkEmbeddingsData(_ *Request, body []byte) Reason {
	if d := gjson.GetBytes(body, "data"); !d.Exists() {
		return ReasonForeignShape // another API's answer (Ollama's embeddings, Cohere's)
	} else if !d.Get("0").Exists() {
		return ReasonEmptyContent
	}
	return ReasonNone
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}
