package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z159: the plugin's configuration replaced while shared data (the
// slot table, the semantic index and its confirmation records) lives on.

// reloadEnv makes a Cache of cfg over env's store and clock: the
// configuration Envoy pushed after env's (a new root context; shared data
// is the process's and keeps env's entries).
func reloadEnv(t *testing.T, env *testEnv, cfg string, seed uint64) *testEnv {
	t.Helper()
	return &testEnv{t: t, cache: New(mustParse(t, cfg), Options{Store: env.store, Now: env.clock.Now, Rand: seededRand(seed)}), store: env.store, clock: env.clock}
}

// README, "Semantic cache": an answer must be confirmed — confirm.exact_hits
// exact hits, or (confirm.shadow) an agreeing shadow comparison — before
// near matches reach it ("an answer nobody asked for twice cannot spread
// to similar questions"). An operator who sees paraphrases served wrong
// answers tightens confirm by a reload: exact_hits 1 -> 3, or shadow
// true -> false. The confirmation record keeps the count of exact hits,
// but also one sticky "confirmed" flag, set when the count reached the
// threshold of the configuration then running or a shadow agreed, and
// semSearch takes the flag over the count and the route's confirm.shadow:
// an answer confirmed under the old rule is served to paraphrases under
// the new one. Expected: an answer is confirmed by the route's current
// rule (exact hits >= its exact_hits, or a shadow agreement where its
// confirm.shadow is on); otherwise semantic.unconfirmed and a forward.
func TestReloadTighteningConfirmStillServesAnswersConfirmedUnderTheOldRule(t *testing.T) {
	q, para := "How do I reset my password?", "How can I reset my password?"
	t.Run("exact_hits 1 to 3", func(t *testing.T) {
		e := newSemEnv(t, "") // confirm.exact_hits 1 (the default)
		f, _ := e.ask(alice, q, nil)
		e.answer(f, "Click 'forgot password'.")
		if _, got := e.ask(alice, q, nil); got != "semantic.confirmed serve" {
			t.Fatalf("setup: exact hit: %q", got)
		}
		e.testEnv = reloadEnv(t, e.testEnv, fmt.Sprintf(semConfig, `,"confirm":{"exact_hits":3}`), 2)
		if _, got := e.ask(alice, para, nil); strings.HasSuffix(got, "serve") {
			t.Errorf("after a reload raising confirm.exact_hits 1 -> 3, an answer with one exact hit (confirmed under the old threshold) is served to a paraphrase: %q; want semantic.unconfirmed and a forward", got)
		}
	})
	t.Run("shadow true to false", func(t *testing.T) {
		e := newSemEnv(t, `,"confirm":{"exact_hits":3}`) // confirm.shadow true (the default)
		f, _ := e.ask(alice, q, nil)
		e.answer(f, "Click 'forgot password'.")
		f, got := e.ask(alice, q, nil) // one exact hit of three
		if got != "serve" {
			t.Fatalf("setup: exact hit: %q", got)
		}
		if acts := e.cache.semanticShadow(f.Request(), true); actionKinds(acts) != "semantic.confirmed" {
			t.Fatalf("setup: shadow agreement: %q", actionKinds(acts))
		}
		e.testEnv = reloadEnv(t, e.testEnv, fmt.Sprintf(semConfig, `,"confirm":{"exact_hits":3,"shadow":false}`), 2)
		if _, got := e.ask(alice, para, nil); strings.HasSuffix(got, "serve") {
			t.Errorf("after a reload turning confirm.shadow off (exact_hits 3), an answer confirmed only by a shadow agreement (one exact hit) is served to a paraphrase: %q; want semantic.unconfirmed and a forward", got)
		}
	})
}

// storeWith stores resp (of status) for body on route through env, failing
// the test if the configuration then running refuses it.
func storeWith(t *testing.T, env *testEnv, route string, headers [][2]string, body string, status int, resp string) {
	t.Helper()
	req := env.request(route, headers, body)
	if r := env.cache.AdmitHeaders(req, status, jsonCT, OriginUpstream); r != ReasonNone {
		t.Fatalf("setup: AdmitHeaders: %s", r)
	}
	adm := env.cache.AdmitBody(req, jsonCT, []byte(resp))
	if adm.Reason != ReasonNone {
		t.Fatalf("setup: AdmitBody: %s", adm.Reason)
	}
	if res := env.cache.Store(req, status, jsonCT, []byte(resp), adm, 10); res.Reason != ReasonNone {
		t.Fatalf("setup: Store: %s", res.Reason)
	}
}

