//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z130: answers the cache refuses on every call of the same request,
// judged failures that may pass.

// burstAnswered starts 10 identical requests (body, on the coalesced chat
// route, over 2 workers), answers every upstream call the model gets with
// status 200, headers hs and body answer, and returns the clients'
// "status cache-status" lines that are not 200 or say leader-failed, with
// the number of upstream calls.
func burstAnswered(t *testing.T, config, body string, hs [][2]string, answer string) (bad []string, calls int, h *harness) {
	t.Helper()
	h = newHarness(t, config, withWorkers(2))
	h.holdUpstream()
	var exs []*wasmhost.Exchange
	for i := 0; i < 10; i++ {
		exs = append(exs, h.h.StartExchange(i%2, wasmhost.Request{
			Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "models"},
				{"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
				{"content-length", strconv.Itoa(len(body))}},
			Body: []byte(body),
		}))
	}
	h.h.Drain()
	headers := append([][2]string{{"content-length", strconv.Itoa(len(answer))}}, hs...)
	for round := 0; round < 50; round++ {
		pending := h.h.PendingUpstream()
		if len(pending) == 0 {
			break
		}
		for _, u := range pending {
			u.Respond(200, headers, []byte(answer))
			calls++
		}
		h.h.Drain()
	}
	for i, ex := range exs {
		if !ex.Done() {
			t.Fatalf("exchange %d stuck: %s", i, ex.State())
		}
		r := ex.Response()
		if r.Status != 200 || strings.Contains(hdr(r, "cache-status"), "leader-failed") {
			bad = append(bad, strconv.Itoa(r.Status)+" "+hdr(r, "cache-status"))
		}
	}
	return bad, calls, h
}

// A server that ignores n (Ollama's OpenAI-compatible API, among others)
// answers a request for n=3 choices with one, on every call: the cache
// refuses it (bad_shape, "not as many choices as the request's n"), which
// is certain to recur — the request alone says how many choices it asks
// for, and the same server answers the same way — yet it is judged a
// failure that may pass. A burst of identical requests is led one after
// another into the same answer, and after max_retries+1 leaders the
// followers still waiting are answered 502 leader-failed, although the
// model answered every call 200 (the stampede reviews Z33 and Z104 fixed
// for foreign_shape and rerank_document). Without the cache every client
// gets its 200.
func TestChoicesFewerThanNBurstGetsNoLeaderFailed(t *testing.T) {
	body := `{"model":"llama3","n":3,"messages":[{"role":"user","content":"name a colour"}]}`
	answer := `{"id":"chatcmpl-1","object":"chat.completion","model":"llama3","choices":[` +
		`{"index":0,"message":{"role":"assistant","content":"Blue."},"finish_reason":"stop"}]}`
	bad, calls, h := burstAnswered(t, coalesceConfig, body, [][2]string{{"content-type", "application/json"}}, answer)
	if len(bad) > 0 {
		t.Fatalf("the model answered all %d calls 200, yet %d of 10 clients got a failure "+
			"(refused.bad_shape %d, requests.leader_failed %d), e.g. %q",
			calls, len(bad), h.counter("modelcache_route.chat.refused.bad_shape"),
			h.counter("modelcache_route.chat.requests.leader_failed"), bad[0])
	}
}

// A route that tracks versions by a response header, in front of a server
// (or a replica set) that does not send it: every answer is refused
// no_version, on every call, and is judged a failure that may pass, so a
// burst's last followers are answered 502 leader-failed for a model that
// answered 200 each time.
func TestNoVersionBurstGetsNoLeaderFailed(t *testing.T) {
	config := strings.Replace(coalesceConfig, `"ttl": "60s",`, `"ttl": "60s", "model_version": {"header": "x-model-version"},`, 1)
	body := chatBody("versionless burst")
	answer := `{"id":"chatcmpl-1","object":"chat.completion","model":"sim-chat","choices":[` +
		`{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`
	bad, calls, h := burstAnswered(t, config, body, [][2]string{{"content-type", "application/json"}}, answer)
	if h.counter("modelcache_route.chat.refused.no_version") == 0 {
		t.Fatalf("answers were not refused no_version: the test does not test what it says")
	}
	if len(bad) > 0 {
		t.Fatalf("the model answered all %d calls 200, yet %d of 10 clients got a failure "+
			"(refused.no_version %d, requests.leader_failed %d), e.g. %q",
			calls, len(bad), h.counter("modelcache_route.chat.refused.no_version"),
			h.counter("modelcache_route.chat.requests.leader_failed"), bad[0])
	}
}
