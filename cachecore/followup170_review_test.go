package cachecore

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Review Z170 (follow-up of Z167's mend, 5627815). A full read of the
// purge log (32 records) is now followed by the next read at once, in its
// callback. Review Z46 bounded the chain of reads one L2Tick makes when
// webdis' answers disagree (a load balancer over a primary and a lagging
// replica, webdis answering garbage): "one chain of reads a tick". With
// LLEN answering 3 and every LRANGE answering a full range of records the
// VM never read before, the baseline read is full, so the next read goes
// at once; its first record is not the one the VM read last, so the log
// is "lost": L1 dropped (purgeAll: every bucket and every model record
// written), LLEN at once, the baseline read at once, full again... One
// L2Tick never ends, each lap dropping L1. Expected: a bounded number of
// reads per tick, as TestL2LLENAndLRANGEDisagreeingIsBoundedPerTick.
func TestL2FullReadsOfADisagreeingWebdisAreBoundedPerTick(t *testing.T) {
	m := newL2Mesh(t, "")
	b := m.p[1]
	lap := 0
	answer := func(c *Call) CallResult {
		body := `{"LLEN":3}`
		if !strings.Contains(headerValue(c.Headers, ":path"), "/LLEN/") {
			lap++
			recs := make([]string, l2SyncBatch+1)
			for i := range recs {
				// Another proxy's start records: skipped by every reader.
				rec := "2\nother\n" + strconv.Itoa(lap) + "-" + strconv.Itoa(i) + "\n" + l2StartScope
				recs[i] = strconv.Quote(base64.StdEncoding.EncodeToString([]byte(rec)))
			}
			body = `{"LRANGE":[` + strings.Join(recs, ",") + `]}`
		}
		return CallResult{Status: 200, Headers: [][2]string{{":status", "200"}}, Body: []byte(body)}
	}
	calls := 0
	acts := b.L2Tick()
	for len(acts) > 0 && calls < 1000 {
		a := acts[0]
		acts = acts[1:]
		if a.Kind == ActDispatch {
			calls++
			acts = append(acts, a.Call.Done(answer(a.Call))...)
		}
	}
	if calls > 4 {
		t.Fatalf("one L2Tick made %d purge-log reads (stopped at 1000) without waiting for a tick, dropping L1 at each lap", calls)
	}
}

// Review Z170 (follow-up of Z168's mend, 73b612f). The admission tag now
// digests statuses, finish_reasons, stored_headers and the validation
// rules as sets, so a reload that only reorders them keeps the cache. Two
// lists of the same nature are left digested as written: a rule's one_of
// values (a set: indexOneOf looks an answer's value up in a map) and
// ignore_fields (a set: a field is dropped from the key if it is listed,
// whatever the order). A reload that only reorders either still starts
// the route's cache afresh: every stored answer lost, a burst of upstream
// calls for nothing. Expected: the answer stored before such a reload is
// served after it.
func TestFollowup170EquivalentSetListsInAnotherOrderStartTheCacheAfresh(t *testing.T) {
	for _, tc := range []struct{ name, oldPol, newPol string }{
		{"one_of values reordered",
			`"shared":true,"validate":[{"path":"model","one_of":["gpt-4o-mini","gpt-4o"]}]`,
			`"shared":true,"validate":[{"path":"model","one_of":["gpt-4o","gpt-4o-mini"]}]`},
		{"one_of value listed twice",
			`"shared":true,"validate":[{"path":"model","one_of":["gpt-4o-mini"]}]`,
			`"shared":true,"validate":[{"path":"model","one_of":["gpt-4o-mini","gpt-4o-mini"]}]`},
		{"ignore_fields reordered",
			`"shared":true,"ignore_fields":["user","seed"]`,
			`"shared":true,"ignore_fields":["seed","user"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := func(pol string) string {
				return `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions",` + pol + `}]}`
			}
			old := newEnv(t, cfg(tc.oldPol))
			storeWith(t, old, "chat", nil, chatRequest("q"), 200, chatResponse("a"))
			if _, d := old.lookup("chat", nil, chatRequest("q")); d != Serve {
				t.Fatalf("setup: not served before the reload: %v", d)
			}
			now := reloadEnv(t, old, cfg(tc.newPol), 2)
			old.clock.Advance(time.Second)
			if r, d := now.lookup("chat", nil, chatRequest("q")); d != Serve {
				t.Errorf("a reload whose configuration only differs in how a set is written (%s) lost the stored answer: %v %s; want it served", tc.name, d, r.Status)
			}
		})
	}
}