// The admission rules of a route — finish_reasons, validate, statuses,
// confidence tiers — are judged only when an answer is stored, and are not
// part of its key (keyingTag digests only what selects a request's key).
// An operator who finds the cache serving answers the model got wrong
// (truncated at max_tokens, without the member clients need, a 203 from
// a transforming proxy, a low-confidence label) tightens the rule by a
// reload, and the new configuration serves every answer the old rule
// admitted, for the rest of its ttl (up to the old tier's 1h), as a hit:
// the same config change that makes such an answer "not stored" leaves
// the stored one served. keyingTag's own comment gives the reason for
// the key's digest ("shared data outlives a configuration change, so an
// operator who takes a field out of ignore_fields ... would otherwise have
// requests ... served the answers stored for [the old rule], until their
// ttl"); the admission rules are left out. Expected: after the reload an
// answer the route's rules now refuse is not served (a miss, as a
// key-selection change makes it).
func TestReloadTighteningAdmissionRulesStillServesAnswersTheNewRulesRefuse(t *testing.T) {
	for _, tc := range []struct {
		name, route, path, kind, oldPol, newPol, body, resp string
		status                                              int
		hdrs                                                [][2]string
	}{
		{"finish_reasons", "completions", "/v1/completions", "completions", `"finish_reasons":["stop","length"]`, `"finish_reasons":["stop"]`,
			`{"model":"m","prompt":"The capital of France is","max_tokens":1}`, `{"id":"c","object":"text_completion","model":"m","choices":[{"index":0,"text":"Par","finish_reason":"length"}]}`, 200, alice},
		{"validate", "chat", "/v1/chat/completions", "chat", `"ttl":"1h"`, `"ttl":"1h","validate":[{"path":"usage.total_tokens","type":"number","min":1}]`,
			chatRequest("q"), chatResponse("an answer without usage"), 200, alice},
		{"statuses", "json", "/v1/json", "json", `"shared":true,"key_fields":["model","input"],"statuses":[200,203]`, `"shared":true,"key_fields":["model","input"]`,
			`{"model":"m","input":"x"}`, `{"label":"from a transforming proxy"}`, 203, nil},
		{"confidence", "classify", "/v1/classify", "classify", `"key_fields":["model","input"],"confidence":{"path":"score","tiers":[{"min":0.6,"ttl":"1h"}]}`,
			`"key_fields":["model","input"],"confidence":{"path":"score","tiers":[{"min":0.9,"ttl":"1h"}]}`,
			`{"model":"m","input":"x"}`, `{"label":"spam","score":0.65}`, 200, alice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := func(pol string) string {
				return `{"upstream_cluster":"model","routes":[{"name":"` + tc.route + `","kind":"` + tc.kind + `","path_exact":"` + tc.path + `",` + pol + `}]}`
			}
			old := newEnv(t, cfg(tc.oldPol))
			storeWith(t, old, tc.route, tc.hdrs, tc.body, tc.status, tc.resp)
			if _, d := old.lookup(tc.route, tc.hdrs, tc.body); d != Serve {
				t.Fatalf("setup: not served under the old configuration: %v", d)
			}
			// The new configuration refuses such an answer...
			fresh := newEnv(t, cfg(tc.newPol))
			req := fresh.request(tc.route, tc.hdrs, tc.body)
			refused := fresh.cache.AdmitHeaders(req, tc.status, jsonCT, OriginUpstream)
			if refused == ReasonNone {
				refused = fresh.cache.AdmitBody(req, jsonCT, []byte(tc.resp)).Reason
			}
			if refused == ReasonNone {
				t.Fatalf("setup: the new configuration admits the answer")
			}
			// ...and serves the one the old configuration stored.
			now := reloadEnv(t, old, cfg(tc.newPol), 2)
			old.clock.Advance(time.Second)
			if r, d := now.lookup(tc.route, tc.hdrs, tc.body); d == Serve {
				t.Errorf("after a reload whose %s refuses the answer (refused.%s), the answer the old configuration stored is served: %s %q", tc.name, refused, r.Status, r.Entry.Body)
			}
		})
	}
}

// README: stored_headers are the "response headers kept and replayed on
// hits". An operator finds a shared route replaying a per-caller header
// (here x-served-for, which names the caller whose request filled the
// entry) to everyone, and takes it out of stored_headers by a reload. The
// entries the old configuration stored keep it in their headers, and the
// new configuration replays them as stored, to every caller, until their
// ttl. Expected: a hit replays only the headers the route's
// stored_headers name now (or the entry is not served).
func TestReloadDroppingAStoredHeaderStillReplaysIt(t *testing.T) {
	cfg := func(stored string) string {
		return `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions","shared":true,"ttl":"1h","stored_headers":[` + stored + `]}]}`
	}
	old := newEnv(t, cfg(`"content-type","x-served-for"`))
	body := chatRequest("q")
	req := old.request("chat", nil, body)
	resp := hdr("content-type", "application/json", "x-served-for", "alice@example.com")
	if r := old.cache.AdmitHeaders(req, 200, resp, OriginUpstream); r != ReasonNone {
		t.Fatalf("setup: %s", r)
	}
	adm := old.cache.AdmitBody(req, resp, []byte(chatResponse("a")))
	if res := old.cache.Store(req, 200, resp, []byte(chatResponse("a")), adm, 10); res.Reason != ReasonNone {
		t.Fatalf("setup: %s", res.Reason)
	}
	now := reloadEnv(t, old, cfg(`"content-type"`), 2)
	r, d := now.lookup("chat", nil, body)
	if d != Serve {
		return // not served: nothing replayed
	}
	if _, headers, _ := now.cache.HitResponse(r); headerValue(headers, "x-served-for") != "" {
		t.Errorf("after a reload that took x-served-for out of stored_headers, a hit still replays it to every caller: %v", headers)
	}
}
