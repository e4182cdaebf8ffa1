//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

const purgePathsConfig = `{
  "upstream_cluster": "model",
  "purge": {"path": "/modelcache/purge", "token": "0123456789abcdef-token"},
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s",
     "coalesce": {"max_wait": "10s", "max_retries": 2, "hit_for_miss": "30s"}}
  ]
}`

func purgePathsAnswer(content string) []byte {
	return []byte(`{"id":"c","object":"chat.completion","model":"sim-chat","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		content + `"},"finish_reason":"stop"}]}`)
}

var purgePathsJSON = [][2]string{{"content-type", "application/json"}}

// README "Purge API": an entry purge refuses an answer in flight when it
// came, asked for before it (for 15 minutes). Here a leader is upstream
// when the operator purges its key; a client then sends the same request
// with Cache-Control: no-cache, which goes upstream on its own and stores
// the model's fresh answer in the purge tombstone's way. When the
// leader's pre-purge answer lands, nothing refuses it any more: it
// replaces the fresh entry and every later request is served the answer
// the purge was meant to remove. Expected: the pre-purge answer is
// refused (refused.invalidated) and the fresh one stays served.
func TestPurgePathsPrePurgeLeaderOverwritesTheFreshAnswerStoredAfterThePurge(t *testing.T) {
	hs := newHarness(t, purgePathsConfig, withWorkers(2))
	hs.holdUpstream()
	lead, up := hs.lead(chatRequest("purged hot key"))
	hs.h.AdvanceAndTick(5 * time.Millisecond)
	reviewPurge(hs, 1, `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer tenant-a","host":"models"},"body":`+chatBody("purged hot key")+`}`)
	hs.h.AdvanceAndTick(5 * time.Millisecond)

	reval := chatRequest("purged hot key")
	reval.Headers = append(reval.Headers, [2]string{"cache-control", "no-cache"})
	rex := hs.h.StartExchange(1, reval)
	hs.h.Drain()
	var second *wasmhost.UpstreamRequest
	for _, u := range hs.h.PendingUpstream() {
		if u != up {
			second = u
		}
	}
	if second == nil {
		t.Fatalf("setup: the no-cache request did not go upstream (%s)", rex.State())
	}
	second.Respond(200, purgePathsJSON, purgePathsAnswer("fresh after the purge"))
	hs.h.Drain()
	if !rex.Done() {
		t.Fatalf("setup: no-cache request not answered: %s", rex.State())
	}
	expectCacheStatus(t, rex.Response(), "stored")

	up.Respond(200, purgePathsJSON, purgePathsAnswer("PURGED before the purge"))
	hs.h.Drain()
	if !lead.Done() {
		t.Fatalf("leader not answered: %s", lead.State())
	}
	res := hs.post(0, "/v1/chat/completions", chatBody("purged hot key"))
	if strings.Contains(string(res.Body), "PURGED") {
		t.Fatalf("after the purge answered 200, the answer asked for before it replaced the fresh one and is served (%s, leader's %q): %s",
			hdr(res, "cache-status"), hdr(lead.Response(), "cache-status"), res.Body)
	}
}
