package cachecore

import (
	"testing"
)

// A model version once replaced stays replaced (review 8).

func TestLateOldVersionAnswerRevivesPredecessorEntries(t *testing.T) {
	env := newEnv(t, testConfig)
	v := func(s string) [][2]string { return hdr("content-type", "application/json", "x-model-version", s) }
	req, _ := env.lookup("versioned", bob, chatRequest("A"))
	env.fill(req, v("v1"), chatResponse("v1's answer"), 10)
	slow, _ := env.lookup("versioned", alice, chatRequest("slow")) // upstream, answered by v1
	req, _ = env.lookup("versioned", alice, chatRequest("C"))
	if res := env.fill(req, v("v2"), chatResponse("v2's answer"), 10); !res.VersionChanged {
		t.Fatal("setup: v2 not a change")
	}
	if _, d := env.lookup("versioned", bob, chatRequest("A")); d == Serve {
		t.Fatal("setup: v1 entry served after v2")
	}
	env.cache.AdmitAndStore(slow, 200, v("v1"), []byte(chatResponse("late v1 answer")), OriginUpstream, 10)
	if req, d := env.lookup("versioned", bob, chatRequest("A")); d == Serve {
		_, _, body := env.cache.HitResponse(req)
		t.Fatalf("after v2 was reported, bob is served v1's answer again: %s", body)
	}
}
